// File bytes to editor text and back: UTF-8 only, line endings remembered so
// a save writes them as the file had them. Pure (CodeMirror's Text only).

import { Text } from "@codemirror/state";

/** UTF-8 text, or null for what looks binary (a NUL byte, invalid UTF-8). */
export function decodeText(bytes: Uint8Array): string | null {
  if (bytes.subarray(0, 8000).includes(0)) return null;
  try {
    // ignoreBOM keeps a byte order mark in the text, so saving keeps it too.
    return new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(bytes);
  } catch {
    return null;
  }
}

/** Splits a file's text into lines and notes the line ending it uses. */
export function toDoc(text: string): { doc: Text; eol: string } {
  return { doc: Text.of(text.split(/\r\n|\r|\n/)), eol: text.includes("\r\n") ? "\r\n" : "\n" };
}

/** The document as file content, with the file's line ending. */
export function fromDoc(doc: Text, eol: string): string {
  return doc.sliceString(0, doc.length, eol);
}

/**
 * The smallest replacement turning `old` into `next` (both "\n"-separated),
 * so the cursor and scroll position of unchanged parts stay put.
 */
export function minimalChange(old: string, next: string): { from: number; to: number; insert: Text } {
  let start = 0;
  while (start < old.length && start < next.length && old[start] === next[start]) start++;
  let endOld = old.length;
  let endNew = next.length;
  while (endOld > start && endNew > start && old[endOld - 1] === next[endNew - 1]) {
    endOld--;
    endNew--;
  }
  return { from: start, to: endOld, insert: Text.of(next.slice(start, endNew).split("\n")) };
}
