// The terminal connection's pure rules: when to acknowledge rendered output
// and how long to wait before reconnecting. No DOM, no sockets.

/** Acknowledge once this much output is rendered (or when output pauses). */
export const ACK_BATCH = 32 * 1024;
const BACKOFF_MAX_MS = 10_000;

/**
 * Tracks rendered-but-unacknowledged output. The server pauses a terminal's
 * output while more than 512 KiB are unacknowledged, so acknowledging in
 * batches well below that keeps output flowing without a message per chunk.
 */
export class AckCounter {
  private pending = 0;

  /** Records `bytes` rendered; returns the count to acknowledge now, or 0. */
  rendered(bytes: number): number {
    this.pending += bytes;
    return this.pending >= ACK_BATCH ? this.take() : 0;
  }

  /** Everything still pending (when output pauses). */
  take(): number {
    const bytes = this.pending;
    this.pending = 0;
    return bytes;
  }

  /** A new connection starts from zero. */
  reset(): void {
    this.pending = 0;
  }
}

/** Reconnect delays: 0.5 s, 1 s, 2 s, … up to 10 s, with ±15 % jitter. */
export function backoffDelay(attempt: number, random = Math.random()): number {
  const base = Math.min(BACKOFF_MAX_MS, 500 * 2 ** Math.min(attempt, 10));
  return Math.round(base * (0.85 + 0.3 * random));
}
