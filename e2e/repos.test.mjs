// A user creates a repository in the browser, makes a token, and pushes to
// the clone URL the page shows with the real git client.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, writeFileSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startServer, launchBrowser, signIn, artifacts, git } from "./harness.mjs";

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

test("create a repository in the UI and push to its clone URL", async () => {
  const page = await browser.context.newPage();
  await signIn(page, server.url, "admin", server.adminPassword);

  await page.goto(`${server.url}/repos`);
  assert.match(await page.textContent("[data-testid=empty-state]"), /No repositories yet/);
  await page.fill("form[action='/repos'] input[name=name]", "web-app");
  await page.fill("form[action='/repos'] input[name=description]", "Made in the browser");
  await Promise.all([page.waitForURL(`${server.url}/repos/web-app`), page.click("form[action='/repos'] button")]);
  const cloneUrl = (await page.textContent("[data-testid=clone-url]")).trim();
  assert.equal(cloneUrl, `${server.url}/v1/repos/web-app`);
  await page.screenshot({ path: join(artifacts, "repository.png"), fullPage: true });

  await page.goto(`${server.url}/account/tokens`);
  await page.fill("input[name=description]", "git push");
  await Promise.all([page.waitForLoadState("load"), page.click("form[action='/account/tokens'] button")]);
  const token = (await page.textContent("[data-testid=new-token]")).trim();

  const dir = mkdtempSync(join(tmpdir(), "nubo-e2e-git-"));
  try {
    git(dir, token, "clone", "-q", cloneUrl, "work");
    const work = join(dir, "work");
    writeFileSync(join(work, "index.html"), "<h1>hello</h1>\n");
    git(work, token, "add", ".");
    git(work, token, "commit", "-qm", "hello from e2e");
    git(work, token, "push", "-q", "origin", "main");
    const remote = git(dir, token, "ls-remote", cloneUrl);
    assert.match(remote, /refs\/heads\/main/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }

  await page.goto(`${server.url}/repos/web-app`);
  const pushes = await page.textContent("[data-testid=pushes]");
  assert.match(pushes, /refs\/heads\/main/);
  assert.match(pushes, /admin/);
  await page.screenshot({ path: join(artifacts, "repository-pushed.png"), fullPage: true });

  // The pushed file in the code browser, highlighted by the island.
  await page.goto(`${server.url}/repos/web-app/blob/main/index.html`);
  await page.waitForSelector("[data-testid=blob][data-highlighted=yes]");
  assert.match(await page.textContent("[data-testid=blob]"), /<h1>hello<\/h1>/);
  await page.screenshot({ path: join(artifacts, "code-browser.png"), fullPage: true });

  await page.goto(`${server.url}/repos`);
  assert.ok(await page.$("tr[data-repo='web-app']"));
  await page.close();
});

test("add an SSH key in the UI and clone over SSH", async () => {
  const page = await browser.context.newPage();
  await page.goto(`${server.url}/repos/web-app`);
  const sshUrl = (await page.textContent("[data-testid=clone-url-ssh]")).trim();
  assert.match(sshUrl, /^ssh:\/\/git@127\.0\.0\.1:\d+\/v1\/repos\/web-app$/);

  const dir = mkdtempSync(join(tmpdir(), "nubo-e2e-ssh-"));
  try {
    const key = join(dir, "id_ed25519");
    execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "e2e@browser", "-f", key]);
    await page.goto(`${server.url}/account/git-credentials`);
    await page.fill("input[name=public_key]", readFileSync(`${key}.pub`, "utf8").trim());
    await Promise.all([page.waitForURL(`${server.url}/account/git-credentials`), page.click("form[action='/account/ssh-keys'] button")]);
    assert.match(await page.textContent(".flash[role=status]"), /Added SSH key SHA256:/);
    await page.screenshot({ path: join(artifacts, "git-credentials.png"), fullPage: true });

    execFileSync("git", ["clone", "-q", sshUrl, join(dir, "over-ssh")], {
      env: {
        PATH: process.env.PATH,
        HOME: dir,
        GIT_CONFIG_NOSYSTEM: "1",
        GIT_SSH_COMMAND: `ssh -i ${key} -o IdentitiesOnly=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR -o BatchMode=yes`,
      },
    });
    assert.equal(readFileSync(join(dir, "over-ssh", "index.html"), "utf8"), "<h1>hello</h1>\n");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  await page.close();
});

test("a name past the limit is refused with the rule, never cut short, and the form keeps it", async () => {
  const page = await browser.context.newPage();
  await page.goto(`${server.url}/repos`);
  const long = "r".repeat(300);
  const name = "form[action='/repos'] input[name=name]";
  await page.fill(name, long);
  await page.fill("form[action='/repos'] input[name=description]", "too long a name");
  assert.equal((await page.inputValue(name)).length, 300, "the browser did not cut the name");
  // The browser says the rule, not only "match the requested format".
  await page.waitForFunction(() => document.documentElement.dataset.islands === "ready");
  const message = await page.$eval(name, (input) => (input.checkValidity(), input.validationMessage));
  assert.match(message, /1 to 100 letters, digits/);
  // Sent anyway (as a client without validation would), the server says no with the rule.
  await page.$eval("form[action='/repos']", (form) => form.setAttribute("novalidate", ""));
  const [response] = await Promise.all([page.waitForNavigation(), page.click("form[action='/repos'] button")]);
  assert.equal(response.status(), 422);
  assert.match(await page.textContent(".field-error[data-error-for=name]"), /longer than 100 characters/);
  assert.equal(await page.inputValue(name), long);
  assert.equal(await page.inputValue("form[action='/repos'] input[name=description]"), "too long a name");
  await page.goto(`${server.url}/repos`);
  assert.equal(await page.$(`a[href^='/repos/rrrr']`), null, "no repository was made");
  await page.close();
});

test("100-character names fit the pages, and one click makes a workspace for such a repository", async () => {
  const page = await browser.context.newPage();
  const long = `${"a".repeat(90)}-long-name`;
  assert.equal(long.length, 100);
  await page.goto(`${server.url}/repos`);
  await page.fill("form[action='/repos'] input[name=name]", long);
  await Promise.all([page.waitForURL(`${server.url}/repos/${long}`), page.click("form[action='/repos'] button")]);
  const fits = async () =>
    page.evaluate(() => {
      const doc = document.scrollingElement;
      const signOut = [...document.querySelectorAll(".topbar button")].find((b) => b.textContent === "Sign out");
      const r = signOut.getBoundingClientRect();
      return { scroll: doc.scrollWidth - doc.clientWidth, signOutVisible: r.right <= window.innerWidth && r.left >= 0 };
    });
  await page.waitForFunction(() => document.documentElement.dataset.islands === "ready");
  assert.deepEqual(await fits(), { scroll: 0, signOutVisible: true });
  // The Copy button keeps to one line: as tall as the one-line Sign out button.
  const heights = await page.evaluate(() => ({
    copy: document.querySelector("[data-copy=clone-http]").getBoundingClientRect().height,
    line: [...document.querySelectorAll(".topbar button")].find((b) => b.textContent === "Sign out").getBoundingClientRect().height,
  }));
  assert.ok(heights.copy <= heights.line + 1, `the Copy button wrapped: ${JSON.stringify(heights)}`);
  await page.screenshot({ path: join(artifacts, "repo-long-name.png"), fullPage: true });
  await page.goto(`${server.url}/repos`);
  assert.deepEqual(await fits(), { scroll: 0, signOutVisible: true });
  const table = await page.evaluate(() => {
    const t = document.querySelector("table");
    const card = t.closest(".card");
    return t.getBoundingClientRect().right <= card.getBoundingClientRect().right + 0.5;
  });
  assert.ok(table, "the repository table stays inside its card");

  // One click: a workspace with a valid name derived from the repository's.
  await page.goto(`${server.url}/repos/${long}`);
  await Promise.all([
    page.waitForURL(/\/workspaces\/w[0-9a-f]+$/, { timeout: 60_000 }),
    page.click("[data-testid=open-workspace] [data-testid=create-workspace]"),
  ]);
  const title = await page.textContent("h1");
  assert.equal(title.trim(), long.slice(0, 64));
  await page.close();
});

test("a refused webhook keeps its URL and branches (never the secret), the reason next to the URL", async () => {
  const page = await browser.context.newPage();
  await page.goto(`${server.url}/repos/web-app/settings`);
  const form = "[data-testid=webhooks] form";
  await page.fill(`${form} input[name=url]`, "http://127.0.0.1:9/hook");
  await page.fill(`${form} input[name=secret]`, "a-secret-of-twenty-chars");
  await page.fill(`${form} input[name=branches]`, "main, release/*");
  const [response] = await Promise.all([page.waitForNavigation(), page.click(`${form} button[type=submit]`)]);
  assert.equal(response.status(), 422);
  assert.equal(await page.inputValue(`${form} input[name=url]`), "http://127.0.0.1:9/hook");
  assert.equal(await page.inputValue(`${form} input[name=branches]`), "main, release/*");
  assert.equal(await page.inputValue(`${form} input[name=secret]`), "");
  assert.match(await page.textContent(`${form} .field-error[data-error-for=url]`), /webhook URL: refused to connect to 127.0.0.1/i);
  await page.close();
});
