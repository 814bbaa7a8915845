/** API keys: a user's key pairs, found by the public half when a request is authenticated. */
import type { Selectable, Updateable } from "kysely";
import { fromMillis, toMillis } from "../codec.js";
import { pageOf } from "../list.js";
import type { ApiKeysTable } from "../schema.js";
import type { ApiKeyRepo, ApiKeyRow } from "../types.js";
import type { RepoContext } from "./context.js";

function toRow(r: Selectable<ApiKeysTable>): ApiKeyRow {
  return {
    id: r.id,
    userId: r.user_id,
    name: r.name,
    description: r.description,
    publicKey: r.public_key,
    secretEnc: r.secret_enc,
    created: fromMillis(r.created),
    lastModified: fromMillis(r.last_modified),
  };
}

export function apiKeyRepo(ctx: RepoContext): ApiKeyRepo {
  const { db } = ctx;
  return {
    async create(k) {
      const now = toMillis(ctx.now());
      const row = await db
        .insertInto("api_keys")
        .values({
          user_id: k.userId,
          name: k.name,
          description: k.description,
          public_key: k.publicKey,
          secret_enc: k.secretEnc,
          created: now,
          last_modified: now,
        })
        .returningAll()
        .executeTakeFirstOrThrow();
      return toRow(row);
    },

    async get(userId, id) {
      const row = await db
        .selectFrom("api_keys")
        .selectAll()
        .where("user_id", "=", userId)
        .where("id", "=", id)
        .executeTakeFirst();
      return row && toRow(row);
    },

    async getByPublicKey(publicKey) {
      const row = await db.selectFrom("api_keys").selectAll().where("public_key", "=", publicKey).executeTakeFirst();
      return row && toRow(row);
    },

    async list(userId, c) {
      const filtered = db.selectFrom("api_keys").where("user_id", "=", userId);
      return pageOf("apiKeys", c, filtered, (q) => q.selectAll(), toRow);
    },

    async update(userId, id, patch) {
      const cols: Updateable<ApiKeysTable> = { last_modified: toMillis(ctx.now()) };
      if (patch.name !== undefined) cols.name = patch.name;
      if (patch.description !== undefined) cols.description = patch.description;
      const row = await db
        .updateTable("api_keys")
        .set(cols)
        .where("user_id", "=", userId)
        .where("id", "=", id)
        .returningAll()
        .executeTakeFirst();
      return row && toRow(row);
    },

    async delete(userId, id) {
      const r = await db.deleteFrom("api_keys").where("user_id", "=", userId).where("id", "=", id).executeTakeFirst();
      return r.numDeletedRows > 0n;
    },
  };
}
