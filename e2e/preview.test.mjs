// A page served from a workspace (a cloned repository's, an npm
// package's) is opened in its owner's browser and tries what such a page
// would: read Nubo's account page (to take its CSRF token and mint an API
// token), and register a service worker over the whole origin. The preview
// lives on an origin of its own, so both fail.
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

const evil = `<!doctype html>
<title>loading</title>
<body>
<script>
(async () => {
  const nubo = new URLSearchParams(location.search).get("nubo");
  const result = [];
  try {
    const r = await fetch(nubo + "/account", { credentials: "include" });
    const text = await r.text();
    result.push(text.includes("csrf_token") ? "READ-NUBO" : "no-nubo");
  } catch (e) {
    result.push("fetch-blocked");
  }
  try {
    await navigator.serviceWorker.register("/sw.js", { scope: "/" });
    result.push("SW-REGISTERED");
  } catch (e) {
    result.push("sw-refused");
  }
  document.body.dataset.result = result.join(",");
})();
</script>
</body>`;

async function api(token, method, path, body) {
  const r = await fetch(`${server.url}/api/v1${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: r.status, json: await r.json().catch(() => null) };
}

test("a preview page cannot read Nubo's pages or take over its origin", async () => {
  const page = await browser.context.newPage();
  await signIn(page, server.url, "admin", server.adminPassword);
  const token = await seedRepository(page, server.url, "evil-site", { "site/index.html": evil, "site/sw.js": "" }, "a site");
  const created = await api(token, "POST", "/workspaces", { name: "evil", repo: "evil-site" });
  assert.equal(created.status, 201, JSON.stringify(created.json));
  const id = created.json.id;
  const port = 20000 + (process.pid % 1000);
  // Run by exec, its answer not awaited: the site stays a process of the
  // workspace's agent while the test runs.
  api(token, "POST", `/workspaces/${id}/exec`, {
    command: ["python3", "-m", "http.server", String(port), "--bind", "127.0.0.1", "--directory", "site"],
    timeout_s: 60,
  }).catch(() => {});
  let listed = false;
  for (let i = 0; i < 100 && !listed; i++) {
    const ports = await api(token, "GET", `/workspaces/${id}/ports`);
    listed = (ports.json ?? []).some((p) => p.port === port);
    if (!listed) await page.waitForTimeout(100);
  }
  assert.ok(listed, "the site listens");

  // The owner opens the preview: through Nubo, onto the preview's origin.
  await page.goto(`${server.url}/w/${id}/preview/${port}/index.html?nubo=${encodeURIComponent(server.url)}`);
  await page.waitForSelector("body[data-result]", { state: "attached", timeout: 15_000 });
  const here = new URL(page.url());
  assert.notEqual(here.origin, new URL(server.url).origin, "the preview is on Nubo's origin");
  const result = await page.getAttribute("body", "data-result");
  await page.screenshot({ path: join(artifacts, "preview-origin.png") });
  assert.ok(result.includes("fetch-blocked"), result);
  assert.ok(!result.includes("READ-NUBO") && !result.includes("SW-REGISTERED"), result);
  await page.close();
});
