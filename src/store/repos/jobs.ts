/**
 * Jobs: the durable record of asynchronous work and its progress, and the queue workers share.
 * State changes are single conditional UPDATEs, so a job is claimed by one worker and ended once,
 * whatever races.
 *
 * The queue is leases over this table rather than a queue library (pg-boss, graphile-worker):
 * those keep jobs in tables of their own and run on PostgreSQL only, while Kiln's jobs are rows
 * the API reads for status and the same queue must run on SQLite for the single process. A claim
 * is one UPDATE of the oldest claimable row — on PostgreSQL chosen `FOR UPDATE SKIP LOCKED`, so
 * concurrent claimers pass each other instead of queueing on one row; on SQLite the single writer
 * makes the statement exclusive by itself. Each claim bumps the fencing token; progress, results
 * (through {@link JobRepo.fence}) and the end are written only under the current token.
 */
import { sql, type Selectable } from "kysely";
import { fromBool, fromInt8, fromMillis, toBool, toMillis } from "../codec.js";
import type { JobsTable } from "../schema.js";
import { KilnError } from "../../domain/errors.js";
import type { JobKind, JobLease, JobRepo, JobRow, JobState } from "../types.js";
import { atomically, type RepoContext } from "./context.js";

function nullableDate(v: number | string | null): Date | null {
  return v === null ? null : fromMillis(v);
}

function nullableInt(v: number | string | null): number | null {
  return v === null ? null : fromInt8(v);
}

function toRow(r: Selectable<JobsTable>): JobRow {
  return {
    id: r.id,
    kind: r.kind as JobKind,
    userId: r.user_id,
    state: r.state as JobState,
    percentage: r.percentage,
    message: r.message,
    errorMessage: r.error_message,
    detailedError: r.detailed_error,
    eta: nullableDate(r.eta),
    bytesLoaded: nullableInt(r.bytes_loaded),
    bytesTotal: nullableInt(r.bytes_total),
    attempts: r.attempts,
    cancelRequested: fromBool(r.cancel_requested),
    startedAt: nullableDate(r.started_at),
    finishedAt: nullableDate(r.finished_at),
    created: fromMillis(r.created),
    lastModified: fromMillis(r.last_modified),
    leaseOwner: r.lease_owner,
    leaseExpires: nullableDate(r.lease_expires),
    leaseToken: fromInt8(r.lease_token),
  };
}

/** The lease of a process that did not say who it is (tests, tools): 30 s, three attempts. */
const DEFAULT_LEASE: JobLease = { owner: "kiln", ms: 30_000, maxAttempts: 3, interruptedMessage: "interrupted by a restart" };

/** The channel other processes hear job events on (PostgreSQL). */
export const JOB_CHANNEL = "kiln_jobs";

/**
 * Tells the other processes (PostgreSQL): inside a transaction, the notice goes out at commit,
 * so a worker woken by it finds the row. SQLite serves one process, which wakes itself.
 */
async function notify(ctx: RepoContext, event: string): Promise<void> {
  if (ctx.dialect === "postgres") await sql`select pg_notify(${JOB_CHANNEL}, ${event})`.execute(ctx.db);
}

const clampPercentage = (p: number): number => Math.max(0, Math.min(100, Math.floor(p)));

export function jobRepo(ctx: RepoContext): JobRepo {
  const { db } = ctx;
  const get = async (id: number): Promise<JobRow | undefined> => {
    const row = await db.selectFrom("jobs").selectAll().where("id", "=", id).executeTakeFirst();
    return row && toRow(row);
  };
  return {
    async create(j) {
      const now = toMillis(ctx.now());
      const row = await db
        .insertInto("jobs")
        .values({
          kind: j.kind,
          user_id: j.userId,
          state: "queued",
          percentage: 0,
          message: "queued",
          error_message: null,
          detailed_error: null,
          eta: null,
          bytes_loaded: null,
          bytes_total: null,
          attempts: 0,
          cancel_requested: 0,
          started_at: null,
          finished_at: null,
          created: now,
          last_modified: now,
        })
        .returningAll()
        .executeTakeFirstOrThrow();
      await notify(ctx, "queued");
      return toRow(row);
    },

    get,

    async claimNext(kinds, lease = DEFAULT_LEASE) {
      if (kinds.length === 0) return undefined;
      const now = toMillis(ctx.now());
      const lapsed = sql<boolean>`(lease_expires is null or lease_expires < ${now})`;
      // Lapsed jobs that must not run again end here, whoever claims next.
      await db
        .updateTable("jobs")
        .set({ state: "cancelled", message: "cancelled", finished_at: now, last_modified: now, eta: null, lease_owner: null, lease_expires: null })
        .where("state", "=", "running")
        .where("kind", "in", kinds)
        .where("cancel_requested", "=", toBool(true))
        .where(lapsed)
        .execute();
      await db
        .updateTable("jobs")
        .set({
          state: "error",
          message: "failed",
          error_message: lease.interruptedMessage,
          detailed_error: `${lease.interruptedMessage}: its worker stopped during each of ${lease.maxAttempts} attempts`,
          finished_at: now,
          last_modified: now,
          eta: null,
          lease_owner: null,
          lease_expires: null,
        })
        .where("state", "=", "running")
        .where("kind", "in", kinds)
        .where("attempts", ">=", lease.maxAttempts)
        .where(lapsed)
        .execute();
      const lock = ctx.dialect === "postgres" ? sql`for update skip locked` : sql``;
      const claimable = sql<boolean>`(state = 'queued' or (state = 'running' and ${lapsed}))`;
      const candidate = sql`(select id from jobs where kind in (${sql.join(kinds)}) and ${claimable} order by id limit 1 ${lock})`;
      const claimed = await db
        .updateTable("jobs")
        .set({
          state: "running",
          attempts: sql`attempts + 1`,
          lease_token: sql`lease_token + 1`,
          lease_owner: lease.owner,
          lease_expires: now + lease.ms,
          started_at: now,
          last_modified: now,
          message: sql`case when state = 'queued' then 'starting' else 'resuming (its worker stopped)' end`,
        })
        .where("id", "=", sql<number>`${candidate}`)
        .where(claimable)
        .returningAll()
        .executeTakeFirst();
      return claimed && toRow(claimed);
    },

    async renew(id, token, ms) {
      const row = await db
        .updateTable("jobs")
        .set({ lease_expires: toMillis(ctx.now()) + ms })
        .where("id", "=", id)
        .where("state", "=", "running")
        .where("lease_token", "=", token)
        .returning("cancel_requested")
        .executeTakeFirst();
      return row && { cancelRequested: fromBool(row.cancel_requested) };
    },

    async fence(id, token) {
      if (!db.isTransaction) throw new Error("a job's fence is only held inside a transaction");
      // FOR UPDATE: a claimer taking the job over waits until the results are written (and then
      // redoes the job), or takes it first and these writes fail. SQLite's writer lock does both.
      const query = db.selectFrom("jobs").select("id").where("id", "=", id).where("state", "=", "running").where("lease_token", "=", token);
      const held = await (ctx.dialect === "postgres" ? query.forUpdate() : query).executeTakeFirst();
      if (!held) throw new KilnError("conflict", `job ${id} was taken over by another worker (or ended) while this one worked on it; its results are discarded`);
    },

    async release(id, token) {
      const r = await db
        .updateTable("jobs")
        .set({ state: "queued", message: "queued (its worker stopped)", lease_owner: null, lease_expires: null, eta: null, last_modified: toMillis(ctx.now()) })
        .where("id", "=", id)
        .where("state", "=", "running")
        .where("lease_token", "=", token)
        .executeTakeFirst();
      if (r.numUpdatedRows > 0n) await notify(ctx, "queued");
      return r.numUpdatedRows > 0n;
    },

    async expireLeases() {
      const r = await db.updateTable("jobs").set({ lease_expires: 0 }).where("state", "=", "running").executeTakeFirst();
      return Number(r.numUpdatedRows);
    },

    async progress(id, p, token) {
      const set: Record<string, unknown> = { last_modified: toMillis(ctx.now()) };
      if (p.percentage !== undefined) {
        // Monotonic in the database itself, whatever order updates arrive in.
        const pct = clampPercentage(p.percentage);
        set.percentage = sql`case when percentage < ${pct} then ${pct} else percentage end`;
      }
      if (p.message !== undefined) set.message = p.message;
      if (p.eta !== undefined) set.eta = p.eta === null ? null : toMillis(p.eta);
      if (p.bytesLoaded !== undefined) set.bytes_loaded = Math.floor(p.bytesLoaded);
      if (p.bytesTotal !== undefined) set.bytes_total = Math.floor(p.bytesTotal);
      let q = db.updateTable("jobs").set(set).where("id", "=", id).where("state", "=", "running");
      if (token !== undefined) q = q.where("lease_token", "=", token);
      await q.execute();
    },

    async finish(id, end, token) {
      const now = toMillis(ctx.now());
      let q = db
        .updateTable("jobs")
        .set({
          state: end.state,
          ...(end.state === "complete" ? { percentage: 100, message: end.message ?? "complete", eta: null } : {}),
          ...(end.state === "cancelled" ? { message: "cancelled", eta: null } : {}),
          ...(end.state === "error" ? { message: "failed", eta: null } : {}),
          error_message: end.errorMessage ?? null,
          detailed_error: end.detailedError ?? null,
          finished_at: now,
          last_modified: now,
          lease_owner: null,
          lease_expires: null,
        })
        .where("id", "=", id)
        .where("state", "in", ["queued", "running"]);
      if (token !== undefined) q = q.where("lease_token", "=", token);
      const row = await q.returningAll().executeTakeFirst();
      // api processes fetch a generated image's file ahead of its download (server/prefetch.ts).
      if (row && end.state === "complete") await notify(ctx, `complete:${id}`);
      return row && toRow(row);
    },

    async requestCancel(id) {
      return atomically(ctx, async (tx) => {
        const now = toMillis(ctx.now());
        const queued = await tx
          .updateTable("jobs")
          .set({ state: "cancelled", message: "cancelled", cancel_requested: 1, finished_at: now, last_modified: now, eta: null })
          .where("id", "=", id)
          .where("state", "=", "queued")
          .returningAll()
          .executeTakeFirst();
        if (queued) return toRow(queued);
        const running = await tx
          .updateTable("jobs")
          .set({ cancel_requested: toBool(true), message: "cancelling", last_modified: now })
          .where("id", "=", id)
          .where("state", "=", "running")
          .returningAll()
          .executeTakeFirst();
        if (running) {
          // Its worker may be another process: tell it now rather than at its next renewal.
          await notify({ ...ctx, db: tx }, `cancel:${id}`);
          return toRow(running);
        }
        const row = await tx.selectFrom("jobs").selectAll().where("id", "=", id).executeTakeFirst();
        return row && toRow(row);
      });
    },

    async listChangedSince(since, limit) {
      const rows = await db
        .selectFrom("jobs")
        .selectAll()
        .where("last_modified", ">=", toMillis(since))
        .orderBy("last_modified")
        .orderBy("id")
        .limit(limit)
        .execute();
      return rows.map(toRow);
    },

    async delete(id) {
      const r = await db.deleteFrom("jobs").where("id", "=", id).executeTakeFirst();
      return r.numDeletedRows > 0n;
    },
  };
}
