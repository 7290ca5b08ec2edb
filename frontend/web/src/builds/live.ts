// The live build page: follows a queued or running build over server-sent
// events. The page (frontend/src/builds/mod.rs) shows the log as it was when
// rendered; this replaces it with the stream, which replays the whole log
// from the start and then follows it.
//
// Events on `#build-log[data-stream]`:
//   line   data = one log line (may be empty)
//   reset  the log starts over: clear it
//   phase  {"phase","status","duration_ms"}: update the phase timeline
//   end    {"status"}: the build ended; update the badge, close the stream
//
// Hooks it sets (browser tests wait on them): data-live="true" on
// #build-log once connected (it stays; "false" only if the server refused
// the stream), data-ended="true" after `end` (set once every received line
// is rendered and #build-overview, everything above the log, is replaced
// by the server's render of the ended build), data-status kept current on #build-log and #build-status;
// [data-testid=stop-build] hidden after `end`; [data-testid=log-truncated]
// shown with data-hidden-lines=N when early lines were dropped;
// [data-action=follow-log] shown while the user has scrolled up.

import {
  durationText,
  isActive,
  isAtBottom,
  LineWindow,
  LogUpdate,
  parseEnd,
  parsePhase,
  PhaseEvent,
  statusLabel,
} from "./log_window";

class LiveLog {
  private readonly window = new LineWindow();
  /** Text nodes in the <pre>, one per chunk of the window, oldest first. */
  private nodes: Text[] = [];
  private frame = 0;
  private following = true;
  /** A new connection replays the log: its first event clears the view. */
  private replaying = true;

  constructor(
    private readonly pre: HTMLElement,
    private readonly notice: HTMLElement | null,
    private readonly follow: HTMLButtonElement | null,
  ) {
    pre.addEventListener("scroll", () => this.setFollowing(isAtBottom(pre.scrollTop, pre.scrollHeight, pre.clientHeight)), {
      passive: true,
    });
    follow?.addEventListener("click", () => {
      this.setFollowing(true);
      this.scrollToEnd();
    });
    this.scrollToEnd();
  }

  /** A (re)connection: the stream starts again from the first line. */
  connected(): void {
    this.replaying = true;
  }

  /** Before the first line of a connection: the replay replaces the view.
   *  (Only lines clear it, so a stream that sends nothing else keeps the
   *  log the page was rendered with.) */
  private beginEvent(): void {
    if (this.replaying) {
      this.replaying = false;
      this.reset();
    }
  }

  line(text: string): void {
    this.beginEvent();
    this.window.push(text);
    this.schedule();
  }

  reset(): void {
    this.replaying = false;
    this.window.reset();
    this.schedule();
  }

  /** Renders what is queued now (before `data-ended` is set). */
  flushNow(): void {
    if (this.frame) cancelAnimationFrame(this.frame);
    this.frame = 0;
    this.render();
  }

  private schedule(): void {
    if (!this.frame) this.frame = requestAnimationFrame(() => {
      this.frame = 0;
      this.render();
    });
  }

  private render(): void {
    const update = this.window.flush();
    if (update) this.apply(update);
    if (this.following) this.scrollToEnd();
  }

  private apply(update: LogUpdate): void {
    if (update.reset) {
      this.pre.textContent = "";
      this.nodes = [];
    }
    if (update.extend) {
      const last = this.nodes[this.nodes.length - 1];
      if (last) last.appendData(update.extend);
    }
    for (const node of this.nodes.splice(0, update.drop)) node.remove();
    if (update.append.length > 0) {
      const fragment = document.createDocumentFragment();
      for (const text of update.append) {
        const node = document.createTextNode(text);
        this.nodes.push(node);
        fragment.appendChild(node);
      }
      this.pre.appendChild(fragment);
    }
    if (this.notice) {
      this.notice.hidden = update.hidden === 0;
      this.notice.dataset.hiddenLines = String(update.hidden);
    }
  }

  private setFollowing(following: boolean): void {
    this.following = following;
    if (this.follow) this.follow.hidden = following;
  }

  private scrollToEnd(): void {
    this.pre.scrollTop = this.pre.scrollHeight;
  }
}

function setBuildStatus(pre: HTMLElement, status: string): void {
  pre.dataset.status = status;
  const badge = document.getElementById("build-status");
  if (badge) {
    badge.dataset.status = status;
    badge.textContent = statusLabel(status);
  }
}

/** Updates (or adds) a phase's item and moves the current-phase mark. */
function updatePhase(timeline: HTMLElement, event: PhaseEvent): void {
  let item = Array.from(timeline.querySelectorAll<HTMLLIElement>("li[data-phase]")).find(
    (li) => li.dataset.phase === event.phase,
  );
  if (!item) {
    timeline.querySelector(".timeline-empty")?.remove();
    item = document.createElement("li");
    item.className = "phase";
    item.dataset.phase = event.phase;
    for (const part of ["phase-name", "phase-status", "phase-duration"]) {
      const span = document.createElement("span");
      span.className = part;
      item.appendChild(span);
    }
    timeline.appendChild(item);
  }
  item.dataset.status = event.status;
  const text = (part: string, value: string): void => {
    const span = item?.querySelector(`.${part}`);
    if (span) span.textContent = value;
  };
  text("phase-name", event.phase);
  text("phase-status", statusLabel(event.status));
  text("phase-duration", event.status === "IN_PROGRESS" ? "" : durationText(event.duration_ms));

  if (event.status === "IN_PROGRESS") {
    setCurrentPhase(timeline, item);
  } else if (item.getAttribute("aria-current") === "step") {
    setCurrentPhase(timeline, null);
  }
}

function setCurrentPhase(timeline: HTMLElement, item: HTMLLIElement | null): void {
  for (const li of timeline.querySelectorAll("li[aria-current]")) li.removeAttribute("aria-current");
  if (item) {
    item.setAttribute("aria-current", "step");
    timeline.dataset.currentPhase = item.dataset.phase ?? "";
  } else {
    delete timeline.dataset.currentPhase;
  }
}

/** Phases a build passes while still waiting, in CodeBuild's model. */
const WAITING_PHASES = new Set(["SUBMITTED", "QUEUED"]);

/** `refreshed` runs on `#build-overview` after it was replaced (relative
 *  times, for one). */
export function setupBuildLog(refreshed: (root: HTMLElement) => void = () => {}): void {
  const pre = document.querySelector<HTMLElement>("#build-log[data-stream]");
  const stream = pre?.dataset.stream;
  if (!pre || !stream || !isActive(pre.dataset.status ?? "")) return;
  if (typeof EventSource === "undefined") return;

  const log = new LiveLog(
    pre,
    document.querySelector<HTMLElement>("[data-testid=log-truncated]"),
    document.querySelector<HTMLButtonElement>("[data-action=follow-log]"),
  );
  const timeline = document.getElementById("phase-timeline");
  const source = new EventSource(stream);

  source.addEventListener("open", () => {
    log.connected();
    pre.dataset.live = "true";
  });
  source.addEventListener("error", () => {
    // The browser reconnects by itself unless the server refused outright.
    if (source.readyState === EventSource.CLOSED && pre.dataset.ended !== "true") pre.dataset.live = "false";
  });
  source.addEventListener("line", (event: MessageEvent<string>) => log.line(event.data));
  source.addEventListener("reset", () => log.reset());
  source.addEventListener("phase", (event: MessageEvent<string>) => {
    const phase = parsePhase(event.data);
    if (!phase) return;
    if (timeline) updatePhase(timeline, phase);
    if (pre.dataset.status === "QUEUED" && !WAITING_PHASES.has(phase.phase)) {
      setBuildStatus(pre, "IN_PROGRESS");
    }
  });
  source.addEventListener("end", (event: MessageEvent<string>) => {
    source.close();
    log.flushNow();
    const status = parseEnd(event.data);
    if (status) setBuildStatus(pre, status);
    for (const form of document.querySelectorAll<HTMLElement>("[data-testid=stop-build]")) form.hidden = true;
    if (timeline) setCurrentPhase(timeline, null);
    void showFinal(refreshed).finally(() => {
      pre.dataset.ended = "true";
    });
  });
}

/** The build has ended (and is recorded): everything above the log as the
 *  server renders it now — duration, end time, commit, phases with their
 *  times, the artifacts link, reports — so the page ends exactly as a
 *  reload would show it. The log itself is already complete. */
async function showFinal(refreshed: (root: HTMLElement) => void): Promise<void> {
  const overview = document.getElementById("build-overview");
  if (!overview) return;
  try {
    const response = await fetch(window.location.pathname, { credentials: "same-origin" });
    if (!response.ok) return;
    const html = await response.text();
    const fresh = new DOMParser().parseFromString(html, "text/html").getElementById("build-overview");
    if (fresh) {
      overview.replaceChildren(...Array.from(fresh.childNodes));
      refreshed(overview);
    }
  } catch {
    // Keep what the stream showed.
  }
}
