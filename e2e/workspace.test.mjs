// The Cloud9 path: a user opens a workspace for a repository in the browser,
// runs git in the terminal, edits and saves a file in the editor, commits
// and pushes from the terminal, and finds the commit in the repository
// browser. A reload reattaches the terminal with its scrollback.
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

/** The visible text of the active terminal. */
async function terminalText(page) {
  return page.evaluate(() => {
    const rows = document.querySelector(".terminal-view:not([hidden]) .xterm-rows") ?? document.querySelector(".xterm-rows");
    return rows ? rows.innerText : "";
  });
}

async function waitForTerminal(page, pattern, timeout = 20_000) {
  const deadline = Date.now() + timeout;
  let text = "";
  while (Date.now() < deadline) {
    text = await terminalText(page);
    if (pattern.test(text)) return text;
    await page.waitForTimeout(100);
  }
  throw new Error(`the terminal never showed ${pattern}; it shows:\n${text}`);
}

async function typeInTerminal(page, line) {
  await page.click(".terminal-view:not([hidden]) .xterm");
  await page.keyboard.type(line);
  await page.keyboard.press("Enter");
}

test("open a workspace, use git in the terminal, edit, save, commit and push", async () => {
  const page = await browser.context.newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  await signIn(page, server.url, "admin", server.adminPassword);

  // A repository with a first commit, pushed with a token made in the UI.
  await seedRepository(page, server.url, "ide-app", { "README.md": "# IDE app\n" }, "first commit from outside");

  // Create the workspace from the workspaces page; it opens in the IDE.
  await page.goto(`${server.url}/workspaces`);
  await page.fill("[data-testid=create-workspace] input[name=name]", "dev");
  await page.selectOption("[data-testid=create-workspace] select[name=repo]", "ide-app");
  await Promise.all([page.waitForURL(/\/workspaces\/w[0-9a-f]+$/), page.click("[data-testid=create-workspace] button[type=submit]")]);
  await page.waitForSelector("#ide[data-ready=true]");
  assert.equal(await page.getAttribute("#status-branch", "data-branch"), "main");

  // git log in a terminal.
  await page.waitForSelector(".terminal-tab[data-state=open]");
  await page.waitForSelector(".xterm-rows");
  // Under the rows there is the terminal's background, not a black bar, in both themes.
  for (const theme of ["light", "dark"]) {
    await page.evaluate((t) => (document.documentElement.dataset.theme = t), theme);
    const colours = await page.evaluate(() => ({
      viewport: getComputedStyle(document.querySelector(".terminal-view .xterm-viewport")).backgroundColor,
      area: getComputedStyle(document.querySelector(".terminal-area")).backgroundColor,
    }));
    assert.ok(["rgba(0, 0, 0, 0)", colours.area].includes(colours.viewport), `${theme}: ${JSON.stringify(colours)}`);
  }
  await page.evaluate(() => delete document.documentElement.dataset.theme);
  await typeInTerminal(page, "git log --format=%s");
  await waitForTerminal(page, /first commit from outside/);

  // A folder made in the terminal shows up in the tree by itself.
  await typeInTerminal(page, "mkdir made-in-terminal");
  await page.waitForSelector("[data-tree-path='made-in-terminal']", { timeout: 10_000 });

  // Open README.md from the tree, edit, save with Ctrl+S.
  const reads = [];
  const countReads = (r) => {
    if (r.url().endsWith("/files/README.md") && r.method() === "GET") reads.push(r.url());
  };
  page.on("request", countReads);
  await page.click("[data-tree-path='README.md']");
  await page.waitForSelector(".editor-tab[data-path='README.md']");
  // One click, one read: opening a file is no change to it (reading it
  // once made the IDE read it again, without end).
  await page.waitForTimeout(1000);
  page.off("request", countReads);
  assert.equal(reads.length, 1, `README.md was read ${reads.length} times`);
  await page.click("#editor-area .cm-content");
  await page.keyboard.press("Control+End");
  await page.keyboard.type("Edited in the browser IDE.\n");
  await page.waitForSelector(".editor-tab[data-path='README.md'][data-dirty=true]");
  await page.keyboard.press("Control+s");
  await page.waitForSelector(".editor-tab[data-path='README.md'][data-dirty=false]");
  await page.waitForSelector("#status-save[data-save=saved]");
  await page.screenshot({ path: join(artifacts, "ide.png") });

  // The saved file is on disk: the terminal sees it. Commit and push.
  await typeInTerminal(page, "grep -c 'browser IDE' README.md && git commit -qam 'edit from the IDE' && git push -q origin main && echo pushed-$((20+22))");
  await waitForTerminal(page, /pushed-42/);

  // A reload reattaches the terminal, scrollback included.
  await page.reload();
  await page.waitForSelector("#ide[data-ready=true]");
  await page.waitForSelector(".terminal-tab[data-state=open]");
  await waitForTerminal(page, /pushed-42/);
  await page.screenshot({ path: join(artifacts, "ide-reloaded.png") });

  // The commit is in the repository browser.
  await page.goto(`${server.url}/repos/ide-app/commits/main`);
  assert.match(await page.textContent("main"), /edit from the IDE/);
  await page.goto(`${server.url}/repos/ide-app/blob/main/README.md`);
  assert.match(await page.textContent("[data-testid=blob]"), /Edited in the browser IDE\./);

  // The list shows it running; stopping works from there.
  await page.goto(`${server.url}/workspaces`);
  assert.equal(await page.getAttribute("tr[data-workspace=dev]", "data-state"), "running");
  await page.screenshot({ path: join(artifacts, "workspaces.png"), fullPage: true });
  await Promise.all([page.waitForURL(`${server.url}/workspaces`), page.click("tr[data-workspace=dev] form[action$='/stop'] button")]);
  assert.equal(await page.getAttribute("tr[data-workspace=dev]", "data-state"), "stopped");
  assert.deepEqual(errors, []);
  await page.close();
});

test("a refused workspace form keeps what was typed, with the reason next to the name", async () => {
  const page = await browser.context.newPage();
  await page.goto(`${server.url}/workspaces`);
  const form = "[data-testid=create-workspace]";
  await page.fill(`${form} input[name=name]`, "dev");
  await page.selectOption(`${form} select[name=repo]`, "ide-app");
  await page.fill(`${form} input[name=idle_timeout_minutes]`, "45");
  const [response] = await Promise.all([page.waitForNavigation(), page.click(`${form} button[type=submit]`)]);
  assert.equal(response.status(), 409);
  assert.match(await page.textContent(`${form} .field-error[data-error-for=name]`), /already have a workspace named "dev"/);
  assert.equal(await page.getAttribute(`${form} input[name=name]`, "aria-invalid"), "true");
  assert.equal(await page.inputValue(`${form} input[name=name]`), "dev");
  assert.equal(await page.inputValue(`${form} select[name=repo]`), "ide-app");
  assert.equal(await page.inputValue(`${form} input[name=idle_timeout_minutes]`), "45");
  await page.close();
});
