// The pages work without JavaScript: sign in, create a user as admin.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { startServer, launchBrowser, signIn, artifacts } from "./harness.mjs";

let server;
let browser;

before(async () => {
  server = await startServer();
  browser = await launchBrowser({ javaScriptEnabled: false });
});

after(async () => {
  await browser?.close();
  server?.stop();
});

test("sign in and create a user with JavaScript off", async () => {
  const page = await browser.context.newPage();
  await signIn(page, server.url, "admin", server.adminPassword);
  await page.goto(`${server.url}/admin/users`);
  await page.fill("input[name=username]", "nojs-user");
  await page.fill("input[name=password]", "a-long-password");
  await Promise.all([page.waitForURL(`${server.url}/admin/users`), page.click("form[action='/admin/users'] button")]);
  assert.match(await page.textContent(".flash[role=status]"), /Created nojs-user/);
  assert.ok(await page.$("tr[data-user='nojs-user']"));
  await page.screenshot({ path: join(artifacts, "admin-users-nojs.png"), fullPage: true });
  await page.close();
});
