// The file tree: directories load when first expanded and reload when the
// server reports changes in them. Each row is
//   <div class="tree-item" role="treeitem" data-tree-path="src/a.rs" data-kind="file|dir|symlink">
// inside a .tree-node whose .tree-children holds a directory's rows.

import { Api, DirEntry, EntryKind, isWithin, joinPath, parentOf } from "./api";
import { element } from "./ui";

interface TreeNode {
  path: string;
  name: string;
  kind: EntryKind;
  size: number;
  /** The .tree-node wrapper (the root's is the tree element itself). */
  node: HTMLElement;
  row: HTMLElement | null;
  /** Where children go (directories only). */
  children: HTMLElement | null;
  expanded: boolean;
  loaded: boolean;
  loading: Promise<void> | null;
}

export interface TreeHandlers {
  openFile(path: string, size: number): void;
  contextMenu(path: string | null, kind: EntryKind | null, x: number, y: number): void;
  /** Files dropped from the desktop onto a directory ("" is the root). */
  dropFiles(dir: string, files: File[]): void;
  /** A tree entry dragged onto a directory. */
  moveInto(path: string, dir: string): void;
  error(error: unknown, context: string): void;
}

const collator = new Intl.Collator(undefined, { numeric: true, sensitivity: "base" });
const DRAG_TYPE = "application/x-nubo-path";

function sortEntries(entries: DirEntry[]): DirEntry[] {
  return [...entries].sort((a, b) => {
    const dirA = a.kind === "dir" ? 0 : 1;
    const dirB = b.kind === "dir" ? 0 : 1;
    return dirA - dirB || collator.compare(a.name, b.name);
  });
}

export class FileTree {
  private readonly nodes = new Map<string, TreeNode>();
  private readonly root: TreeNode;
  private selected: string | null = null;

  constructor(
    private readonly el: HTMLElement,
    private readonly api: Api,
    private readonly handlers: TreeHandlers,
  ) {
    this.root = {
      path: "",
      name: "",
      kind: "dir",
      size: 0,
      node: el,
      row: null,
      children: el,
      expanded: true,
      loaded: false,
      loading: null,
    };
    this.nodes.set("", this.root);
    el.addEventListener("click", (event) => this.onClick(event));
    el.addEventListener("dblclick", (event) => this.onDoubleClick(event));
    el.addEventListener("keydown", (event) => this.onKey(event));
    el.addEventListener("contextmenu", (event) => {
      event.preventDefault();
      const node = this.nodeAt(event.target);
      if (node) this.select(node.path);
      handlers.contextMenu(node?.path ?? null, node?.kind ?? null, event.clientX, event.clientY);
    });
    this.setupDragAndDrop();
  }

  /** Loads the root listing (again). */
  async loadRoot(): Promise<void> {
    await this.refresh("");
  }

  isLoaded(dir: string): boolean {
    return this.nodes.get(dir)?.loaded ?? false;
  }

  /** Loaded directories, for refreshing everything after missed events. */
  loadedDirs(): string[] {
    return [...this.nodes.values()].filter((n) => n.kind === "dir" && n.loaded).map((n) => n.path);
  }

  /** Paths of the files in loaded listings. */
  *files(): Iterable<string> {
    for (const node of this.nodes.values()) if (node.kind !== "dir") yield node.path;
  }

  kindOf(path: string): EntryKind | null {
    return this.nodes.get(path)?.kind ?? null;
  }

  /** Whether a loaded listing shows `path`; null when its directory is not loaded. */
  exists(path: string): boolean | null {
    if (!this.isLoaded(parentOf(path))) return null;
    return this.nodes.has(path);
  }

  /** The directory new files go to: the selected one, or the selected file's. */
  targetDir(): string {
    if (this.selected === null) return "";
    const node = this.nodes.get(this.selected);
    if (!node) return "";
    return node.kind === "dir" ? node.path : parentOf(node.path);
  }

  select(path: string | null): void {
    if (this.selected !== null) {
      const old = this.nodes.get(this.selected)?.row;
      old?.setAttribute("aria-selected", "false");
      old?.setAttribute("tabindex", "-1");
    }
    this.selected = path;
    const row = path === null ? null : this.nodes.get(path)?.row;
    if (row) {
      row.setAttribute("aria-selected", "true");
      row.setAttribute("tabindex", "0");
    }
  }

  /** Expands the directories down to `path` and selects it. */
  async reveal(path: string): Promise<void> {
    const parts = path.split("/");
    let dir = "";
    for (const part of parts.slice(0, -1)) {
      dir = joinPath(dir, part);
      const node = this.nodes.get(dir);
      if (!node) return;
      await this.expand(node);
    }
    this.select(path);
    this.nodes.get(path)?.row?.scrollIntoView({ block: "nearest" });
  }

  /** Re-reads the listings of these directories, those that are loaded. */
  async refreshDirs(dirs: Iterable<string>): Promise<void> {
    const wanted = [...new Set(dirs)].filter((d) => this.isLoaded(d));
    await Promise.all(wanted.map((d) => this.refresh(d)));
  }

  /**
   * Reacts to changed paths reported by the server: each one's deepest
   * loaded directory is listed again (a new `a/b/c` shows up as `a` in the
   * root when `a` was not there before).
   */
  async changed(paths: string[]): Promise<void> {
    const dirs = new Set<string>();
    for (const path of paths) {
      if (this.nodes.get(path)?.kind === "dir" && this.isLoaded(path)) dirs.add(path);
      dirs.add(this.loadedAncestor(path));
    }
    await this.refreshDirs(dirs);
  }

  /** Lists again every loaded directory on the way to `path`, top down. */
  async refreshAncestors(path: string): Promise<void> {
    const dirs = [""];
    const parts = parentOf(path).split("/").filter((p) => p !== "");
    parts.forEach((_, i) => dirs.push(parts.slice(0, i + 1).join("/")));
    for (const dir of dirs) if (this.isLoaded(dir)) await this.refresh(dir);
  }

  private loadedAncestor(path: string): string {
    let dir = parentOf(path);
    while (dir !== "" && !this.isLoaded(dir)) dir = parentOf(dir);
    return dir;
  }

  private async expand(node: TreeNode): Promise<void> {
    if (node.kind === "file") return;
    node.expanded = true;
    node.row?.setAttribute("aria-expanded", "true");
    if (node.children) node.children.hidden = false;
    if (!node.loaded) await this.refresh(node.path);
  }

  private collapse(node: TreeNode): void {
    node.expanded = false;
    node.row?.setAttribute("aria-expanded", "false");
    if (node.children) node.children.hidden = true;
  }

  private async toggle(node: TreeNode): Promise<void> {
    if (node.expanded) this.collapse(node);
    else await this.expand(node);
  }

  /** Loads a directory's listing and reconciles its rows with it. */
  private refresh(path: string): Promise<void> {
    const node = this.nodes.get(path);
    if (!node) return Promise.resolve();
    // One listing at a time per directory; a refresh asked for during one
    // runs after it.
    const previous = node.loading ?? Promise.resolve();
    const next = previous.then(() => this.load(node)).finally(() => {
      if (node.loading === next) node.loading = null;
    });
    node.loading = next;
    return next;
  }

  private async load(node: TreeNode): Promise<void> {
    if (!this.nodes.has(node.path)) return; // removed meanwhile
    node.row?.classList.add("loading");
    try {
      const fetched = await this.api.fetchPath(node.path);
      if (fetched.kind !== "dir") {
        // A symlink to a file, or the directory became a file.
        node.kind = "file";
        return;
      }
      if (node.kind === "symlink") node.kind = "dir";
      this.reconcile(node, sortEntries(fetched.listing.entries));
      node.loaded = true;
    } catch (error) {
      if (node.path !== "" && (error as { status?: number }).status === 404) {
        this.removeNode(node.path);
        return;
      }
      if (node.path === "") this.showNote(`Could not list files: ${(error as Error).message}`);
      this.handlers.error(error, `Listing ${node.path || "/"}`);
    } finally {
      node.row?.classList.remove("loading");
    }
  }

  private showNote(text: string): void {
    this.el.replaceChildren(element("p", { class: "tree-note muted" }, text));
  }

  private reconcile(dir: TreeNode, entries: DirEntry[]): void {
    const container = dir.children;
    if (!container) return;
    const keep = new Set(entries.map((e) => joinPath(dir.path, e.name)));
    for (const path of [...this.nodes.keys()]) {
      if (path !== dir.path && parentOf(path) === dir.path && !keep.has(path)) this.removeNode(path);
    }
    const depth = dir.path === "" ? 0 : dir.path.split("/").length;
    const ordered: HTMLElement[] = [];
    for (const entry of entries) {
      const path = joinPath(dir.path, entry.name);
      let node = this.nodes.get(path);
      if (node && node.kind !== entry.kind && !(node.kind === "dir" && entry.kind === "symlink")) {
        this.removeNode(path);
        node = undefined;
      }
      if (!node) {
        node = this.createNode(path, entry, depth);
        this.nodes.set(path, node);
      }
      node.size = entry.size;
      ordered.push(node.node);
    }
    container.querySelector(":scope > .tree-note")?.remove();
    // Re-append in order; appending an existing child moves it.
    ordered.forEach((child, index) => {
      if (container.children[index] !== child) container.insertBefore(child, container.children[index] ?? null);
    });
    if (dir.path === "" && entries.length === 0) {
      container.append(element("p", { class: "tree-note muted" }, "No files yet. Create one with the buttons above."));
    }
  }

  private createNode(path: string, entry: DirEntry, depth: number): TreeNode {
    const node = element("div", { class: "tree-node", role: "none" });
    const row = element("div", {
      class: "tree-item",
      role: "treeitem",
      "data-tree-path": path,
      "data-kind": entry.kind,
      "aria-selected": "false",
      tabindex: "-1",
      draggable: "true",
      title: path,
    });
    row.style.setProperty("--depth", String(depth));
    const isDir = entry.kind === "dir";
    const twisty = element("span", { class: "tree-twisty", "aria-hidden": "true" });
    const icon = element("span", { class: "tree-icon", "aria-hidden": "true" });
    const name = element("span", { class: "tree-name" }, entry.name);
    row.append(twisty, icon, name);
    node.append(row);
    let children: HTMLElement | null = null;
    if (isDir || entry.kind === "symlink") {
      if (isDir) row.setAttribute("aria-expanded", "false");
      children = element("div", { class: "tree-children", role: "group" });
      children.hidden = true;
      node.append(children);
    }
    if (entry.name.startsWith(".")) row.classList.add("dotfile");
    return {
      path,
      name: entry.name,
      kind: entry.kind,
      size: entry.size,
      node,
      row,
      children,
      expanded: false,
      loaded: false,
      loading: null,
    };
  }

  private removeNode(path: string): void {
    for (const key of [...this.nodes.keys()]) {
      if (key !== "" && isWithin(key, path)) {
        if (key === path) this.nodes.get(key)?.node.remove();
        this.nodes.delete(key);
      }
    }
    if (this.selected !== null && isWithin(this.selected, path)) this.selected = null;
  }

  private nodeAt(target: EventTarget | null): TreeNode | null {
    const row = (target as Element | null)?.closest?.<HTMLElement>(".tree-item");
    const path = row?.dataset.treePath;
    return path === undefined ? null : this.nodes.get(path) ?? null;
  }

  private onClick(event: MouseEvent): void {
    const node = this.nodeAt(event.target);
    if (!node) {
      this.select(null);
      return;
    }
    this.select(node.path);
    if (node.kind === "file") this.handlers.openFile(node.path, node.size);
    else if (node.kind === "dir") void this.toggle(node);
    else void this.openSymlink(node);
  }

  private onDoubleClick(event: MouseEvent): void {
    // Single clicks already open files; keep a double click from selecting text.
    if (this.nodeAt(event.target)) event.preventDefault();
  }

  /** A symlink opens as what it points to. */
  private async openSymlink(node: TreeNode): Promise<void> {
    await this.refresh(node.path);
    if (node.kind === "file") this.handlers.openFile(node.path, node.size);
    else await this.toggle(node);
  }

  private visibleRows(): HTMLElement[] {
    return [...this.el.querySelectorAll<HTMLElement>(".tree-item")].filter((row) => row.offsetParent !== null);
  }

  private onKey(event: KeyboardEvent): void {
    const rows = this.visibleRows();
    if (rows.length === 0) return;
    const current = this.selected === null ? null : this.nodes.get(this.selected) ?? null;
    const index = current?.row ? rows.indexOf(current.row) : -1;
    const focus = (row: HTMLElement | undefined) => {
      if (!row) return;
      this.select(row.dataset.treePath ?? null);
      row.focus();
      row.scrollIntoView({ block: "nearest" });
    };
    switch (event.key) {
      case "ArrowDown":
        focus(rows[Math.min(index + 1, rows.length - 1)]);
        break;
      case "ArrowUp":
        focus(rows[Math.max(index - 1, 0)]);
        break;
      case "ArrowRight":
        if (current && current.kind !== "file" && !current.expanded) void this.expand(current);
        else focus(rows[index + 1]);
        break;
      case "ArrowLeft":
        if (current && current.expanded && current.kind !== "file") this.collapse(current);
        else if (current) focus(this.nodes.get(parentOf(current.path))?.row ?? undefined);
        break;
      case "Enter":
      case " ":
        if (!current) return;
        if (current.kind === "file") this.handlers.openFile(current.path, current.size);
        else void this.toggle(current);
        break;
      case "ContextMenu": {
        if (!current?.row) return;
        const box = current.row.getBoundingClientRect();
        this.handlers.contextMenu(current.path, current.kind, box.left + 24, box.bottom);
        break;
      }
      default:
        return;
    }
    event.preventDefault();
  }

  private setupDragAndDrop(): void {
    const dropDir = (event: DragEvent): string => {
      const node = this.nodeAt(event.target);
      if (!node) return "";
      return node.kind === "dir" ? node.path : parentOf(node.path);
    };
    const mark = (dir: string | null) => {
      for (const el of this.el.querySelectorAll(".drop-target")) el.classList.remove("drop-target");
      if (dir === null) return;
      const target = dir === "" ? this.el : this.nodes.get(dir)?.row;
      target?.classList.add("drop-target");
    };
    this.el.addEventListener("dragstart", (event) => {
      const node = this.nodeAt(event.target);
      if (!node || !event.dataTransfer) return;
      event.dataTransfer.setData(DRAG_TYPE, node.path);
      event.dataTransfer.effectAllowed = "move";
    });
    this.el.addEventListener("dragover", (event) => {
      const types = event.dataTransfer?.types ?? [];
      if (!types.includes(DRAG_TYPE) && !types.includes("Files")) return;
      event.preventDefault();
      mark(dropDir(event));
    });
    this.el.addEventListener("dragleave", (event) => {
      if (!this.el.contains(event.relatedTarget as Node | null)) mark(null);
    });
    this.el.addEventListener("drop", (event) => {
      event.preventDefault();
      mark(null);
      const dir = dropDir(event);
      const moved = event.dataTransfer?.getData(DRAG_TYPE);
      if (moved) {
        if (parentOf(moved) !== dir && !isWithin(dir, moved)) this.handlers.moveInto(moved, dir);
        return;
      }
      const files = [...(event.dataTransfer?.files ?? [])];
      if (files.length > 0) this.handlers.dropFiles(dir, files);
    });
  }
}
