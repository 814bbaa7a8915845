/** Cloud accounts: a user's registry credentials (Docker registries, OpenShift). */
import type { Selectable, Updateable } from "kysely";
import { KilnError } from "../../domain/errors.js";
import { fromMillis, toMillis } from "../codec.js";
import { pageOf } from "../list.js";
import type { CloudAccountsTable } from "../schema.js";
import type { CloudAccountRepo, CloudAccountRow, CloudAccountType, NewCloudAccount } from "../types.js";
import { keepField } from "./context.js";
import type { RepoContext } from "./context.js";

function toType(type: string): CloudAccountType {
  if (type === "docker" || type === "openshift") return type;
  throw new KilnError("internal", `stored cloud account type "${type}" is unknown`);
}

function toRow(r: Selectable<CloudAccountsTable>): CloudAccountRow {
  return {
    id: r.id,
    userId: r.user_id,
    name: r.name,
    type: toType(r.type),
    url: r.url,
    login: r.login,
    secretEnc: r.secret_enc,
    created: fromMillis(r.created),
    lastModified: fromMillis(r.last_modified),
  };
}

function toColumns(a: Partial<NewCloudAccount>): Updateable<CloudAccountsTable> {
  const cols: Updateable<CloudAccountsTable> = {};
  if (a.name !== undefined) cols.name = a.name;
  if (a.type !== undefined) cols.type = a.type;
  if (a.url !== undefined) cols.url = a.url;
  if (a.login !== undefined) cols.login = a.login;
  if (a.secretEnc !== undefined) cols.secret_enc = a.secretEnc;
  return cols;
}

export function cloudAccountRepo(ctx: RepoContext): CloudAccountRepo {
  const { db } = ctx;
  return {
    async create(a) {
      const now = toMillis(ctx.now());
      const row = await db
        .insertInto("cloud_accounts")
        .values({
          ...toColumns(a),
          user_id: a.userId,
          name: a.name,
          type: a.type,
          url: a.url,
          secret_enc: a.secretEnc,
          created: now,
          last_modified: now,
        })
        .returningAll()
        .executeTakeFirstOrThrow();
      return toRow(row);
    },

    async get(userId, id) {
      const row = await db
        .selectFrom("cloud_accounts")
        .selectAll()
        .where("user_id", "=", userId)
        .where("id", "=", id)
        .executeTakeFirst();
      return row && toRow(row);
    },

    async list(userId, c) {
      const filtered = db.selectFrom("cloud_accounts").where("user_id", "=", userId);
      return pageOf("cloudAccounts", c, filtered, (q) => q.selectAll(), toRow);
    },

    async update(userId, id, patch) {
      keepField("userId", patch.userId, userId);
      const row = await db
        .updateTable("cloud_accounts")
        .set({ ...toColumns(patch), last_modified: toMillis(ctx.now()) })
        .where("user_id", "=", userId)
        .where("id", "=", id)
        .returningAll()
        .executeTakeFirst();
      return row && toRow(row);
    },

    async delete(userId, id) {
      const r = await db.deleteFrom("cloud_accounts").where("user_id", "=", userId).where("id", "=", id).executeTakeFirst();
      return r.numDeletedRows > 0n;
    },
  };
}
