// CodeBuild's console path: a user makes a build project for a pushed
// repository in the browser, starts a build, watches its log and phase
// timeline live, and sees it succeed with its artifacts.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { startServer, launchBrowser, signIn, artifacts, seedRepository } from "./harness.mjs";

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

const buildspec = `version: 0.2
phases:
  build:
    commands:
      - echo "compiling $CODEBUILD_RESOLVED_SOURCE_VERSION"
      - sleep 1
      - mkdir -p out && echo ok > out/result.txt
  post_build:
    commands:
      - echo "post build, succeeding=$CODEBUILD_BUILD_SUCCEEDING"
artifacts:
  files: ['**/*']
  base-directory: out
`;

/** What the build page shows above its log, as a user reads it. */
async function finalState(page) {
  return page.evaluate(() => {
    // Times as their machine-readable value: their text is relative ("just now").
    const facts = {};
    for (const dt of document.querySelectorAll("[data-testid=build-summary] dl.facts dt")) {
      const dd = dt.nextElementSibling;
      facts[dt.textContent.trim()] = dd?.querySelector("time")?.dateTime ?? dd?.textContent.trim() ?? "";
    }
    const visible = (el) => !!el && !el.hidden && el.getClientRects().length > 0;
    return {
      Duration: facts.Duration,
      Ended: facts.Ended,
      Commit: facts.Commit,
      inProgress: [...document.querySelectorAll("#phase-timeline li")]
        .filter((li) => li.dataset.status === "IN_PROGRESS" || li.getAttribute("aria-current") === "step")
        .map((li) => li.dataset.phase),
      stop: visible(document.querySelector("[data-testid=stop-build]")),
      artifacts: visible(document.querySelector("a[data-testid=artifacts]")),
      status: document.querySelector("#build-status")?.textContent.trim(),
    };
  });
}

test("create a build project, start a build and watch it live", async () => {
  const page = await browser.context.newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  await signIn(page, server.url, "admin", server.adminPassword);

  await seedRepository(page, server.url, "ci-app", { "buildspec.yml": buildspec }, "add a buildspec");

  await page.goto(`${server.url}/projects`);
  await page.fill("[data-testid=create-project] input[name=name]", "ci-app-build");
  await page.selectOption("[data-testid=create-project] select[name=repo]", "ci-app");
  await Promise.all([page.waitForURL(`${server.url}/projects/ci-app-build`), page.click("[data-testid=create-project] button[type=submit]")]);

  await Promise.all([page.waitForURL(/\/builds\/ci-app-build:/), page.click("[data-testid=start-build] button[type=submit]")]);
  await page.waitForSelector("#build-log[data-live=true]");
  await page.waitForSelector("#build-log[data-ended=true]", { timeout: 60_000 });
  assert.equal(await page.getAttribute("#build-status", "data-status"), "SUCCEEDED");
  const log = await page.textContent("#build-log");
  assert.match(log, /Entering phase BUILD/);
  assert.match(log, /compiling [0-9a-f]{40}/);
  assert.match(log, /post build, succeeding=1/);
  assert.equal(await page.getAttribute("#phase-timeline li[data-phase=BUILD]", "data-status"), "SUCCEEDED");
  // The watched page ends as a reload shows it: final times, the commit,
  // every phase ended, no stop button, the artifacts link.
  const watched = await finalState(page);
  assert.notEqual(watched.Duration, "running");
  assert.match(watched.Duration, /s$/);
  assert.notEqual(watched.Ended, "—");
  assert.match(watched.Commit, /^[0-9a-f]{7,}/);
  assert.deepEqual(watched.inProgress, []);
  assert.equal(watched.stop, false);
  assert.equal(watched.artifacts, true);
  await page.screenshot({ path: join(artifacts, "build.png"), fullPage: true });

  // After a reload the finished build shows the same, without JavaScript's help.
  await page.reload();
  assert.equal(await page.getAttribute("#build-status", "data-status"), "SUCCEEDED");
  assert.deepEqual(await finalState(page), watched);
  assert.ok(await page.$("a[data-testid=artifacts][href$='artifacts.zip']"));
  await page.goto(`${server.url}/projects/ci-app-build`);
  assert.equal(await page.getAttribute("[data-testid=build-history] tr[data-build-id]", "data-status"), "SUCCEEDED");
  // The dashboard now counts what there is and shows what happened.
  await page.goto(`${server.url}/`);
  const activity = await page.$$eval("[data-testid=activity] li", (lis) => lis.map((li) => [li.dataset.kind, li.querySelector("a").textContent]));
  assert.deepEqual(activity.map(([kind]) => kind), ["build", "push"]);
  assert.equal(activity[0][1], "Build #1 of ci-app-build: Succeeded");
  assert.equal(activity[1][1], "admin pushed to main in ci-app");
  assert.match(await page.textContent("main"), /1 build project/);
  await page.screenshot({ path: join(artifacts, "dashboard-activity.png"), fullPage: true });
  await page.screenshot({ path: join(artifacts, "build-history.png"), fullPage: true });
  assert.deepEqual(errors, []);
  await page.close();
});

test("a refused project form keeps what was typed and says what is wrong next to it", async () => {
  const page = await browser.context.newPage();
  await page.goto(`${server.url}/projects`);
  const form = "[data-testid=create-project]";
  const badSpec = "version: 0.2\nphases:\n  build:\n    commandz:\n      - make\n";
  await page.fill(`${form} input[name=name]`, "keeps-input");
  await page.selectOption(`${form} select[name=repo]`, "ci-app");
  await page.fill(`${form} textarea[name=inline_buildspec]`, badSpec);
  await page.fill(`${form} textarea[name=env]`, "STAGE=test");
  const [response] = await Promise.all([page.waitForNavigation(), page.click(`${form} button[type=submit]`)]);
  assert.equal(response.status(), 422);
  assert.equal(await page.inputValue(`${form} input[name=name]`), "keeps-input");
  assert.equal(await page.inputValue(`${form} select[name=repo]`), "ci-app");
  assert.equal(await page.inputValue(`${form} textarea[name=inline_buildspec]`), badSpec);
  assert.equal(await page.inputValue(`${form} textarea[name=env]`), "STAGE=test");
  assert.equal(await page.getAttribute(`${form} textarea[name=inline_buildspec]`, "aria-invalid"), "true");
  const error = await page.textContent(`${form} .field-error[data-error-for=inline_buildspec]`);
  assert.match(error, /inline buildspec is not valid: buildspec:3:3: error: phases.build.commands is required/);
  assert.equal(await page.getAttribute(`${form} input[name=name]`, "aria-invalid"), null);
  await page.screenshot({ path: join(artifacts, "project-form-refused.png"), fullPage: true });

  // Fixed in place, it goes through.
  await page.fill(`${form} textarea[name=inline_buildspec]`, buildspec);
  await Promise.all([page.waitForURL(`${server.url}/projects/keeps-input`), page.click(`${form} button[type=submit]`)]);
  await page.close();
});
