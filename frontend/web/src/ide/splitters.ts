// Draggable splitters between the IDE's panels. Sizes live in CSS variables
// on #ide (--tree-width, --terminal-height, --preview-width) and are
// remembered in localStorage.

const STORE_KEY = "nubo.ide.layout";

interface Split {
  variable: string;
  /** Which way dragging grows the panel: +1 right/down, -1 left/up. */
  sign: 1 | -1;
  axis: "x" | "y";
  min: number;
  /** Largest share of the container the panel may take. */
  maxShare: number;
}

const SPLITS: Record<string, Split> = {
  tree: { variable: "--tree-width", sign: 1, axis: "x", min: 140, maxShare: 0.5 },
  // The terminal panel sits below its splitter: dragging up grows it.
  terminal: { variable: "--terminal-height", sign: -1, axis: "y", min: 80, maxShare: 0.85 },
  // The preview sits right of its splitter: dragging left grows it.
  preview: { variable: "--preview-width", sign: -1, axis: "x", min: 200, maxShare: 0.7 },
};

function load(): Record<string, number> {
  try {
    const value: unknown = JSON.parse(localStorage.getItem(STORE_KEY) ?? "{}");
    return value && typeof value === "object" ? (value as Record<string, number>) : {};
  } catch {
    return {};
  }
}

export function setupSplitters(ide: HTMLElement, onResize: () => void): void {
  const sizes = load();
  for (const [name, px] of Object.entries(sizes)) {
    const split = SPLITS[name];
    if (split && typeof px === "number" && px > 0) ide.style.setProperty(split.variable, `${px}px`);
  }
  const save = () => localStorage.setItem(STORE_KEY, JSON.stringify(sizes));

  for (const handle of ide.querySelectorAll<HTMLElement>(".splitter[data-split]")) {
    const name = handle.dataset.split ?? "";
    const split = SPLITS[name];
    if (!split) continue;
    const panel = (split.sign === 1 ? handle.previousElementSibling : handle.nextElementSibling) as HTMLElement | null;
    const container = handle.parentElement;
    if (!panel || !container) continue;
    const current = () => {
      const box = panel.getBoundingClientRect();
      return split.axis === "x" ? box.width : box.height;
    };
    const apply = (px: number) => {
      const box = container.getBoundingClientRect();
      const max = (split.axis === "x" ? box.width : box.height) * split.maxShare;
      const size = Math.round(Math.max(split.min, Math.min(px, max)));
      ide.style.setProperty(split.variable, `${size}px`);
      sizes[name] = size;
      onResize();
    };

    handle.addEventListener("pointerdown", (event) => {
      if (event.button !== 0) return;
      event.preventDefault();
      handle.setPointerCapture(event.pointerId);
      const start = split.axis === "x" ? event.clientX : event.clientY;
      const initial = current();
      ide.classList.add("resizing", `resizing-${split.axis}`);
      const move = (e: PointerEvent) => {
        const pos = split.axis === "x" ? e.clientX : e.clientY;
        apply(initial + split.sign * (pos - start));
      };
      const up = () => {
        handle.removeEventListener("pointermove", move);
        handle.removeEventListener("pointerup", up);
        handle.removeEventListener("pointercancel", up);
        ide.classList.remove("resizing", `resizing-${split.axis}`);
        save();
      };
      handle.addEventListener("pointermove", move);
      handle.addEventListener("pointerup", up);
      handle.addEventListener("pointercancel", up);
    });

    handle.addEventListener("keydown", (event) => {
      const keys = split.axis === "x" ? ["ArrowLeft", "ArrowRight"] : ["ArrowUp", "ArrowDown"];
      const at = keys.indexOf(event.key);
      if (at < 0) return;
      event.preventDefault();
      const direction = at === 0 ? -1 : 1;
      apply(current() + split.sign * direction * (event.shiftKey ? 64 : 16));
      save();
    });
  }
}
