/**
 * Leftovers (see LeftoverRepo): a due row is claimed by moving its `next_attempt` forward with an
 * UPDATE that names the value read, so that of two sweepers reading the same row only one
 * updates it (PostgreSQL re-checks the condition once the first UPDATE commits; SQLite runs one
 * writer at a time). The claim is then that new value: a try ends, with `retryLater` or
 * `forget`, only while the row still holds it — a row recorded again meanwhile (a new failure) or
 * claimed again by another sweeper after this claim lapsed is left as it is.
 */
import type { Selectable } from "kysely";
import { fromInt8, fromMillis, toMillis } from "../codec.js";
import type { RegistryLeftoversTable } from "../schema.js";
import type { LeftoverKind, LeftoverRepo, LeftoverRow } from "../types.js";
import type { RepoContext } from "./context.js";

function leftoverRow(r: Selectable<RegistryLeftoversTable>): LeftoverRow {
  return {
    id: r.id,
    kind: r.kind as LeftoverKind,
    name: r.name,
    attempts: r.attempts,
    lastError: r.last_error,
    nextAttempt: fromMillis(r.next_attempt),
    created: fromMillis(r.created),
  };
}

export function leftoverRepo(ctx: RepoContext): LeftoverRepo {
  const { db } = ctx;
  const now = (): number => toMillis(ctx.now());
  return {
    async record(kind, name, error, delayMs) {
      const at = now();
      await db
        .insertInto("registry_leftovers")
        .values({ kind, name, attempts: 1, last_error: error, next_attempt: at + delayMs, created: at })
        .onConflict((oc) =>
          oc.columns(["kind", "name"]).doUpdateSet((eb) => ({ attempts: eb("registry_leftovers.attempts", "+", 1), last_error: error, next_attempt: at + delayMs })),
        )
        .execute();
    },

    async claimDue(limit, holdMs) {
      const at = now();
      const due = await db.selectFrom("registry_leftovers").selectAll().where("next_attempt", "<=", at).orderBy("next_attempt").limit(limit).execute();
      const claimed: LeftoverRow[] = [];
      for (const r of due) {
        const until = at + holdMs;
        const taken = await db
          .updateTable("registry_leftovers")
          .set({ next_attempt: until })
          .where("id", "=", r.id)
          .where("next_attempt", "=", fromInt8(r.next_attempt))
          .executeTakeFirst();
        if (Number(taken.numUpdatedRows) === 1) claimed.push(leftoverRow({ ...r, next_attempt: until }));
      }
      return claimed;
    },

    async retryLater(claim, error, delayMs) {
      const r = await db
        .updateTable("registry_leftovers")
        .set({ attempts: claim.attempts + 1, last_error: error, next_attempt: now() + delayMs })
        .where("id", "=", claim.id)
        .where("next_attempt", "=", toMillis(claim.nextAttempt))
        .executeTakeFirst();
      return Number(r.numUpdatedRows) === 1;
    },

    async forget(claim) {
      const r = await db.deleteFrom("registry_leftovers").where("id", "=", claim.id).where("next_attempt", "=", toMillis(claim.nextAttempt)).executeTakeFirst();
      return Number(r.numDeletedRows) === 1;
    },

    async list() {
      return (await db.selectFrom("registry_leftovers").selectAll().orderBy("id").execute()).map(leftoverRow);
    },
  };
}
