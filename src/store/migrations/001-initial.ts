/**
 * The first schema: users and their API keys, distributions, bundles with their artifact trees,
 * cloud accounts, templates and one-time download keys.
 *
 * Ownership is enforced by the schema where it can be: a template points at its bundle through
 * (user_id, bundle_id), so it cannot hang from another user's bundle, and an artifact's parent is
 * referenced through (bundle_id, parent_id), so a tree never spans two bundles. Deletes cascade
 * down every "hangs from" edge (user → everything of theirs, bundle → artifacts and templates,
 * folder → its contents).
 */
import { sql } from "kysely";
import type { Kysely } from "kysely";
import { autoId } from "./columns.js";
import type { KilnMigration, StoreDialect } from "./index.js";

async function up(db: Kysely<unknown>, dialect: StoreDialect): Promise<void> {
  const id = autoId(dialect);

  await db.schema
    .createTable("users")
    .addColumn("id", "integer", id)
    .addColumn("login", "text", (c) => c.notNull().unique())
    .addColumn("email", "text")
    .addColumn("first_name", "text")
    .addColumn("surname", "text")
    .addColumn("password_hash", "text", (c) => c.notNull())
    .addColumn("admin", "boolean", (c) => c.notNull())
    .addColumn("active", "boolean", (c) => c.notNull())
    .addColumn("entitlements", "text", (c) => c.notNull())
    .addColumn("created", "bigint", (c) => c.notNull())
    .addColumn("last_modified", "bigint", (c) => c.notNull())
    .execute();

  await db.schema
    .createTable("api_keys")
    .addColumn("id", "integer", id)
    .addColumn("user_id", "integer", (c) => c.notNull().references("users.id").onDelete("cascade"))
    .addColumn("name", "text")
    .addColumn("description", "text")
    .addColumn("public_key", "text", (c) => c.notNull().unique())
    .addColumn("secret_enc", "text", (c) => c.notNull())
    .addColumn("created", "bigint", (c) => c.notNull())
    .addColumn("last_modified", "bigint", (c) => c.notNull())
    .execute();
  await db.schema.createIndex("api_keys_user_id").on("api_keys").column("user_id").execute();

  await db.schema
    .createTable("distributions")
    .addColumn("id", "integer", id)
    .addColumn("name", "text", (c) => c.notNull())
    .addColumn("version", "text", (c) => c.notNull())
    .addColumn("arch", "text", (c) => c.notNull())
    .addColumn("active", "boolean", (c) => c.notNull())
    .addColumn("created", "bigint", (c) => c.notNull())
    .addUniqueConstraint("distributions_name_version_arch", ["name", "version", "arch"])
    .execute();

  await db.schema.createTable("restriction_ids").addColumn("id", "integer", id).execute();

  await db.schema
    .createTable("bundles")
    .addColumn("id", "integer", id)
    .addColumn("user_id", "integer", (c) => c.notNull().references("users.id").onDelete("cascade"))
    .addColumn("name", "text", (c) => c.notNull())
    .addColumn("version", "text")
    .addColumn("description", "text")
    .addColumn("release", "text")
    .addColumn("tag", "text")
    .addColumn("license", "text")
    .addColumn("default_install_location", "text")
    .addColumn("restriction_id", "integer", (c) => c.notNull().unique())
    .addColumn("restriction_rule", "text")
    .addColumn("created", "bigint", (c) => c.notNull())
    .addColumn("last_modified", "bigint", (c) => c.notNull())
    // Target of templates' ownership-checking foreign key; also serves "this user's bundles".
    .addUniqueConstraint("bundles_user_id_id", ["user_id", "id"])
    .execute();

  await db.schema
    .createTable("artifacts")
    .addColumn("id", "integer", id)
    .addColumn("bundle_id", "integer", (c) => c.notNull().references("bundles.id").onDelete("cascade"))
    .addColumn("parent_id", "integer")
    .addColumn("position", "integer", (c) => c.notNull())
    .addColumn("kind", "text", (c) => c.notNull().check(sql`kind in ('file', 'folder')`))
    .addColumn("tag", "text")
    .addColumn("name", "text", (c) => c.notNull())
    .addColumn("full_name", "text")
    .addColumn("orig_name", "text")
    .addColumn("install_location", "text")
    .addColumn("extract", "boolean", (c) => c.notNull())
    .addColumn("install", "boolean", (c) => c.notNull())
    .addColumn("params", "text")
    .addColumn("version", "text")
    .addColumn("release", "text")
    .addColumn("arch", "text")
    .addColumn("mime_type", "text")
    .addColumn("blob_digest", "text")
    .addColumn("size", "bigint")
    .addColumn("md5", "text")
    .addColumn("uploaded_time", "bigint")
    .addColumn("created", "bigint", (c) => c.notNull())
    .addColumn("last_modified", "bigint", (c) => c.notNull())
    .addUniqueConstraint("artifacts_bundle_id_id", ["bundle_id", "id"])
    // A parent must sit in the same bundle; deleting a folder deletes what is inside it.
    .addForeignKeyConstraint("artifacts_parent", ["bundle_id", "parent_id"], "artifacts", ["bundle_id", "id"], (fk) =>
      fk.onDelete("cascade"),
    )
    .execute();
  await db.schema
    .createIndex("artifacts_siblings")
    .on("artifacts")
    .columns(["bundle_id", "parent_id", "position"])
    .execute();

  await db.schema
    .createTable("cloud_accounts")
    .addColumn("id", "integer", id)
    .addColumn("user_id", "integer", (c) => c.notNull().references("users.id").onDelete("cascade"))
    .addColumn("name", "text", (c) => c.notNull())
    .addColumn("type", "text", (c) => c.notNull().check(sql`type in ('docker', 'openshift')`))
    .addColumn("url", "text", (c) => c.notNull())
    .addColumn("login", "text")
    .addColumn("secret_enc", "text", (c) => c.notNull())
    .addColumn("created", "bigint", (c) => c.notNull())
    .addColumn("last_modified", "bigint", (c) => c.notNull())
    .execute();
  await db.schema.createIndex("cloud_accounts_user_id").on("cloud_accounts").column("user_id").execute();

  await db.schema
    .createTable("templates")
    .addColumn("id", "integer", id)
    .addColumn("user_id", "integer", (c) => c.notNull().references("users.id").onDelete("cascade"))
    .addColumn("bundle_id", "integer", (c) => c.notNull())
    .addColumn("distribution_id", "integer", (c) => c.notNull().references("distributions.id"))
    .addColumn("created", "bigint", (c) => c.notNull())
    .addColumn("last_modified", "bigint", (c) => c.notNull())
    .addForeignKeyConstraint("templates_bundle", ["user_id", "bundle_id"], "bundles", ["user_id", "id"], (fk) =>
      fk.onDelete("cascade"),
    )
    .execute();
  await db.schema.createIndex("templates_user_bundle").on("templates").columns(["user_id", "bundle_id"]).execute();
  await db.schema.createIndex("templates_distribution_id").on("templates").column("distribution_id").execute();

  await db.schema
    .createTable("download_keys")
    .addColumn("key_hash", "text", (c) => c.primaryKey())
    .addColumn("user_id", "integer", (c) => c.notNull().references("users.id").onDelete("cascade"))
    .addColumn("target", "text", (c) => c.notNull())
    .addColumn("expires_at", "bigint", (c) => c.notNull())
    .execute();
  await db.schema.createIndex("download_keys_target").on("download_keys").column("target").execute();
  await db.schema.createIndex("download_keys_expires_at").on("download_keys").column("expires_at").execute();
  await db.schema.createIndex("download_keys_user_id").on("download_keys").column("user_id").execute();
}

/** `001-initial`: the schema of the first release. */
export const initial: KilnMigration = { up };
