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

/**
 * Maps a constraint violation to what the client did wrong; anything else passes through
 * unchanged. The database's own message (which may quote values) stays in `cause`.
 */
export function translateDbError(err: unknown): unknown {
  if (isKilnError(err)) return err;
  const code = dbCode(err);
  if (code === undefined) return err;
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
export function translatingErrors<T extends object>(repo: T, onWrite?: () => void): T {
  const wrapped = {} as Record<string, unknown>;
  for (const [name, value] of Object.entries(repo)) {
    const writes = onWrite !== undefined && !READ_METHOD.test(name);
    wrapped[name] =
      typeof value === "function"
        ? async (...args: unknown[]) => {
            try {
              return await (value as (...a: unknown[]) => Promise<unknown>).apply(repo, args);
            } catch (err) {
              throw translateDbError(err);
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
const READ_METHOD = /^(get|list|peek|referenced|pushed)/;
