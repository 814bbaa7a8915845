/**
 * The web console: sign-in sessions, and the index the event stream reads job changes by.
 *
 * A session is stored by the sha256 of its token (the cookie's value), never the token itself: a
 * copy of the database opens no session. It ends at `expires_at` (idle expiry, pushed forward
 * while it is used, never past `created` plus the absolute lifetime), at sign-out, or with its user.
 */
import type { Kysely } from "kysely";
import type { KilnMigration } from "./index.js";

async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable("sessions")
    .addColumn("token_hash", "text", (c) => c.primaryKey())
    .addColumn("user_id", "integer", (c) => c.notNull().references("users.id").onDelete("cascade"))
    .addColumn("csrf_token", "text", (c) => c.notNull())
    .addColumn("created", "bigint", (c) => c.notNull())
    .addColumn("last_seen", "bigint", (c) => c.notNull())
    .addColumn("expires_at", "bigint", (c) => c.notNull())
    .execute();
  await db.schema.createIndex("sessions_user_id").on("sessions").column("user_id").execute();
  await db.schema.createIndex("sessions_expires_at").on("sessions").column("expires_at").execute();
  // The event stream asks "which jobs changed since t" a few times a second.
  await db.schema.createIndex("jobs_last_modified").on("jobs").column("last_modified").execute();
}

export const consoleSessions: KilnMigration = { up };
