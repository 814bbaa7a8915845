/**
 * An image keeps, with its packages, two documents its generation produced, as blobs: the build
 * report (what Kiln did about every maintainer script effect: `.../images/{id}/report`) and the
 * SBOM (SPDX 2.3 JSON: `.../images/{id}/sbom`). Both are null for images generated before.
 */
import type { Kysely } from "kysely";
import type { KilnMigration } from "./index.js";

async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable("images").addColumn("report_digest", "text").execute();
  await db.schema.alterTable("images").addColumn("sbom_digest", "text").execute();
}

export const imageReports: KilnMigration = { up };
