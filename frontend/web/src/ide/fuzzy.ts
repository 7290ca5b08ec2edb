// Fuzzy matching of file paths for quick open: the query's characters must
// appear in order; the best alignment wins, preferring matches at word
// starts, runs of consecutive characters and the file name over its
// directories. Pure, no DOM.

export interface FuzzyMatch {
  path: string;
  score: number;
  /** Indexes into `path` of the matched characters, ascending. */
  positions: number[];
}

const SEPARATORS = "/\\_-. ";
const CONSECUTIVE = 4;
const WORD_START = 3;
const CAMEL = 2;
const IN_NAME = 2;
const GAP = 0.5;

function charBonus(path: string, j: number, nameStart: number): number {
  let bonus = 1;
  const prev = j > 0 ? path[j - 1] : "/";
  if (SEPARATORS.includes(prev)) bonus += WORD_START;
  else if (prev === prev.toLowerCase() && path[j] !== path[j].toLowerCase()) bonus += CAMEL;
  if (j >= nameStart) bonus += IN_NAME;
  return bonus;
}

/** Scores `path` against `query`; null when the query does not match. */
export function fuzzyScore(query: string, path: string): FuzzyMatch | null {
  const q = query.replace(/\s+/g, "").toLowerCase();
  if (q.length === 0) return { path, score: 0, positions: [] };
  const p = path.toLowerCase();
  const n = q.length;
  const m = p.length;
  if (n > m) return null;
  const nameStart = path.lastIndexOf("/") + 1;
  // best[i * m + j]: best score with q[i] matched at p[j]; from: where q[i-1] sat.
  const best = new Float64Array(n * m).fill(-Infinity);
  const from = new Int32Array(n * m).fill(-1);
  for (let i = 0; i < n; i++) {
    // The best score of q[i-1] at any position < j - 1, and where.
    let runBest = -Infinity;
    let runAt = -1;
    for (let j = i; j < m; j++) {
      if (i > 0 && j >= 2) {
        const candidate = best[(i - 1) * m + j - 2];
        if (candidate > runBest) {
          runBest = candidate;
          runAt = j - 2;
        }
      }
      if (p[j] !== q[i]) continue;
      const bonus = charBonus(path, j, nameStart);
      if (i === 0) {
        best[j] = bonus - j * 0.01;
        continue;
      }
      const adjacent = best[(i - 1) * m + j - 1];
      const viaAdjacent = adjacent + CONSECUTIVE;
      const viaGap = runBest - GAP;
      if (viaAdjacent === -Infinity && viaGap === -Infinity) continue;
      if (viaAdjacent >= viaGap) {
        best[i * m + j] = viaAdjacent + bonus;
        from[i * m + j] = j - 1;
      } else {
        best[i * m + j] = viaGap + bonus;
        from[i * m + j] = runAt;
      }
    }
  }
  let end = -1;
  let score = -Infinity;
  for (let j = n - 1; j < m; j++) {
    if (best[(n - 1) * m + j] > score) {
      score = best[(n - 1) * m + j];
      end = j;
    }
  }
  if (end < 0) return null;
  const positions = new Array<number>(n);
  for (let i = n - 1, j = end; i >= 0; i--) {
    positions[i] = j;
    j = from[i * m + j];
  }
  // Shorter paths win ties.
  return { path, score: score - m * 0.02, positions };
}

/** The best `limit` matches of `query` among `paths`, best first. */
export function fuzzyFilter(query: string, paths: Iterable<string>, limit = 50): FuzzyMatch[] {
  const matches: FuzzyMatch[] = [];
  for (const path of paths) {
    const match = fuzzyScore(query, path);
    if (match) matches.push(match);
  }
  matches.sort((a, b) => b.score - a.score || a.path.localeCompare(b.path));
  return matches.slice(0, limit);
}
