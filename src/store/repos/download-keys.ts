/** One-time download keys: stored by their sha256 only, removed by the download they open. */
import type { Selectable } from "kysely";
import { fromMillis, toMillis } from "../codec.js";
import type { DownloadKeysTable } from "../schema.js";
import type { DownloadKeyRepo, DownloadKeyRow } from "../types.js";
import type { RepoContext } from "./context.js";

function toRow(r: Selectable<DownloadKeysTable>): DownloadKeyRow {
  return { keyHash: r.key_hash, userId: r.user_id, target: r.target, expiresAt: fromMillis(r.expires_at) };
}

export function downloadKeyRepo(ctx: RepoContext): DownloadKeyRepo {
  const { db } = ctx;
  return {
    async create(k) {
      await db
        .insertInto("download_keys")
        .values({ key_hash: k.keyHash, user_id: k.userId, target: k.target, expires_at: toMillis(k.expiresAt) })
        .execute();
    },

    async consume(keyHash, target, now) {
      // One statement that both checks and removes: of two concurrent callers, the second finds
      // no row to delete (PostgreSQL re-checks the row after waiting on the first's lock; SQLite
      // runs one writer at a time), so exactly one gets the key back.
      const row = await db
        .deleteFrom("download_keys")
        .where("key_hash", "=", keyHash)
        .where("target", "=", target)
        .where("expires_at", ">", toMillis(now))
        .returningAll()
        .executeTakeFirst();
      return row && toRow(row);
    },

    async peek(keyHash, target, now) {
      const row = await db
        .selectFrom("download_keys")
        .selectAll()
        .where("key_hash", "=", keyHash)
        .where("target", "=", target)
        .where("expires_at", ">", toMillis(now))
        .executeTakeFirst();
      return row && toRow(row);
    },

    async deleteExpired(now) {
      const r = await db.deleteFrom("download_keys").where("expires_at", "<=", toMillis(now)).executeTakeFirst();
      return Number(r.numDeletedRows);
    },

    async deleteForTarget(target) {
      const r = await db.deleteFrom("download_keys").where("target", "=", target).executeTakeFirst();
      return Number(r.numDeletedRows);
    },
  };
}
