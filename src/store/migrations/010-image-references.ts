/**
 * With a registry blob store, each generated image is also tagged in that registry: the image
 * keeps the reference (`registry.example.com/kiln/alice/hello:1.0-7`), its `registeringName`.
 * Null for images generated with a file blob store (their name is the `docker load` one).
 */
import type { Kysely } from "kysely";
import type { KilnMigration } from "./index.js";

async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable("images").addColumn("registry_reference", "text").execute();
}

export const imageReferences: KilnMigration = { up };
