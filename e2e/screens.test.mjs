// Every main page, in light and dark, kept as a screenshot (e2e/artifacts/
// screens/) for people to look at, and checked for what a user would see
// at once: no horizontal scroll at 1280 px with 100-character names, and
// no failed request.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { startServer, launchBrowser, signIn, artifacts, seedRepository } from "./harness.mjs";

let server;
let browser;
const screens = join(artifacts, "screens");
mkdirSync(screens, { recursive: true });

before(async () => {
  server = await startServer();
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  server?.stop();
});

test("the main pages in light and dark, without horizontal scroll", async () => {
  const page = await browser.context.newPage();
  const failed = [];
  page.on("response", (r) => {
    if (r.url().startsWith(server.url) && r.status() >= 400) failed.push(`${r.status()} ${r.url()}`);
  });
  await signIn(page, server.url, "admin", server.adminPassword);
  const long = `${"n".repeat(88)}-hundred-chr`;
  assert.equal(long.length, 100);
  await seedRepository(page, server.url, long, {
    "README.md": `# ${long}\n\nA repository with a long name.\n`,
    [`src/${"deep".repeat(10)}/file.txt`]: "x\n",
  }, `a first commit whose summary is long too: ${"words ".repeat(15)}`);
  const pages = {
    dashboard: "/",
    repositories: "/repos",
    repository: `/repos/${long}`,
    tree: `/repos/${long}/tree/main/src`,
    commits: `/repos/${long}/commits/main`,
    "repository-access": `/repos/${long}/access`,
    "repository-settings": `/repos/${long}/settings`,
    workspaces: "/workspaces",
    builds: "/projects",
    account: "/account",
    tokens: "/account/tokens",
    "git-credentials": "/account/git-credentials",
    users: "/admin/users",
    audit: "/admin/audit",
    pipelines: "/pipelines",
    deployments: "/deployments",
  };
  const overflowing = [];
  for (const theme of ["light", "dark"]) {
    await page.evaluate((t) => localStorage.setItem("nubo.theme", t), theme);
    for (const [name, path] of Object.entries(pages)) {
      await page.goto(`${server.url}${path}`);
      await page.waitForFunction(() => document.documentElement.dataset.islands === "ready");
      assert.equal(await page.getAttribute("html", "data-theme"), theme, `${name} in ${theme}`);
      const scroll = await page.evaluate(() => document.scrollingElement.scrollWidth - document.scrollingElement.clientWidth);
      if (scroll > 0) overflowing.push(`${name} (${theme}): ${scroll}px`);
      await page.screenshot({ path: join(screens, `${name}-${theme}.png`), fullPage: true });
    }
  }
  assert.deepEqual(overflowing, [], "pages wider than the window");
  assert.deepEqual(failed, []);
  await page.close();
});
