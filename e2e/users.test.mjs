// The users page does more than disable: make administrator, group
// membership, and a password reset link that the user opens signed out.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { startServer, launchBrowser, signIn, artifacts } from "./harness.mjs";

let server;
let browser;
let danaBrowser;

before(async () => {
  server = await startServer();
  browser = await launchBrowser();
  danaBrowser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await danaBrowser?.close();
  server?.stop();
});

const row = (name) => `tr[data-user='${name}']`;

/** Clicks a button of a form that asks for confirmation, accepting it. */
async function confirmAndClick(page, selector) {
  page.once("dialog", (d) => d.accept());
  await Promise.all([page.waitForLoadState("load"), page.click(selector)]);
}

test("make administrator, groups, and a reset link that signs the user out everywhere", async () => {
  const admin = await browser.context.newPage();
  await signIn(admin, server.url, "admin", server.adminPassword);
  await admin.goto(`${server.url}/admin/users`);
  await admin.fill("form[action='/admin/users'] input[name=username]", "dana");
  await admin.fill("form[action='/admin/users'] input[name=password]", "dana-first-password");
  await Promise.all([admin.waitForLoadState("load"), admin.click("form[action='/admin/users'] button[type=submit]")]);
  assert.equal((await admin.textContent(`${row("dana")} [data-testid=role]`)).trim(), "user");
  // No buttons on one's own row: an administrator cannot lock themselves out.
  assert.equal(await admin.$(`${row("admin")} button`), null);

  await confirmAndClick(admin, `${row("dana")} button:text('Make administrator')`);
  assert.match(await admin.textContent(".flash.ok"), /dana is now an administrator/);
  assert.equal((await admin.textContent(`${row("dana")} [data-testid=role]`)).trim(), "admin");
  await confirmAndClick(admin, `${row("dana")} button:text('Remove administrator')`);
  assert.equal((await admin.textContent(`${row("dana")} [data-testid=role]`)).trim(), "user");

  await admin.fill("form[action='/admin/groups'] input[name=group]", "devs");
  await Promise.all([admin.waitForLoadState("load"), admin.click("form[action='/admin/groups'] button")]);
  await admin.fill("[data-group=devs] input[name=username]", "dana");
  await Promise.all([admin.waitForLoadState("load"), admin.click("[data-group=devs] button:text('Add to group')")]);
  assert.match(await admin.textContent(".flash.ok"), /dana is now in devs/);
  assert.equal((await admin.textContent(`${row("dana")} [data-testid=groups]`)).trim(), "devs");
  assert.ok(await admin.$("[data-group=devs] li[data-member=dana]"));
  await admin.screenshot({ path: join(artifacts, "users.png"), fullPage: true });
  await Promise.all([admin.waitForLoadState("load"), admin.click("[data-group=devs] li[data-member=dana] button")]);
  assert.equal((await admin.textContent(`${row("dana")} [data-testid=groups]`)).trim(), "");

  // Dana is signed in when the administrator makes her a reset link.
  const dana = await danaBrowser.context.newPage();
  await signIn(dana, server.url, "dana", "dana-first-password");
  await confirmAndClick(admin, `${row("dana")} button:text('Reset password link')`);
  const link = (await admin.textContent("[data-testid=reset-link] code")).trim();
  assert.match(link, new RegExp(`^${server.url}/reset-password#[0-9a-f]{48}$`));
  await admin.goto(`${server.url}/admin/users`);
  assert.equal(await admin.$("[data-testid=reset-link]"), null, "shown once");

  // The code never goes into a request line: the page takes it from the fragment.
  const requested = [];
  dana.on("request", (r) => requested.push(r.url()));
  await dana.goto(link);
  const code = link.split("#")[1];
  assert.equal(await dana.inputValue("[data-testid=reset-form] input[name=code]"), code);
  assert.equal(new URL(dana.url()).hash, "", "the code is dropped from the address bar");
  await dana.fill("input[name=new_password]", "dana-second-password");
  await dana.fill("input[name=confirm_password]", "dana-second-password");
  await Promise.all([dana.waitForURL(`${server.url}/login`), dana.click("[data-testid=reset-form] button")]);
  assert.match(await dana.textContent(".flash.ok"), /Your password was changed, dana/);
  assert.ok(requested.every((u) => !u.includes(code)), requested.join("\n"));
  // Her earlier session is over; the new password works, the old one not.
  await dana.goto(`${server.url}/repos`);
  assert.match(dana.url(), /\/login/);
  await dana.fill("input[name=username]", "dana");
  await dana.fill("input[name=password]", "dana-first-password");
  await Promise.all([dana.waitForLoadState("load"), dana.click("button[type=submit]")]);
  assert.match(await dana.textContent(".flash"), /wrong|incorrect|not valid/i);
  await signIn(dana, server.url, "dana", "dana-second-password");

  // A link works once.
  await dana.context().clearCookies();
  await dana.goto(link);
  await dana.fill("input[name=new_password]", "dana-third-password");
  await dana.fill("input[name=confirm_password]", "dana-third-password");
  const [again] = await Promise.all([dana.waitForNavigation(), dana.click("[data-testid=reset-form] button")]);
  assert.equal(again.status(), 422);
  assert.match(await dana.textContent(".field-error[data-error-for=code]"), /does not work: it was used already/);
  await admin.close();
  await dana.close();
});
