/**
 * When and how long to wait before trying a registry request again: exponential backoff with
 * jitter on connection errors, 5xx and 429, `Retry-After` honoured (seconds or an HTTP date,
 * capped), a bounded number of attempts and a bounded total, every wait cancellable.
 */
import { KilnError } from "../domain/errors.js";
import { isRetryable, RegistryError } from "./errors.js";

/** How persistent the client is. */
export interface RetryPolicy {
  /** Tries in all, the first included. */
  attempts: number;
  /** The first wait; each next one doubles. */
  baseDelayMs: number;
  /** No single backoff wait is longer. */
  maxDelayMs: number;
  /** A `Retry-After` longer than this is shortened to it. */
  maxRetryAfterMs: number;
  /** No retry starts once this much time has passed since the first try. */
  maxElapsedMs: number;
}

/** 0.5 s, 1 s, 2 s, 4 s between five tries (about 7.5 s of waiting), within two minutes in all. */
export const DEFAULT_RETRY_POLICY: RetryPolicy = {
  attempts: 5,
  baseDelayMs: 500,
  maxDelayMs: 4000,
  maxRetryAfterMs: 30_000,
  maxElapsedMs: 120_000,
};

/** What a caller learns about each retry (for logs: the reason is already redacted). */
export interface RetryEvent {
  /** The try that failed (1 for the first). */
  attempt: number;
  delayMs: number;
  reason: string;
  status?: number;
}

/**
 * Parses `Retry-After`: delay-seconds or an HTTP date. Undefined when absent or unreadable.
 */
export function parseRetryAfter(value: string | undefined, now: number = Date.now()): number | undefined {
  if (value === undefined) return undefined;
  const v = value.trim();
  if (/^\d+$/.test(v)) return Number(v) * 1000;
  const t = Date.parse(v);
  if (Number.isNaN(t)) return undefined;
  return Math.max(0, t - now);
}

/** The wait before try `attempt + 1`: the registry's `Retry-After` if it gave one, else backoff with jitter. */
export function retryDelay(policy: RetryPolicy, attempt: number, retryAfterMs?: number): number {
  if (retryAfterMs !== undefined) return Math.min(retryAfterMs, policy.maxRetryAfterMs);
  const exp = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (attempt - 1));
  // "Equal jitter": at least half the step, so waits still grow, but clients that failed together
  // do not all come back in the same millisecond.
  return Math.round(exp / 2 + (Math.random() * exp) / 2);
}

/** The error a cancelled operation ends with. */
export function cancelledError(signal: AbortSignal | undefined, what = "the registry operation"): KilnError {
  return new KilnError("cancelled", `${what} was cancelled`, signal?.reason === undefined ? undefined : { cause: signal.reason });
}

/** Waits `ms`, or rejects with `cancelled` as soon as `signal` aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(cancelledError(signal));
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(cancelledError(signal));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/**
 * Runs `op` until it succeeds, fails with an error that is not retryable, or the policy is spent;
 * the last error is rethrown with the number of tries added to its message.
 */
export async function withRetry<T>(
  op: (attempt: number) => Promise<T>,
  policy: RetryPolicy,
  options: { signal?: AbortSignal; onRetry?: (e: RetryEvent) => void } = {},
): Promise<T> {
  const started = Date.now();
  for (let attempt = 1; ; attempt++) {
    if (options.signal?.aborted) throw cancelledError(options.signal);
    try {
      return await op(attempt);
    } catch (err) {
      if (options.signal?.aborted) throw cancelledError(options.signal);
      if (!isRetryable(err)) throw err;
      const delay = retryDelay(policy, attempt, err.retryAfterMs);
      if (attempt >= policy.attempts || Date.now() - started + delay > policy.maxElapsedMs) throw exhausted(err, attempt);
      options.onRetry?.({ attempt, delayMs: delay, reason: err.message, ...(err.httpStatus !== undefined ? { status: err.httpStatus } : {}) });
      await sleep(delay, options.signal);
    }
  }
}

/** The last error, marked final: a caller above must not retry it again. */
function exhausted(err: RegistryError, attempts: number): RegistryError {
  return new RegistryError(`${err.message} (gave up after ${attempts} ${attempts === 1 ? "try" : "tries"})`, {
    registry: err.registry,
    retryable: false,
    ...(err.httpStatus !== undefined ? { httpStatus: err.httpStatus } : {}),
    details: [...err.details],
    cause: err,
  });
}
