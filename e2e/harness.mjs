// Shared pieces of the browser tests: start the real nubo binary on a free
// loopback port with a fresh data dir, and launch Debian's Chromium.
import { spawn, execFileSync } from "node:child_process";
import { mkdtempSync, mkdirSync, rmSync, rmdirSync, writeFileSync, readdirSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { createInterface } from "node:readline";
import { chromium } from "playwright-core";

const here = dirname(fileURLToPath(import.meta.url));
export const artifacts = join(here, "artifacts");
mkdirSync(artifacts, { recursive: true });

const bin = process.env.NUBO_BIN ?? "/var/tmp/nubo-target/debug/nubo";

/** Workspace agents outlive their server by design; a test's must not.
 * Found by the data dir in their command line (unconfined agents) or their
 * workspace id (sandboxes, whose control groups go too). */
function killAgents(dir) {
  let ids = [];
  try {
    ids = readdirSync(join(dir, "data", "workspaces"));
  } catch {
    // No workspaces.
  }
  const needles = [dir, ...ids];
  for (const pid of readdirSync("/proc")) {
    if (!/^[0-9]+$/.test(pid)) continue;
    try {
      const cmd = readFileSync(`/proc/${pid}/cmdline`, "utf8");
      if (needles.some((n) => cmd.includes(n))) process.kill(Number(pid), "SIGKILL");
    } catch {
      // Gone already, or not ours to read.
    }
  }
  let builds = [];
  try {
    builds = readdirSync(join(dir, "data", "builds"));
  } catch {
    // No builds.
  }
  const groups = [...ids.map((id) => `ws-${id}`), ...builds.map((b) => `nubo-build-${b}`)];
  if (groups.length > 0) execFileSync("sleep", ["0.1"]);
  for (const group of groups) {
    for (const c of ["", "memory/", "pids/", "cpu/"]) {
      try {
        rmdirSync(`/sys/fs/cgroup/${c}nubo/${group}`);
      } catch {
        // Not there, or still busy for a moment.
      }
    }
  }
}

/** Starts `nubo serve`; resolves with { url, adminPassword, stop }. */
export async function startServer() {
  const dir = mkdtempSync(join(tmpdir(), "nubo-e2e-"));
  const child = spawn(bin, ["--data-dir", join(dir, "data"), "serve", "--http", "127.0.0.1:0", "--ssh", "127.0.0.1:0", "--preview-http", "127.0.0.1:0", "--cache-dir", join(dir, "cache")], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stderr = "";
  child.stderr.on("data", (d) => (stderr += d));
  const lines = createInterface({ input: child.stdout });
  let adminPassword = null;
  const url = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`nubo did not start:\n${stderr}`)), 60_000);
    child.on("exit", (code) => reject(new Error(`nubo exited with ${code}:\n${stderr}`)));
    lines.on("line", (line) => {
      const pw = line.trim().match(/^password:\s+(\S+)/);
      if (pw) adminPassword = pw[1];
      const m = line.match(/is listening on (http:\/\/\S+)/);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
  });
  return {
    url,
    adminPassword,
    stop() {
      child.kill("SIGKILL");
      killAgents(dir);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A fresh Chromium profile; resolves with { context, close }. */
export async function launchBrowser(options = {}) {
  const profile = mkdtempSync(join(tmpdir(), "nubo-chromium-"));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    headless: true,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--no-first-run",
      "--disable-quic",
    ],
    viewport: { width: 1280, height: 800 },
    ...options,
  });
  return {
    context,
    async close() {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

/** Signs in through the form and waits for the dashboard. */
export async function signIn(page, url, user, password) {
  await page.goto(`${url}/`);
  await page.waitForURL(/\/login/);
  await page.fill("input[name=username]", user);
  await page.fill("input[name=password]", password);
  await Promise.all([page.waitForURL(`${url}/`), page.click("button[type=submit]")]);
}

/** Runs the real git as `admin` with `token` as the password, isolated from the machine's config. */
export function git(cwd, token, ...args) {
  return gitAs("admin", cwd, token, ...args);
}

/** Runs the real git as `user` with `token` as the password, isolated from the machine's config. */
export function gitAs(user, cwd, token, ...args) {
  const helper = `!f() { echo username=${user}; echo password=${token}; }; f`;
  return execFileSync("git", ["-c", "credential.helper=", "-c", `credential.helper=${helper}`, "-c", "init.defaultBranch=main", ...args], {
    cwd,
    env: {
      PATH: process.env.PATH,
      HOME: cwd,
      GIT_CONFIG_NOSYSTEM: "1",
      GIT_TERMINAL_PROMPT: "0",
      GIT_AUTHOR_NAME: "E2E",
      GIT_AUTHOR_EMAIL: "e2e@example.org",
      GIT_COMMITTER_NAME: "E2E",
      GIT_COMMITTER_EMAIL: "e2e@example.org",
    },
    encoding: "utf8",
  });
}

/**
 * Through the browser: creates repository `name` and an API token, then
 * pushes one commit holding `files` ({path: text}) with the real git.
 */
export async function seedRepository(page, url, name, files, message) {
  await page.goto(`${url}/repos`);
  await page.fill("form[action='/repos'] input[name=name]", name);
  await Promise.all([page.waitForURL(`${url}/repos/${name}`), page.click("form[action='/repos'] button")]);
  await page.goto(`${url}/account/tokens`);
  await page.fill("input[name=description]", `seed ${name}`);
  await Promise.all([page.waitForLoadState("load"), page.click("form[action='/account/tokens'] button")]);
  const token = (await page.textContent("[data-testid=new-token]")).trim();
  const dir = mkdtempSync(join(tmpdir(), "nubo-e2e-seed-"));
  try {
    git(dir, token, "init", "-q", "seed");
    const seed = join(dir, "seed");
    for (const [path, text] of Object.entries(files)) {
      mkdirSync(dirname(join(seed, path)), { recursive: true });
      writeFileSync(join(seed, path), text);
    }
    git(seed, token, "add", ".");
    git(seed, token, "commit", "-qm", message);
    git(seed, token, "push", "-q", `${url}/v1/repos/${name}`, "main");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return token;
}

