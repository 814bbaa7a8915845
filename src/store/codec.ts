/**
 * Conversions between stored values and row values, and between database errors and the error
 * catalog. Both databases go through the same functions, so a row reads the same from either.
 */
import { KilnError, isKilnError } from "../domain/errors.js";

/** A `Date` as stored: milliseconds since the epoch (exact for every `Date`). */
export function toMillis(d: Date): number {
  const ms = d.getTime();
  if (!Number.isFinite(ms)) throw new KilnError("invalidField", "invalid date");
  return ms;
}

/** A stored `bigint` (a number from SQLite, a decimal string from PostgreSQL) as a number. */
export function fromInt8(v: number | string): number {
  return typeof v === "number" ? v : Number(v);
}

export function fromMillis(v: number | string): Date {
  return new Date(fromInt8(v));
}

export function toBool(b: boolean): 0 | 1 {
  return b ? 1 : 0;
}

export function fromBool(v: boolean | number): boolean {
  return v === true || v === 1;
}

/** The driver's error code: better-sqlite3's `SQLITE_*` string or PostgreSQL's SQLSTATE. */
function dbCode(err: unknown): string | undefined {
  if (typeof err !== "object" || err === null) return undefined;
  const code = (err as { code?: unknown }).code;
  return typeof code === "string" ? code : undefined;
}

/** SQLSTATEs and socket errors that mean "the database cannot be reached now", and how to say it. */
const UNREACHABLE: Record<string, string> = {
  ECONNREFUSED: "connection refused",
  ECONNRESET: "connection reset",
  ETIMEDOUT: "connection timed out",
  EPIPE: "connection closed",
  EHOSTUNREACH: "host unreachable",
  ENETUNREACH: "network unreachable",
  ENOTFOUND: "host not found",
  EAI_AGAIN: "host name lookup failed",
  // PostgreSQL: admin_shutdown, crash_shutdown, cannot_connect_now (starting or stopping), too_many_connections.
  "57P01": "the database server is shutting down",
  "57P02": "the database server restarted after a crash",
  "57P03": "the database server is starting or stopping",
  "53300": "the database server has no free connection",
  // Connection exceptions (class 08).
  "08000": "connection lost",
  "08001": "cannot connect",
  "08003": "connection lost",
  "08006": "connection lost",
};

/** node-postgres reports a dead or timed-out connection without a code; these are its messages. */
const UNREACHABLE_MESSAGE = /Connection terminated|connection error and is not queryable|timeout exceeded when trying to connect|Query read timeout|Connection timeout/i;

/** Seconds a client is told to wait before trying again while the database is unreachable. */
export const UNAVAILABLE_RETRY_AFTER_S = 5;

/**
 * Why the database cannot be reached, in words safe to show (never its address or the driver's
 * text), or undefined when `err` is not such a failure.
 */
function unreachable(err: unknown): string | undefined {
  const code = dbCode(err);
  if (code !== undefined && UNREACHABLE[code]) return UNREACHABLE[code];
  if (code?.startsWith("08")) return "connection lost";
  // System errors (class 58): the server's own files and memory — after a crash and restart,
  // "could not open shared memory segment" on a connection that outlived it. Passing.
  if (code?.startsWith("58")) return "a system error on the database server";
  if (err instanceof AggregateError) for (const e of err.errors) if (unreachable(e)) return unreachable(e);
  if (err instanceof Error && UNREACHABLE_MESSAGE.test(err.message)) return "connection lost";
  return undefined;
}

/**
 * Maps a constraint violation to what the client did wrong, an unreachable database to `503`
 * (with `Retry-After`) and a full disk to `507`; anything else passes through unchanged. The
 * database's own message (which may quote values or name hosts) stays in `cause`.
 */
export function translateDbError(err: unknown): unknown {
  if (isKilnError(err)) return err;
  const why = unreachable(err);
  if (why !== undefined) {
    return new KilnError("unavailable", `the metadata database is unreachable (${why}); try again in a moment`, {
      cause: err,
      headers: { "Retry-After": String(UNAVAILABLE_RETRY_AFTER_S) },
    });
  }
  const code = dbCode(err);
  if (code === undefined) return err;
  if (code === "SQLITE_FULL" || code === "53100") {
    return new KilnError("insufficientStorage", "no space left on device: the metadata database cannot grow; free space in the data directory", { cause: err });
  }
  if (code === "23505" || code === "SQLITE_CONSTRAINT_UNIQUE" || code === "SQLITE_CONSTRAINT_PRIMARYKEY") {
    return new KilnError("conflict", "an object with the same unique name or key already exists", { cause: err });
  }
  if (code === "23503" || code === "SQLITE_CONSTRAINT_FOREIGNKEY") {
    return new KilnError("invalidId", "the object refers to an object that does not exist", { cause: err });
  }
  if (code === "23514" || code === "SQLITE_CONSTRAINT_CHECK" || code === "23502" || code === "SQLITE_CONSTRAINT_NOTNULL") {
    return new KilnError("invalidField", "a field has a value the store does not accept", { cause: err });
  }
  if (code === "SQLITE_BUSY" || code === "SQLITE_BUSY_SNAPSHOT" || code === "40001" || code === "40P01") {
    return new KilnError("unavailable", "the metadata database is busy; retry", { cause: err });
  }
  return err;
}

/**
 * Wraps every method of a repository so that database errors leave the store already
 * translated: callers handle `KilnError`s only, whichever database is underneath.
 */
export function translatingErrors<T extends object>(repo: T, onWrite?: () => void, onError?: (translated: unknown) => void): T {
  const wrapped = {} as Record<string, unknown>;
  for (const [name, value] of Object.entries(repo)) {
    const writes = onWrite !== undefined && !READ_METHOD.test(name);
    wrapped[name] =
      typeof value === "function"
        ? async (...args: unknown[]) => {
            try {
              return await (value as (...a: unknown[]) => Promise<unknown>).apply(repo, args);
            } catch (err) {
              const translated = translateDbError(err);
              onError?.(translated);
              throw translated;
            } finally {
              // After the write, whatever its outcome: a reader that saw the old state is then stale.
              if (writes) onWrite();
            }
          }
        : value;
  }
  return wrapped as T;
}

/** Repository methods that only read (everything else may change the database). */
const READ_METHOD = /^(get|list|peek|references|pushed)/;
