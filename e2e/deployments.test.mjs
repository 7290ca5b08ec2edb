// Deployments in the browser: a real agent enrolls, an application and a
// group are made with the forms, a commit is deployed from the group's
// page, the deployment's grid of targets × events moves live to
// Succeeded, and an earlier revision is redeployed from the history.
import { spawn } from "node:child_process";
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startServer, launchBrowser, signIn, artifacts, seedRepository } from "./harness.mjs";

const bin = process.env.NUBO_BIN ?? "/var/tmp/nubo-target/debug/nubo";
let server;
let browser;
let agent;
const root = mkdtempSync(join(tmpdir(), "nubo-e2e-target-"));

before(async () => {
  server = await startServer();
  browser = await launchBrowser();
});

after(async () => {
  agent?.kill("SIGKILL");
  await browser?.close();
  server?.stop();
  rmSync(root, { recursive: true, force: true });
});

const appspec = `version: 0.0
os: linux
hooks:
  ApplicationStart:
    - location: scripts/start.sh
  ValidateService:
    - location: scripts/check.sh
`;

test("enroll a target, deploy from the group's page, watch the grid, redeploy", async () => {
  const page = await browser.context.newPage();
  page.on("dialog", (dialog) => dialog.accept());
  await signIn(page, server.url, "admin", server.adminPassword);
  const token = await seedRepository(page, server.url, "shop", {
    "appspec.yml": appspec,
    "scripts/start.sh": "#!/bin/sh\nsleep 2\necho started the shop\n",
    "scripts/check.sh": "#!/bin/sh\necho healthy\n",
  }, "v1");
  const minted = await fetch(`${server.url}/api/v1/deploy/agent-tokens`, {
    method: "POST",
    headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" },
    body: JSON.stringify({ description: "browser test" }),
  });
  assert.equal(minted.status, 201);
  const { token: agentToken } = await minted.json();
  agent = spawn(bin, ["agent", "deploy", "--server", server.url, "--token", agentToken, "--root", join(root, "r"), "--name", "web-1", "--tags", "env=test"], { stdio: "ignore" });

  // The target shows up online.
  await page.goto(`${server.url}/deployments`);
  assert.match(await page.textContent("[data-testid=empty-state]"), /No applications yet/);
  for (let i = 0; i < 50 && !(await page.$("[data-testid=targets] tr[data-target=web-1][data-online=online]")); i++) {
    await page.waitForTimeout(200);
    await page.reload();
  }
  assert.ok(await page.$("[data-testid=targets] tr[data-target=web-1][data-online=online]"), "the target is online");

  await page.fill("form[action='/deployments'] input[name=name]", "shop");
  await Promise.all([page.waitForURL(`${server.url}/deployments/shop`), page.click("form[action='/deployments'] button")]);
  // A malformed tag list comes back with the form as typed.
  await page.fill("form[action='/deployments/shop/groups'] input[name=name]", "test");
  await page.fill("form[action='/deployments/shop/groups'] input[name=tags]", "env");
  const [refused] = await Promise.all([page.waitForNavigation(), page.click("form[action='/deployments/shop/groups'] button")]);
  assert.equal(refused.status(), 422);
  assert.equal(await page.inputValue("form[action='/deployments/shop/groups'] input[name=name]"), "test");
  await page.fill("form[action='/deployments/shop/groups'] input[name=tags]", "env=test");
  await page.check("form[action='/deployments/shop/groups'] input[name=auto_rollback]");
  await Promise.all([page.waitForURL(`${server.url}/deployments/shop/test`), page.click("form[action='/deployments/shop/groups'] button")]);
  assert.ok(await page.$("tr[data-target=web-1]"), "the group shows the target it selects");

  await page.fill("form[action='/deployments/shop/test/deploy'] input[name=repo]", "shop");
  await page.fill("form[action='/deployments/shop/test/deploy'] input[name=commit]", "main");
  await Promise.all([page.waitForURL(/\/deployments\/d\/d-[A-Z0-9]{9}$/), page.click("form[action='/deployments/shop/test/deploy'] button")]);
  const first = page.url().split("/").pop();
  // Live: the grid moves to the end without a reload.
  await page.waitForSelector("#execution[data-status=Succeeded]", { timeout: 60_000 });
  const start = "[data-testid=event-grid] tr[data-target=web-1] td[data-event=ApplicationStart]";
  assert.equal(await page.getAttribute(start, "data-status"), "Succeeded");
  assert.equal(await page.getAttribute("[data-testid=event-grid] tr[data-target=web-1] td[data-event=Install]", "data-status"), "Succeeded");
  await page.click(`${start} details summary`);
  assert.match(await page.textContent(`${start} pre`), /\[stdout\]started the shop/);
  await page.screenshot({ path: join(artifacts, "deployment.png"), fullPage: true });
  const scroll = await page.evaluate(() => document.scrollingElement.scrollWidth - document.scrollingElement.clientWidth);
  assert.equal(scroll, 0, "the grid scrolls inside its card, not the page");

  // Redeploy the same revision from the history, as a new deployment.
  await page.goto(`${server.url}/deployments/shop/test`);
  await Promise.all([page.waitForURL(/\/deployments\/d\//), page.click(`tr[data-deployment=${first}] button`)]);
  assert.notEqual(page.url().split("/").pop(), first);
  await page.waitForSelector("#execution[data-status=Succeeded]", { timeout: 60_000 });
  await page.goto(`${server.url}/deployments/shop/test`);
  assert.equal((await page.$$("tr[data-deployment]")).length, 2);
  await page.close();
});
