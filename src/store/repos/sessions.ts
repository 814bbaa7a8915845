/** Console sessions: looked up by the sha256 of the cookie's token, expired by time. */
import type { Selectable } from "kysely";
import { fromMillis, toMillis } from "../codec.js";
import type { SessionsTable } from "../schema.js";
import type { SessionRepo, SessionRow } from "../types.js";
import type { RepoContext } from "./context.js";

function toRow(r: Selectable<SessionsTable>): SessionRow {
  return {
    tokenHash: r.token_hash,
    userId: r.user_id,
    csrfToken: r.csrf_token,
    created: fromMillis(r.created),
    lastSeen: fromMillis(r.last_seen),
    expiresAt: fromMillis(r.expires_at),
  };
}

export function sessionRepo(ctx: RepoContext): SessionRepo {
  const { db } = ctx;
  return {
    async create(s) {
      await db
        .insertInto("sessions")
        .values({
          token_hash: s.tokenHash,
          user_id: s.userId,
          csrf_token: s.csrfToken,
          created: toMillis(s.created),
          last_seen: toMillis(s.lastSeen),
          expires_at: toMillis(s.expiresAt),
        })
        .execute();
    },

    async get(tokenHash, now) {
      const row = await db.selectFrom("sessions").selectAll().where("token_hash", "=", tokenHash).where("expires_at", ">", toMillis(now)).executeTakeFirst();
      return row && toRow(row);
    },

    async touch(tokenHash, lastSeen, expiresAt) {
      await db
        .updateTable("sessions")
        .set({ last_seen: toMillis(lastSeen), expires_at: toMillis(expiresAt) })
        .where("token_hash", "=", tokenHash)
        .where("expires_at", "<", toMillis(expiresAt))
        .execute();
    },

    async delete(tokenHash) {
      const r = await db.deleteFrom("sessions").where("token_hash", "=", tokenHash).executeTakeFirst();
      return r.numDeletedRows > 0n;
    },

    async deleteExpired(now) {
      const r = await db.deleteFrom("sessions").where("expires_at", "<=", toMillis(now)).executeTakeFirst();
      return Number(r.numDeletedRows);
    },
  };
}
