// Batch builds in the browser: a build-graph (a diamond of dependencies)
// started from the project page becomes one batch; its page draws the
// graph and follows it live until every build has succeeded, the combined
// artifacts hold each build's files under its identifier, and the project's
// history shows the batch with its builds. A second batch is stopped from
// its page.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { startServer, launchBrowser, signIn, artifacts, seedRepository } from "./harness.mjs";

let server;
let browser;

before(async () => {
  server = await startServer();
  browser = await launchBrowser();
  // One session for both tests (they share the browser's context).
  const page = await browser.context.newPage();
  await signIn(page, server.url, "admin", server.adminPassword);
  await page.close();
});

after(async () => {
  await browser?.close();
  server?.stop();
});

const diamond = `version: 0.2
batch:
  fast-fail: true
  combine-artifacts: true
  build-graph:
    - identifier: top
    - identifier: left
      depend-on: [top]
    - identifier: right
      depend-on: [top]
    - identifier: bottom
      depend-on: [left, right]
phases:
  build:
    commands:
      - echo "identifier=$CODEBUILD_BATCH_BUILD_IDENTIFIER triggered=$CODEBUILD_BUILD_BATCH_TRIGGERED"
      - sleep 1
      - mkdir -p out && echo "$CODEBUILD_BATCH_BUILD_IDENTIFIER" > out/result.txt
artifacts:
  files: ['**/*']
  base-directory: out
`;

const slow = `version: 0.2
batch:
  build-list:
    - identifier: one
    - identifier: two
phases:
  build:
    commands:
      - sleep 120
`;

async function createProject(page, name, inline) {
  await page.goto(`${server.url}/projects`);
  await page.fill("[data-testid=create-project] input[name=name]", name);
  await page.selectOption("[data-testid=create-project] select[name=repo]", "batch-app");
  if (inline) await page.fill("[data-testid=create-project] textarea[name=inline_buildspec]", inline);
  await Promise.all([page.waitForURL(`${server.url}/projects/${name}`), page.click("[data-testid=create-project] button[type=submit]")]);
}

test("a build-graph batch runs in dependency order, live on its page", async () => {
  const page = await browser.context.newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  await seedRepository(page, server.url, "batch-app", { "buildspec.yml": diamond }, "a batch buildspec");
  await createProject(page, "batch-app");

  await Promise.all([page.waitForURL(/\/batches\//), page.click("[data-testid=start-build] button[type=submit]")]);
  // Rendered while the top build runs: the bottom one waits for two others.
  assert.equal(await page.getAttribute("#batch", "data-status"), "IN_PROGRESS");
  assert.equal(await page.getAttribute("#batch-graph g.node[data-identifier=bottom]", "data-status"), "PENDING");
  assert.equal(await page.locator("#batch-graph g.node").count(), 4);
  assert.equal(await page.locator("#batch-graph path.edge").count(), 4);
  assert.ok(await page.isVisible("[data-testid=stop-batch]"));
  await page.waitForSelector("#batch[data-live=true]");
  await page.screenshot({ path: join(artifacts, "batch-running.png"), fullPage: true });

  // The island follows it to the end without a reload.
  await page.waitForSelector("#batch[data-ended=true]", { timeout: 120_000 });
  assert.equal(await page.getAttribute("#batch-status", "data-status"), "SUCCEEDED");
  for (const id of ["top", "left", "right", "bottom"]) {
    assert.equal(await page.getAttribute(`#batch-graph g.node[data-identifier=${id}]`, "data-status"), "SUCCEEDED", id);
    assert.equal(await page.getAttribute(`[data-testid=batch-builds] tr[data-identifier=${id}]`, "data-status"), "SUCCEEDED", id);
  }
  assert.equal(await page.textContent("#batch-graph g.node[data-identifier=bottom] .node-status"), "Succeeded");
  assert.ok(await page.isHidden("[data-testid=stop-batch]"));
  await page.screenshot({ path: join(artifacts, "batch-succeeded.png"), fullPage: true });

  // Combined artifacts: each build's files in a folder named by its identifier.
  const href = await page.getAttribute("[data-testid=batch-artifacts]", "href");
  assert.ok(await page.isVisible("[data-testid=batch-artifacts]"));
  const zip = await page.request.get(`${server.url}${href}`);
  assert.equal(zip.status(), 200);
  const body = await zip.body();
  assert.equal(body.subarray(0, 2).toString(), "PK");
  for (const id of ["top", "left", "right", "bottom"]) assert.ok(body.includes(`${id}/result.txt`), id);

  // Each child is a normal build with its own log and a way back.
  await Promise.all([page.waitForURL(/\/builds\//), page.click("[data-testid=batch-builds] tr[data-identifier=bottom] a")]);
  assert.equal(await page.getAttribute("#build-status", "data-status"), "SUCCEEDED");
  assert.match(await page.textContent("#build-log"), /identifier=bottom triggered=true/);
  assert.equal(await page.textContent("[data-testid=batch-identifier]"), "bottom");
  await Promise.all([page.waitForURL(/\/batches\//), page.click("[data-testid=batch-link]")]);

  // The project's history: one batch, its four builds under it.
  await page.goto(`${server.url}/projects/batch-app`);
  assert.equal(await page.getAttribute("[data-testid=build-history] tr.batch-row", "data-status"), "SUCCEEDED");
  assert.equal(await page.locator("[data-testid=build-history] tr.batch-child[data-status=SUCCEEDED]").count(), 4);
  await page.screenshot({ path: join(artifacts, "batch-history.png"), fullPage: true });
  assert.deepEqual(errors, []);
  await page.close();
});

test("a running batch stops from its page, builds and all", async () => {
  const page = await browser.context.newPage();
  await createProject(page, "batch-stop", slow);
  await Promise.all([page.waitForURL(/\/batches\//), page.click("[data-testid=start-build] button[type=submit]")]);
  await page.waitForSelector("[data-testid=batch-builds] tr[data-identifier=one][data-status=IN_PROGRESS]", { timeout: 30_000 });
  page.on("dialog", (dialog) => dialog.accept());
  await Promise.all([
    page.waitForResponse((r) => r.request().method() === "POST" && r.url().endsWith("/stop")),
    page.click("[data-testid=stop-batch] button"),
  ]);
  await page.waitForSelector("#batch-status[data-status=STOPPED]", { timeout: 30_000 });
  for (const id of ["one", "two"]) {
    assert.equal(await page.getAttribute(`[data-testid=batch-builds] tr[data-identifier=${id}]`, "data-status"), "STOPPED", id);
  }
  assert.ok(await page.isHidden("[data-testid=stop-batch]"));
  await page.close();
});
