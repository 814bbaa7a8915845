/**
 * Asynchronous work and what it produces: jobs (generation and publication, with their
 * progress), images generated from templates, and their publications to registries.
 *
 * An image hangs from its template (deleting the template deletes its images, and their
 * publications with them); jobs are deleted with what they produced, by the repositories, in the
 * same transaction.
 */
import type { Kysely } from "kysely";
import { autoId } from "./columns.js";
import type { KilnMigration, StoreDialect } from "./index.js";

async function up(db: Kysely<unknown>, dialect: StoreDialect): Promise<void> {
  const id = autoId(dialect);

  await db.schema
    .createTable("jobs")
    .addColumn("id", "integer", id)
    .addColumn("kind", "text", (c) => c.notNull())
    .addColumn("user_id", "integer", (c) => c.notNull().references("users.id").onDelete("cascade"))
    .addColumn("state", "text", (c) => c.notNull())
    .addColumn("percentage", "integer", (c) => c.notNull())
    .addColumn("message", "text")
    .addColumn("error_message", "text")
    .addColumn("detailed_error", "text")
    .addColumn("eta", "bigint")
    .addColumn("bytes_loaded", "bigint")
    .addColumn("bytes_total", "bigint")
    .addColumn("attempts", "integer", (c) => c.notNull())
    .addColumn("cancel_requested", "boolean", (c) => c.notNull())
    .addColumn("started_at", "bigint")
    .addColumn("finished_at", "bigint")
    .addColumn("created", "bigint", (c) => c.notNull())
    .addColumn("last_modified", "bigint", (c) => c.notNull())
    .execute();
  // Workers look for the oldest queued job of a kind.
  await db.schema.createIndex("jobs_state_kind_id").on("jobs").columns(["state", "kind", "id"]).execute();

  await db.schema
    .createTable("images")
    .addColumn("id", "integer", id)
    .addColumn("user_id", "integer", (c) => c.notNull().references("users.id").onDelete("cascade"))
    .addColumn("bundle_id", "integer", (c) => c.notNull())
    .addColumn("template_id", "integer", (c) => c.notNull().references("templates.id").onDelete("cascade"))
    .addColumn("distribution_id", "integer", (c) => c.notNull())
    .addColumn("job_id", "integer", (c) => c.notNull())
    .addColumn("format_id", "integer", (c) => c.notNull())
    .addColumn("compress", "boolean", (c) => c.notNull())
    .addColumn("entrypoint", "text")
    .addColumn("name", "text", (c) => c.notNull())
    .addColumn("version", "text")
    .addColumn("revision", "integer", (c) => c.notNull())
    .addColumn("file_name", "text")
    .addColumn("file_size", "bigint")
    .addColumn("file_digest", "text")
    .addColumn("manifest_digest", "text")
    .addColumn("installed_size", "bigint")
    .addColumn("packages", "text")
    .addColumn("created", "bigint", (c) => c.notNull())
    .addColumn("last_modified", "bigint", (c) => c.notNull())
    .execute();
  await db.schema.createIndex("images_template_id").on("images").column("template_id").execute();
  await db.schema.createIndex("images_user_id").on("images").column("user_id").execute();
  await db.schema.createIndex("images_job_id").on("images").column("job_id").execute();

  await db.schema
    .createTable("publications")
    .addColumn("id", "integer", id)
    .addColumn("user_id", "integer", (c) => c.notNull().references("users.id").onDelete("cascade"))
    .addColumn("image_id", "integer", (c) => c.notNull().references("images.id").onDelete("cascade"))
    // Not a foreign key: the record of a publication outlives the account it used.
    .addColumn("account_id", "integer", (c) => c.notNull())
    .addColumn("format_id", "integer", (c) => c.notNull())
    .addColumn("namespace", "text", (c) => c.notNull())
    .addColumn("repository", "text", (c) => c.notNull())
    .addColumn("tag", "text", (c) => c.notNull())
    .addColumn("registry", "text", (c) => c.notNull())
    .addColumn("job_id", "integer", (c) => c.notNull())
    .addColumn("cloud_id", "text")
    .addColumn("registering_name", "text")
    .addColumn("created", "bigint", (c) => c.notNull())
    .addColumn("last_modified", "bigint", (c) => c.notNull())
    .execute();
  await db.schema.createIndex("publications_image_id").on("publications").column("image_id").execute();
  await db.schema.createIndex("publications_account_registry").on("publications").columns(["account_id", "registry"]).execute();
}

export const images: KilnMigration = { up };
