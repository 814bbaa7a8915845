/**
 * Blob locks: one row per blob digest that is being referenced or collected. Taking the row
 * (an upsert, inside a transaction) serialises "publish a blob and reference it" against "check
 * that nothing references a blob and delete it", so garbage collection never deletes a blob
 * that a concurrent upload of the same bytes is about to reference (see store/blob-gc.ts).
 */
import type { Kysely } from "kysely";
import type { KilnMigration } from "./index.js";

async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.createTable("blob_locks").addColumn("digest", "text", (c) => c.primaryKey()).execute();
}

export const blobLocks: KilnMigration = { up };
