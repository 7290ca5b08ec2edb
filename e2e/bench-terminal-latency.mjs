// Benchmark (not a test): key → glyph latency in the IDE terminal, as a
// person typing feels it. In the page, a capturing keydown listener stamps
// each key (performance.now()); a MutationObserver on xterm's rows notes
// when the echoed character is in the DOM xterm paints from (xterm writes
// its rows inside an animation frame, so the paint follows that frame).
// Keys are pressed one at a time, `gap` ms apart, at the shell prompt.
// Prints JSON on stdout: p50/p90/p99/max over `keys` keys, and where the
// time goes (keydown → WebSocket send → first message back → glyph).
//   node e2e/bench-terminal-latency.mjs [keys] [gap_ms]   (NUBO_BIN picks the binary)
import { startServer, launchBrowser, signIn } from "./harness.mjs";

const keys = Number(process.argv[2] ?? 200);
const gap = Number(process.argv[3] ?? 40);
const server = await startServer();
let result;
try {
  const browser = await launchBrowser();
  const page = await browser.context.newPage();
  // Before any page script: stamp WebSocket sends and receives of the terminal.
  await page.addInitScript(() => {
    window.__wsTimes = { sent: [], received: [] };
    const send = WebSocket.prototype.send;
    WebSocket.prototype.send = function (data) {
      if (typeof data !== "string") window.__wsTimes.sent.push(performance.now());
      if (!this.__stamped) {
        this.__stamped = true;
        this.addEventListener("message", (e) => {
          if (typeof e.data !== "string") window.__wsTimes.received.push(performance.now());
        });
      }
      return send.call(this, data);
    };
  });
  await signIn(page, server.url, "admin", server.adminPassword);
  await page.goto(`${server.url}/workspaces`);
  await page.fill("[data-testid=create-workspace] input[name=name]", "latency");
  await Promise.all([page.waitForURL(/\/workspaces\/w[0-9a-f]+$/, { timeout: 120_000 }), page.click("[data-testid=create-workspace] button[type=submit]")]);
  await page.waitForSelector("#ide[data-ready=true]");
  await page.waitForSelector(".terminal-tab[data-state=open]");
  await page.waitForFunction(() => /[$#]\s*$/m.test(document.querySelector(".terminal-view:not([hidden]) .xterm-rows")?.innerText ?? ""), null, { timeout: 30_000 });
  await page.click(".terminal-view:not([hidden]) .xterm");
  await page.waitForTimeout(500);
  await page.evaluate(() => {
    const rows = document.querySelector(".terminal-view:not([hidden]) .xterm-rows");
    const count = () => (rows.textContent.match(/q/g) ?? []).length;
    window.__lat = { pending: [], done: [], keys: [], glyphs: [], seen: count() };
    document.addEventListener("keydown", (e) => {
      if (e.key === "q") {
        window.__lat.pending.push(performance.now());
        window.__lat.keys.push(performance.now());
      }
    }, true);
    new MutationObserver(() => {
      const now = performance.now();
      const c = count();
      while (c > window.__lat.seen && window.__lat.pending.length) {
        window.__lat.seen++;
        window.__lat.done.push(now - window.__lat.pending.shift());
        window.__lat.glyphs.push(now);
      }
      // A cleared line (Control+U) starts the count again.
      if (c < window.__lat.seen) window.__lat.seen = c;
    }).observe(rows, { subtree: true, childList: true, characterData: true });
    window.__wsTimes.sent.length = 0;
    window.__wsTimes.received.length = 0;
  });
  const starts = [];
  for (let i = 0; i < keys; i++) {
    // A fresh line every 60 keys, so the row never wraps or scrolls.
    if (i > 0 && i % 60 === 0) {
      await page.keyboard.press("Control+U");
      await page.waitForTimeout(gap * 3);
    }
    starts.push(await page.evaluate(() => performance.now()));
    await page.keyboard.press("q");
    await page.waitForTimeout(gap);
  }
  await page.waitForFunction((n) => window.__lat.done.length >= n, keys, { timeout: 30_000 });
  const { done, keys: keyTimes, glyphs } = await page.evaluate(() => window.__lat);
  const ws = await page.evaluate(() => window.__wsTimes);
  await page.keyboard.press("Control+U");
  await browser.close();
  const pct = (xs, p) => {
    const s = [...xs].sort((a, b) => a - b);
    return +s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))].toFixed(1);
  };
  // Where the time goes, per key: keydown → its WebSocket send → the first
  // binary message back → the glyph in the DOM.
  const after = (list, t) => list.find((x) => x >= t);
  const parts = { key_to_send: [], send_to_echo: [], echo_to_glyph: [] };
  keyTimes.forEach((k, i) => {
    const sent = after(ws.sent, k);
    const back = sent === undefined ? undefined : after(ws.received, sent);
    if (back === undefined || glyphs[i] === undefined || back > glyphs[i]) return;
    parts.key_to_send.push(sent - k);
    parts.send_to_echo.push(back - sent);
    parts.echo_to_glyph.push(glyphs[i] - back);
  });
  const summary = (xs) => (xs.length ? { p50_ms: pct(xs, 50), p99_ms: pct(xs, 99) } : null);
  result = {
    keys,
    gap_ms: gap,
    key_to_glyph: { p50_ms: pct(done, 50), p90_ms: pct(done, 90), p99_ms: pct(done, 99), max_ms: pct(done, 100) },
    matched: parts.key_to_send.length,
    key_to_send: summary(parts.key_to_send),
    send_to_echo: summary(parts.send_to_echo),
    echo_to_glyph: summary(parts.echo_to_glyph),
  };
} finally {
  server.stop();
}
console.log(JSON.stringify(result, null, 2));
