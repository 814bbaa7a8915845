/**
 * Following an asynchronous job (a generation, a publication) to its end by polling its status.
 * The interval starts short and grows while nothing changes, and falls back to the start as soon
 * as the status moves: a quick job is seen finishing quickly, a long one is not hammered.
 */
import { KilnAbortError, KilnTimeoutError } from "./errors.js";
import type { OpStatus } from "./types.js";

export interface WaitOptions {
  /** When to stop (default: complete, error or cancelled). */
  until?: (status: OpStatus) => boolean;
  /** First interval between polls (default 250 ms). */
  intervalMs?: number;
  /** Longest interval (default 3 s). */
  maxIntervalMs?: number;
  /** Growth of the interval while the status does not change (default 1.5). */
  factor?: number;
  /** Gives up with a `KilnTimeoutError` after this long (default: never). */
  timeoutMs?: number;
  signal?: AbortSignal;
  /** Called with every status read, the first one included. */
  onStatus?: (status: OpStatus) => void;
}

/** A job has ended: it completed, failed or was cancelled. */
export function isFinished(status: OpStatus): boolean {
  return status.complete === true || status.error === true || status.cancelled === true;
}

/** The status URI of a status, of an object with a `statusUri`, or of an image/publication URI. */
export function statusUriOf(target: string | { statusUri?: string; uri?: string }): string {
  if (typeof target === "string") return /\/status$/.test(target) ? target : `${target.replace(/\/+$/, "")}/status`;
  if (target.statusUri) return target.statusUri;
  if (target.uri) return statusUriOf(target.uri);
  throw new TypeError("waitFor needs a status URI, or an object with a statusUri or uri");
}

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(new KilnAbortError("the wait was aborted", signal.reason));
      return;
    }
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(new KilnAbortError("the wait was aborted", signal?.reason));
    };
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

function fingerprint(s: OpStatus): string {
  return `${s.percentage ?? ""}|${s.message ?? ""}|${s.bytesLoaded ?? ""}|${s.complete}|${s.error}|${s.cancelled}`;
}

/** Polls `read()` until `until` holds, with backoff; answers the last status. */
export async function pollStatus(read: () => Promise<OpStatus>, describe: string, options: WaitOptions = {}): Promise<OpStatus> {
  const until = options.until ?? isFinished;
  const first = options.intervalMs ?? 250;
  const max = Math.max(first, options.maxIntervalMs ?? 3000);
  const factor = options.factor ?? 1.5;
  const deadline = options.timeoutMs === undefined ? Infinity : Date.now() + options.timeoutMs;
  let interval = first;
  let last = "";
  for (;;) {
    if (options.signal?.aborted) throw new KilnAbortError("the wait was aborted", options.signal.reason);
    const status = await read();
    options.onStatus?.(status);
    if (until(status)) return status;
    const now = fingerprint(status);
    interval = now === last ? Math.min(max, interval * factor) : first;
    last = now;
    const left = deadline - Date.now();
    if (left <= 0) throw new KilnTimeoutError(`${describe} did not finish in ${Math.round((options.timeoutMs ?? 0) / 1000)} s (last status: ${status.percentage ?? 0}% ${status.message ?? ""})`);
    await sleep(Math.min(interval, left), options.signal);
  }
}
