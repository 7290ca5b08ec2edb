// Quick open (Ctrl/Cmd+P): fuzzy search over the file paths seen so far and
// a recursive listing of the workspace, capped so huge trees stay cheap.

import { Api, joinPath } from "./api";
import { fuzzyFilter } from "./fuzzy";
import { element, required } from "./ui";

/** Entries (files and directories) the recursive listing visits at most. */
const INDEX_CAP = 5000;
/** Directories the listing does not descend into: they dwarf the sources. */
const SKIP_DIRS = new Set([".git", "node_modules", "target", ".venv", "__pycache__", ".cache", "dist"]);
const PARALLEL = 4;
const SHOWN = 50;

export class QuickOpen {
  private readonly box = required("#quick-open");
  private readonly input = required<HTMLInputElement>("#quick-open-input");
  private readonly list = required("#quick-open-list");
  /** File paths from the last recursive listing. */
  private indexed = new Set<string>();
  private indexing: Promise<void> | null = null;
  private stale = true;
  private selectedIndex = 0;
  private returnFocus: HTMLElement | null = null;

  constructor(
    private readonly api: Api,
    private readonly pick: (path: string) => void,
    /** File paths the tree shows right now (also below skipped directories). */
    private readonly treeFiles: () => Iterable<string>,
  ) {
    this.input.addEventListener("input", () => this.render());
    this.input.addEventListener("keydown", (event) => this.onKey(event));
    // Keep the focus in the field while clicking a result (else focusout closes the box first).
    this.list.addEventListener("pointerdown", (event) => event.preventDefault());
    this.list.addEventListener("click", (event) => {
      const item = (event.target as Element).closest<HTMLElement>("[data-path]");
      if (item?.dataset.path) this.choose(item.dataset.path);
    });
    this.box.addEventListener("focusout", (event) => {
      if (!this.box.contains(event.relatedTarget as Node | null)) this.close(false);
    });
  }

  /** Files changed: the next opening re-lists the workspace in the background. */
  invalidate(): void {
    this.stale = true;
  }

  forget(path: string): void {
    for (const known of [...this.indexed]) {
      if (known === path || known.startsWith(`${path}/`)) this.indexed.delete(known);
    }
  }

  get isOpen(): boolean {
    return !this.box.hidden;
  }

  open(): void {
    this.returnFocus = document.activeElement as HTMLElement | null;
    this.box.hidden = false;
    this.input.value = "";
    this.selectedIndex = 0;
    this.render();
    this.input.focus();
    if (this.stale && !this.indexing) {
      this.stale = false;
      this.indexing = this.buildIndex().finally(() => {
        this.indexing = null;
        if (this.isOpen) this.render();
      });
    }
  }

  close(restoreFocus = true): void {
    if (this.box.hidden) return;
    this.box.hidden = true;
    if (restoreFocus) this.returnFocus?.focus();
  }

  private choose(path: string): void {
    this.close(false);
    this.pick(path);
  }

  private async buildIndex(): Promise<void> {
    const found: string[] = [];
    const queue: string[] = [""];
    let visited = 0;
    const worker = async () => {
      while (queue.length > 0 && visited < INDEX_CAP) {
        const dir = queue.shift() as string;
        try {
          const listing = await this.api.listDir(dir);
          for (const entry of listing.entries) {
            if (visited >= INDEX_CAP) break;
            visited++;
            const path = joinPath(dir, entry.name);
            if (entry.kind === "dir") {
              if (!SKIP_DIRS.has(entry.name)) queue.push(path);
            } else {
              found.push(path);
            }
          }
        } catch {
          // A directory we may not read, or one deleted meanwhile.
        }
      }
    };
    // Start with one worker so the queue fills, then widen.
    await worker();
    await Promise.all(Array.from({ length: PARALLEL }, worker));
    this.indexed = new Set(found);
  }

  private render(): void {
    const candidates = new Set(this.indexed);
    for (const path of this.treeFiles()) candidates.add(path);
    const matches = fuzzyFilter(this.input.value, candidates, SHOWN);
    this.selectedIndex = Math.min(this.selectedIndex, Math.max(0, matches.length - 1));
    if (this.input.value !== "" || matches.length > 0) {
      this.list.replaceChildren(
        ...matches.map((match, index) => {
          const li = element("li", { role: "option", "data-path": match.path, "aria-selected": String(index === this.selectedIndex) });
          const marked = new Set(match.positions);
          const nameStart = match.path.lastIndexOf("/") + 1;
          const name = element("span", { class: "qo-name" });
          const dir = element("span", { class: "qo-dir" });
          for (let i = 0; i < match.path.length; i++) {
            const target = i < nameStart ? dir : name;
            const ch = match.path[i];
            if (marked.has(i)) target.append(element("mark", {}, ch));
            else target.append(ch);
          }
          li.append(name, dir);
          return li;
        }),
      );
    }
    if (matches.length === 0) {
      const text = this.indexing ? "Listing the workspace…" : "No matching files.";
      this.list.replaceChildren(element("li", { class: "muted", role: "presentation" }, text));
    }
  }

  private onKey(event: KeyboardEvent): void {
    const items = [...this.list.querySelectorAll<HTMLElement>("[data-path]")];
    if (event.key === "Escape") {
      event.preventDefault();
      this.close();
    } else if (event.key === "ArrowDown" || event.key === "ArrowUp") {
      event.preventDefault();
      if (items.length === 0) return;
      const step = event.key === "ArrowDown" ? 1 : -1;
      this.selectedIndex = (this.selectedIndex + step + items.length) % items.length;
      items.forEach((item, index) => item.setAttribute("aria-selected", String(index === this.selectedIndex)));
      items[this.selectedIndex]?.scrollIntoView({ block: "nearest" });
    } else if (event.key === "Enter") {
      event.preventDefault();
      const path = items[this.selectedIndex]?.dataset.path;
      if (path) this.choose(path);
    }
  }
}
