/**
 * A bundle's `revision` (UForge's mySoftware field): 1 when made, one more at every change of the
 * bundle's own fields or rule, so that a client can tell two states of a bundle apart.
 */
import type { Kysely } from "kysely";
import type { KilnMigration } from "./index.js";

async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable("bundles").addColumn("revision", "integer", (c) => c.notNull().defaultTo(1)).execute();
}

export const bundleRevision: KilnMigration = { up };
