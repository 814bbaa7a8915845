/**
 * Jobs: the durable record of asynchronous work and its progress. State changes are single
 * conditional UPDATEs, so a job is claimed by one worker and ended once, whatever races.
 */
import { sql, type Selectable } from "kysely";
import { fromBool, fromInt8, fromMillis, toBool, toMillis } from "../codec.js";
import type { JobsTable } from "../schema.js";
import type { JobKind, JobRepo, JobRow, JobState } from "../types.js";
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
  };
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
      return toRow(row);
    },

    get,

    async claimNext(kinds) {
      if (kinds.length === 0) return undefined;
      // Try the oldest candidates in turn; the conditional UPDATE makes a claim exclusive even
      // if another worker picked the same row in between.
      for (let attempt = 0; attempt < 5; attempt++) {
        const candidate = await db
          .selectFrom("jobs")
          .select("id")
          .where("state", "=", "queued")
          .where("kind", "in", kinds)
          .orderBy("id")
          .limit(1)
          .executeTakeFirst();
        if (!candidate) return undefined;
        const now = toMillis(ctx.now());
        const claimed = await db
          .updateTable("jobs")
          .set({ state: "running", attempts: sql`attempts + 1`, started_at: now, last_modified: now, message: "starting" })
          .where("id", "=", candidate.id)
          .where("state", "=", "queued")
          .returningAll()
          .executeTakeFirst();
        if (claimed) return toRow(claimed);
      }
      return undefined;
    },

    async progress(id, p) {
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
      await db.updateTable("jobs").set(set).where("id", "=", id).where("state", "=", "running").execute();
    },

    async finish(id, end) {
      const now = toMillis(ctx.now());
      const row = await db
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
        })
        .where("id", "=", id)
        .where("state", "in", ["queued", "running"])
        .returningAll()
        .executeTakeFirst();
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
        if (running) return toRow(running);
        const row = await tx.selectFrom("jobs").selectAll().where("id", "=", id).executeTakeFirst();
        return row && toRow(row);
      });
    },

    async recoverInterrupted(maxAttempts, message) {
      return atomically(ctx, async (tx) => {
        const now = toMillis(ctx.now());
        const running = await tx.selectFrom("jobs").select(["id", "attempts", "cancel_requested"]).where("state", "=", "running").orderBy("id").execute();
        const resumed: number[] = [];
        const failed: number[] = [];
        for (const r of running) {
          if (r.attempts < maxAttempts && !fromBool(r.cancel_requested)) {
            await tx.updateTable("jobs").set({ state: "queued", message: "queued (resumed after a restart)", last_modified: now }).where("id", "=", r.id).execute();
            resumed.push(r.id);
          } else {
            const cancelled = fromBool(r.cancel_requested);
            await tx
              .updateTable("jobs")
              .set({
                state: cancelled ? "cancelled" : "error",
                message: cancelled ? "cancelled" : "failed",
                error_message: cancelled ? null : message,
                detailed_error: cancelled ? null : message,
                finished_at: now,
                last_modified: now,
                eta: null,
              })
              .where("id", "=", r.id)
              .execute();
            failed.push(r.id);
          }
        }
        return { resumed, failed };
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
