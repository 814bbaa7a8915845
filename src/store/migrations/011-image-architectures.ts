/**
 * A multi-architecture image remembers the architectures its generation was asked for (UForge
 * names, comma-separated: `x86_64,aarch64`); null for an image of its template's one architecture.
 * Its `manifest_digest` is then the digest of an OCI image index.
 */
import type { Kysely } from "kysely";
import type { KilnMigration } from "./index.js";

async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable("images").addColumn("architectures", "text").execute();
}

export const imageArchitectures: KilnMigration = { up };
