// Syntax highlighting of server-rendered code blocks
// (`<pre><code class="language-X">`). Without JavaScript the code is shown plain.
import hljs from "highlight.js/lib/core";
import bash from "highlight.js/lib/languages/bash";
import c from "highlight.js/lib/languages/c";
import cpp from "highlight.js/lib/languages/cpp";
import css from "highlight.js/lib/languages/css";
import diff from "highlight.js/lib/languages/diff";
import dockerfile from "highlight.js/lib/languages/dockerfile";
import go from "highlight.js/lib/languages/go";
import ini from "highlight.js/lib/languages/ini";
import java from "highlight.js/lib/languages/java";
import javascript from "highlight.js/lib/languages/javascript";
import json from "highlight.js/lib/languages/json";
import markdown from "highlight.js/lib/languages/markdown";
import python from "highlight.js/lib/languages/python";
import rust from "highlight.js/lib/languages/rust";
import sql from "highlight.js/lib/languages/sql";
import typescript from "highlight.js/lib/languages/typescript";
import xml from "highlight.js/lib/languages/xml";
import yaml from "highlight.js/lib/languages/yaml";

const languages: Record<string, Parameters<typeof hljs.registerLanguage>[1]> = {
  bash, c, cpp, css, diff, dockerfile, go, ini, java, javascript, json, markdown,
  python, rust, sql, typescript, xml, yaml,
};

export function setupHighlighting(): void {
  for (const [name, language] of Object.entries(languages)) hljs.registerLanguage(name, language);
  for (const block of document.querySelectorAll<HTMLElement>("pre code[class*='language-']")) {
    const lang = [...block.classList].find((c) => c.startsWith("language-"))?.slice(9);
    if (lang && hljs.getLanguage(lang)) {
      hljs.highlightElement(block);
      block.dataset.highlighted = "yes";
    }
  }
}
