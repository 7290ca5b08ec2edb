// Terminals: one xterm.js per tab, attached to a terminal that lives in the
// workspace over a WebSocket. The terminal outlives the connection: on an
// unexpected close the tab reconnects with backoff and the server replays
// the scrollback.
//
// Protocol: binary frames carry terminal bytes both ways; text frames carry
// JSON control messages (client: resize, ack, ping; server: hello, exit,
// pong, skipped). The server pauses output while more than 512 KiB are
// unacknowledged, so output is acknowledged once xterm has rendered it.

import { FitAddon } from "@xterm/addon-fit";
import { ITheme, Terminal } from "@xterm/xterm";

import { Api, ApiError, TerminalInfo } from "./api";
import { AckCounter, backoffDelay } from "./flow";
import { element, required, StatusBar } from "./ui";

const PING_MS = 20_000;
/** No pong for this long: the connection is dead even if the socket is not closed. */
const PONG_TIMEOUT_MS = 50_000;
/** Acknowledge what is left once output pauses this long. */
const ACK_IDLE_MS = 100;

type ControlMessage =
  | { type: "hello"; replayed?: number }
  | { type: "exit"; code?: number | null }
  | { type: "pong" }
  | { type: "skipped"; bytes?: number };

function cssVar(name: string, fallback: string): string {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim() || fallback;
}

// xterm's default ANSI colours suit a dark background; on the light theme
// white and yellow text would vanish, so it gets a palette of its own.
const LIGHT_ANSI: ITheme = {
  black: "#1b2333", red: "#c8372d", green: "#1f7a3f", yellow: "#8a6100",
  blue: "#2f6fed", magenta: "#8250df", cyan: "#0e7490", white: "#5b6679",
  brightBlack: "#5b6679", brightRed: "#e5534b", brightGreen: "#2a9d57", brightYellow: "#a87800",
  brightBlue: "#4c84f5", brightMagenta: "#a371f7", brightCyan: "#1590a8", brightWhite: "#1b2333",
};

/** xterm's colours from the page's theme variables. */
export function terminalTheme(): ITheme {
  const dark = getComputedStyle(document.documentElement).colorScheme.includes("dark");
  return {
    ...(dark ? {} : LIGHT_ANSI),
    background: cssVar("--ide-term-bg", "#10151d"),
    foreground: cssVar("--ide-term-fg", "#e3e8f1"),
    cursor: cssVar("--accent", "#6ea0ff"),
    cursorAccent: cssVar("--ide-term-bg", "#10151d"),
    selectionBackground: cssVar("--ide-term-selection", "#2f6fed66"),
    scrollbarSliderBackground: "rgba(128, 140, 160, 0.22)",
    scrollbarSliderHoverBackground: "rgba(128, 140, 160, 0.38)",
    scrollbarSliderActiveBackground: "rgba(128, 140, 160, 0.5)",
  };
}

const encoder = new TextEncoder();

type SessionState = "connecting" | "open" | "reconnecting" | "ended";

class TerminalSession {
  readonly term: Terminal;
  readonly fit = new FitAddon();
  readonly view: HTMLElement;
  readonly tab: HTMLElement;
  private readonly label: HTMLElement;
  private ws: WebSocket | null = null;
  /** Bumped per connection so late callbacks of an old one are ignored. */
  private generation = 0;
  private readonly acks = new AckCounter();
  private ackTimer = 0;
  private pingTimer = 0;
  private lastPong = 0;
  private attempt = 0;
  private reconnectTimer = 0;
  private disposed = false;
  state: SessionState = "connecting";

  constructor(
    public id: string,
    private title: string,
    private readonly panel: TerminalPanel,
  ) {
    this.view = element("div", { class: "terminal-view", "data-terminal-id": id });
    this.tab = element("div", { class: "terminal-tab", role: "tab", "data-terminal-id": id, "aria-selected": "false" });
    this.label = element("span", { class: "tab-label" }, title);
    const close = element("button", { type: "button", class: "tab-close", "aria-label": "Close terminal" }, "×");
    this.tab.append(this.label, close);
    this.term = new Terminal({
      fontFamily: cssVar("--mono", "monospace"),
      fontSize: 13,
      // A blinking cursor costs a frame on every echo: xterm 6 draws the
      // typed character one animation frame later while it restarts the
      // blink (about 17 ms more from key to glyph, measured with
      // e2e/bench-terminal-latency.mjs). A steady cursor, as VS Code's
      // terminal has by default.
      cursorBlink: false,
      scrollback: 5000,
      theme: terminalTheme(),
    });
    this.term.loadAddon(this.fit);
    this.term.onData((data) => this.send(encoder.encode(data)));
    this.term.onBinary((data) => this.send(Uint8Array.from(data, (c) => c.charCodeAt(0) & 0xff)));
    this.term.onResize(({ cols, rows }) => this.control({ type: "resize", cols, rows }));
    this.term.onTitleChange((text) => (this.label.textContent = text || this.title));
  }

  /** Puts xterm into its (visible) container; call once. */
  open(): void {
    this.term.open(this.view);
  }

  setId(id: string, title: string): void {
    this.id = id;
    this.title = title;
    this.view.dataset.terminalId = id;
    this.tab.dataset.terminalId = id;
    this.label.textContent = title;
  }

  fitNow(): void {
    if (this.view.offsetParent === null) return; // hidden: nothing to measure
    try {
      this.fit.fit();
    } catch {
      // xterm not rendered yet; the next resize fits it.
    }
  }

  connect(): void {
    if (this.disposed || this.state === "ended") return;
    const generation = ++this.generation;
    this.setState(this.attempt === 0 ? "connecting" : "reconnecting");
    const ws = new WebSocket(this.panel.api.attachUrl(this.id));
    ws.binaryType = "arraybuffer";
    this.ws = ws;
    ws.addEventListener("open", () => {
      if (generation !== this.generation) return;
      this.lastPong = Date.now();
      this.control({ type: "resize", cols: this.term.cols, rows: this.term.rows });
      window.clearInterval(this.pingTimer);
      this.pingTimer = window.setInterval(() => this.ping(), PING_MS);
    });
    ws.addEventListener("message", (event) => {
      if (generation !== this.generation) return;
      if (typeof event.data === "string") this.onControl(event.data);
      else this.onOutput(new Uint8Array(event.data as ArrayBuffer), generation);
    });
    ws.addEventListener("close", () => {
      if (generation !== this.generation) return;
      this.stopTimers();
      this.ws = null;
      if (!this.disposed && this.state !== "ended") void this.scheduleReconnect();
    });
  }

  private onControl(text: string): void {
    let message: ControlMessage;
    try {
      message = JSON.parse(text) as ControlMessage;
    } catch {
      return;
    }
    switch (message.type) {
      case "hello":
        // The scrollback replay follows: start from a clean screen so a
        // reconnect does not show everything twice.
        this.term.reset();
        this.acks.reset();
        this.attempt = 0;
        this.setState("open");
        break;
      case "exit":
        this.term.write(`\r\n\x1b[2m[process exited with code ${message.code ?? "?"}]\x1b[0m\r\n`);
        this.end();
        break;
      case "pong":
        this.lastPong = Date.now();
        break;
      case "skipped":
        this.term.write(`\r\n\x1b[2m[${message.bytes ?? "some"} bytes skipped]\x1b[0m\r\n`);
        break;
    }
  }

  private onOutput(bytes: Uint8Array, generation: number): void {
    this.term.write(bytes, () => {
      if (generation !== this.generation) return;
      const now = this.acks.rendered(bytes.length);
      if (now > 0) this.control({ type: "ack", bytes: now });
      window.clearTimeout(this.ackTimer);
      this.ackTimer = window.setTimeout(() => {
        const rest = this.acks.take();
        if (rest > 0 && generation === this.generation) this.control({ type: "ack", bytes: rest });
      }, ACK_IDLE_MS);
    });
  }

  private ping(): void {
    if (Date.now() - this.lastPong > PONG_TIMEOUT_MS) {
      // Half-open connection: drop it and reconnect.
      this.ws?.close();
      return;
    }
    this.control({ type: "ping" });
  }

  private async scheduleReconnect(): Promise<void> {
    this.setState("reconnecting");
    // After a couple of failures, ask whether the terminal still exists
    // rather than knocking forever on a door that is gone.
    if (this.attempt >= 2) {
      try {
        const list = await this.panel.api.terminals();
        const info = list.find((t) => t.id === this.id);
        if (!info || !info.alive) {
          this.term.write("\r\n\x1b[2m[terminal ended]\x1b[0m\r\n");
          this.end();
          return;
        }
      } catch (error) {
        if (error instanceof ApiError && error.status === 404) {
          this.end();
          return;
        }
      }
    }
    if (this.disposed) return;
    const delay = backoffDelay(this.attempt++);
    window.clearTimeout(this.reconnectTimer);
    this.reconnectTimer = window.setTimeout(() => this.connect(), delay);
  }

  private end(): void {
    this.setState("ended");
    this.stopTimers();
    const ws = this.ws;
    this.ws = null;
    this.generation++;
    ws?.close();
  }

  private setState(state: SessionState): void {
    this.state = state;
    this.tab.dataset.state = state;
    this.tab.classList.toggle("ended", state === "ended");
    if (state === "ended") this.tab.dataset.ended = "true";
    this.view.dataset.state = state;
  }

  private send(bytes: Uint8Array<ArrayBuffer>): void {
    if (this.ws?.readyState === WebSocket.OPEN) this.ws.send(bytes);
  }

  private control(message: object): void {
    if (this.ws?.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(message));
  }

  private stopTimers(): void {
    window.clearInterval(this.pingTimer);
    window.clearTimeout(this.ackTimer);
    window.clearTimeout(this.reconnectTimer);
  }

  dispose(): void {
    this.disposed = true;
    this.end();
    this.term.dispose();
    this.view.remove();
    this.tab.remove();
  }
}

export class TerminalPanel {
  private readonly sessions: TerminalSession[] = [];
  private active: TerminalSession | null = null;
  private readonly tabBar = required("#terminal-tabs");
  private readonly area = required("#terminal-area");
  private fitQueued = false;

  constructor(
    readonly api: Api,
    private readonly status: StatusBar,
  ) {
    this.tabBar.addEventListener("click", (event) => {
      const target = event.target as Element;
      const session = this.sessionAt(target);
      if (!session) return;
      if (target.closest(".tab-close")) void this.close(session);
      else this.activate(session);
    });
    new ResizeObserver(() => this.queueFit()).observe(this.area);
    // Follow the page's theme (the switch sets data-theme; "auto" follows the system).
    const retheme = () => {
      const theme = terminalTheme();
      for (const s of this.sessions) s.term.options.theme = theme;
    };
    new MutationObserver(retheme).observe(document.documentElement, { attributes: true, attributeFilter: ["data-theme"] });
    window.matchMedia("(prefers-color-scheme: dark)").addEventListener("change", retheme);
  }

  /** Opens a tab for every live terminal, or starts one when there is none. */
  async init(): Promise<void> {
    let existing: TerminalInfo[] = [];
    try {
      existing = (await this.api.terminals()).filter((t) => t.alive);
    } catch (error) {
      this.status.error(error, "Listing terminals");
    }
    existing.sort((a, b) => a.created_at - b.created_at);
    for (const info of existing) this.attach(info);
    if (existing.length === 0) await this.create();
  }

  private attach(info: TerminalInfo): TerminalSession {
    const session = this.add(info.id, info.title);
    session.connect();
    return session;
  }

  private add(id: string, title: string): TerminalSession {
    const session = new TerminalSession(id, title, this);
    this.sessions.push(session);
    this.tabBar.append(session.tab);
    this.area.append(session.view);
    this.activate(session);
    session.open();
    session.fitNow();
    return session;
  }

  /** Starts a new terminal in the workspace, sized to the panel. */
  async create(): Promise<void> {
    const session = this.add("", "terminal");
    session.tab.dataset.state = "connecting";
    try {
      const info = await this.api.createTerminal(session.term.cols, session.term.rows);
      session.setId(info.id, info.title);
      session.connect();
      this.focus();
    } catch (error) {
      this.status.error(error, "Starting a terminal");
      session.dispose();
      this.sessions.splice(this.sessions.indexOf(session), 1);
      if (this.active === session) this.activate(this.sessions[this.sessions.length - 1] ?? null);
    }
  }

  private sessionAt(target: Element): TerminalSession | undefined {
    const tab = target.closest<HTMLElement>(".terminal-tab");
    return this.sessions.find((s) => s.tab === tab);
  }

  activate(session: TerminalSession | null): void {
    this.active = session;
    for (const s of this.sessions) {
      const on = s === session;
      s.tab.setAttribute("aria-selected", String(on));
      s.view.hidden = !on;
    }
    if (session) {
      session.fitNow();
      session.term.focus();
    }
  }

  focus(): void {
    this.active?.term.focus();
  }

  /** Closes a tab and ends its terminal in the workspace. */
  async close(session: TerminalSession): Promise<void> {
    const index = this.sessions.indexOf(session);
    if (index < 0) return;
    this.sessions.splice(index, 1);
    const id = session.id;
    const live = session.state !== "ended";
    session.dispose();
    if (this.active === session) this.activate(this.sessions[Math.min(index, this.sessions.length - 1)] ?? null);
    if (live && id) {
      try {
        await this.api.deleteTerminal(id);
      } catch (error) {
        if (!(error instanceof ApiError && error.status === 404)) this.status.error(error, "Closing the terminal");
      }
    }
  }

  /** Refits the visible terminal on the next frame (panel or window resized). */
  queueFit(): void {
    if (this.fitQueued) return;
    this.fitQueued = true;
    requestAnimationFrame(() => {
      this.fitQueued = false;
      this.active?.fitNow();
    });
  }
}
