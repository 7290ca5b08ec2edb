// The repository page as the best git hosts lay it out, its Settings tab,
// and sharing a repository with another user from its Access tab, checked
// with the real git as that user.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync, mkdirSync, rmSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startServer, launchBrowser, signIn, artifacts, git, gitAs, seedRepository } from "./harness.mjs";

let server;
let browser;
let bobBrowser;
let adminToken;
let bobToken;

before(async () => {
  server = await startServer();
  browser = await launchBrowser();
  bobBrowser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await bobBrowser?.close();
  server?.stop();
});

/** A token for whoever is signed in on `page`. */
async function newToken(page, description) {
  await page.goto(`${server.url}/account/tokens`);
  await page.fill("input[name=description]", description);
  await Promise.all([page.waitForLoadState("load"), page.click("form[action='/account/tokens'] button")]);
  return (await page.textContent("[data-testid=new-token]")).trim();
}

/** Runs git as `user`; answers { ok, out } instead of throwing. */
function tryGit(user, cwd, token, ...args) {
  try {
    return { ok: true, out: gitAs(user, cwd, token, ...args) };
  } catch (e) {
    return { ok: false, out: `${e.stdout ?? ""}${e.stderr ?? ""}` };
  }
}

test("the repository page: latest commit, files with their last commits, README, side panel", async () => {
  const page = await browser.context.newPage();
  await signIn(page, server.url, "admin", server.adminPassword);
  adminToken = await seedRepository(page, server.url, "shared", {
    "README.md": "# Shared\n\nThe readme text.\n",
    "src/app.js": "console.log(1);\n",
    "docs/guide.md": "Guide\n",
  }, "First commit");
  const dir = mkdtempSync(join(tmpdir(), "nubo-e2e-share-"));
  try {
    git(dir, adminToken, "clone", "-q", `${server.url}/v1/repos/shared`, "work");
    const work = join(dir, "work");
    writeFileSync(join(work, "src/app.js"), "console.log(2);\n");
    git(work, adminToken, "commit", "-qam", "Fix the app");
    git(work, adminToken, "tag", "v1");
    git(work, adminToken, "push", "-q", "origin", "main", "v1");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }

  await page.goto(`${server.url}/repos/shared`);
  assert.match(await page.textContent("[data-testid=latest-commit]"), /E2E.*Fix the app.*2 commits/s);
  const files = await page.$$eval("[data-testid=files] tr", (rows) =>
    rows.map((r) => [r.dataset.entry, r.querySelector(".file-commit").textContent.trim()]));
  assert.deepEqual(files, [["docs", "First commit"], ["src", "Fix the app"], ["README.md", "First commit"]]);
  assert.match(await page.textContent("[data-testid=readme]"), /The readme text/);
  assert.equal((await page.textContent("[data-testid=branch-count]")).trim(), "1 branch");
  assert.equal((await page.textContent("[data-testid=tag-count]")).trim(), "1 tag");
  assert.equal((await page.textContent("[data-testid=clone-url]")).trim(), `${server.url}/v1/repos/shared`);
  assert.ok(await page.$("[data-testid=open-workspace] [data-testid=create-workspace]"));
  // Settings moved to their own tab.
  assert.equal(await page.$("[data-testid=webhooks]"), null);
  const tabs = await page.$$eval("[data-testid=repo-tabs] a", (as) => as.map((a) => [a.textContent, a.getAttribute("aria-current")]));
  assert.deepEqual(tabs, [["Overview", "page"], ["Code", null], ["Commits", null], ["Access", null], ["Settings", null]]);
  await page.screenshot({ path: join(artifacts, "repository-overview.png"), fullPage: true });
  await page.click("[data-testid=repo-tabs] a:text('Settings')");
  await page.waitForURL(`${server.url}/repos/shared/settings`);
  assert.ok(await page.$("[data-testid=webhooks] form input[name=url]"));
  assert.ok(await page.$("[data-testid=delete] button.danger"));
  await page.close();
});

test("an empty repository shows the three ways to fill it, none touching the global git config", async () => {
  const page = await browser.context.newPage();
  await page.goto(`${server.url}/repos`);
  await page.fill("form[action='/repos'] input[name=name]", "blank");
  await Promise.all([page.waitForURL(`${server.url}/repos/blank`), page.click("form[action='/repos'] button")]);
  const url = `${server.url}/v1/repos/blank`;
  const snippets = {};
  for (const which of ["create", "existing", "import"]) {
    snippets[which] = await page.textContent(`[data-testid=snippet-${which}]`);
    assert.ok(snippets[which].includes(url), `${which}: ${snippets[which]}`);
    assert.ok(!snippets[which].includes("--global"), `${which}: ${snippets[which]}`);
  }
  assert.match(snippets.existing, /^git remote add origin \S+$/m);
  // The "create" snippet works as written (the credential line aside: the
  // test gives git its token another way).
  const dir = mkdtempSync(join(tmpdir(), "nubo-e2e-blank-"));
  try {
    const work = join(dir, "work");
    mkdirSync(work);
    for (const line of snippets.create.split("\n")) {
      if (line.startsWith("echo ")) writeFileSync(join(work, "README.md"), "# blank\n");
      else if (line.includes("credential.helper")) continue;
      else git(work, adminToken, ...line.replace(/^git /, "").match(/"[^"]*"|\S+/g).map((a) => a.replace(/^"|"$/g, "")));
    }
    assert.ok(existsSync(join(work, ".git")));
    assert.match(git(dir, adminToken, "ls-remote", url), /refs\/heads\/main/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  await page.reload();
  assert.equal(await page.$("[data-testid=empty-repo]"), null);
  assert.match(await page.textContent("[data-testid=readme]"), /blank/);
  await page.close();
});

test("share a repository from its Access tab: read and write on one branch, edit the policy, take it back", async () => {
  const admin = await browser.context.newPage();
  await admin.goto(`${server.url}/admin/users`);
  await admin.fill("form[action='/admin/users'] input[name=username]", "bob");
  await admin.fill("form[action='/admin/users'] input[name=password]", "bob-password-1234");
  await Promise.all([admin.waitForLoadState("load"), admin.click("form[action='/admin/users'] button[type=submit]")]);

  const bob = await bobBrowser.context.newPage();
  await signIn(bob, server.url, "bob", "bob-password-1234");
  bobToken = await newToken(bob, "bob's git");
  const dir = mkdtempSync(join(tmpdir(), "nubo-e2e-bob-"));
  try {
    const url = `${server.url}/v1/repos/shared`;
    assert.equal(tryGit("bob", dir, bobToken, "clone", "-q", url, "before").ok, false, "no access yet");

    await admin.goto(`${server.url}/repos/shared/access`);
    await admin.fill("[data-testid=share] input[name=principal]", "bob");
    await admin.check("[data-testid=share] input[name=level][value=write]");
    await admin.fill("[data-testid=share] input[name=branches]", "feature/*");
    await Promise.all([admin.waitForLoadState("load"), admin.click("[data-testid=share] button[type=submit]")]);
    assert.match(await admin.textContent(".flash.ok"), /user bob now has write access/);
    const grant = "[data-grant='user:bob']";
    assert.equal((await admin.textContent(`${grant} [data-testid=grant-level]`)).trim(), "write");
    assert.match(await admin.textContent(grant), /pushes to feature\/\*/);
    const who = await admin.$$eval("[data-testid=who] tbody tr", (rows) =>
      Object.fromEntries(rows.map((r) => [r.dataset.user, [...r.querySelectorAll("td")].slice(1).map((td) => td.textContent.trim())])));
    assert.match(who.bob[0], /^Yes user\/bob\/access\.shared \/ Read$/);
    assert.match(who.bob[1], /^No/, "bob may not push to main");
    assert.match(who.bob[2], /^No/);
    assert.match(who.admin[0], /^Yes an administrator$/);
    await admin.screenshot({ path: join(artifacts, "repository-access.png"), fullPage: true });

    // As bob, with the real git: clone, refused on main, allowed on feature/*.
    gitAs("bob", dir, bobToken, "clone", "-q", url, "work");
    const work = join(dir, "work");
    writeFileSync(join(work, "bob.txt"), "from bob\n");
    gitAs("bob", work, bobToken, "add", ".");
    gitAs("bob", work, bobToken, "commit", "-qm", "Bob's change");
    const refused = tryGit("bob", work, bobToken, "push", "-q", "origin", "HEAD:main");
    assert.equal(refused.ok, false);
    assert.match(refused.out, /denied|not allowed|may not/i);
    gitAs("bob", work, bobToken, "push", "-q", "origin", "HEAD:refs/heads/feature/bob");
    // Bob sees the repository, without its Access and Settings tabs.
    await bob.goto(`${server.url}/repos/shared`);
    const tabs = await bob.$$eval("[data-testid=repo-tabs] a", (as) => as.map((a) => a.textContent));
    assert.deepEqual(tabs, ["Overview", "Code", "Commits"]);
    const forbidden = await bob.goto(`${server.url}/repos/shared/access`);
    assert.equal(forbidden.status(), 403);

    // The JSON, edited to reach past the repository, is refused and kept.
    await admin.click(`${grant} summary`);
    const widened = (await admin.inputValue(`${grant} textarea`)).replace(/"arn:nubo:codecommit:::shared"/g, '"*"');
    await admin.fill(`${grant} textarea`, widened);
    const [answer] = await Promise.all([admin.waitForNavigation(), admin.click(`${grant} button:text('Save policy')`)]);
    assert.equal(answer.status(), 422);
    assert.equal(await admin.inputValue(`${grant} textarea`), widened);
    assert.match(await admin.textContent(`${grant} .field-error[data-error-for=document]`), /this repository only/);
    assert.equal((await admin.textContent(`${grant} [data-testid=grant-level]`)).trim(), "write", "nothing changed");

    // Taken back: bob can no longer fetch.
    admin.once("dialog", (d) => d.accept());
    await Promise.all([admin.waitForLoadState("load"), admin.click(`${grant} button:text('Remove access')`)]);
    assert.match(await admin.textContent(".flash.ok"), /bob no longer has the access given here/);
    assert.equal(await admin.$(grant), null);
    assert.equal(tryGit("bob", work, bobToken, "fetch", "-q", "origin").ok, false);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  await admin.close();
  await bob.close();
});
