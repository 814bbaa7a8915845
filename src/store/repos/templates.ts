/**
 * Templates: a bundle on a distribution. The schema ties a template to its bundle through
 * (user_id, bundle_id), so creating one on another user's bundle fails like a missing bundle.
 */
import type { Selectable } from "kysely";
import { fromMillis, toMillis } from "../codec.js";
import { pageOf } from "../list.js";
import type { TemplatesTable } from "../schema.js";
import type { TemplateRepo, TemplateRow } from "../types.js";
import type { RepoContext } from "./context.js";

function toRow(r: Selectable<TemplatesTable>): TemplateRow {
  return {
    id: r.id,
    userId: r.user_id,
    bundleId: r.bundle_id,
    distributionId: r.distribution_id,
    created: fromMillis(r.created),
    lastModified: fromMillis(r.last_modified),
  };
}

export function templateRepo(ctx: RepoContext): TemplateRepo {
  const { db } = ctx;
  return {
    async create(t) {
      const now = toMillis(ctx.now());
      const row = await db
        .insertInto("templates")
        .values({
          user_id: t.userId,
          bundle_id: t.bundleId,
          distribution_id: t.distributionId,
          created: now,
          last_modified: now,
        })
        .returningAll()
        .executeTakeFirstOrThrow();
      return toRow(row);
    },

    async get(userId, bundleId, id) {
      const row = await db
        .selectFrom("templates")
        .selectAll()
        .where("user_id", "=", userId)
        .where("bundle_id", "=", bundleId)
        .where("id", "=", id)
        .executeTakeFirst();
      return row && toRow(row);
    },

    async list(userId, bundleId, c) {
      // Joined for `query`, which searches the distribution's name, version and architecture.
      const filtered = db
        .selectFrom("templates")
        .innerJoin("distributions", "distributions.id", "templates.distribution_id")
        .where("templates.user_id", "=", userId)
        .where("templates.bundle_id", "=", bundleId);
      return pageOf("templates", c, filtered, (q) => q.selectAll("templates"), toRow);
    },

    async delete(userId, bundleId, id) {
      const r = await db
        .deleteFrom("templates")
        .where("user_id", "=", userId)
        .where("bundle_id", "=", bundleId)
        .where("id", "=", id)
        .executeTakeFirst();
      return r.numDeletedRows > 0n;
    },
  };
}
