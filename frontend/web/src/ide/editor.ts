// The editor: tabs of open files over one CodeMirror view (each tab keeps its
// own EditorState), saving with the file's ETag so a change made on disk in
// the meantime is noticed instead of overwritten.

import { indentWithTab } from "@codemirror/commands";
import { syntaxHighlighting } from "@codemirror/language";
import { Compartment, EditorState, Text } from "@codemirror/state";
import { EditorView, keymap, ViewUpdate } from "@codemirror/view";
import { basicSetup } from "codemirror";

import { Api, ApiError, baseName, isWithin, parentOf } from "./api";
import { Language, languageFor } from "./languages";
import { decodeText, fromDoc, minimalChange, toDoc } from "./text";
import { highlight, theme } from "./theme";
import { Dialog, element, required, StatusBar } from "./ui";

/** Files above this size open as a download link rather than in the editor. */
const MAX_EDIT_BYTES = 5 * 1024 * 1024;

interface Tab {
  path: string;
  el: HTMLElement;
  label: HTMLElement;
  hint: HTMLElement;
  dirtyMark: HTMLElement;
  /** null when the file cannot be edited here (binary, too large). */
  state: EditorState | null;
  notice: string | null;
  /** The document as last read from or written to disk. */
  savedDoc: Text;
  /** The line ending the file uses, restored on save. */
  eol: string;
  etag: string | null;
  language: Language;
  dirty: boolean;
  diskChanged: boolean;
  deleted: boolean;
  saving: boolean;
  /** A change was reported while saving: look at the disk once done. */
  recheck: boolean;
  scroll: { top: number; left: number };
}

const languageSlot = new Compartment();

export interface EditorHooks {
  /** The active tab changed (null: none), e.g. to reveal it in the tree. */
  activated(path: string | null): void;
  /** Any tab's unsaved state changed. */
  dirtyChanged(anyDirty: boolean): void;
}

export class EditorArea {
  private readonly tabs: Tab[] = [];
  private active: Tab | null = null;
  private readonly opening = new Map<string, Promise<void>>();
  private readonly tabBar = required("#editor-tabs");
  private readonly area = required("#editor-area");
  private readonly banner = required("#editor-banner");
  private readonly empty = required("#editor-empty");
  private readonly saveButton = required<HTMLButtonElement>("[data-action=save]");
  private readonly host: HTMLElement;
  private readonly notice: HTMLElement;
  private readonly view: EditorView;

  constructor(
    private readonly api: Api,
    private readonly status: StatusBar,
    private readonly dialog: Dialog,
    private readonly hooks: EditorHooks,
  ) {
    this.host = element("div", { class: "editor-host" });
    this.host.hidden = true;
    this.notice = element("div", { class: "editor-notice" });
    this.notice.hidden = true;
    this.area.append(this.host, this.notice);
    this.view = new EditorView({ parent: this.host });
    this.saveButton.addEventListener("click", () => void this.save());
    this.banner.addEventListener("click", (event) => {
      const action = (event.target as Element).closest<HTMLElement>("[data-action]")?.dataset.action;
      const tab = this.active;
      if (!tab) return;
      if (action === "overwrite") void this.save(tab, true);
      else if (action === "reload") void this.reload(tab);
      else if (action === "close-tab") void this.close(tab);
    });
    this.tabBar.addEventListener("click", (event) => {
      const target = event.target as Element;
      const tab = this.tabAt(target);
      if (!tab) return;
      if (target.closest(".tab-close")) void this.close(tab);
      else this.activate(tab);
    });
    this.tabBar.addEventListener("auxclick", (event) => {
      const tab = this.tabAt(event.target as Element);
      if (tab && event.button === 1) void this.close(tab);
    });
    this.renderChrome();
  }

  get activePath(): string | null {
    return this.active?.path ?? null;
  }

  hasDirty(): boolean {
    return this.tabs.some((tab) => tab.dirty);
  }

  focus(): void {
    if (this.active?.state) this.view.focus();
  }

  /** Opens a file in a tab (or shows its tab). `sizeHint` comes from the listing. */
  open(path: string, sizeHint?: number): Promise<void> {
    const existing = this.tabs.find((tab) => tab.path === path);
    if (existing) {
      this.activate(existing);
      this.view.focus();
      return Promise.resolve();
    }
    const pending = this.opening.get(path);
    if (pending) return pending;
    const promise = this.load(path, sizeHint).finally(() => this.opening.delete(path));
    this.opening.set(path, promise);
    return promise;
  }

  private async load(path: string, sizeHint?: number): Promise<void> {
    let text: string | null = null;
    let etag: string | null = null;
    let notice: string | null = null;
    if (sizeHint !== undefined && sizeHint > MAX_EDIT_BYTES) {
      notice = `${baseName(path)} is too large to edit here (${formatSize(sizeHint)}).`;
    } else {
      try {
        const fetched = await this.api.fetchPath(path);
        if (fetched.kind === "dir") {
          this.status.show(`${path} is a directory.`, "error");
          return;
        }
        etag = fetched.file.etag;
        if (fetched.file.bytes.length > MAX_EDIT_BYTES) {
          notice = `${baseName(path)} is too large to edit here (${formatSize(fetched.file.bytes.length)}).`;
        } else {
          text = decodeText(fetched.file.bytes);
          if (text === null) notice = `${baseName(path)} is a binary file.`;
        }
      } catch (error) {
        this.status.error(error, `Opening ${path}`);
        return;
      }
    }
    const tab = this.createTab(path, text ?? "", etag, text === null ? notice : null);
    this.tabs.push(tab);
    this.tabBar.append(tab.el);
    this.updateLabels();
    this.activate(tab);
    if (tab.state) this.view.focus();
  }

  private createTab(path: string, text: string, etag: string | null, notice: string | null): Tab {
    const language = languageFor(path);
    const { doc, eol } = toDoc(text);
    const el = element("div", {
      class: "editor-tab",
      role: "tab",
      "data-path": path,
      "aria-selected": "false",
      title: path,
    });
    const label = element("span", { class: "tab-label" }, baseName(path));
    const hint = element("span", { class: "tab-hint" });
    const dirtyMark = element("span", { class: "tab-dirty", "aria-label": "unsaved changes" });
    const close = element("button", { type: "button", class: "tab-close", "aria-label": `Close ${baseName(path)}` }, "×");
    el.append(label, hint, dirtyMark, close);
    const tab: Tab = {
      path,
      el,
      label,
      hint,
      dirtyMark,
      state: null,
      notice,
      savedDoc: doc,
      eol,
      etag,
      language,
      dirty: false,
      diskChanged: false,
      deleted: false,
      saving: false,
      recheck: false,
      scroll: { top: 0, left: 0 },
    };
    if (notice === null) tab.state = this.createState(tab, doc);
    return tab;
  }

  private createState(tab: Tab, doc: Text): EditorState {
    return EditorState.create({
      doc,
      extensions: [
        basicSetup,
        keymap.of([indentWithTab]),
        theme,
        syntaxHighlighting(highlight),
        languageSlot.of(tab.language.extension()),
        EditorView.updateListener.of((update) => this.onUpdate(tab, update)),
      ],
    });
  }

  private onUpdate(tab: Tab, update: ViewUpdate): void {
    tab.state = update.state;
    if (update.docChanged) this.setDirty(tab, !update.state.doc.eq(tab.savedDoc));
    if (tab === this.active && (update.docChanged || update.selectionSet)) this.showCursor();
  }

  private setDirty(tab: Tab, dirty: boolean): void {
    if (tab.dirty === dirty) return;
    tab.dirty = dirty;
    this.renderTab(tab);
    if (tab === this.active) this.renderChrome();
    this.hooks.dirtyChanged(this.hasDirty());
  }

  private tabAt(target: Element): Tab | undefined {
    const el = target.closest<HTMLElement>(".editor-tab");
    return this.tabs.find((tab) => tab.el === el);
  }

  activate(tab: Tab | null): void {
    const previous = this.active;
    if (previous && previous !== tab && previous.state) {
      previous.state = this.view.state;
      previous.scroll = { top: this.view.scrollDOM.scrollTop, left: this.view.scrollDOM.scrollLeft };
    }
    this.active = tab;
    for (const other of this.tabs) other.el.setAttribute("aria-selected", String(other === tab));
    if (tab?.state && previous !== tab) {
      this.view.setState(tab.state);
      const { top, left } = tab.scroll;
      requestAnimationFrame(() => this.view.scrollDOM.scrollTo({ top, left }));
    }
    tab?.el.scrollIntoView({ block: "nearest", inline: "nearest" });
    this.renderChrome();
    this.hooks.activated(tab?.path ?? null);
  }

  /** Shows what belongs to the active tab: editor or notice, banner, status. */
  private renderChrome(): void {
    const tab = this.active;
    this.empty.hidden = tab !== null;
    this.host.hidden = !tab?.state;
    this.notice.hidden = !(tab && !tab.state);
    if (tab && !tab.state) {
      const link = element("a", { class: "button", href: this.api.downloadUrl(tab.path), download: baseName(tab.path) }, "Download");
      this.notice.replaceChildren(element("p", {}, tab.notice ?? ""), link);
    }
    this.renderBanner();
    this.saveButton.disabled = !(tab?.state && (tab.dirty || tab.deleted || tab.diskChanged));
    if (!tab) {
      this.status.setCursor(null);
      this.status.setLanguage("");
      this.status.setSave("", "none");
      return;
    }
    this.status.setLanguage(tab.state ? tab.language.name : "");
    if (tab.state) this.showCursor();
    else this.status.setCursor(null);
    if (!tab.state) this.status.setSave("Read-only", "none");
    else if (tab.saving) this.status.setSave("Saving…", "saving");
    else if (tab.diskChanged) this.status.setSave("Changed on disk", "conflict");
    else if (tab.deleted) this.status.setSave("Deleted on disk", "conflict");
    else if (tab.dirty) this.status.setSave("Unsaved", "dirty");
    else this.status.setSave("Saved", "saved");
  }

  private renderBanner(): void {
    const tab = this.active;
    const buttons = (...specs: [string, string, string][]) =>
      specs.map(([action, label, cls]) => element("button", { type: "button", class: `small ${cls}`, "data-action": action }, label));
    if (tab?.diskChanged) {
      this.banner.replaceChildren(
        element("span", {}, `${baseName(tab.path)} changed on disk since you opened it.`),
        ...buttons(["reload", "Reload", "secondary"], ["overwrite", "Overwrite", "danger"]),
      );
      this.banner.dataset.kind = "conflict";
      this.banner.hidden = false;
    } else if (tab?.deleted) {
      this.banner.replaceChildren(
        element("span", {}, `${baseName(tab.path)} was deleted on disk. Saving creates it again.`),
        ...buttons(["close-tab", "Close", "secondary"]),
      );
      this.banner.dataset.kind = "deleted";
      this.banner.hidden = false;
    } else {
      this.banner.hidden = true;
      this.banner.replaceChildren();
      delete this.banner.dataset.kind;
    }
  }

  private renderTab(tab: Tab): void {
    tab.el.dataset.dirty = String(tab.dirty);
    tab.dirtyMark.textContent = tab.dirty ? "●" : "";
    tab.el.classList.toggle("conflict", tab.diskChanged);
    tab.el.classList.toggle("deleted", tab.deleted);
    tab.el.dataset.path = tab.path;
    tab.el.title = tab.path;
    tab.label.textContent = baseName(tab.path);
  }

  /** Tabs with the same file name show their directory too. */
  private updateLabels(): void {
    const counts = new Map<string, number>();
    for (const tab of this.tabs) counts.set(baseName(tab.path), (counts.get(baseName(tab.path)) ?? 0) + 1);
    for (const tab of this.tabs) {
      const shared = (counts.get(baseName(tab.path)) ?? 0) > 1;
      tab.hint.textContent = shared ? baseName(parentOf(tab.path)) || "/" : "";
    }
  }

  private showCursor(): void {
    const state = this.view.state;
    const range = state.selection.main;
    const line = state.doc.lineAt(range.head);
    const selected = state.selection.ranges.reduce((sum, r) => sum + (r.to - r.from), 0);
    this.status.setCursor(line.number, range.head - line.from + 1, selected);
  }

  /** Saves the active tab (or `tab`). `force` skips the on-disk check. */
  async save(tab: Tab | null = this.active, force = false): Promise<void> {
    if (!tab?.state || tab.saving) return;
    if (!tab.dirty && !tab.deleted && !tab.diskChanged && !force) {
      this.status.show(`${baseName(tab.path)} has no unsaved changes.`);
      return;
    }
    const state = tab === this.active ? this.view.state : tab.state;
    const doc = state.doc;
    const body = fromDoc(doc, tab.eol);
    tab.saving = true;
    this.renderChrome();
    try {
      const etag = force || tab.deleted ? null : tab.etag;
      const result = await this.api.writeFile(tab.path, body, etag);
      tab.etag = result.etag;
      tab.savedDoc = doc;
      tab.diskChanged = false;
      tab.deleted = false;
      tab.dirty = !(this.currentDoc(tab).eq(doc));
      this.status.show(`Saved ${tab.path}`);
    } catch (error) {
      if (error instanceof ApiError && error.status === 412) {
        tab.diskChanged = true;
        this.status.show(`${tab.path} changed on disk: reload it or overwrite it.`, "error");
      } else {
        this.status.error(error, `Saving ${tab.path}`);
        this.status.setSave("Save failed", "error");
      }
    } finally {
      tab.saving = false;
      this.renderTab(tab);
      if (tab === this.active) this.renderChrome();
      this.hooks.dirtyChanged(this.hasDirty());
    }
    if (tab.recheck) {
      tab.recheck = false;
      await this.checkDisk(tab);
    }
  }

  private currentDoc(tab: Tab): Text {
    return (tab === this.active ? this.view.state : tab.state)?.doc ?? tab.savedDoc;
  }

  /** Replaces a tab's text with what is on disk, discarding its changes. */
  async reload(tab: Tab): Promise<void> {
    try {
      const fetched = await this.api.fetchPath(tab.path);
      if (fetched.kind !== "file") throw new Error(`${tab.path} is no longer a file.`);
      const text = decodeText(fetched.file.bytes);
      if (text === null) throw new Error(`${tab.path} is now a binary file.`);
      this.applyDisk(tab, text, fetched.file.etag);
    } catch (error) {
      this.status.error(error, `Reloading ${tab.path}`);
    }
  }

  /** Takes the disk's text and version as the tab's clean state. */
  private applyDisk(tab: Tab, text: string, etag: string | null): void {
    if (!tab.state) return;
    const { doc, eol } = toDoc(text);
    const current = this.currentDoc(tab);
    if (!current.eq(doc)) {
      const change = minimalChange(current.toString(), doc.toString());
      if (tab === this.active) this.view.dispatch({ changes: change });
      else tab.state = tab.state.update({ changes: change }).state;
    }
    tab.savedDoc = this.currentDoc(tab);
    tab.eol = eol;
    tab.etag = etag;
    tab.diskChanged = false;
    tab.deleted = false;
    tab.dirty = false;
    this.renderTab(tab);
    if (tab === this.active) this.renderChrome();
    this.hooks.dirtyChanged(this.hasDirty());
  }

  /**
   * The server reported changes: a clean tab takes the new text, a tab with
   * unsaved changes is marked "changed on disk".
   */
  async changed(paths: string[]): Promise<void> {
    const affected = this.tabs.filter((tab) => paths.some((p) => isWithin(tab.path, p)));
    await Promise.all(affected.map((tab) => this.checkDisk(tab)));
  }

  /** Looks at every open file again (after events may have been missed). */
  async recheckAll(): Promise<void> {
    await Promise.all(this.tabs.map((tab) => this.checkDisk(tab)));
  }

  private async checkDisk(tab: Tab): Promise<void> {
    if (tab.saving) {
      tab.recheck = true;
      return;
    }
    let text: string | null;
    let etag: string | null;
    try {
      const fetched = await this.api.fetchPath(tab.path);
      if (fetched.kind !== "file") return;
      etag = fetched.file.etag;
      text = decodeText(fetched.file.bytes);
    } catch (error) {
      if (error instanceof ApiError && error.status === 404) {
        if (!this.tabs.includes(tab)) return;
        tab.deleted = true;
        this.renderTab(tab);
        if (tab === this.active) this.renderChrome();
      }
      return;
    }
    if (!this.tabs.includes(tab) || tab.saving) return;
    if (!tab.state) {
      tab.etag = etag;
      return;
    }
    const unchanged = (etag !== null && etag === tab.etag) || (text !== null && toDoc(text).doc.eq(tab.savedDoc));
    if (unchanged) {
      tab.etag = etag ?? tab.etag;
      if (tab.deleted) {
        tab.deleted = false;
        this.renderTab(tab);
        if (tab === this.active) this.renderChrome();
      }
      return;
    }
    if (!tab.dirty && text !== null) {
      this.applyDisk(tab, text, etag);
      return;
    }
    if (text !== null && toDoc(text).doc.eq(this.currentDoc(tab))) {
      // Someone saved exactly what we have.
      this.applyDisk(tab, text, etag);
      return;
    }
    tab.diskChanged = true;
    this.renderTab(tab);
    if (tab === this.active) this.renderChrome();
  }

  /** Closes a tab, asking first when it has unsaved changes. */
  async close(tab: Tab, ask = true): Promise<void> {
    if (ask && tab.dirty) {
      const discard = await this.dialog.confirm(
        `${baseName(tab.path)} has unsaved changes. Close it and lose them?`,
        "Discard changes",
        true,
      );
      if (!discard) return;
    }
    const index = this.tabs.indexOf(tab);
    if (index < 0) return;
    this.tabs.splice(index, 1);
    tab.el.remove();
    if (this.active === tab) {
      this.active = null;
      this.activate(this.tabs[Math.min(index, this.tabs.length - 1)] ?? null);
    }
    this.updateLabels();
    this.hooks.dirtyChanged(this.hasDirty());
  }

  /** A file or directory moved: its open tabs follow it. */
  moved(from: string, to: string): void {
    for (const tab of this.tabs) {
      if (!isWithin(tab.path, from)) continue;
      tab.path = to + tab.path.slice(from.length);
      const language = languageFor(tab.path);
      if (language !== tab.language && tab.state) {
        tab.language = language;
        const effects = languageSlot.reconfigure(language.extension());
        if (tab === this.active) this.view.dispatch({ effects });
        else tab.state = tab.state.update({ effects }).state;
      }
      this.renderTab(tab);
    }
    this.updateLabels();
    this.renderChrome();
  }

  /** A file or directory was deleted here: clean tabs close, others are marked. */
  removed(path: string): void {
    for (const tab of [...this.tabs]) {
      if (!isWithin(tab.path, path)) continue;
      if (tab.dirty) {
        tab.deleted = true;
        this.renderTab(tab);
      } else {
        void this.close(tab, false);
      }
    }
    this.renderChrome();
  }
}

export function formatSize(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KiB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}
