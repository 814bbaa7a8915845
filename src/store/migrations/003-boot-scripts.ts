/**
 * Boot scripts: UForge's `BootScript` artifact (tag `bootscript`) carries when it runs
 * (`bootType`: `firstboot` or `everyboot`) and in which order (`bootOrder`). Both are null for
 * every other artifact, and for boot scripts created before this step.
 */
import type { Kysely } from "kysely";
import type { KilnMigration } from "./index.js";

async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable("artifacts").addColumn("boot_order", "integer").execute();
  await db.schema.alterTable("artifacts").addColumn("boot_type", "text").execute();
}

export const bootScripts: KilnMigration = { up };
