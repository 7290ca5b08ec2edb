// Unit tests of the live build log's pure parts, run with `npm test`.
import assert from "node:assert/strict";
import { describe, test } from "node:test";

import {
  durationText,
  isActive,
  isAtBottom,
  LineWindow,
  LogUpdate,
  parseEnd,
  parsePhase,
  statusLabel,
} from "../src/builds/log_window";

/** Applies updates the way the page does, to an array of chunk strings. */
class FakeLog {
  chunks: string[] = [];
  hidden = 0;
  apply(update: LogUpdate | null): void {
    if (!update) return;
    if (update.reset) this.chunks = [];
    if (update.extend) {
      assert.ok(this.chunks.length > 0, "extend needs a chunk to extend");
      this.chunks[this.chunks.length - 1] += update.extend;
    }
    assert.ok(update.drop <= this.chunks.length, "drops only rendered chunks");
    this.chunks.splice(0, update.drop);
    this.chunks.push(...update.append);
    this.hidden = update.hidden;
  }
  get text(): string {
    return this.chunks.join("");
  }
  get lines(): string[] {
    return this.text.split("\n").slice(0, -1);
  }
}

function numbered(from: number, to: number): string[] {
  return Array.from({ length: to - from }, (_, i) => `line ${from + i}`);
}

describe("the log window", () => {
  test("lines come out in order, each ended by a newline", () => {
    const window = new LineWindow(100, 10);
    const log = new FakeLog();
    window.push("first");
    window.push("");
    window.push("third");
    log.apply(window.flush());
    assert.equal(log.text, "first\n\nthird\n");
    assert.equal(window.flush(), null, "nothing queued, nothing to do");
    window.push("two\nlines");
    log.apply(window.flush());
    assert.deepEqual(log.lines, ["first", "", "third", "two", "lines"]);
    assert.equal(log.hidden, 0);
  });

  test("small batches fill the newest chunk instead of adding nodes", () => {
    const window = new LineWindow(100, 4);
    const log = new FakeLog();
    for (const line of numbered(0, 10)) {
      window.push(line);
      log.apply(window.flush());
    }
    assert.deepEqual(log.lines, numbered(0, 10));
    assert.equal(log.chunks.length, 3, "4 + 4 + 2 lines");
  });

  test("the oldest lines go once the cap is passed", () => {
    const window = new LineWindow(100, 10);
    const log = new FakeLog();
    for (let batch = 0; batch < 50; batch++) {
      for (const line of numbered(batch * 7, batch * 7 + 7)) window.push(line);
      log.apply(window.flush());
      assert.ok(window.shownLines <= 100, `${window.shownLines} lines shown`);
      assert.equal(window.shownLines, log.lines.length);
    }
    const lines = log.lines;
    assert.equal(lines[lines.length - 1], "line 349");
    assert.ok(lines.length > 90, `close to the cap: ${lines.length}`);
    assert.deepEqual(lines, numbered(350 - lines.length, 350), "a contiguous tail");
    assert.equal(log.hidden, 350 - lines.length);
    assert.equal(window.hiddenLines, log.hidden);
  });

  test("a replay bigger than the window keeps only its tail", () => {
    const window = new LineWindow(100, 30);
    const log = new FakeLog();
    window.push("shown before");
    log.apply(window.flush());
    for (const line of numbered(0, 1000)) window.push(line);
    const update = window.flush();
    assert.equal(update?.drop, 1);
    log.apply(update);
    assert.deepEqual(log.lines, numbered(900, 1000));
    assert.equal(log.hidden, 901);
  });

  test("queued lines stay bounded when frames do not come", () => {
    const window = new LineWindow(100, 10);
    const log = new FakeLog();
    for (const line of numbered(0, 100_000)) window.push(line);
    log.apply(window.flush());
    assert.deepEqual(log.lines, numbered(99_900, 100_000));
    assert.equal(log.hidden, 99_900);
  });

  test("a reset clears the view and the hidden count", () => {
    const window = new LineWindow(10, 5);
    const log = new FakeLog();
    for (const line of numbered(0, 30)) window.push(line);
    log.apply(window.flush());
    assert.equal(log.hidden, 20);
    window.push("lost with the reset");
    window.reset();
    assert.ok(window.dirty);
    window.push("again");
    const update = window.flush();
    assert.equal(update?.reset, true);
    log.apply(update);
    assert.deepEqual(log.lines, ["again"]);
    assert.equal(log.hidden, 0);
    window.reset();
    log.apply(window.flush());
    assert.equal(log.text, "", "a reset with nothing after it still empties the log");
  });
});

describe("build statuses", () => {
  test("labels read like the server's", () => {
    assert.equal(statusLabel("IN_PROGRESS"), "In progress");
    assert.equal(statusLabel("TIMED_OUT"), "Timed out");
    assert.equal(statusLabel("SUCCEEDED"), "Succeeded");
    assert.equal(statusLabel(""), "");
  });

  test("only queued and running builds are followed", () => {
    assert.ok(isActive("QUEUED"));
    assert.ok(isActive("IN_PROGRESS"));
    for (const done of ["SUCCEEDED", "FAILED", "STOPPED", "TIMED_OUT", ""]) assert.ok(!isActive(done));
  });

  test("durations match the server's", () => {
    assert.equal(durationText(0), "<1 s");
    assert.equal(durationText(999), "<1 s");
    assert.equal(durationText(42_400), "42 s");
    assert.equal(durationText(120_000), "2 min");
    assert.equal(durationText(185_000), "3 min 5 s");
    assert.equal(durationText(3_600_000), "1 h");
    assert.equal(durationText(3_725_000), "1 h 2 min");
    assert.equal(durationText(-5), "<1 s");
  });

  test("the bottom is found with a little slack", () => {
    assert.ok(isAtBottom(900, 1300, 400));
    assert.ok(isAtBottom(895, 1300, 400));
    assert.ok(!isAtBottom(800, 1300, 400));
    assert.ok(isAtBottom(0, 300, 300), "nothing to scroll");
  });
});

describe("stream events", () => {
  test("phase events are read and checked", () => {
    assert.deepEqual(parsePhase('{"phase":"BUILD","status":"SUCCEEDED","duration_ms":1200}'), {
      phase: "BUILD",
      status: "SUCCEEDED",
      duration_ms: 1200,
    });
    assert.deepEqual(parsePhase('{"phase":"INSTALL","status":"IN_PROGRESS"}'), {
      phase: "INSTALL",
      status: "IN_PROGRESS",
      duration_ms: 0,
    });
    assert.equal(parsePhase('{"status":"FAILED"}'), null);
    assert.equal(parsePhase("not json"), null);
    assert.equal(parsePhase("[1]"), null);
  });

  test("end events carry the final status", () => {
    assert.equal(parseEnd('{"status":"SUCCEEDED"}'), "SUCCEEDED");
    assert.equal(parseEnd("{}"), null);
    assert.equal(parseEnd(""), null);
  });
});
