/**
 * HTTP for the client: one keep-alive agent, authentication on every request (HTTP Basic, or
 * UForge's API-key signature), JSON in and out, bodies streamed in both directions, and errors
 * turned into the classes of `errors.ts`. Built on `node:http` rather than `fetch` so that an
 * upload can declare its `Content-Length` (the server refuses an oversized upload before reading
 * it) and so that nothing is ever buffered beyond a chunk.
 */
import http, { type IncomingMessage, type OutgoingHttpHeaders } from "node:http";
import https from "node:https";
import { Readable } from "node:stream";
import { finished, pipeline } from "node:stream/promises";
import { signUrl } from "../domain/api-key-signature.js";
import { KilnAbortError, KilnApiError, KilnConnectionError, redactUrl } from "./errors.js";
import type { HttpMethod } from "./operations.js";
import type { UForgeError } from "./types.js";

/** How the client proves who it is. */
export type Credentials =
  | { kind: "basic"; password: string }
  | {
      kind: "apiKey";
      /** The key's public part (`apiKey=` in the query). */
      publicKey: string;
      /** The key's secret: signs each URL, never sent. */
      secret: string;
    };

/** Query parameters; `undefined` ones are left out. */
export type Query = Readonly<Record<string, string | number | boolean | undefined>>;

export interface TransportOptions {
  /** The server, `http://host:8080` (or its API base, `http://host:8080/api`). */
  url: string;
  user: string;
  credentials: Credentials;
  /** Socket inactivity after which a request fails (default 120 s). */
  idleTimeoutMs?: number;
  userAgent?: string;
  /** Told of every answer (for logs and `--debug`); the URL has its secrets masked. */
  onResponse?: (event: ResponseEvent) => void;
}

/** One answer, as `onResponse` sees it. */
export interface ResponseEvent {
  /** The UForge operation called, when the request is one. */
  operationId: string | undefined;
  method: string;
  url: string;
  status: number;
  /** Milliseconds until the answer's headers. */
  ms: number;
}

export interface SendOptions {
  headers?: OutgoingHttpHeaders;
  /** A whole body, or a stream (give `contentLength` when the size is known). */
  body?: Buffer | Readable;
  contentLength?: number;
  signal?: AbortSignal;
  /** Sends no credentials (a URL that carries its own one-time key). */
  anonymous?: boolean;
  /** The operation this request performs (reported to `onResponse`). */
  operationId?: string;
}

/** Most bytes of an error body read to explain it (go-containerregistry reads 64 KiB too). */
const ERROR_BODY_LIMIT = 64 * 1024;

/** Retried once: a keep-alive socket the server closed just as it was reused. */
const RETRYABLE = new Set(["ECONNRESET", "EPIPE", "ECONNABORTED"]);

/**
 * `urlencode(base64(HMAC-SHA1(secret, text)))`, appended last as `&signature=`; the text is the
 * URL for GET and HEAD, `<METHOD> <URL>` for other methods, so that a signed URL seen by someone
 * else cannot be replayed with another method (spec/uforge/README.md).
 */
export { signUrl };

/** The API base of a server URL: `http://host:8080` and `http://host:8080/api/` both give `.../api`. */
export function apiBaseOf(url: string): URL {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new TypeError(`"${url}" is not a URL: give the server as http://host:port`);
  }
  if (u.protocol !== "http:" && u.protocol !== "https:") throw new TypeError(`"${url}" must be an http:// or https:// URL`);
  if (u.username || u.password) throw new TypeError("the server URL must not carry credentials");
  const path = u.pathname.replace(/\/+$/, "");
  u.pathname = path.endsWith("/api") ? path : `${path}/api`;
  u.search = "";
  u.hash = "";
  return u;
}

export class Transport {
  /** The API base, without a trailing slash: `http://host:8080/api`. */
  readonly apiBase: URL;
  readonly user: string;
  private readonly credentials: Credentials;
  private readonly agent: http.Agent;
  private readonly idleTimeoutMs: number;
  private readonly userAgent: string;
  private readonly onResponse: ((event: ResponseEvent) => void) | undefined;

  constructor(options: TransportOptions) {
    this.apiBase = apiBaseOf(options.url);
    this.user = options.user;
    this.credentials = options.credentials;
    this.idleTimeoutMs = options.idleTimeoutMs ?? 120_000;
    this.userAgent = options.userAgent ?? "kiln-sdk";
    this.onResponse = options.onResponse;
    const agentOptions = { keepAlive: true, maxSockets: 8 };
    this.agent = this.apiBase.protocol === "https:" ? new https.Agent(agentOptions) : new http.Agent(agentOptions);
  }

  /**
   * The URL of an API path (`/users/alice/...`) or of a URI as objects carry them
   * (`users/alice/...`, relative to the API base), with the query added.
   */
  url(pathOrUri: string, query: Query = {}): URL {
    if (/^[a-z]+:\/\//i.test(pathOrUri) || pathOrUri.startsWith("//")) throw new TypeError(`"${pathOrUri}" is not a path under the API`);
    const [rawPath, rawQuery] = pathOrUri.split("?", 2) as [string, string | undefined];
    const segments = rawPath.replace(/^\/+/, "").replace(/^api\//, "").split("/");
    // A URI from a body is trusted for its shape only: no way out of the API base.
    if (segments.some((s) => s === ".." || s === ".")) throw new TypeError(`"${pathOrUri}" is not a path under the API`);
    const u = new URL(this.apiBase.href);
    u.pathname = `${this.apiBase.pathname}/${segments.join("/")}`;
    const params = new URLSearchParams(rawQuery ?? "");
    for (const [k, v] of Object.entries(query)) if (v !== undefined) params.set(k, String(v));
    const search = params.toString();
    u.search = search ? `?${search}` : "";
    return u;
  }

  /** The URL as it is sent: with `apiKey` and `signature` last when the client signs (for this method). */
  private finalUrl(method: string, url: URL, anonymous: boolean): string {
    if (anonymous || this.credentials.kind !== "apiKey") return url.href;
    const u = new URL(url.href);
    u.searchParams.delete("apiKey");
    u.searchParams.delete("signature");
    u.searchParams.append("apiKey", this.credentials.publicKey);
    return signUrl(u.href, this.credentials.secret, method);
  }

  private authHeaders(anonymous: boolean): OutgoingHttpHeaders {
    if (anonymous || this.credentials.kind !== "basic") return {};
    return { authorization: `Basic ${Buffer.from(`${this.user}:${this.credentials.password}`, "utf8").toString("base64")}` };
  }

  /**
   * Sends a request and resolves with the response once its headers arrive, whatever the status
   * (the caller reads or discards the body). Network failures become `KilnConnectionError`, an
   * abort `KilnAbortError`.
   */
  async send(method: HttpMethod | "HEAD", url: URL, options: SendOptions = {}): Promise<IncomingMessage> {
    const retry = (method === "GET" || method === "HEAD") && !(options.body instanceof Readable);
    try {
      return await this.sendOnce(method, url, options);
    } catch (err) {
      if (retry && err instanceof KilnConnectionError && RETRYABLE.has(String((err.cause as NodeJS.ErrnoException | undefined)?.code))) {
        return this.sendOnce(method, url, options);
      }
      throw err;
    }
  }

  private sendOnce(method: HttpMethod | "HEAD", url: URL, options: SendOptions): Promise<IncomingMessage> {
    const anonymous = options.anonymous === true;
    const target = this.finalUrl(method, url, anonymous);
    const headers: OutgoingHttpHeaders = { "user-agent": this.userAgent, ...this.authHeaders(anonymous), ...options.headers };
    const body = options.body;
    if (Buffer.isBuffer(body)) headers["content-length"] = body.length;
    else if (body && options.contentLength !== undefined) headers["content-length"] = options.contentLength;
    const signal = options.signal;
    if (signal?.aborted) return Promise.reject(new KilnAbortError(undefined, signal.reason));
    const lib = url.protocol === "https:" ? https : http;
    const started = Date.now();
    return new Promise<IncomingMessage>((resolve, reject) => {
      let settled = false;
      const fail = (err: unknown): void => {
        if (settled) return;
        settled = true;
        if (signal?.aborted) reject(new KilnAbortError(undefined, signal.reason));
        else reject(err instanceof KilnApiError || err instanceof KilnAbortError ? err : new KilnConnectionError(target, err));
      };
      const req = lib.request(target, { method, headers, agent: this.agent, ...(signal ? { signal } : {}) });
      req.setTimeout(this.idleTimeoutMs, () => req.destroy(Object.assign(new Error(`no answer for ${Math.round(this.idleTimeoutMs / 1000)} s`), { code: "ETIMEDOUT" })));
      req.on("error", fail);
      req.on("response", (res) => {
        if (settled) {
          res.resume();
          return;
        }
        settled = true;
        this.onResponse?.({ operationId: options.operationId, method, url: redactUrl(target), status: res.statusCode ?? 0, ms: Date.now() - started });
        // A streamed body the server answered before reading (an early error): stop sending it.
        if (body instanceof Readable && !body.readableEnded) {
          res.once("end", () => body.destroy());
        }
        resolve(res);
      });
      if (body instanceof Readable) {
        pipeline(body, req).catch((err: unknown) => {
          // The request is destroyed with the source's error; a response already received stands.
          fail(err);
        });
      } else {
        req.end(body);
      }
    });
  }

  /** Reads an error response and throws it as a `KilnApiError`. */
  async throwApiError(method: string, url: URL, res: IncomingMessage): Promise<never> {
    const text = method === "HEAD" ? "" : await readLimited(res, ERROR_BODY_LIMIT);
    let uforgeError: UForgeError | undefined;
    if (/json/i.test(String(res.headers["content-type"] ?? "")) && text) {
      try {
        const parsed = JSON.parse(text) as unknown;
        if (parsed && typeof parsed === "object") uforgeError = parsed as UForgeError;
      } catch {
        // Not JSON after all: the text explains it.
      }
    }
    throw new KilnApiError({ status: res.statusCode ?? 0, method, url: url.href, ...(uforgeError ? { uforgeError } : {}), ...(uforgeError ? {} : { text: stripMarkup(text) }) });
  }

  /**
   * A JSON call: sends `body` as JSON, answers the parsed JSON (`undefined` for 204), throws
   * `KilnApiError` for an error status.
   */
  async json<T>(method: HttpMethod, pathOrUri: string, options: { query?: Query; body?: unknown; signal?: AbortSignal; operationId?: string } = {}): Promise<T> {
    const url = this.url(pathOrUri, options.query);
    const headers: OutgoingHttpHeaders = { accept: "application/json" };
    let body: Buffer | undefined;
    if (options.body !== undefined) {
      body = Buffer.from(JSON.stringify(options.body), "utf8");
      headers["content-type"] = "application/json";
    }
    const res = await this.send(method, url, { headers, ...(body ? { body } : {}), ...(options.signal ? { signal: options.signal } : {}), ...(options.operationId ? { operationId: options.operationId } : {}) });
    const status = res.statusCode ?? 0;
    if (status >= 400) return this.throwApiError(method, url, res);
    const text = await readAll(res);
    if (status === 204 || text.length === 0) return undefined as T;
    const type = String(res.headers["content-type"] ?? "");
    if (!/json/i.test(type)) return text as T;
    try {
      return JSON.parse(text) as T;
    } catch (err) {
      throw new KilnConnectionError(url.href, new Error(`the server sent malformed JSON: ${(err as Error).message}`));
    }
  }

  /** Closes idle connections (a command line exits at once instead of waiting on them). */
  close(): void {
    this.agent.destroy();
  }
}

async function readAll(res: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of res) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}

async function readLimited(res: IncomingMessage, limit: number): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of res) {
    const c = chunk as Buffer;
    if (size < limit) chunks.push(c.subarray(0, limit - size));
    size += c.length;
  }
  return Buffer.concat(chunks).toString("utf8");
}

/** An error page from a proxy is HTML: keep its words, not its tags. */
function stripMarkup(text: string): string {
  return text.replace(/<[^>]*>/g, " ").replace(/\s+/g, " ").trim();
}

/** Drains a response body that is not needed. */
export async function discard(res: IncomingMessage): Promise<void> {
  res.resume();
  await finished(res).catch(() => undefined);
}
