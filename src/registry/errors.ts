/**
 * Registry failures as Kiln reports them (after go-containerregistry's `transport/error.go`):
 * whether trying again can help, the registry's own error codes from its JSON body (read up to
 * 64 KiB, never more), and messages that name the registry and the operation but carry no
 * credential, token or query string (upload URLs hold signed state; pre-signed storage URLs hold
 * keys).
 */
import { KilnError } from "../domain/errors.js";

/** How much of an error body is read: enough for any registry's JSON, bounded against a hostile one. */
export const MAX_ERROR_BODY = 64 << 10;

/** One entry of the distribution spec's error body `{"errors": [{code, message, detail}]}`. */
export interface RegistryErrorDetail {
  code: string;
  message: string;
}

/** What a {@link RegistryError} knows besides its message. */
export interface RegistryErrorInit {
  /** The registry as named in image references (`host[:port]`). */
  registry: string;
  /** True when the same request may succeed later (connection errors, 5xx, 429). */
  retryable: boolean;
  /** The HTTP status, when the registry answered. */
  httpStatus?: number;
  details?: RegistryErrorDetail[];
  /** How long the registry asked us to wait (`Retry-After`), in milliseconds. */
  retryAfterMs?: number;
  /** True when credentials were refused: never retried. */
  authentication?: boolean;
  cause?: unknown;
  /** What happened, for the server log only (kept out of the message and the cause chain users see). */
  logDetail?: string;
}

/** A failure talking to a registry (`registryFailed`). Its message is safe to show a user. */
export class RegistryError extends KilnError {
  readonly registry: string;
  readonly retryable: boolean;
  readonly httpStatus: number | undefined;
  readonly details: readonly RegistryErrorDetail[];
  readonly retryAfterMs: number | undefined;
  readonly authentication: boolean;
  readonly logDetail: string | undefined;

  constructor(message: string, init: RegistryErrorInit) {
    super("registryFailed", message, init.cause === undefined ? undefined : { cause: init.cause });
    this.name = "RegistryError";
    this.registry = init.registry;
    this.retryable = init.retryable;
    this.httpStatus = init.httpStatus;
    this.details = init.details ?? [];
    this.retryAfterMs = init.retryAfterMs;
    this.authentication = init.authentication ?? false;
    this.logDetail = init.logDetail;
  }

  /** The registry's error codes (`BLOB_UPLOAD_INVALID`, `DENIED`, ...). */
  get codes(): string[] {
    return this.details.map((d) => d.code);
  }
}

/** True for a {@link RegistryError} worth retrying. */
export function isRetryable(err: unknown): err is RegistryError {
  return err instanceof RegistryError && err.retryable;
}

/** A status where trying the same request again later can succeed. */
export function isRetryableStatus(status: number): boolean {
  return status === 408 || status === 429 || (status >= 500 && status !== 501 && status !== 505);
}

/** Parses `{"errors":[...]}`; anything else gives no details (HTML error pages, empty bodies). */
export function parseErrorBody(body: Buffer): RegistryErrorDetail[] {
  if (body.length === 0) return [];
  try {
    const doc = JSON.parse(body.toString("utf8")) as { errors?: unknown };
    if (!Array.isArray(doc.errors)) return [];
    const out: RegistryErrorDetail[] = [];
    for (const e of doc.errors.slice(0, 8)) {
      if (typeof e !== "object" || e === null) continue;
      const { code, message } = e as { code?: unknown; message?: unknown };
      out.push({
        code: typeof code === "string" ? oneLine(code, 64) : "UNKNOWN",
        message: typeof message === "string" ? oneLine(message, 300) : "",
      });
    }
    return out;
  } catch {
    return [];
  }
}

/** Printable, single-line, bounded: registry text goes into statuses and logs. */
export function oneLine(s: string, max: number): string {
  // eslint-disable-next-line no-control-regex
  const clean = s.replace(/[\u0000-\u001f\u007f]+/g, " ").trim();
  return clean.length > max ? `${clean.slice(0, max)}…` : clean;
}

/** `METHOD /v2/path` with no query string, for messages; a URL on another host keeps only its host. */
export function describeRequest(method: string, url: URL, registryHost: string): string {
  return url.host === registryHost ? `${method} ${url.pathname}` : `${method} ${url.protocol}//${url.host}/…`;
}

/** Removes every occurrence of each secret from a text (a registry may echo what it was sent). */
export function scrub(text: string, secrets: readonly (string | undefined)[]): string {
  let out = text;
  for (const s of secrets) if (s && s.length >= 4) out = out.split(s).join("***");
  return out;
}

/** The summary of a registry's error body for a message: `CODE: message; CODE: message`. */
export function formatDetails(details: readonly RegistryErrorDetail[]): string {
  return details.map((d) => (d.message ? `${d.code}: ${d.message}` : d.code)).join("; ");
}
