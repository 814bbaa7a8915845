/**
 * Reading files from a Debian mirror: `file://` straight from disk, `http(s)://` through an
 * on-disk cache revalidated with conditional requests, with retries of transient failures.
 * What the bytes must hash to is the caller's business (the signed Release chain); this module
 * only moves them, and never lets a half-written file into the cache.
 *
 * The cache, under the directory the caller gives:
 *
 *   <cacheDir>/http/
 *   ├── <key>.body    the last body received for one URL (key: sha256 of the URL)
 *   ├── <key>.json    { url, etag, lastModified, sha256, size } of that body
 *   └── <key>.<random>.tmp   a download in flight, renamed over .body once complete
 */
import { createHash, randomBytes } from "node:crypto";
import { createReadStream, createWriteStream } from "node:fs";
import { mkdir, open, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import { STATUS_CODES, type IncomingMessage } from "node:http";
import path from "node:path";
import { Transform, type Readable, type TransformCallback } from "node:stream";
import { pipeline } from "node:stream/promises";
import { fileURLToPath } from "node:url";
import { KilnError, isKilnError } from "../domain/errors.js";
import { lazy } from "../domain/lazy.js";
import { RegistryError } from "../registry/errors.js";
import { HttpTransport } from "../registry/http.js";

/** What a body must be: its sha256 (hex) and size, from a signed Release or index. */
export interface Expected {
  sha256: string;
  size: number | undefined;
}

/** A file of the mirror, available on local disk. */
export interface LocalCopy {
  path: string;
  /** True when no byte came over the network this time (cache hit, `304`, or a `file://` mirror). */
  fromCache: boolean;
}

/** Where a {@link Mirror} caches what it fetched. */
export interface MirrorOptions {
  cacheDir: string;
}

/** One answer of a mirror: a 2xx answer's body is a stream the caller reads or {@link discard}s. */
interface Answer {
  status: number;
  statusText: string;
  header(name: string): string | undefined;
  /** The body of a 2xx answer. */
  body: IncomingMessage | undefined;
  /** Drops the unread body. */
  discard(): void;
}

/** Redirects followed for one request (as fetch does). */
const MAX_REDIRECTS = 20;

/**
 * The one HTTP transport of every mirror (keep-alive connections shared, as fetch's were),
 * over node:http: fetch's implementation costs a warm `kiln build` a tenth of a second to load.
 * Timeouts as fetch's: 10 s to connect, 300 s without traffic.
 */
const transport = lazy(() => new HttpTransport({ registry: "mirror", idleTimeoutMs: 300_000, connectTimeoutMs: 10_000, userAgent: "kiln (Debian repository client)", maxSockets: 16 }));

interface CacheMeta {
  url: string;
  etag?: string;
  lastModified?: string;
  sha256: string;
  size: number;
}

/** Bytes we accept for a file whose size no signed list gives (InRelease, Release.gpg). */
const UNKNOWN_SIZE_LIMIT = 64 * 1024 * 1024;
const ATTEMPTS = 3;
const BACKOFF_MS = [250, 750];

/** The URL without user name and password, for messages and logs. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.username || u.password) {
      u.username = "";
      u.password = "";
    }
    return u.toString();
  } catch {
    return url.replace(/\/\/[^/@]*@/, "//");
  }
}

function abortError(signal: AbortSignal | undefined): KilnError {
  return new KilnError("cancelled", "the download was cancelled", { cause: signal?.reason });
}

/** Waits, unless the signal fires first. */
function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(abortError(signal));
    const t = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(t);
      reject(abortError(signal));
    };
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/** Whether an error of a request or of reading a body is worth another attempt. */
export function isTransient(err: unknown): boolean {
  if (err instanceof RegistryError) return err.retryable;
  if (!(err instanceof Error) || isKilnError(err)) return false;
  if (err.name === "AbortError") return false;
  const code = (err as NodeJS.ErrnoException).code ?? ((err.cause as NodeJS.ErrnoException | undefined)?.code as string | undefined);
  // A connection cut mid-body fails the body with "aborted" (ECONNRESET).
  return ["ECONNRESET", "ECONNREFUSED", "ETIMEDOUT", "EPIPE", "EAI_AGAIN"].includes(code ?? "");
}

function httpError(url: string, status: number, statusText: string): KilnError {
  return new KilnError("repositoryFailed", `${redactUrl(url)}: HTTP ${status}${statusText ? ` ${statusText}` : ""}`);
}

/** Hashes and counts what passes, and stops a body that grows beyond `limit` bytes. */
class Meter extends Transform {
  readonly hash = createHash("sha256");
  bytes = 0;
  constructor(
    private readonly limit: number,
    private readonly what: string,
  ) {
    super();
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.bytes += chunk.length;
    if (this.bytes > this.limit) {
      return cb(new KilnError("integrityFailed", `${this.what} is larger than the ${this.limit} bytes expected`));
    }
    this.hash.update(chunk);
    cb(null, chunk);
  }
}

/** One mirror: its base URL (ending with `/`), how to reach it, and its cache. */
export class Mirror {
  readonly kind: "file" | "http";
  /** Base URL without credentials, for messages. */
  readonly label: string;
  private readonly base: URL;
  private readonly root: string | undefined;
  private readonly authorization: string | undefined;
  private readonly cacheDir: string;

  constructor(base: string, options: MirrorOptions) {
    const url = new URL(base.endsWith("/") ? base : `${base}/`);
    this.label = redactUrl(url.toString());
    this.cacheDir = path.join(options.cacheDir, "http");
    if (url.protocol === "file:") {
      this.kind = "file";
      this.root = fileURLToPath(url);
    } else if (url.protocol === "http:" || url.protocol === "https:") {
      this.kind = "http";
      if (url.username || url.password) {
        // Credentials travel as a header (dropped on a redirect to another origin), never in a URL we log.
        this.authorization = `Basic ${Buffer.from(`${decodeURIComponent(url.username)}:${decodeURIComponent(url.password)}`).toString("base64")}`;
        url.username = "";
        url.password = "";
      }
    } else {
      throw new KilnError("badRequest", `mirror ${this.label}: only http(s):// and file:// mirrors are supported`);
    }
    this.base = url;
  }

  /** The full URL of a path below the mirror root (credentials removed). */
  url(rel: string): string {
    // Encode each segment, but keep the characters Debian pool names use ('+', '~', ':') as
    // they are: some mirrors (S3-backed ones) do not decode an escaped '+' back.
    const encoded = rel
      .split("/")
      .map((s) => encodeURIComponent(s).replace(/%2B/g, "+").replace(/%3A/g, ":").replace(/%40/g, "@"))
      .join("/");
    return new URL(encoded, this.base).toString();
  }

  private localPath(rel: string): string {
    const full = path.resolve(this.root!, rel);
    if (full !== this.root && !full.startsWith(this.root!.endsWith(path.sep) ? this.root! : this.root! + path.sep)) {
      throw new KilnError("repositoryFailed", `refusing ${rel}: it is outside the mirror ${this.label}`);
    }
    return full;
  }

  private async request(url: string, headers: Record<string, string>, signal: AbortSignal | undefined): Promise<Answer> {
    for (let attempt = 1; ; attempt++) {
      if (signal?.aborted) throw abortError(signal);
      try {
        const res = await this.follow(url, headers, signal);
        // 5xx and 429 are the server's passing trouble; other statuses will not change on retry.
        if ((res.status >= 500 || res.status === 429) && attempt < ATTEMPTS) {
          res.discard();
          await sleep(BACKOFF_MS[attempt - 1] ?? 1000, signal);
          continue;
        }
        return res;
      } catch (err) {
        if (signal?.aborted) throw abortError(signal);
        if (attempt >= ATTEMPTS || !isTransient(err)) {
          if (isKilnError(err) && !(err instanceof RegistryError)) throw err;
          throw new KilnError("repositoryFailed", `cannot reach ${redactUrl(url)}: ${errorReason(err instanceof RegistryError ? (err.cause ?? err) : err)}`, { cause: err });
        }
        await sleep(BACKOFF_MS[attempt - 1] ?? 1000, signal);
      }
    }
  }

  /** One GET, following redirects; the credentials go only to the mirror's own origin. */
  private async follow(url: string, headers: Record<string, string>, signal: AbortSignal | undefined): Promise<Answer> {
    let at = new URL(url);
    for (let redirects = 0; ; redirects++) {
      const r = await transport().send({
        method: "GET",
        url: at,
        headers: {
          // A mirror that compresses on the fly would change the bytes the Release hashes.
          "accept-encoding": "identity",
          ...(this.authorization && at.origin === this.base.origin ? { authorization: this.authorization } : {}),
          ...headers,
        },
        ...(signal ? { signal } : {}),
        maxResponseBytes: 64 << 10,
        streamResponse: true,
      });
      const location = r.headers.location;
      if ([301, 302, 303, 307, 308].includes(r.status) && location) {
        if (redirects >= MAX_REDIRECTS) throw new KilnError("repositoryFailed", `${redactUrl(url)}: more than ${MAX_REDIRECTS} redirects`);
        const next = new URL(location, at);
        if (next.protocol !== "http:" && next.protocol !== "https:") throw new KilnError("repositoryFailed", `${redactUrl(url)} redirects to a ${next.protocol} URL`);
        at = next;
        continue;
      }
      const stream = r.stream;
      if (stream && signal) {
        // A cancelled build stops its bodies too (the transport leaves that to the reader).
        const onAbort = (): void => void stream.destroy(abortError(signal));
        signal.addEventListener("abort", onAbort, { once: true });
        stream.once("close", () => signal.removeEventListener("abort", onAbort));
      }
      return {
        status: r.status,
        statusText: STATUS_CODES[r.status] ?? "",
        header: (name) => {
          const v = r.headers[name];
          return Array.isArray(v) ? v.join(", ") : v;
        },
        body: stream,
        discard: () => stream?.destroy(),
      };
    }
  }

  private cacheKey(url: string): string {
    return createHash("sha256").update(url).digest("hex").slice(0, 40);
  }

  private async readMeta(key: string): Promise<CacheMeta | undefined> {
    try {
      const meta = JSON.parse(await readFile(path.join(this.cacheDir, `${key}.json`), "utf8")) as CacheMeta;
      await stat(path.join(this.cacheDir, `${key}.body`));
      return meta;
    } catch {
      return undefined;
    }
  }

  /** Forgets the cached copy of a file (after it failed verification), so the next get refetches it. */
  async forget(rel: string): Promise<void> {
    if (this.kind !== "http") return;
    const key = this.cacheKey(this.url(rel));
    await rm(path.join(this.cacheDir, `${key}.json`), { force: true });
    await rm(path.join(this.cacheDir, `${key}.body`), { force: true });
  }

  /**
   * Makes a file of the mirror available on disk. With `expect`, a cached copy that already has
   * that hash is used without asking the server, and a download that does not match is refused.
   * Without it, the cached copy is revalidated (`If-None-Match` / `If-Modified-Since`) and a
   * `304` reuses it.
   * @returns undefined when the file does not exist on the mirror.
   */
  async get(rel: string, options: { expect?: Expected; signal?: AbortSignal; what: string }): Promise<LocalCopy | undefined> {
    if (this.kind === "file") {
      const file = this.localPath(rel);
      try {
        const st = await stat(file);
        if (!st.isFile()) return undefined;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === "ENOENT" || (err as NodeJS.ErrnoException).code === "ENOTDIR") return undefined;
        throw new KilnError("repositoryFailed", `cannot read ${options.what} at ${file}: ${errorReason(err)}`, { cause: err });
      }
      return { path: file, fromCache: true };
    }
    const url = this.url(rel);
    const key = this.cacheKey(url);
    const body = path.join(this.cacheDir, `${key}.body`);
    const meta = await this.readMeta(key);
    const expect = options.expect;
    if (meta && expect && meta.sha256 === expect.sha256 && (expect.size === undefined || meta.size === expect.size)) {
      return { path: body, fromCache: true };
    }
    const conditional: Record<string, string> = {};
    if (meta?.etag) conditional["if-none-match"] = meta.etag;
    if (meta?.lastModified) conditional["if-modified-since"] = meta.lastModified;
    const res = await this.request(url, conditional, options.signal);
    if (res.status === 304) {
      res.discard();
      if (!meta) throw new KilnError("repositoryFailed", `${redactUrl(url)} answered 304 Not Modified to an unconditional request`);
      if (expect && meta.sha256 !== expect.sha256) {
        // The server says "unchanged" but the signed Release says otherwise: a mirror caught in
        // the middle of an update. Ask again without conditions.
        await this.forget(rel);
        return this.get(rel, options);
      }
      return { path: body, fromCache: true };
    }
    if (res.status === 404 || res.status === 410) {
      res.discard();
      return undefined;
    }
    if (res.status !== 200 || !res.body) {
      res.discard();
      throw httpError(url, res.status, res.statusText);
    }
    await mkdir(this.cacheDir, { recursive: true });
    const tmp = path.join(this.cacheDir, `${key}.${randomBytes(6).toString("hex")}.tmp`);
    const meter = new Meter(expect?.size ?? UNKNOWN_SIZE_LIMIT, `${options.what} (${redactUrl(url)})`);
    try {
      await pipeline(res.body, meter, createWriteStream(tmp, { mode: 0o644 }), ...(options.signal ? [{ signal: options.signal }] : []));
      const sha256 = meter.hash.digest("hex");
      if (expect) checkExpected(expect, sha256, meter.bytes, `${options.what} (${redactUrl(url)})`);
      await rename(tmp, body);
      const next: CacheMeta = { url: redactUrl(url), sha256, size: meter.bytes };
      const etag = res.header("etag");
      const lastModified = res.header("last-modified");
      if (etag) next.etag = etag;
      if (lastModified) next.lastModified = lastModified;
      const metaTmp = `${tmp}.json`;
      await writeFile(metaTmp, JSON.stringify(next));
      await rename(metaTmp, path.join(this.cacheDir, `${key}.json`));
      return { path: body, fromCache: false };
    } catch (err) {
      await rm(tmp, { force: true });
      if (options.signal?.aborted) throw abortError(options.signal);
      if (isKilnError(err)) throw err;
      throw new KilnError("repositoryFailed", `cannot download ${options.what} from ${redactUrl(url)}: ${errorReason(err)}`, { cause: err });
    }
  }

  /**
   * Opens a file of the mirror as a stream (a `.deb`). Transient failures before the body starts
   * are retried here; the caller retries a body cut short.
   */
  async open(rel: string, signal: AbortSignal | undefined): Promise<Readable> {
    if (this.kind === "file") {
      const file = this.localPath(rel);
      const stream = createReadStream(file, { highWaterMark: 1 << 20, ...(signal ? { signal } : {}) });
      await new Promise<void>((resolve, reject) => {
        stream.once("open", () => resolve());
        stream.once("error", (err) =>
          reject(
            (err as NodeJS.ErrnoException).code === "ENOENT"
              ? new KilnError("repositoryFailed", `${file} is not on the mirror`, { cause: err })
              : err,
          ),
        );
      });
      return stream;
    }
    const url = this.url(rel);
    const res = await this.request(url, {}, signal);
    if (res.status !== 200 || !res.body) {
      res.discard();
      throw res.status === 404 ? new KilnError("repositoryFailed", `${redactUrl(url)} is not on the mirror (HTTP 404)`) : httpError(url, res.status, res.statusText);
    }
    return res.body;
  }

  /**
   * The first `length` bytes of a file of the mirror (fewer if the file is shorter): a
   * `Range` request over HTTP, so a `.deb`'s header costs one small answer, not its download.
   * A server that ignores `Range` answers 200: its body is cut off after `length` bytes.
   * Nothing is cached (the caller keeps what it learns).
   */
  async readStart(rel: string, length: number, signal: AbortSignal | undefined): Promise<Buffer> {
    if (this.kind === "file") {
      return readFileStart(this.localPath(rel), length).catch((err: NodeJS.ErrnoException) => {
        throw new KilnError("repositoryFailed", `cannot read ${rel} of the mirror ${this.label}: ${errorReason(err)}`, { cause: err });
      });
    }
    const url = this.url(rel);
    const res = await this.request(url, { range: `bytes=0-${length - 1}` }, signal);
    if ((res.status !== 206 && res.status !== 200) || !res.body) {
      res.discard();
      throw httpError(url, res.status, res.statusText);
    }
    const chunks: Buffer[] = [];
    let got = 0;
    try {
      for await (const chunk of res.body as AsyncIterable<Buffer>) {
        chunks.push(chunk);
        got += chunk.length;
        if (got >= length) break;
      }
    } catch (err) {
      if (signal?.aborted) throw abortError(signal);
      throw new KilnError("repositoryFailed", `cannot read ${redactUrl(url)}: ${errorReason(err)}`, { cause: err });
    } finally {
      // The rest of a 200 answer (a whole .deb) is not wanted.
      res.discard();
    }
    return Buffer.concat(chunks).subarray(0, length);
  }
}

/** The first `length` bytes of a local file (fewer if it is shorter). */
export async function readFileStart(file: string, length: number): Promise<Buffer> {
  const fh = await open(file, "r");
  try {
    const buf = Buffer.alloc(length);
    const { bytesRead } = await fh.read(buf, 0, length, 0);
    return buf.subarray(0, bytesRead);
  } finally {
    await fh.close();
  }
}

/** @throws KilnError `integrityFailed` when a body's hash or size is not what the signed list says. */
export function checkExpected(expect: Expected, sha256: string, size: number, what: string): void {
  if (expect.size !== undefined && size !== expect.size) {
    throw new KilnError("integrityFailed", `${what}: size mismatch, expected ${expect.size} bytes, got ${size}`);
  }
  if (sha256 !== expect.sha256) {
    throw new KilnError("integrityFailed", `${what}: SHA256 mismatch, expected ${expect.sha256}, got ${sha256}`);
  }
}

/** A short reason for a low-level error (with the code of its cause, when it has one). */
export function errorReason(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const cause = err.cause as (Error & { code?: string }) | undefined;
  if (cause instanceof Error) return `${err.message} (${cause.code ?? cause.message})`;
  const code = (err as NodeJS.ErrnoException).code;
  return code && !err.message.includes(code) ? `${err.message} (${code})` : err.message;
}
