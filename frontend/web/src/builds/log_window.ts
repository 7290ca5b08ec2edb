// The pure parts of the live build log: which lines the page keeps, how
// statuses and durations read, and what the server's events carry. No DOM
// here, so `npm test` covers it all.

/** The default number of log lines kept in the page. */
export const MAX_LINES = 20_000;
/** Lines per text node: big enough to keep the DOM small, small enough
 *  that dropping the oldest node keeps the window close to its cap. */
export const CHUNK_LINES = 500;

/** What to do to the rendered log, in this order. */
export interface LogUpdate {
  /** Empty the log first (a reset, or a connection replaying the log). */
  reset: boolean;
  /** Text to add to the newest rendered chunk (complete lines, or ""). */
  extend: string;
  /** How many of the oldest rendered chunks to remove. */
  drop: number;
  /** New chunks, oldest first; each is complete lines ending in "\n". */
  append: string[];
  /** Lines no longer shown since the last reset (0: nothing hidden). */
  hidden: number;
}

/**
 * The last `cap` lines (give or take a chunk) of a growing log, handed to
 * the page in batches of text chunks. Lines are queued with `push` and
 * taken with `flush`, once per animation frame; memory stays bounded even
 * when frames do not come (a background tab).
 */
export class LineWindow {
  private pending: string[] = [];
  /** Line counts of the rendered chunks, oldest first. */
  private chunks: number[] = [];
  private shown = 0;
  private hidden = 0;
  /** Pending lines already discarded for not fitting the window. */
  private discarded = 0;
  private resetPending = false;
  readonly cap: number;
  readonly chunkLines: number;

  constructor(cap = MAX_LINES, chunkLines = CHUNK_LINES) {
    this.cap = Math.max(1, cap);
    this.chunkLines = Math.max(1, Math.min(chunkLines, this.cap));
  }

  /** Queues text as lines (text with newlines counts as several). */
  push(text: string): void {
    for (const line of text.split("\n")) this.pending.push(line);
    if (this.pending.length >= 2 * this.cap) {
      const excess = this.pending.length - this.cap;
      this.pending = this.pending.slice(excess);
      this.discarded += excess;
    }
  }

  /** Forgets everything: the next flush empties the log. */
  reset(): void {
    this.pending = [];
    this.chunks = [];
    this.shown = 0;
    this.hidden = 0;
    this.discarded = 0;
    this.resetPending = true;
  }

  /** Whether a flush would change anything. */
  get dirty(): boolean {
    return this.resetPending || this.pending.length > 0;
  }

  /** Lines currently rendered. */
  get shownLines(): number {
    return this.shown;
  }

  /** Lines hidden above the window since the last reset. */
  get hiddenLines(): number {
    return this.hidden;
  }

  /** Takes the queued lines as a change to the rendered log, or null. */
  flush(): LogUpdate | null {
    if (!this.dirty) return null;
    const update: LogUpdate = { reset: this.resetPending, extend: "", drop: 0, append: [], hidden: 0 };
    this.resetPending = false;
    let lines = this.pending;
    this.pending = [];
    this.hidden += this.discarded;
    this.discarded = 0;

    if (lines.length >= this.cap) {
      // The new lines alone fill the window: everything shown goes.
      this.hidden += this.shown + (lines.length - this.cap);
      lines = lines.slice(lines.length - this.cap);
      update.drop = this.chunks.length;
      this.chunks = [];
      this.shown = 0;
    }

    let next = 0;
    const last = this.chunks.length - 1;
    if (last >= 0 && this.chunks[last] < this.chunkLines) {
      const room = Math.min(this.chunkLines - this.chunks[last], lines.length);
      if (room > 0) {
        update.extend = joinLines(lines, 0, room);
        this.chunks[last] += room;
        this.shown += room;
        next = room;
      }
    }
    // Old chunks to drop are counted before the new ones exist, so the DOM
    // can remove them first; new lines never exceed the cap on their own.
    const incoming = lines.length - next;
    while (this.chunks.length > 0 && this.shown + incoming > this.cap) {
      const gone = this.chunks.shift() as number;
      this.shown -= gone;
      this.hidden += gone;
      update.drop += 1;
    }
    for (let i = next; i < lines.length; i += this.chunkLines) {
      const end = Math.min(i + this.chunkLines, lines.length);
      update.append.push(joinLines(lines, i, end));
      this.chunks.push(end - i);
      this.shown += end - i;
    }
    update.hidden = this.hidden;
    return update;
  }
}

function joinLines(lines: string[], from: number, to: number): string {
  let text = "";
  for (let i = from; i < to; i++) text += lines[i] + "\n";
  return text;
}

/** Statuses in which a build may still change. */
export function isActive(status: string): boolean {
  return status === "QUEUED" || status === "IN_PROGRESS";
}

/** `IN_PROGRESS` → `In progress`; the same as `status_label` in frontend/src/builds/mod.rs. */
export function statusLabel(status: string): string {
  const words = status.toLowerCase().replace(/_/g, " ");
  return words.charAt(0).toUpperCase() + words.slice(1);
}

/** `<1 s`, `42 s`, `3 min 5 s`, `1 h 2 min`; the same as `duration_text` in frontend/src/builds/mod.rs. */
export function durationText(ms: number): string {
  const secs = Math.floor(Math.max(0, ms) / 1000);
  if (secs === 0) return "<1 s";
  if (secs < 60) return `${secs} s`;
  if (secs < 3600) {
    const rest = secs % 60;
    return rest === 0 ? `${Math.floor(secs / 60)} min` : `${Math.floor(secs / 60)} min ${rest} s`;
  }
  const minutes = Math.floor((secs % 3600) / 60);
  const hours = Math.floor(secs / 3600);
  return minutes === 0 ? `${hours} h` : `${hours} h ${minutes} min`;
}

/** Whether a scrolled box shows its end (within a few pixels). */
export function isAtBottom(scrollTop: number, scrollHeight: number, clientHeight: number): boolean {
  return scrollHeight - scrollTop - clientHeight <= 8;
}

/** The data of an `event: phase`. */
export interface PhaseEvent {
  phase: string;
  status: string;
  duration_ms: number;
}

/** Reads an `event: phase` payload; null when it is not one. */
export function parsePhase(data: string): PhaseEvent | null {
  const value = parseObject(data);
  if (!value || typeof value.phase !== "string" || value.phase === "" || typeof value.status !== "string") {
    return null;
  }
  const duration = typeof value.duration_ms === "number" && Number.isFinite(value.duration_ms) ? value.duration_ms : 0;
  return { phase: value.phase, status: value.status, duration_ms: duration };
}

/** Reads the final status from an `event: end` payload; null when absent. */
export function parseEnd(data: string): string | null {
  const value = parseObject(data);
  return value && typeof value.status === "string" && value.status !== "" ? value.status : null;
}

function parseObject(data: string): Record<string, unknown> | null {
  try {
    const value: unknown = JSON.parse(data);
    return typeof value === "object" && value !== null && !Array.isArray(value)
      ? (value as Record<string, unknown>)
      : null;
  } catch {
    return null;
  }
}
