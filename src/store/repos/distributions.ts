/** Distributions: the entries of kiln.yaml, each given a stable id the first time it is seen. */
import type { Selectable } from "kysely";
import { fromBool, fromMillis, toBool, toMillis } from "../codec.js";
import { pageOf } from "../list.js";
import type { DistributionsTable } from "../schema.js";
import type { DistributionRepo, DistributionRow } from "../types.js";
import { atomically } from "./context.js";
import type { RepoContext } from "./context.js";

function toRow(r: Selectable<DistributionsTable>): DistributionRow {
  return {
    id: r.id,
    name: r.name,
    version: r.version,
    arch: r.arch,
    active: fromBool(r.active),
    created: fromMillis(r.created),
  };
}

export function distributionRepo(ctx: RepoContext): DistributionRepo {
  const { db } = ctx;
  return {
    /**
     * The configuration is the truth at start-up: what it lists is active (again, if it had
     * been dropped from an earlier configuration), what it no longer lists is inactive but kept,
     * since templates and images still point at it.
     */
    async sync(dists) {
      return atomically(ctx, async (tx) => {
        const now = toMillis(ctx.now());
        const listed: number[] = [];
        const seen = new Set<string>();
        for (const d of dists) {
          const key = JSON.stringify([d.name, d.version, d.arch]);
          if (seen.has(key)) continue;
          seen.add(key);
          const row = await tx
            .insertInto("distributions")
            .values({ name: d.name, version: d.version, arch: d.arch, active: 1, created: now })
            .onConflict((oc) => oc.columns(["name", "version", "arch"]).doUpdateSet({ active: 1 }))
            .returning("id")
            .executeTakeFirstOrThrow();
          listed.push(row.id);
        }
        await tx
          .updateTable("distributions")
          .set({ active: 0 })
          .$if(listed.length > 0, (q) => q.where("id", "not in", listed))
          .execute();
        const rows = await tx.selectFrom("distributions").selectAll().where("active", "=", 1).orderBy("id").execute();
        return rows.map(toRow);
      });
    },

    async get(id) {
      const row = await db.selectFrom("distributions").selectAll().where("id", "=", id).executeTakeFirst();
      return row && toRow(row);
    },

    async list(c) {
      return pageOf("distributions", c, db.selectFrom("distributions"), (q) => q.selectAll(), toRow);
    },

    async setActive(id, active) {
      const row = await db
        .updateTable("distributions")
        .set({ active: toBool(active) })
        .where("id", "=", id)
        .returningAll()
        .executeTakeFirst();
      return row && toRow(row);
    },
  };
}
