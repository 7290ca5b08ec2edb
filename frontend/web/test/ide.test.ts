// Unit tests of the IDE's pure parts, run with `npm test` (esbuild bundles
// them for node's test runner).
import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { baseName, cleanPath, encodePath, isWithin, joinPath, normalizeEtag, parentOf } from "../src/ide/api";
import { ACK_BATCH, AckCounter, backoffDelay } from "../src/ide/flow";
import { fuzzyFilter, fuzzyScore } from "../src/ide/fuzzy";
import { languageFor } from "../src/ide/languages";
import { decodeText, fromDoc, minimalChange, toDoc } from "../src/ide/text";

describe("paths", () => {
  test("each segment is URL-encoded on its own", () => {
    assert.equal(encodePath("src/a b/c#d.rs"), "src/a%20b/c%23d.rs");
    assert.equal(encodePath(""), "");
    assert.equal(encodePath("dir/ü?.md"), "dir/%C3%BC%3F.md");
  });

  test("parent, base name and join agree", () => {
    assert.equal(parentOf("a/b/c.rs"), "a/b");
    assert.equal(parentOf("c.rs"), "");
    assert.equal(baseName("a/b/c.rs"), "c.rs");
    assert.equal(joinPath("", "x"), "x");
    assert.equal(joinPath("a/b", "x"), "a/b/x");
  });

  test("isWithin matches whole segments only", () => {
    assert.ok(isWithin("src/a.rs", "src"));
    assert.ok(isWithin("src", "src"));
    assert.ok(isWithin("anything", ""));
    assert.ok(!isWithin("srcx/a.rs", "src"));
  });

  test("typed paths are cleaned and escapes refused", () => {
    assert.equal(cleanPath(" /docs//notes.md/ "), "docs/notes.md");
    assert.equal(cleanPath("./a/./b"), "a/b");
    assert.equal(cleanPath("../etc/passwd"), null);
    assert.equal(cleanPath("a/../../b"), null);
    assert.equal(cleanPath(" / "), null);
  });

  test("entity tags lose quotes and the weak prefix", () => {
    assert.equal(normalizeEtag('"abc"'), "abc");
    assert.equal(normalizeEtag('W/"abc"'), "abc");
    assert.equal(normalizeEtag("abc"), "abc");
    assert.equal(normalizeEtag(null), null);
  });
});

describe("fuzzy matching", () => {
  test("characters must appear in order", () => {
    assert.ok(fuzzyScore("mrs", "src/main.rs"));
    assert.equal(fuzzyScore("srm", "src/main.rs")?.positions.length, 3);
    assert.equal(fuzzyScore("xyz", "src/main.rs"), null);
    assert.equal(fuzzyScore("main.rs.long", "main.rs"), null);
  });

  test("matching ignores case and spaces", () => {
    assert.deepEqual(fuzzyScore("MAIN", "src/main.rs")?.positions, [4, 5, 6, 7]);
    assert.ok(fuzzyScore("ma in", "src/main.rs"));
  });

  test("file names beat directories and runs beat scattered letters", () => {
    const ranked = fuzzyFilter("main", ["src/domain/index.ts", "main/x.txt", "src/main.rs", "m/a/i/n.txt"]);
    assert.equal(ranked[0].path, "src/main.rs");
    const byStart = fuzzyFilter("ts", ["src/lists.rs", "src/types.ts", "test/setup.ts"]);
    assert.notEqual(byStart[0].path, "src/lists.rs");
  });

  test("the best alignment is found, not the first", () => {
    // Greedy left-to-right would take the "m" of "mod" and scatter the rest.
    const match = fuzzyScore("main", "mod/domain/main.rs");
    assert.deepEqual(match?.positions, [11, 12, 13, 14]);
  });

  test("an empty query lists everything, shortest first on ties", () => {
    const all = fuzzyFilter("", ["b/long/path.txt", "a.txt"]);
    assert.equal(all.length, 2);
    assert.equal(fuzzyFilter("", ["x", "y", "z"], 2).length, 2);
  });
});

describe("terminal flow control", () => {
  test("acknowledges in batches, the rest when idle", () => {
    const acks = new AckCounter();
    assert.equal(acks.rendered(1000), 0);
    assert.equal(acks.rendered(ACK_BATCH), ACK_BATCH + 1000);
    assert.equal(acks.rendered(10), 0);
    assert.equal(acks.take(), 10);
    assert.equal(acks.take(), 0);
    acks.rendered(5);
    acks.reset();
    assert.equal(acks.take(), 0);
  });

  test("reconnect delays grow, stay capped and jitter a little", () => {
    assert.equal(backoffDelay(0, 0.5), 500);
    assert.equal(backoffDelay(1, 0.5), 1000);
    assert.equal(backoffDelay(3, 0.5), 4000);
    assert.equal(backoffDelay(50, 0.5), 10_000);
    assert.ok(backoffDelay(50, 0) >= 8500 && backoffDelay(50, 1) <= 11_500);
  });
});

describe("file text", () => {
  const utf8 = (s: string) => new TextEncoder().encode(s);

  test("binary and invalid UTF-8 are not text", () => {
    assert.equal(decodeText(utf8("héllo\n")), "héllo\n");
    assert.equal(decodeText(new Uint8Array([104, 0, 105])), null);
    assert.equal(decodeText(new Uint8Array([0xff, 0xfe, 0x41])), null);
    assert.equal(decodeText(new Uint8Array([0xef, 0xbb, 0xbf, 0x41])), "\ufeffA");
  });

  test("line endings survive a round trip", () => {
    for (const text of ["a\r\nb\r\n", "a\nb", "", "one line", "x\n\n"]) {
      const { doc, eol } = toDoc(text);
      assert.equal(fromDoc(doc, eol), text);
    }
    assert.equal(toDoc("a\r\nb").doc.lines, 2);
  });

  test("a reload replaces only what changed", () => {
    assert.deepEqual(
      (({ from, to, insert }) => ({ from, to, insert: insert.toString() }))(minimalChange("let a = 1;\nok", "let a = 22;\nok")),
      { from: 8, to: 9, insert: "22" },
    );
    const same = minimalChange("abc", "abc");
    assert.equal(same.from, same.to);
    assert.equal(same.insert.length, 0);
  });
});

describe("languages", () => {
  test("by extension and by name", () => {
    assert.equal(languageFor("src/main.rs").name, "Rust");
    assert.equal(languageFor("a/b.tsx").name, "TypeScript JSX");
    assert.equal(languageFor("x.PY").name, "Python");
    assert.equal(languageFor("ci/buildspec.yml").name, "YAML");
    assert.equal(languageFor("Dockerfile").name, "Dockerfile");
    assert.equal(languageFor("Cargo.toml").name, "TOML");
    assert.equal(languageFor("run.sh").name, "Shell");
    assert.equal(languageFor("README").name, "Plain text");
    assert.equal(languageFor(".gitignore").name, "Plain text");
  });
});
