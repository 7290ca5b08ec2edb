// The editor's look: its frame takes the page's colours, and token colours
// come from CSS variables (ide.css), so the editor follows the light and
// dark themes without being reconfigured.

import { HighlightStyle } from "@codemirror/language";
import { EditorView } from "@codemirror/view";
import { tags as t } from "@lezer/highlight";

export const theme = EditorView.theme({
  "&": { height: "100%", color: "var(--text)", backgroundColor: "var(--surface)" },
  "&.cm-focused": { outline: "none" },
  ".cm-scroller": { fontFamily: "var(--mono)", fontSize: "13px", lineHeight: "1.55" },
  ".cm-content": { caretColor: "var(--accent)" },
  ".cm-cursor, .cm-dropCursor": { borderLeftColor: "var(--accent)", borderLeftWidth: "2px" },
  ".cm-gutters": {
    backgroundColor: "var(--surface)",
    color: "var(--muted)",
    borderRight: "1px solid var(--border)",
  },
  ".cm-activeLine": { backgroundColor: "var(--ide-active-line)" },
  ".cm-activeLineGutter": { backgroundColor: "var(--ide-active-line)", color: "var(--text)" },
  "&.cm-focused > .cm-scroller > .cm-selectionLayer .cm-selectionBackground, .cm-selectionBackground, .cm-content ::selection":
    { backgroundColor: "var(--ide-selection)" },
  ".cm-selectionMatch": { backgroundColor: "var(--ide-search-match)" },
  ".cm-searchMatch": { backgroundColor: "var(--ide-search-match)", outline: "1px solid var(--border)" },
  ".cm-searchMatch.cm-searchMatch-selected": { backgroundColor: "var(--ide-selection)" },
  "&.cm-focused .cm-matchingBracket": { backgroundColor: "var(--ide-search-match)", outline: "1px solid var(--muted)" },
  ".cm-panels": { backgroundColor: "var(--surface-2)", color: "var(--text)" },
  ".cm-panels.cm-panels-bottom": { borderTop: "1px solid var(--border)" },
  ".cm-panels.cm-panels-top": { borderBottom: "1px solid var(--border)" },
  ".cm-textfield": {
    backgroundColor: "var(--surface)",
    color: "var(--text)",
    border: "1px solid var(--border)",
    borderRadius: "6px",
  },
  ".cm-button": {
    backgroundImage: "none",
    backgroundColor: "var(--surface)",
    color: "var(--text)",
    border: "1px solid var(--border)",
    borderRadius: "6px",
  },
  ".cm-tooltip": {
    backgroundColor: "var(--surface)",
    color: "var(--text)",
    border: "1px solid var(--border)",
    borderRadius: "6px",
  },
  ".cm-tooltip-autocomplete > ul > li[aria-selected]": {
    backgroundColor: "var(--accent)",
    color: "var(--accent-ink)",
  },
  ".cm-foldPlaceholder": { backgroundColor: "var(--surface-2)", color: "var(--muted)", border: "none" },
});

// Token colours come from CSS variables (ide.css) so the editor follows the
// page's light and dark themes without being reconfigured.
export const highlight = HighlightStyle.define([
  {
    tag: [t.keyword, t.modifier, t.operatorKeyword, t.controlKeyword, t.definitionKeyword, t.moduleKeyword, t.self],
    color: "var(--tok-keyword)",
  },
  { tag: [t.string, t.special(t.string), t.regexp, t.character, t.attributeValue, t.inserted], color: "var(--tok-string)" },
  { tag: [t.comment, t.lineComment, t.blockComment, t.docComment], color: "var(--tok-comment)", fontStyle: "italic" },
  { tag: [t.number, t.bool, t.null, t.atom, t.unit], color: "var(--tok-number)" },
  { tag: [t.function(t.variableName), t.function(t.propertyName), t.macroName], color: "var(--tok-function)" },
  { tag: [t.typeName, t.className, t.namespace, t.tagName, t.standard(t.typeName)], color: "var(--tok-type)" },
  { tag: [t.propertyName, t.attributeName, t.labelName], color: "var(--tok-property)" },
  { tag: [t.meta, t.annotation, t.processingInstruction, t.escape], color: "var(--tok-meta)" },
  { tag: [t.heading], color: "var(--tok-keyword)", fontWeight: "bold" },
  { tag: t.emphasis, fontStyle: "italic" },
  { tag: t.strong, fontWeight: "bold" },
  { tag: t.strikethrough, textDecoration: "line-through" },
  { tag: [t.link, t.url], color: "var(--accent)", textDecoration: "underline" },
  { tag: [t.invalid, t.deleted], color: "var(--danger)" },
]);
