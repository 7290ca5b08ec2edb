// Unit tests of the live batch page's pure parts, run with `npm test`.
import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { batchActive, parseBatch, pollDelay } from "../src/builds/batch";

describe("parseBatch", () => {
  test("reads the API's batch", () => {
    const snapshot = parseBatch({
      id: "b1",
      status: "IN_PROGRESS",
      builds: [
        { identifier: "top", build_id: "app:1", status: "SUCCEEDED", depends_on: [], reason: null },
        { identifier: "bottom", build_id: "app:2", status: "STOPPED", depends_on: ["top"], reason: "a dependency failed" },
      ],
    });
    assert.deepEqual(snapshot, {
      status: "IN_PROGRESS",
      builds: [
        { identifier: "top", build_id: "app:1", status: "SUCCEEDED", reason: null },
        { identifier: "bottom", build_id: "app:2", status: "STOPPED", reason: "a dependency failed" },
      ],
    });
  });

  test("refuses what is not a batch", () => {
    assert.equal(parseBatch(null), null);
    assert.equal(parseBatch({ error: "no build batch" }), null);
    assert.equal(parseBatch({ status: "IN_PROGRESS", builds: [{ identifier: 3, status: "QUEUED" }] }), null);
    assert.equal(parseBatch({ status: "IN_PROGRESS", builds: "nope" }), null);
  });
});

test("only a batch in progress is polled", () => {
  assert.equal(batchActive("IN_PROGRESS"), true);
  for (const s of ["SUCCEEDED", "FAILED", "STOPPED", ""]) assert.equal(batchActive(s), false);
});

test("polls back off after failures and stay bounded", () => {
  assert.equal(pollDelay(0), 1500);
  assert.equal(pollDelay(1), 3000);
  assert.ok(pollDelay(2) > pollDelay(1));
  assert.equal(pollDelay(50), 10_000);
});
