// A pipeline in the browser: created from its declaration on the page, a
// real git push starts it, the live view moves through its stages without
// a reload, the approval is answered on the page, and it ends Succeeded.
import { createHmac } from "node:crypto";
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startServer, launchBrowser, signIn, artifacts, git, seedRepository } from "./harness.mjs";

let server;
let browser;

before(async () => {
  server = await startServer();
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  server?.stop();
});

const declaration = {
  pipeline: {
    name: "site",
    stages: [
      { name: "Source", actions: [{ name: "Code", actionTypeId: { category: "Source", owner: "AWS", provider: "CodeCommit", version: "1" },
        configuration: { RepositoryName: "site", BranchName: "main" }, outputArtifacts: [{ name: "Src" }], namespace: "SourceVariables" }] },
      { name: "Build", actions: [{ name: "Compile", actionTypeId: { category: "Build", owner: "AWS", provider: "CodeBuild", version: "1" },
        configuration: { ProjectName: "site-build" }, inputArtifacts: [{ name: "Src" }] }] },
      { name: "Approve", actions: [{ name: "Gate", actionTypeId: { category: "Approval", owner: "AWS", provider: "Manual", version: "1" },
        configuration: { CustomData: "Ship #{SourceVariables.CommitId}?" } }] },
    ],
  },
};

test("create a pipeline, push, watch it live, approve it on the page", async () => {
  const page = await browser.context.newPage();
  await signIn(page, server.url, "admin", server.adminPassword);
  const token = await seedRepository(page, server.url, "site", { "index.html": "<h1>v1</h1>\n" }, "v1");
  // A build project for it, through the form.
  await page.goto(`${server.url}/projects`);
  await page.fill("form[action='/projects'] input[name=name]", "site-build");
  await page.selectOption("form[action='/projects'] select[name=repo]", "site");
  await page.fill("form[action='/projects'] textarea[name=inline_buildspec]", "version: 0.2\nphases:\n  build:\n    commands:\n      - sleep 2\n      - echo built\n");
  await Promise.all([page.waitForLoadState("load"), page.click("form[action='/projects'] button[type=submit]")]);

  await page.goto(`${server.url}/pipelines`);
  assert.match(await page.textContent("[data-testid=empty-state]"), /No pipelines yet/);
  // A broken declaration comes back as typed, with the place of the problem.
  const broken = JSON.stringify(declaration).replace('"Compile"', '"Com/pile"');
  await page.fill("form[action='/pipelines'] textarea[name=declaration]", broken);
  const [refused] = await Promise.all([page.waitForNavigation(), page.click("form[action='/pipelines'] button[type=submit]")]);
  assert.equal(refused.status(), 422);
  assert.equal(await page.inputValue("form[action='/pipelines'] textarea[name=declaration]"), broken);
  assert.match(await page.textContent(".field-error[data-error-for=declaration]"), /pipeline\.stages\[1\]\.actions\[0\]\.name/);
  await page.fill("form[action='/pipelines'] textarea[name=declaration]", JSON.stringify(declaration, null, 2));
  await Promise.all([page.waitForURL(`${server.url}/pipelines/site`), page.click("form[action='/pipelines'] button[type=submit]")]);

  // A real push starts it.
  const dir = mkdtempSync(join(tmpdir(), "nubo-e2e-pipe-"));
  let commit;
  try {
    git(dir, token, "clone", "-q", `${server.url}/v1/repos/site`, "work");
    const work = join(dir, "work");
    writeFileSync(join(work, "index.html"), "<h1>v2</h1>\n");
    git(work, token, "commit", "-qam", "v2");
    git(work, token, "push", "-q", "origin", "main");
    commit = git(work, token, "rev-parse", "HEAD").trim();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  // The page shows the execution once it exists (one reload), then moves by itself.
  for (let i = 0; i < 50 && !(await page.$("#execution")); i++) {
    await page.waitForTimeout(200);
    await page.reload();
  }
  await page.waitForSelector("#execution[data-live=yes]");
  const marker = await page.evaluate(() => (window.__sameDocument = true));
  assert.equal(marker, true);
  await page.waitForSelector("[data-stage=Build] [data-status=InProgress]", { timeout: 30_000 });
  await page.waitForSelector("[data-stage=Approve] [data-testid=approval]", { timeout: 60_000 });
  assert.equal(await page.evaluate(() => window.__sameDocument), true, "no reload: the live view moved");
  assert.match(await page.textContent("[data-stage=Source]"), /Succeeded/);
  assert.match(await page.textContent("[data-stage=Build]"), /Succeeded/);
  assert.ok(await page.$("[data-stage=Build] [data-testid=build-link]"));
  assert.match(await page.textContent("[data-stage=Approve] .summary"), new RegExp(`Ship ${commit}\\?`));
  assert.match(await page.textContent("[data-testid=waiting]"), /waiting for approval of Approve\/Gate/);
  await page.screenshot({ path: join(artifacts, "pipeline-waiting.png"), fullPage: true });

  await page.fill("[data-testid=approval] input[name=comment]", "looks good");
  await Promise.all([page.waitForLoadState("load"), page.click("[data-testid=approval] button[value=Approved]")]);
  await page.waitForSelector("#execution[data-status=Succeeded]", { timeout: 30_000 });
  assert.match(await page.textContent("[data-stage=Approve]"), /approved by admin: looks good/);
  await page.screenshot({ path: join(artifacts, "pipeline-succeeded.png"), fullPage: true });

  // The build page links back to the execution.
  await Promise.all([page.waitForLoadState("load"), page.click("[data-stage=Build] [data-testid=build-link]")]);
  const back = await page.getAttribute("[data-testid=pipeline-link]", "href");
  assert.match(back, /^\/pipelines\/site\/executions\/[0-9a-f]+$/);

  await page.goto(`${server.url}/pipelines`);
  assert.match(await page.textContent("tr[data-pipeline=site]"), /#1\s*Succeeded/);

  // Disabling the transition into Approve holds the next execution before it.
  await page.goto(`${server.url}/pipelines/site`);
  await page.fill("[data-stage=Approve] form.transition input[name=reason]", "release freeze");
  await Promise.all([page.waitForLoadState("load"), page.click("[data-stage=Approve] form.transition button")]);
  assert.match(await page.textContent("[data-stage=Approve] form[data-transition=disabled]"), /Disabled by admin: release freeze/);
  await Promise.all([page.waitForLoadState("load"), page.click("[data-testid=start]")]);
  await page.waitForFunction(
    () => /transition into stage Approve is disabled by admin: release freeze/.test(document.querySelector("[data-testid=waiting]")?.textContent ?? ""),
    null,
    { timeout: 60_000 },
  );
  assert.match(await page.textContent("[data-stage=Build]"), /Succeeded/);
  await page.screenshot({ path: join(artifacts, "pipeline-transition-disabled.png"), fullPage: true });
  await Promise.all([page.waitForLoadState("load"), page.click("[data-stage=Approve] form.transition button")]);
  await page.waitForSelector("[data-stage=Approve] [data-testid=approval]", { timeout: 30_000 });
  // The events list what happened, newest first (as of the page's load).
  await page.reload();
  assert.match(await page.textContent("[data-testid=events] tbody tr:first-child"), /action Approve\/Gate\s*STARTED/);
  assert.match(await page.textContent("[data-testid=events]"), /execution\s*SUCCEEDED/);

  // The webhook trigger: turned on, its secret shown once, then a signed call starts an execution.
  await Promise.all([page.waitForLoadState("load"), page.click("[data-testid=webhook-on]")]);
  const secret = (await page.textContent("[data-testid=webhook-secret]")).trim();
  assert.match(secret, /^[0-9a-f]{48}$/);
  const body = JSON.stringify({ ref: "main" });
  const signature = "sha256=" + createHmac("sha256", secret).update(body).digest("hex");
  const started = await fetch(`${server.url}/api/v1/pipelines/site/webhook/trigger`, {
    method: "POST", headers: { "x-nubo-signature-256": signature, "content-type": "application/json" }, body,
  });
  assert.equal(started.status, 201);
  await page.goto(`${server.url}/pipelines/site`);
  assert.match(await page.textContent("[data-testid=webhook]"), /starts an execution as admin/);
  assert.doesNotMatch(await page.content(), new RegExp(secret), "the secret is not on the pipeline's page");
  await page.close();
});
