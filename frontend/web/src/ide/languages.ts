// Which CodeMirror language a file gets, by its name.

import { css } from "@codemirror/lang-css";
import { html } from "@codemirror/lang-html";
import { javascript } from "@codemirror/lang-javascript";
import { json } from "@codemirror/lang-json";
import { markdown } from "@codemirror/lang-markdown";
import { python } from "@codemirror/lang-python";
import { rust } from "@codemirror/lang-rust";
import { yaml } from "@codemirror/lang-yaml";
import { indentUnit, StreamLanguage } from "@codemirror/language";
import { dockerFile } from "@codemirror/legacy-modes/mode/dockerfile";
import { go } from "@codemirror/legacy-modes/mode/go";
import { shell } from "@codemirror/legacy-modes/mode/shell";
import { toml } from "@codemirror/legacy-modes/mode/toml";
import type { Extension } from "@codemirror/state";

export interface Language {
  /** Shown in the status bar. */
  name: string;
  extension: () => Extension;
}

const fourSpaces = indentUnit.of("    ");

const byExtension: Record<string, Language> = {};
function add(extensions: string[], language: Language): void {
  for (const ext of extensions) byExtension[ext] = language;
}

add(["js", "mjs", "cjs"], { name: "JavaScript", extension: () => javascript() });
add(["jsx"], { name: "JavaScript JSX", extension: () => javascript({ jsx: true }) });
add(["ts", "mts", "cts"], { name: "TypeScript", extension: () => javascript({ typescript: true }) });
add(["tsx"], { name: "TypeScript JSX", extension: () => javascript({ typescript: true, jsx: true }) });
add(["py", "pyi"], { name: "Python", extension: () => [python(), fourSpaces] });
add(["rs"], { name: "Rust", extension: () => [rust(), fourSpaces] });
add(["json", "jsonc", "webmanifest"], { name: "JSON", extension: () => json() });
add(["md", "markdown"], { name: "Markdown", extension: () => markdown() });
add(["html", "htm", "xhtml"], { name: "HTML", extension: () => html() });
add(["css", "scss", "less"], { name: "CSS", extension: () => css() });
add(["yml", "yaml"], { name: "YAML", extension: () => yaml() });
add(["sh", "bash", "zsh", "ksh", "env"], { name: "Shell", extension: () => StreamLanguage.define(shell) });
add(["toml"], { name: "TOML", extension: () => StreamLanguage.define(toml) });
add(["go"], { name: "Go", extension: () => [StreamLanguage.define(go), indentUnit.of("\t")] });

const byName: Record<string, Language> = {
  dockerfile: { name: "Dockerfile", extension: () => StreamLanguage.define(dockerFile) },
  containerfile: { name: "Dockerfile", extension: () => StreamLanguage.define(dockerFile) },
  ".bashrc": byExtension.sh,
  ".profile": byExtension.sh,
  "cargo.lock": byExtension.toml,
};

export const PLAIN_TEXT: Language = { name: "Plain text", extension: () => [] };

export function languageFor(path: string): Language {
  const name = path.slice(path.lastIndexOf("/") + 1).toLowerCase();
  const known = byName[name];
  if (known) return known;
  if (name.startsWith("dockerfile.") || name.endsWith(".dockerfile")) return byName.dockerfile;
  const dot = name.lastIndexOf(".");
  if (dot < 0) return PLAIN_TEXT;
  return byExtension[name.slice(dot + 1)] ?? PLAIN_TEXT;
}
