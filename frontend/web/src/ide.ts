// The workspace IDE (loaded only by /workspaces/{id} as /assets/ide.js,
// next to app.js which handles the theme switch and confirmations).
//
// Page hooks, rendered by frontend/src/workspaces/mod.rs; browser tests select on
// them, so keep them stable:
//
//   #ide                    root; data-workspace-id, data-api (API base),
//                           data-csrf (sent as x-csrf-token), data-state
//                           (workspace state, kept current), data-ready="true"
//                           once the panels are wired up
//   #ide-offline[data-wait] shown instead of the panels when not running;
//                           with data-wait the page reloads on a state change
//   #ide-state, #status-state[data-state]   workspace state badge / status
//   #status-branch[data-branch]             current branch ("" if none)
//   #status-cursor ("Ln N, Col M"), #status-language,
//   #status-save[data-save=saved|dirty|saving|error|conflict|none],
//   #status-message[data-kind=info|error]   last notice or error
//   #file-tree              tree; rows are .tree-item[data-tree-path=PATH]
//                           [data-kind=file|dir|symlink] with aria-expanded on
//                           directories and aria-selected
//   #context-menu           right-click menu; items button[data-menu=open|
//                           new-file|new-folder|upload|rename|delete|download]
//   [data-action=new-file|new-folder|upload|refresh-tree]  tree toolbar
//   #upload-input           the file input uploads go through
//   #ide-dialog             prompt/confirm; [data-dialog-input],
//                           [data-dialog-ok], [data-dialog-cancel]
//   #editor-tabs            .editor-tab[data-path=PATH][aria-selected]
//                           [data-dirty=true|false]; .tab-dirty holds "●"
//                           when unsaved; .tab-close closes
//   #editor-area .cm-content  the CodeMirror editor of the active tab
//   #editor-banner[data-kind=conflict|deleted]  with [data-action=reload],
//                           [data-action=overwrite], [data-action=close-tab]
//   [data-action=save]      saves the active tab (also Ctrl/Cmd+S)
//   [data-action=quick-open], #quick-open, #quick-open-input,
//                           #quick-open-list li[data-path]   (Ctrl/Cmd+P)
//   #terminal-tabs          .terminal-tab[data-terminal-id][data-state=
//                           connecting|open|reconnecting|ended][aria-selected]
//   #terminal-area          .terminal-view[data-terminal-id] > .xterm
//   [data-action=new-terminal]  new terminal (also Ctrl+` or Ctrl+Shift+`)
//   [data-action=preview], #preview-menu button[data-port=N],
//   #preview-pane[data-port], #preview-frame, #preview-open,
//   [data-action=preview-reload|preview-close]
//   .splitter[data-split=tree|terminal|preview]   drag handles

import "@xterm/xterm/css/xterm.css";
import "./ide/ide.css";

import { Api, ApiError, baseName, cleanPath, EntryKind, joinPath, parentOf } from "./ide/api";
import { EditorArea } from "./ide/editor";
import { Preview } from "./ide/preview";
import { QuickOpen } from "./ide/quickopen";
import { setupSplitters } from "./ide/splitters";
import { TerminalPanel } from "./ide/terminal";
import { FileTree } from "./ide/tree";
import { mirrorRuntimeStyles } from "./ide/csp_styles";
import { ContextMenu, Dialog, MenuItem, required, StatusBar } from "./ide/ui";

function setState(root: HTMLElement, status: StatusBar | null, state: string): void {
  root.dataset.state = state;
  const badge = document.getElementById("ide-state");
  if (badge) {
    badge.textContent = state;
    badge.dataset.state = state;
    badge.className = `badge ${state === "running" ? "on" : state === "error" ? "off" : state === "stopped" ? "" : "busy"}`.trim();
  }
  status?.setState(state);
}

/** Not running: wait for the state to change, then load the page again. */
function waitForState(root: HTMLElement, api: Api): void {
  const offline = document.getElementById("ide-offline");
  if (!offline?.dataset.wait) return;
  const initial = root.dataset.state;
  const poll = async () => {
    try {
      const info = await api.workspace();
      if (info.state !== initial) {
        location.reload();
        return;
      }
    } catch (error) {
      if (error instanceof ApiError && (error.status === 404 || error.status === 401 || error.status === 403)) return;
    }
    window.setTimeout(poll, 2000);
  };
  window.setTimeout(poll, 2000);
}

class Ide {
  readonly status = new StatusBar();
  readonly dialog = new Dialog();
  readonly menu = new ContextMenu();
  readonly tree: FileTree;
  readonly editor: EditorArea;
  readonly terminals: TerminalPanel;
  readonly quickOpen: QuickOpen;
  readonly preview: Preview;
  private readonly upload = required<HTMLInputElement>("#upload-input");
  private uploadDir = "";
  private pendingFs = new Set<string>();
  private fsTimer = 0;

  constructor(
    readonly root: HTMLElement,
    readonly api: Api,
  ) {
    this.editor = new EditorArea(api, this.status, this.dialog, {
      activated: (path) => {
        if (path) void this.tree.reveal(path);
      },
      dirtyChanged: (dirty) => {
        document.title = `${dirty ? "● " : ""}${document.title.replace(/^● /, "")}`;
      },
    });
    this.tree = new FileTree(required("#file-tree"), api, {
      openFile: (path, size) => void this.editor.open(path, size),
      contextMenu: (path, kind, x, y) => this.contextMenu(path, kind, x, y),
      dropFiles: (dir, files) => void this.uploadFiles(dir, files),
      moveInto: (path, dir) => void this.move(path, joinPath(dir, baseName(path))),
      error: (error, context) => this.status.error(error, context),
    });
    this.terminals = new TerminalPanel(api, this.status);
    this.quickOpen = new QuickOpen(
      api,
      (path) => void this.editor.open(path),
      () => this.tree.files(),
    );
    this.preview = new Preview(api);
    setupSplitters(root, () => this.terminals.queueFit());
    this.wireButtons();
    this.wireKeys();
    window.addEventListener("beforeunload", (event) => {
      if (this.editor.hasDirty()) event.preventDefault();
    });
  }

  async start(): Promise<void> {
    void this.api
      .workspace()
      .then((info) => {
        this.status.setBranch(info.branch);
        setState(this.root, this.status, info.state);
      })
      .catch((error) => this.status.error(error, "Loading the workspace"));
    this.watchEvents();
    await Promise.all([this.tree.loadRoot(), this.terminals.init()]);
    this.root.dataset.ready = "true";
  }

  private wireButtons(): void {
    const on = (action: string, run: () => void) => {
      for (const el of document.querySelectorAll<HTMLElement>(`[data-action=${action}]`)) el.addEventListener("click", run);
    };
    on("new-file", () => void this.newFile(this.tree.targetDir()));
    on("new-folder", () => void this.newFolder(this.tree.targetDir()));
    on("upload", () => this.chooseUpload(this.tree.targetDir()));
    on("refresh-tree", () => void this.refreshEverything());
    on("new-terminal", () => void this.terminals.create());
    on("quick-open", () => this.quickOpen.open());
    this.upload.addEventListener("change", () => {
      const files = [...(this.upload.files ?? [])];
      this.upload.value = "";
      if (files.length > 0) void this.uploadFiles(this.uploadDir, files);
    });
  }

  private wireKeys(): void {
    window.addEventListener(
      "keydown",
      (event) => {
        const inTerminal = (event.target as Element | null)?.closest?.(".xterm") != null;
        const mod = event.ctrlKey || event.metaKey;
        // In a terminal, Ctrl+S and Ctrl+P belong to the shell (XOFF,
        // previous history line); Cmd on a Mac still reaches the IDE.
        const ideMod = mod && !event.altKey && (!inTerminal || event.metaKey);
        const key = event.key.toLowerCase();
        let handled = true;
        if (ideMod && !event.shiftKey && key === "s") void this.editor.save();
        else if (ideMod && !event.shiftKey && key === "p") this.quickOpen.open();
        else if (event.ctrlKey && !event.altKey && !event.metaKey && (event.code === "Backquote" || event.key === "`"))
          void this.terminals.create();
        else handled = false;
        if (handled) {
          event.preventDefault();
          event.stopPropagation();
        }
      },
      true,
    );
  }

  private contextMenu(path: string | null, kind: EntryKind | null, x: number, y: number): void {
    const dir = path === null ? "" : kind === "dir" ? path : parentOf(path);
    const items: MenuItem[] = [];
    if (path !== null && kind !== "dir") items.push({ id: "open", label: "Open", run: () => void this.editor.open(path) });
    items.push(
      { id: "new-file", label: "New file…", run: () => void this.newFile(dir) },
      { id: "new-folder", label: "New folder…", run: () => void this.newFolder(dir) },
      { id: "upload", label: "Upload files…", run: () => this.chooseUpload(dir) },
    );
    if (path !== null) {
      items.push({ id: "rename", label: "Rename or move…", run: () => void this.rename(path) });
      if (kind !== "dir") items.push({ id: "download", label: "Download", run: () => this.download(path) });
      items.push({ id: "delete", label: "Delete…", danger: true, run: () => void this.remove(path, kind) });
    }
    this.menu.show(x, y, items);
  }

  private async newFile(dir: string): Promise<void> {
    const prefix = dir === "" ? "" : `${dir}/`;
    const answer = await this.dialog.prompt("New file (a path; folders are created as needed):", prefix, "Create", [prefix.length, prefix.length]);
    const path = answer === null ? null : cleanPath(answer);
    if (path === null) return;
    if (this.tree.exists(path) || this.tree.kindOf(path)) {
      this.status.show(`${path} already exists.`, "error");
      return;
    }
    try {
      await this.api.writeFile(path, "");
      await this.tree.refreshAncestors(path);
      await this.tree.reveal(path);
      await this.editor.open(path, 0);
    } catch (error) {
      this.status.error(error, `Creating ${path}`);
    }
  }

  private async newFolder(dir: string): Promise<void> {
    const prefix = dir === "" ? "" : `${dir}/`;
    const answer = await this.dialog.prompt("New folder:", prefix, "Create", [prefix.length, prefix.length]);
    const path = answer === null ? null : cleanPath(answer);
    if (path === null) return;
    try {
      await this.api.mkdir(path);
      await this.tree.refreshAncestors(path);
      await this.tree.reveal(path);
    } catch (error) {
      this.status.error(error, `Creating ${path}`);
    }
  }

  private async rename(path: string): Promise<void> {
    const name = baseName(path);
    const dot = name.lastIndexOf(".");
    const start = path.length - name.length;
    const end = dot > 0 ? start + dot : path.length;
    const answer = await this.dialog.prompt(`Rename or move ${name} to:`, path, "Rename", [start, end]);
    const to = answer === null ? null : cleanPath(answer);
    if (to === null || to === path) return;
    await this.move(path, to);
  }

  private async move(from: string, to: string): Promise<void> {
    try {
      await this.api.move(from, to);
      this.editor.moved(from, to);
      this.quickOpen.forget(from);
      await this.tree.refreshDirs([parentOf(from)]);
      await this.tree.refreshAncestors(to);
      this.status.show(`Moved ${from} to ${to}`);
    } catch (error) {
      this.status.error(error, `Moving ${from}`);
    }
  }

  private async remove(path: string, kind: EntryKind | null): Promise<void> {
    const what = kind === "dir" ? `the folder ${path} and everything in it` : path;
    if (!(await this.dialog.confirm(`Delete ${what}? This cannot be undone.`, "Delete", true))) return;
    try {
      await this.api.remove(path);
      this.editor.removed(path);
      this.quickOpen.forget(path);
      await this.tree.refreshDirs([parentOf(path)]);
      this.status.show(`Deleted ${path}`);
    } catch (error) {
      this.status.error(error, `Deleting ${path}`);
    }
  }

  private download(path: string): void {
    const link = document.createElement("a");
    link.href = this.api.downloadUrl(path);
    link.download = baseName(path);
    document.body.append(link);
    link.click();
    link.remove();
  }

  private chooseUpload(dir: string): void {
    this.uploadDir = dir;
    this.upload.click();
  }

  private async uploadFiles(dir: string, files: File[]): Promise<void> {
    let done = 0;
    for (const file of files) {
      const path = joinPath(dir, file.name);
      this.status.show(`Uploading ${file.name} (${done + 1} of ${files.length})…`);
      try {
        await this.api.writeFile(path, file);
        done++;
      } catch (error) {
        this.status.error(error, `Uploading ${file.name}`);
        break;
      }
    }
    await this.tree.refreshDirs([dir]);
    if (done === files.length) this.status.show(done === 1 ? `Uploaded ${files[0].name}` : `Uploaded ${done} files`);
  }

  private async refreshEverything(): Promise<void> {
    await this.tree.refreshDirs(this.tree.loadedDirs());
    this.quickOpen.invalidate();
    await this.editor.recheckAll();
  }

  /** Server-Sent Events: file changes and workspace state. */
  private watchEvents(): void {
    const events = new EventSource(this.api.eventsUrl());
    let hadError = false;
    events.addEventListener("open", () => {
      // Changes made while disconnected were not reported: look again.
      if (hadError) void this.refreshEverything();
      hadError = false;
    });
    events.addEventListener("error", () => {
      hadError = true;
    });
    events.addEventListener("fs", (event) => {
      try {
        const data = JSON.parse((event as MessageEvent<string>).data) as { paths?: unknown };
        if (!Array.isArray(data.paths)) return;
        for (const p of data.paths) if (typeof p === "string") this.pendingFs.add(p.replace(/^\/+|\/+$/g, ""));
      } catch {
        return;
      }
      // Batch bursts (a git checkout, a build) into one refresh.
      window.clearTimeout(this.fsTimer);
      this.fsTimer = window.setTimeout(() => this.flushFs(), 150);
    });
    events.addEventListener("state", (event) => {
      try {
        const data = JSON.parse((event as MessageEvent<string>).data) as { state?: unknown };
        if (typeof data.state !== "string") return;
        setState(this.root, this.status, data.state);
        if (data.state !== "running") {
          this.status.show(`The workspace is ${data.state}. Reload the page to start it again.`, "error");
        }
      } catch {
        // Ignore malformed events.
      }
    });
  }

  private flushFs(): void {
    const paths = [...this.pendingFs];
    this.pendingFs.clear();
    if (paths.length === 0) return;
    this.quickOpen.invalidate();
    void this.tree.changed(paths);
    void this.editor.changed(paths);
  }
}

document.addEventListener("DOMContentLoaded", () => {
  const root = document.getElementById("ide");
  const base = root?.dataset.api;
  if (!root || !base) return;
  const api = new Api(base, root.dataset.csrf ?? "");
  mirrorRuntimeStyles();
  if (!document.getElementById("ide-body")) {
    waitForState(root, api);
    return;
  }
  const ide = new Ide(root, api);
  void ide.start();
});
