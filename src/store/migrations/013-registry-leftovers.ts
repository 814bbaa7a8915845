/**
 * Leftovers: the blobs and the registry tags whose deletion failed after the objects naming them
 * were deleted (a registry with deletion disabled, or unreachable at that moment). One row per
 * blob digest or tag reference, with how many tries failed, the last error and when the next try
 * is due; a sweeper in the processes that run jobs tries again with backoff, and deletes the row
 * once the blob or tag is gone (or a new reference keeps the blob). `next_attempt` doubles as the
 * claim: a sweeper moves it forward with a conditional UPDATE before it works on the row.
 */
import type { Kysely } from "kysely";
import { autoId } from "./columns.js";
import type { KilnMigration, StoreDialect } from "./index.js";

async function up(db: Kysely<unknown>, dialect: StoreDialect): Promise<void> {
  await db.schema
    .createTable("registry_leftovers")
    .addColumn("id", "integer", autoId(dialect))
    // blob (name: a digest) or tag (name: a reference, host/repository:tag).
    .addColumn("kind", "text", (c) => c.notNull())
    .addColumn("name", "text", (c) => c.notNull())
    .addColumn("attempts", "integer", (c) => c.notNull())
    .addColumn("last_error", "text")
    .addColumn("next_attempt", "bigint", (c) => c.notNull())
    .addColumn("created", "bigint", (c) => c.notNull())
    .addUniqueConstraint("registry_leftovers_kind_name", ["kind", "name"])
    .execute();
  await db.schema.createIndex("registry_leftovers_next_attempt").on("registry_leftovers").column("next_attempt").execute();
  // A tag is retried only while no image names it (its reference may have been given again).
  await db.schema.createIndex("images_registry_reference").on("images").column("registry_reference").execute();
}

export const registryLeftovers: KilnMigration = { up };
