// The live batch page: polls GET /api/v1/build-batches/{id} (the session
// cookie authenticates it) while the batch runs and keeps every status on
// the page current: the batch's badge, each build's row and its node in the
// graph. The page (frontend/src/batches.rs) is complete without it.
//
// Hooks it sets (browser tests wait on them): data-live="true" on #batch
// after the first answer, data-status kept current on #batch, #batch-status
// and every [data-identifier]; once the batch has ended, the batch's part of
// the page is replaced with a fresh render (final times and durations) and
// then data-ended="true" is set on #batch.

import { statusLabel } from "./log_window";

export interface BatchBuild {
  identifier: string;
  build_id: string;
  status: string;
  reason: string | null;
}

export interface BatchSnapshot {
  status: string;
  builds: BatchBuild[];
}

/** Reads the API's answer; null when it is not a batch. */
export function parseBatch(value: unknown): BatchSnapshot | null {
  if (typeof value !== "object" || value === null) return null;
  const v = value as Record<string, unknown>;
  if (typeof v.status !== "string" || !Array.isArray(v.builds)) return null;
  const builds: BatchBuild[] = [];
  for (const b of v.builds as unknown[]) {
    if (typeof b !== "object" || b === null) return null;
    const e = b as Record<string, unknown>;
    if (typeof e.identifier !== "string" || typeof e.status !== "string") return null;
    builds.push({
      identifier: e.identifier,
      build_id: typeof e.build_id === "string" ? e.build_id : "",
      status: e.status,
      reason: typeof e.reason === "string" ? e.reason : null,
    });
  }
  return { status: v.status, builds };
}

/** Whether a batch in this status may still change. */
export function batchActive(status: string): boolean {
  return status === "IN_PROGRESS";
}

/** The next poll's delay: quick while answers come, slower after failures. */
export function pollDelay(failures: number): number {
  return Math.min(1500 * 2 ** Math.min(failures, 3), 10_000);
}

function setBadge(badge: Element | null, status: string): void {
  if (!badge || badge.getAttribute("data-status") === status) return;
  badge.setAttribute("data-status", status);
  badge.textContent = statusLabel(status);
}

function apply(root: HTMLElement, snapshot: BatchSnapshot): void {
  root.dataset.status = snapshot.status;
  setBadge(document.getElementById("batch-status"), snapshot.status);
  for (const build of snapshot.builds) {
    for (const el of root.querySelectorAll<Element>("[data-identifier]")) {
      if (el.getAttribute("data-identifier") !== build.identifier) continue;
      el.setAttribute("data-status", build.status);
      setBadge(el.querySelector(".badge.status"), build.status);
      const label = el.querySelector(".node-status");
      if (label) label.textContent = statusLabel(build.status);
      const reason = el.querySelector(".child-reason");
      if (reason) reason.textContent = build.reason ?? "";
    }
  }
}

/** The batch has ended: the page as the server renders it now (times,
 *  durations, reasons), or at least the statuses and the right buttons. */
async function ended(root: HTMLElement, refreshed: (root: HTMLElement) => void): Promise<void> {
  try {
    const response = await fetch(window.location.pathname, { credentials: "same-origin" });
    const html = response.ok ? await response.text() : "";
    const fresh = new DOMParser().parseFromString(html, "text/html").getElementById("batch");
    if (fresh) {
      root.replaceChildren(...Array.from(fresh.childNodes));
      refreshed(root);
    }
  } catch {
    // Keep the page as the polls left it.
  }
  for (const form of root.querySelectorAll<HTMLElement>("[data-testid=stop-batch]")) form.hidden = true;
  for (const link of root.querySelectorAll<HTMLElement>("[data-testid=batch-artifacts]")) link.hidden = false;
  root.dataset.ended = "true";
}

/** `refreshed` runs on the batch's part of the page after it was replaced
 *  (relative times, confirmations). */
export function setupBatchPage(refreshed: (root: HTMLElement) => void = () => {}): void {
  const root = document.getElementById("batch");
  const url = root?.dataset.poll;
  if (!root || !url) return;
  if (!batchActive(root.dataset.status ?? "")) return;
  let failures = 0;
  const poll = async (): Promise<void> => {
    try {
      const response = await fetch(url, { credentials: "same-origin", headers: { accept: "application/json" } });
      if (response.status === 401 || response.status === 403 || response.status === 404) {
        root.dataset.live = "false";
        return;
      }
      const snapshot = response.ok ? parseBatch(await response.json()) : null;
      if (!snapshot) throw new Error(`unexpected answer ${response.status}`);
      failures = 0;
      apply(root, snapshot);
      root.dataset.live = "true";
      if (!batchActive(snapshot.status)) {
        await ended(root, refreshed);
        return;
      }
    } catch {
      failures += 1;
    }
    window.setTimeout(poll, pollDelay(failures));
  };
  void poll();
}
