/**
 * One HTTP exchange with a registry over `node:http(s)`: request bodies are streamed with an exact
 * `Content-Length` (some registries refuse chunked transfer encoding), response bodies are read
 * up to a bound, a stalled connection times out, and an `AbortSignal` tears the exchange down at
 * once. We use `node:http` rather than `fetch` for the exact `Content-Length` on a streamed body,
 * per-socket idle timeouts and byte-level progress on the request body.
 */
import { lookup as dnsLookup } from "node:dns";
import http, { type IncomingHttpHeaders, type IncomingMessage } from "node:http";
import https from "node:https";
import { isIP, type LookupFunction } from "node:net";
import tls from "node:tls";
import { Transform, type Readable, type TransformCallback } from "node:stream";
import { KilnError } from "../domain/errors.js";
import { cancelledError } from "./retry.js";
import { plainAddress, type EgressPolicy } from "./egress.js";
import { RegistryError } from "./errors.js";

/** A request body: bytes in memory, or a stream opened (again) for each try. */
export type RequestBody = Buffer | { length: number; open: () => Readable };

/** One request. */
export interface Exchange {
  method: string;
  url: URL;
  headers?: Record<string, string>;
  body?: RequestBody;
  signal?: AbortSignal;
  /** Response bytes kept; the rest of a longer body is discarded (and its connection closed). */
  maxResponseBytes: number;
  /** Called with each count of request-body bytes handed to the socket. */
  onBodyBytes?: (n: number) => void;
  /**
   * A 2xx answer's body is not read but handed over as {@link ExchangeResult.stream} (a blob read):
   * the caller consumes or destroys it. Other answers are read as usual.
   */
  streamResponse?: boolean;
}

/** What came back. */
export interface ExchangeResult {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
  /** True when the body was longer than `maxResponseBytes`. */
  truncated: boolean;
  /** The unread body of a 2xx answer to an exchange with `streamResponse`. */
  stream?: IncomingMessage;
}

/** Transport settings. */
export interface TransportOptions {
  /** The registry's name, for messages. */
  registry: string;
  /** A connection with no traffic either way for this long fails (retryably). */
  idleTimeoutMs: number;
  /** Establishing a connection (TCP and TLS) may take this long. */
  connectTimeoutMs: number;
  /** Extra trusted CA certificates (PEM) for a registry with a private CA; TLS is always verified. */
  ca?: string | Buffer;
  userAgent: string;
  /** Sockets per host; enough for the blobs uploaded in parallel plus token and HEAD requests. */
  maxSockets: number;
  /**
   * Where connections may go, checked after DNS resolution on each new connection (registries
   * users choose; see egress.ts). A guarded transport reports any failure to connect only as
   * "could not reach the registry".
   */
  egress?: EgressPolicy;
}

/** Errors of the socket layer that a new try may not meet. */
const TRANSIENT_CODES: ReadonlySet<string> = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ECONNABORTED",
  "EPIPE",
  "ETIMEDOUT",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ENETDOWN",
  "EAI_AGAIN",
  "UND_ERR_SOCKET",
]);

class Timeout extends Error {
  readonly code = "ETIMEDOUT";
}

/** Counts request-body bytes on their way to the socket. */
class ByteMeter extends Transform {
  constructor(private readonly onBytes: ((n: number) => void) | undefined) {
    super({ highWaterMark: 1 << 20 });
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.onBytes?.(chunk.length);
    cb(null, chunk);
  }
}

/** HTTP(S) with keep-alive agents per client; `close()` drops every idle socket. */
export class HttpTransport {
  private readonly httpAgent: http.Agent;
  private readonly httpsAgent: https.Agent;
  /** Requests sent (every try counts), for diagnostics and tests. */
  requests = 0;

  constructor(private readonly options: TransportOptions) {
    const common = { keepAlive: true, maxSockets: options.maxSockets, scheduling: "lifo" as const };
    this.httpAgent = new http.Agent(common);
    // An extra CA is added to Node's roots, not put in their place: a registry with a private CA
    // may still send us to a token service or storage host with a public certificate.
    this.httpsAgent = new https.Agent({ ...common, rejectUnauthorized: true, ...(options.ca ? { ca: [...tls.rootCertificates, options.ca.toString()] } : {}) });
  }

  /** Sends one request and reads its answer; rejects with a retryable {@link RegistryError} on a network failure. */
  send(ex: Exchange): Promise<ExchangeResult> {
    const { signal } = ex;
    if (signal?.aborted) return Promise.reject(cancelledError(signal));
    const isHttps = ex.url.protocol === "https:";
    const { egress } = this.options;
    const host = ex.url.hostname;
    const port = Number(ex.url.port) || (isHttps ? 443 : 80);
    if (egress && isIP(plainAddress(host))) {
      // An address in the URL: Node connects without a lookup, so it is checked here.
      try {
        egress.check(host, host, port);
      } catch (err) {
        return Promise.reject(err);
      }
    }
    const headers: Record<string, string> = { "user-agent": this.options.userAgent, ...ex.headers };
    const body = ex.body;
    if (body !== undefined) headers["content-length"] = String(body.length);
    else if (ex.method === "PUT" || ex.method === "POST" || ex.method === "PATCH") headers["content-length"] = "0";
    this.requests++;

    return new Promise<ExchangeResult>((resolve, reject) => {
      let settled = false;
      let connectTimer: NodeJS.Timeout | undefined;
      let source: Readable | undefined;
      let meter: ByteMeter | undefined;
      const stopSending = (): void => {
        if (source) {
          source.unpipe();
          source.destroy();
        }
        if (meter) {
          meter.unpipe();
          meter.destroy();
        }
      };
      const finish = (err: unknown, result?: ExchangeResult): void => {
        if (settled) return;
        settled = true;
        clearTimeout(connectTimer);
        signal?.removeEventListener("abort", onAbort);
        if (err === undefined) resolve(result!);
        else {
          stopSending();
          req.destroy();
          reject(this.translate(err, ex));
        }
      };
      const onAbort = (): void => finish(cancelledError(signal));

      const req = (isHttps ? https : http).request(ex.url, {
        method: ex.method,
        headers,
        agent: isHttps ? this.httpsAgent : this.httpAgent,
        ...(egress ? { lookup: guardedLookup(egress, port) } : {}),
      });
      signal?.addEventListener("abort", onAbort, { once: true });
      req.setTimeout(this.options.idleTimeoutMs, () => req.destroy(new Timeout(`no traffic for ${this.options.idleTimeoutMs} ms`)));
      req.on("socket", (socket) => {
        if (!socket.connecting) return;
        connectTimer = setTimeout(() => req.destroy(new Timeout(`no connection within ${this.options.connectTimeoutMs} ms`)), this.options.connectTimeoutMs);
        socket.once(isHttps ? "secureConnect" : "connect", () => clearTimeout(connectTimer));
        if (egress) {
          // The address actually connected to, whatever path led there: nothing is sent to a
          // forbidden one.
          socket.once("connect", () => {
            try {
              egress.check(host, socket.remoteAddress ?? "", port);
            } catch (err) {
              req.destroy(err as Error);
            }
          });
        }
      });
      req.on("error", (err) => finish(err));
      req.on("response", (res) => {
        // An early answer (a 401 before the whole body went out): stop sending; the socket is
        // not reused since the server did not read what it was sent.
        const bodySent = req.writableFinished;
        if (!bodySent) stopSending();
        const code = res.statusCode ?? 0;
        if (ex.streamResponse && code >= 200 && code < 300) {
          // From here the reader owns the body: a stall still times out (the socket's idle
          // timeout destroys the request, and the body fails), an abort is the reader's to make.
          finish(undefined, { status: code, headers: res.headers, body: Buffer.alloc(0), truncated: false, stream: res });
          return;
        }
        readBounded(res, ex.maxResponseBytes).then(
          ({ body: data, truncated }) => {
            if (truncated || !bodySent) req.destroy();
            finish(undefined, { status: res.statusCode ?? 0, headers: res.headers, body: data, truncated });
          },
          (err) => finish(err),
        );
      });

      if (body === undefined) req.end();
      else if (Buffer.isBuffer(body)) {
        ex.onBodyBytes?.(body.length);
        req.end(body);
      } else {
        try {
          source = body.open();
        } catch (err) {
          finish(err);
          return;
        }
        meter = new ByteMeter(ex.onBodyBytes);
        // A failing source (a corrupt blob, a read error) is our side's fault, not the registry's.
        source.on("error", (err) => finish(err instanceof KilnError ? err : new KilnError("internal", `cannot read the blob being uploaded (${errorCode(err)})`, { cause: err })));
        meter.on("error", (err) => finish(err));
        source.pipe(meter).pipe(req);
      }
    });
  }

  /** Drops idle keep-alive sockets (in-flight exchanges are not affected). */
  close(): void {
    this.httpAgent.destroy();
    this.httpsAgent.destroy();
  }

  private translate(err: unknown, ex: Exchange): unknown {
    if (err instanceof KilnError) return err;
    const code = (err as { code?: unknown }).code;
    const registry = this.options.registry;
    if (this.options.egress) {
      // A refused port, a timeout, a reset, a DNS or TLS failure: told apart, they would map
      // the networks Kiln sees for whoever chooses the URL. The cause goes to the log only.
      const transient = (typeof code === "string" && TRANSIENT_CODES.has(code)) || err instanceof Timeout;
      return new RegistryError(`could not reach the registry ${registry}`, { registry, retryable: transient, logDetail: `${ex.url.host}: ${errorCode(err)}` });
    }
    const where = ex.url.host === registry ? registry : `${registry} (${ex.url.host})`;
    if (typeof code === "string" && (code.startsWith("ERR_TLS") || /CERT|SELF_SIGNED|UNABLE_TO_VERIFY/.test(code))) {
      return new RegistryError(`the TLS certificate of ${where} cannot be verified (${code})`, { registry, retryable: false, cause: err });
    }
    if (code === "ENOTFOUND") {
      return new RegistryError(`the registry host ${where} is unknown (DNS lookup failed)`, { registry, retryable: false, cause: err });
    }
    const transient = typeof code === "string" && TRANSIENT_CODES.has(code);
    const reason = err instanceof Timeout ? err.message : typeof code === "string" ? code : err instanceof Error ? err.message : String(err);
    return new RegistryError(`cannot reach ${where}: ${reason}`, { registry, retryable: transient || err instanceof Timeout || code === undefined, cause: err });
  }
}

/** A DNS lookup whose every answer must pass `egress` before a connection uses it. */
function guardedLookup(egress: EgressPolicy, port: number): LookupFunction {
  return (hostname, options, callback) => {
    dnsLookup(hostname, options, (err, address, family) => {
      if (err) return callback(err, address, family);
      const answers = Array.isArray(address) ? address.map((a) => a.address) : [address];
      try {
        // All of them: a name with one harmless and one forbidden answer is refused outright.
        for (const a of answers) egress.check(hostname, a, port);
      } catch (refusal) {
        return callback(refusal as NodeJS.ErrnoException, address, family);
      }
      callback(null, address, family);
    });
  };
}

function errorCode(err: unknown): string {
  const code = (err as { code?: unknown }).code;
  return typeof code === "string" ? code : err instanceof Error ? err.message : String(err);
}

/** Reads at most `max` bytes of a response; drains (or drops) the rest. */
function readBounded(res: IncomingMessage, max: number): Promise<{ body: Buffer; truncated: boolean }> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let truncated = false;
    res.on("data", (chunk: Buffer) => {
      if (truncated) return;
      if (size + chunk.length > max) {
        chunks.push(chunk.subarray(0, max - size));
        size = max;
        truncated = true;
        // Nothing more is wanted from a hostile or huge body: stop reading it.
        res.destroy();
        resolve({ body: Buffer.concat(chunks), truncated });
        return;
      }
      chunks.push(chunk);
      size += chunk.length;
    });
    res.once("end", () => resolve({ body: Buffer.concat(chunks), truncated }));
    res.once("error", (err) => (truncated ? undefined : reject(err)));
    res.once("aborted", () => (truncated ? undefined : reject(Object.assign(new Error("the connection closed mid-answer"), { code: "ECONNRESET" }))));
  });
}
