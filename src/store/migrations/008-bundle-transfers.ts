/**
 * What hammr's bundle flows need: import tickets (`bundleimports`: an archive is uploaded to one
 * and becomes a bundle), export tickets (`mysoftware/{id}/exports`: the bundle as an archive),
 * the files a bundle carries besides its artifacts (its license and its logo, as blobs), and
 * whether a bundle was imported (`mySoftware.imported`).
 */
import type { Kysely } from "kysely";
import { autoId } from "./columns.js";
import type { KilnMigration, StoreDialect } from "./index.js";

async function up(db: Kysely<unknown>, dialect: StoreDialect): Promise<void> {
  const id = autoId(dialect);
  await db.schema.alterTable("bundles").addColumn("imported", "boolean", (c) => c.notNull().defaultTo(false)).execute();

  await db.schema
    .createTable("bundle_files")
    .addColumn("id", "integer", id)
    .addColumn("bundle_id", "integer", (c) => c.notNull().references("bundles.id").onDelete("cascade"))
    // One license and one logo per bundle.
    .addColumn("kind", "text", (c) => c.notNull())
    .addColumn("file_name", "text", (c) => c.notNull())
    .addColumn("mime_type", "text", (c) => c.notNull())
    .addColumn("blob_digest", "text", (c) => c.notNull())
    .addColumn("size", "bigint", (c) => c.notNull())
    .addColumn("md5", "text", (c) => c.notNull())
    .addColumn("created", "bigint", (c) => c.notNull())
    .addColumn("last_modified", "bigint", (c) => c.notNull())
    .addUniqueConstraint("bundle_files_bundle_kind", ["bundle_id", "kind"])
    .execute();
  await db.schema.createIndex("bundle_files_blob_digest").on("bundle_files").column("blob_digest").execute();

  await db.schema
    .createTable("bundle_imports")
    .addColumn("id", "integer", id)
    .addColumn("user_id", "integer", (c) => c.notNull().references("users.id").onDelete("cascade"))
    .addColumn("imported", "boolean", (c) => c.notNull())
    // waiting (for its archive), complete or error.
    .addColumn("state", "text", (c) => c.notNull())
    .addColumn("message", "text")
    .addColumn("error_message", "text")
    .addColumn("bundle_id", "integer", (c) => c.references("bundles.id").onDelete("set null"))
    .addColumn("size", "bigint")
    .addColumn("sha256", "text")
    .addColumn("md5", "text")
    .addColumn("uploaded_time", "bigint")
    .addColumn("created", "bigint", (c) => c.notNull())
    .addColumn("last_modified", "bigint", (c) => c.notNull())
    .execute();
  await db.schema.createIndex("bundle_imports_user_id").on("bundle_imports").column("user_id").execute();

  await db.schema
    .createTable("bundle_exports")
    .addColumn("id", "integer", id)
    .addColumn("user_id", "integer", (c) => c.notNull().references("users.id").onDelete("cascade"))
    .addColumn("bundle_id", "integer", (c) => c.notNull().references("bundles.id").onDelete("cascade"))
    // yaml or json: the bundle description's format in the archive.
    .addColumn("format", "text", (c) => c.notNull())
    .addColumn("created", "bigint", (c) => c.notNull())
    .addColumn("last_modified", "bigint", (c) => c.notNull())
    .execute();
  await db.schema.createIndex("bundle_exports_bundle_id").on("bundle_exports").column("bundle_id").execute();
}

export const bundleTransfers: KilnMigration = { up };
