// The workspace API the IDE talks to (everything below the root element's
// data-api). Cookies authenticate the requests; every non-GET request carries
// the page's CSRF token. Errors arrive as {"error": {"code", "message"}} and
// become an ApiError whose message is fit to show.

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = "ApiError";
  }
}

export interface WorkspaceInfo {
  id: string;
  name: string;
  state: string;
  repo: string | null;
  branch: string | null;
  backend: string;
  image: string | null;
  started_at: number | null;
  idle_timeout_minutes: number;
}

export type EntryKind = "file" | "dir" | "symlink";

export interface DirEntry {
  name: string;
  kind: EntryKind;
  size: number;
  mtime_ms: number;
}

export interface DirListing {
  path: string;
  entries: DirEntry[];
}

export interface FileContent {
  bytes: Uint8Array;
  /** The entity tag without quotes, or null when the server sent none. */
  etag: string | null;
}

export type Fetched = { kind: "dir"; listing: DirListing } | { kind: "file"; file: FileContent };

export interface SaveResult {
  etag: string;
  size: number;
  mtime_ms: number;
}

export interface TerminalInfo {
  id: string;
  title: string;
  alive: boolean;
  created_at: number;
}

export interface PortInfo {
  port: number;
  url: string;
}

/** Encodes a workspace-relative path for a URL: each segment on its own. */
export function encodePath(path: string): string {
  return path
    .split("/")
    .filter((part) => part.length > 0)
    .map(encodeURIComponent)
    .join("/");
}

/** The parent directory of a workspace-relative path ("" is the root). */
export function parentOf(path: string): string {
  const at = path.lastIndexOf("/");
  return at < 0 ? "" : path.slice(0, at);
}

export function baseName(path: string): string {
  return path.slice(path.lastIndexOf("/") + 1);
}

export function joinPath(dir: string, name: string): string {
  return dir === "" ? name : `${dir}/${name}`;
}

/** Whether `path` is `ancestor` or lies below it. */
export function isWithin(path: string, ancestor: string): boolean {
  return ancestor === "" || path === ancestor || path.startsWith(`${ancestor}/`);
}

/**
 * Cleans a user-typed path: no leading or trailing slashes, no empty, "." or
 * ".." segments. Returns null when nothing usable is left.
 */
export function cleanPath(input: string): string | null {
  const parts = input.split("/").map((p) => p.trim());
  if (parts.some((p) => p === "..")) return null;
  const kept = parts.filter((p) => p !== "" && p !== ".");
  return kept.length === 0 ? null : kept.join("/");
}

/** `W/"abc"` or `"abc"` → `abc`. */
export function normalizeEtag(value: string | null | undefined): string | null {
  if (!value) return null;
  let tag = value.trim();
  if (tag.startsWith("W/")) tag = tag.slice(2);
  if (tag.length >= 2 && tag.startsWith('"') && tag.endsWith('"')) tag = tag.slice(1, -1);
  return tag;
}

async function errorFrom(response: Response): Promise<ApiError> {
  let code = `http_${response.status}`;
  let message = `${response.status} ${response.statusText || "error"}`.trim();
  try {
    const body: unknown = await response.json();
    const error = (body as { error?: { code?: unknown; message?: unknown } } | null)?.error;
    if (error && typeof error.message === "string") message = error.message;
    if (error && typeof error.code === "string") code = error.code;
  } catch {
    // Not JSON (a proxy's page, an empty body): keep the status line.
  }
  return new ApiError(response.status, code, message);
}

interface RequestOptions {
  body?: BodyInit;
  json?: unknown;
  headers?: Record<string, string>;
}

export class Api {
  constructor(
    /** e.g. /api/v1/workspaces/ID, without a trailing slash. */
    readonly base: string,
    private readonly csrf: string,
  ) {}

  private async request(method: string, path: string, options: RequestOptions = {}): Promise<Response> {
    const headers: Record<string, string> = { ...options.headers };
    if (method !== "GET" && method !== "HEAD") headers["x-csrf-token"] = this.csrf;
    let body = options.body;
    if (options.json !== undefined) {
      headers["content-type"] = "application/json";
      body = JSON.stringify(options.json);
    }
    let response: Response;
    try {
      response = await fetch(`${this.base}${path}`, {
        method,
        headers,
        body,
        credentials: "same-origin",
        cache: "no-store",
      });
    } catch {
      throw new ApiError(0, "network", "Nubo could not be reached. Check the connection and try again.");
    }
    if (!response.ok) throw await errorFrom(response);
    return response;
  }

  async workspace(): Promise<WorkspaceInfo> {
    return (await this.request("GET", "")).json();
  }

  /** A directory's listing or a file's bytes, whichever the path is. */
  async fetchPath(path: string): Promise<Fetched> {
    const response = await this.request("GET", `/files/${encodePath(path)}`);
    const kind = response.headers.get("x-nubo-kind");
    if (kind === "dir") return { kind: "dir", listing: await response.json() };
    const bytes = new Uint8Array(await response.arrayBuffer());
    return { kind: "file", file: { bytes, etag: normalizeEtag(response.headers.get("etag")) } };
  }

  async listDir(path: string): Promise<DirListing> {
    const fetched = await this.fetchPath(path);
    if (fetched.kind !== "dir") throw new ApiError(400, "not_a_directory", `${path} is not a directory.`);
    return fetched.listing;
  }

  /**
   * Writes a file (parents are created). With `etag`, the server refuses
   * with 412 when the file changed on disk since that version.
   */
  async writeFile(path: string, body: BodyInit, etag: string | null = null): Promise<SaveResult> {
    const headers: Record<string, string> = { "content-type": "application/octet-stream" };
    if (etag !== null) headers["if-match"] = `"${etag}"`;
    const response = await this.request("PUT", `/files/${encodePath(path)}`, { body, headers });
    const result = (await response.json()) as SaveResult;
    return { ...result, etag: normalizeEtag(result.etag) ?? result.etag };
  }

  /** Deletes a file, or a directory with everything in it. */
  async remove(path: string): Promise<void> {
    await this.request("DELETE", `/files/${encodePath(path)}`);
  }

  async mkdir(path: string): Promise<void> {
    await this.request("POST", "/mkdir", { json: { path } });
  }

  async move(from: string, to: string): Promise<void> {
    await this.request("POST", "/move", { json: { from, to } });
  }

  downloadUrl(path: string): string {
    return `${this.base}/files/${encodePath(path)}?download=1`;
  }

  async terminals(): Promise<TerminalInfo[]> {
    return (await this.request("GET", "/terminals")).json();
  }

  async createTerminal(cols: number, rows: number): Promise<TerminalInfo> {
    return (await this.request("POST", "/terminals", { json: { cols, rows } })).json();
  }

  async deleteTerminal(id: string): Promise<void> {
    await this.request("DELETE", `/terminals/${encodeURIComponent(id)}`);
  }

  attachUrl(id: string): string {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    return `${scheme}//${location.host}${this.base}/terminals/${encodeURIComponent(id)}/attach`;
  }

  async ports(): Promise<PortInfo[]> {
    return (await this.request("GET", "/ports")).json();
  }

  eventsUrl(): string {
    return `${this.base}/events`;
  }
}
