// A new administrator signs in with the first-start password and finds the
// dashboard; creates an API token in the UI and uses it; signs out.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { startServer, launchBrowser, signIn, artifacts } from "./harness.mjs";

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

test("wrong password is refused with a clear message", async () => {
  const page = await browser.context.newPage();
  await page.goto(`${server.url}/login`);
  await page.fill("input[name=username]", "admin");
  await page.fill("input[name=password]", "not-the-password");
  await page.click("button[type=submit]");
  await page.waitForSelector(".flash.error");
  assert.equal(await page.textContent(".flash.error"), "Wrong user name or password.");
  // What the user typed stays (but the password), and the cursor waits in the password.
  assert.equal(await page.inputValue("input[name=username]"), "admin");
  assert.equal(await page.inputValue("input[name=password]"), "");
  assert.equal(await page.evaluate(() => document.activeElement?.getAttribute("name")), "password");
  await page.close();
});

test("admin signs in with the first-start password and sees the dashboard", async () => {
  assert.ok(server.adminPassword, "the server printed a first-start password");
  const page = await browser.context.newPage();
  await signIn(page, server.url, "admin", server.adminPassword);
  assert.equal(await page.textContent("h1"), "Dashboard");
  assert.equal(await page.textContent("[data-testid=viewer]"), "admin");
  assert.match(await page.textContent("main"), /Welcome, admin/);
  assert.match(await page.textContent("main"), /one-time password/);
  // A new account starts with its three first steps, each a way in.
  const steps = await page.$$eval("[data-testid=first-steps] a", (as) => as.map((a) => [a.getAttribute("href"), a.querySelector("h3").textContent]));
  assert.deepEqual(steps, [
    ["/repos", "1. Create or push a repository"],
    ["/workspaces", "2. Open a workspace"],
    ["/projects", "3. Run a build"],
  ]);
  const nav = await page.$$eval("nav a", (links) => links.map((a) => a.textContent));
  for (const entry of ["Dashboard", "Repositories", "Workspaces", "Builds", "Deployments", "Users"]) {
    assert.ok(nav.includes(entry), `navigation has ${entry}: ${nav}`);
  }
  // The embedded TypeScript bundle ran.
  await page.waitForFunction(() => document.documentElement.dataset.islands === "ready");
  await page.screenshot({ path: join(artifacts, "dashboard.png"), fullPage: true });

  // The theme switch cycles auto -> light -> dark and sticks across pages.
  await page.click("[data-theme-toggle]");
  await page.click("[data-theme-toggle]");
  assert.equal(await page.getAttribute("html", "data-theme"), "dark");
  await page.click("a[href='/repos']");
  await page.waitForFunction(() => document.documentElement.dataset.islands === "ready");
  assert.equal(await page.getAttribute("html", "data-theme"), "dark");
  assert.match(await page.textContent("[data-testid=empty-state]"), /No repositories yet/);
  await page.screenshot({ path: join(artifacts, "repositories-dark.png"), fullPage: true });
  await page.close();
});

test("a token made in the UI works on the API until it is revoked", async () => {
  const page = await browser.context.newPage();
  await page.goto(`${server.url}/account/tokens`);
  await page.fill("input[name=description]", "e2e token");
  await Promise.all([page.waitForLoadState("load"), page.click("form[action='/account/tokens'] button")]);
  const token = (await page.textContent("[data-testid=new-token]")).trim();
  assert.match(token, /^nubo_[0-9a-f]{48}$/);
  await page.screenshot({ path: join(artifacts, "new-token.png"), fullPage: true });

  const me = await fetch(`${server.url}/api/v1/me`, { headers: { authorization: `Bearer ${token}` } });
  assert.equal(me.status, 200);
  assert.equal((await me.json()).name, "admin");

  await page.goto(`${server.url}/account/tokens`);
  assert.match(await page.textContent("table"), /e2e token/);
  page.once("dialog", (dialog) => dialog.accept());
  await Promise.all([page.waitForURL(`${server.url}/account/tokens`), page.click("button.danger")]);
  assert.match(await page.textContent(".flash[role=status]"), /revoked/);
  const after = await fetch(`${server.url}/api/v1/me`, { headers: { authorization: `Bearer ${token}` } });
  assert.equal(after.status, 401);
  await page.close();
});

test("signing out returns to the sign-in page", async () => {
  const page = await browser.context.newPage();
  await page.goto(`${server.url}/`);
  await Promise.all([page.waitForURL(/\/login/), page.click("text=Sign out")]);
  await page.goto(`${server.url}/account`);
  await page.waitForURL(/\/login\?next=\/account/);
  await page.close();
});

test("pages ask for nothing that is not there, the icon included", async () => {
  const page = await browser.context.newPage();
  const failed = [];
  page.on("response", (r) => {
    if (r.url().startsWith(server.url) && r.status() >= 400) failed.push(`${r.status()} ${r.url()}`);
  });
  await signIn(page, server.url, "admin", server.adminPassword);
  for (const path of ["/", "/repos", "/workspaces", "/projects", "/account"]) {
    await page.goto(`${server.url}${path}`);
    await page.waitForFunction(() => document.documentElement.dataset.islands === "ready");
  }
  const icon = await page.evaluate(() => document.querySelector("link[rel=icon]")?.getAttribute("href"));
  assert.match(icon, /^\/assets\/favicon\.svg\?v=[0-9a-f]{16}$/);
  const fetched = await page.evaluate(async (href) => (await fetch(href)).headers.get("content-type"), icon);
  assert.equal(fetched, "image/svg+xml");
  const ico = await fetch(`${server.url}/favicon.ico`);
  assert.equal(ico.status, 200);
  assert.deepEqual(failed, []);
  await page.close();
});

test("the users and SSH key forms keep what was typed when refused", async () => {
  // Signed in as admin by the test before.
  const page = await browser.context.newPage();
  await page.goto(`${server.url}/admin/users`);
  const users = "form[action='/admin/users']";
  await page.fill(`${users} input[name=username]`, "newcomer");
  await page.fill(`${users} input[name=password]`, "short");
  await page.check(`${users} input[name=admin]`);
  // Past the browser's own checks, as a client without them would send it.
  await page.$eval(users, (form) => form.setAttribute("novalidate", ""));
  const [refused] = await Promise.all([page.waitForNavigation(), page.click(`${users} button[type=submit]`)]);
  assert.equal(refused.status(), 422);
  assert.equal(await page.inputValue(`${users} input[name=username]`), "newcomer");
  assert.equal(await page.inputValue(`${users} input[name=password]`), "", "a password is never sent back");
  assert.equal(await page.isChecked(`${users} input[name=admin]`), true);
  assert.match(await page.textContent(`${users} .field-error[data-error-for=password]`), /at least/i);

  await page.goto(`${server.url}/account/git-credentials`);
  const keys = "form[action='/account/ssh-keys']";
  await page.fill(`${keys} input[name=public_key]`, "ssh-ed25519 not-a-key me@laptop");
  const [bad] = await Promise.all([page.waitForNavigation(), page.click(`${keys} button[type=submit]`)]);
  assert.equal(bad.status(), 422);
  assert.equal(await page.inputValue(`${keys} input[name=public_key]`), "ssh-ed25519 not-a-key me@laptop");
  assert.equal(await page.getAttribute(`${keys} input[name=public_key]`, "aria-invalid"), "true");
  assert.ok((await page.textContent(`${keys} .field-error[data-error-for=public_key]`)).length > 0);
  await page.close();
});
