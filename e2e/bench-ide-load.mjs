// Benchmark (not a test): what opening the IDE costs a browser with a cold
// cache, and again with a warm one — bytes transferred for Nubo's assets
// (as sent, i.e. compressed when they are) and the time from navigation to
// an interactive IDE (#ide[data-ready=true]). Prints JSON on stdout.
//   node e2e/bench-ide-load.mjs [runs]      (NUBO_BIN picks the binary)
import { startServer, launchBrowser, signIn } from "./harness.mjs";

const runs = Number(process.argv[2] ?? 5);
const server = await startServer();
const cold = [];
const warm = [];
let bytes = null;
try {
  // One workspace, made once; every run opens it in a fresh browser profile.
  const setup = await launchBrowser();
  const page = await setup.context.newPage();
  await signIn(page, server.url, "admin", server.adminPassword);
  await page.goto(`${server.url}/workspaces`);
  await page.fill("[data-testid=create-workspace] input[name=name]", "bench");
  await Promise.all([page.waitForURL(/\/workspaces\/w[0-9a-f]+$/), page.click("[data-testid=create-workspace] button[type=submit]")]);
  const ide = page.url();
  const cookies = await setup.context.cookies();
  await setup.close();
  for (let i = 0; i < runs; i++) {
    const browser = await launchBrowser();
    await browser.context.addCookies(cookies);
    const tab = await browser.context.newPage();
    const cdp = await browser.context.newCDPSession(tab);
    await cdp.send("Network.enable");
    const sizes = new Map();
    cdp.on("Network.responseReceived", (e) => sizes.set(e.requestId, { url: e.response.url }));
    cdp.on("Network.loadingFinished", (e) => {
      const s = sizes.get(e.requestId);
      if (s) s.bytes = e.encodedDataLength;
    });
    for (const [list, label] of [[cold, "cold"], [warm, "warm"]]) {
      sizes.clear();
      const start = performance.now();
      await tab.goto(ide);
      await tab.waitForSelector("#ide[data-ready=true]");
      list.push(performance.now() - start);
      if (label === "cold" && i === 0) {
        bytes = {};
        for (const s of sizes.values()) {
          if (s.url.includes("/assets/")) bytes[new URL(s.url).pathname] = s.bytes ?? 0;
        }
        bytes.total = Object.values(bytes).reduce((a, b) => a + b, 0);
      }
    }
    await browser.close();
  }
} finally {
  server.stop();
}
const stats = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return { min_ms: +s[0].toFixed(1), median_ms: +s[Math.floor(s.length / 2)].toFixed(1), max_ms: +s[s.length - 1].toFixed(1) };
};
console.log(JSON.stringify({ runs, asset_bytes_cold: bytes, cold: stats(cold), warm: stats(warm) }, null, 2));
