/**
 * What every repository is built over: a query layer (the store's, or a transaction's) and the
 * clock that stamps `created` / `lastModified`.
 */
import type { Kysely } from "kysely";
import { KilnError } from "../../domain/errors.js";
import type { KilnDatabase } from "../schema.js";

export interface RepoContext {
  /** The store's Kysely instance, or a transaction (which is one too). */
  readonly db: Kysely<KilnDatabase>;
  readonly now: () => Date;
  /** Which database: the job queue locks rows and notifies other processes on PostgreSQL only. */
  readonly dialect?: "sqlite" | "postgres";
}

/**
 * Runs `fn` atomically: in a new transaction, or in the caller's when the repository is already
 * bound to one (Kysely has no nested transactions; none are needed, since any error aborts the
 * whole outer transaction anyway).
 */
export function atomically<T>(ctx: RepoContext, fn: (db: Kysely<KilnDatabase>) => Promise<T>): Promise<T> {
  return ctx.db.isTransaction ? fn(ctx.db) : ctx.db.transaction().execute(fn);
}

/**
 * Refuses a patch that would move an object to another owner or container: the id it is
 * addressed by must stay the one that was checked.
 */
export function keepField<T>(field: string, patched: T | undefined, current: T): void {
  if (patched !== undefined && patched !== current) throw new KilnError("invalidField", `${field} cannot be changed`);
}
