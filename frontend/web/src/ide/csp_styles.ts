// Nubo's Content-Security-Policy has no 'unsafe-inline' for styles, so the
// <style> elements CodeMirror and xterm.js create at run time are refused by
// the browser. Their rules are mirrored into constructed stylesheets
// (document.adoptedStyleSheets), which the policy does not govern. Only
// <style> elements added after this script started are mirrored: the
// server-rendered page has none, so markup cannot smuggle styles in this way.

const mirrored = new Map<HTMLStyleElement, CSSStyleSheet>();

function sync(style: HTMLStyleElement): void {
  // A sheet means the browser accepted the element (a laxer policy): nothing to do.
  if (style.sheet !== null && !mirrored.has(style)) return;
  let sheet = mirrored.get(style);
  if (!sheet) {
    sheet = new CSSStyleSheet();
    mirrored.set(style, sheet);
    document.adoptedStyleSheets = [...document.adoptedStyleSheets, sheet];
  }
  try {
    sheet.replaceSync(style.textContent ?? "");
  } catch {
    // Not valid CSS: the element would not have applied either.
  }
}

function forget(style: HTMLStyleElement): void {
  const sheet = mirrored.get(style);
  if (!sheet) return;
  mirrored.delete(style);
  document.adoptedStyleSheets = document.adoptedStyleSheets.filter((s) => s !== sheet);
}

function stylesIn(node: Node): HTMLStyleElement[] {
  if (node instanceof HTMLStyleElement) return [node];
  if (node instanceof Element) return [...node.querySelectorAll("style")];
  return [];
}

export function mirrorRuntimeStyles(): void {
  if (!("adoptedStyleSheets" in Document.prototype) || typeof CSSStyleSheet === "undefined") return;
  const known = new Set<HTMLStyleElement>();
  const observer = new MutationObserver((records) => {
    const touched = new Set<HTMLStyleElement>();
    for (const record of records) {
      for (const node of record.addedNodes) for (const style of stylesIn(node)) {
        known.add(style);
        touched.add(style);
      }
      for (const node of record.removedNodes) for (const style of stylesIn(node)) {
        if (!style.isConnected) {
          known.delete(style);
          forget(style);
        }
      }
      // Text of an existing <style> changed (xterm rewrites its rules on resize and theme changes).
      const parent = record.target instanceof HTMLStyleElement ? record.target : record.target.parentElement;
      if (parent instanceof HTMLStyleElement && known.has(parent)) touched.add(parent);
    }
    for (const style of touched) if (style.isConnected) sync(style);
  });
  observer.observe(document.documentElement, { childList: true, subtree: true, characterData: true });
}
