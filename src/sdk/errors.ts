/**
 * What the client throws. A server that answered with an error becomes a `KilnApiError` carrying
 * the `uforgeError` it sent; a server that could not be reached, a download whose bytes do not
 * match, a wait that ran out of time and a cancelled call each have their own class, so callers
 * branch on the class (and on `status` / `code`) instead of on message text.
 */
import type { UForgeError } from "./types.js";

/** Masks the secrets a URL may carry in its query (signature, one-time download keys). */
export function redactUrl(url: string): string {
  return url.replace(/([?&](?:signature|downloadId|apiKey|password|token)=)[^&#]*/gi, "$1[redacted]");
}

/** The server answered with an error status. */
export class KilnApiError extends Error {
  override readonly name = "KilnApiError";
  /** HTTP status (400, 401, 404, 409, ...). */
  readonly status: number;
  /** The catalog code (`messageId`), e.g. `NotFound`, `Unauthorized`; `HTTP<status>` when the body had none. */
  readonly code: string;
  /** The error body as the server sent it, when it was a `uforgeError`. */
  readonly uforgeError: UForgeError | undefined;
  readonly method: string;
  /** The request URL, secrets masked. */
  readonly url: string;

  constructor(init: { status: number; method: string; url: string; uforgeError?: UForgeError; text?: string }) {
    const message = init.uforgeError?.localizedErrorMsg?.message?.trim() || init.text?.trim().slice(0, 500) || `HTTP ${init.status}`;
    super(message);
    this.status = init.status;
    this.code = init.uforgeError?.localizedErrorMsg?.messageId ?? `HTTP${init.status}`;
    this.uforgeError = init.uforgeError;
    this.method = init.method;
    this.url = redactUrl(init.url);
  }
}

/** The server could not be reached, or the connection broke before an answer. */
export class KilnConnectionError extends Error {
  override readonly name = "KilnConnectionError";
  readonly url: string;
  constructor(url: string, cause: unknown) {
    const reason = cause instanceof Error ? ((cause as NodeJS.ErrnoException).code ?? cause.message) : String(cause);
    super(`cannot reach Kiln at ${new URL(url).origin}: ${reason}`, { cause });
    this.url = redactUrl(url);
  }
}

/** Downloaded bytes do not match the checksum the server announced. */
export class KilnIntegrityError extends Error {
  override readonly name = "KilnIntegrityError";
  constructor(message: string) {
    super(message);
  }
}

/** `waitFor` gave up before the job ended. */
export class KilnTimeoutError extends Error {
  override readonly name = "KilnTimeoutError";
  constructor(message: string) {
    super(message);
  }
}

/** A call aborted through its `AbortSignal`. */
export class KilnAbortError extends Error {
  override readonly name = "KilnAbortError";
  constructor(message = "the request was aborted", cause?: unknown) {
    super(message, cause === undefined ? undefined : { cause });
  }
}
