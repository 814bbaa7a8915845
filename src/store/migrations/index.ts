/**
 * Versioned schema migrations, run by Kysely's Migrator at every open.
 *
 * To change the schema, add a file `NNN-what.ts` exporting a {@link KilnMigration} and list it in
 * {@link MIGRATIONS} under the same name. Names sort as strings and run in that order; a name,
 * once released, never changes and its migration is never edited (databases remember names).
 */
import { Migrator, sql } from "kysely";
import type { Kysely, Migration, MigrationResultSet } from "kysely";
import { KilnError } from "../../domain/errors.js";
import { initial } from "./001-initial.js";
import { images } from "./002-images.js";
import { bootScripts } from "./003-boot-scripts.js";
import { loginsIgnoreCase } from "./004-logins-ignore-case.js";
import { consoleSessions } from "./005-console-sessions.js";
import { blobLocks } from "./006-blob-locks.js";
import { imageReports } from "./007-image-reports.js";
import { bundleTransfers } from "./008-bundle-transfers.js";
import { jobLeases } from "./009-job-leases.js";
import { imageReferences } from "./010-image-references.js";
import { imageArchitectures } from "./011-image-architectures.js";
import { bundleRevision } from "./012-bundle-revision.js";
import { registryLeftovers } from "./013-registry-leftovers.js";

/** Which database a migration runs on, for the few column shapes that differ (see columns.ts). */
export type StoreDialect = "sqlite" | "postgres";

/** One schema step. It gets an untyped database: the typed schema is only true after the last step. */
export interface KilnMigration {
  up(db: Kysely<unknown>, dialect: StoreDialect): Promise<void>;
  down?(db: Kysely<unknown>, dialect: StoreDialect): Promise<void>;
}

/** Every migration, by name; the Migrator sorts names and runs the pending ones in order. */
export const MIGRATIONS: Readonly<Record<string, KilnMigration>> = {
  "001-initial": initial,
  "002-images": images,
  "003-boot-scripts": bootScripts,
  "004-logins-ignore-case": loginsIgnoreCase,
  "005-console-sessions": consoleSessions,
  "006-blob-locks": blobLocks,
  "007-image-reports": imageReports,
  "008-bundle-transfers": bundleTransfers,
  "009-job-leases": jobLeases,
  "010-image-references": imageReferences,
  "011-image-architectures": imageArchitectures,
  "012-bundle-revision": bundleRevision,
  "013-registry-leftovers": registryLeftovers,
};

/** Where the Migrator records what has run (kept apart from Kysely's default names). */
export const MIGRATION_TABLE = "kiln_migration";
const MIGRATION_LOCK_TABLE = "kiln_migration_lock";

/**
 * Brings the schema up to date; returns the names of the migrations it ran.
 *
 * Two processes may open one database at once. On PostgreSQL the Migrator serialises them with
 * an advisory lock, and runs each migration in its own transaction. On SQLite its lock is a no-op
 * (it assumes a single connection), so the whole run happens inside one `BEGIN IMMEDIATE`
 * transaction instead: the second process waits (busy timeout) for the first to commit, then
 * finds nothing left to do.
 */
export async function migrateToLatest(db: Kysely<unknown>, dialect: StoreDialect): Promise<string[]> {
  const migrations: Record<string, Migration> = {};
  for (const [name, m] of Object.entries(MIGRATIONS)) {
    const down = m.down;
    migrations[name] = {
      up: (d) => m.up(d, dialect),
      ...(down === undefined ? {} : { down: (d: Kysely<unknown>) => down(d, dialect) }),
    };
  }
  const migrate = async (on: Kysely<unknown>): Promise<MigrationResultSet> =>
    new Migrator({
      db: on,
      provider: { getMigrations: async () => migrations },
      migrationTableName: MIGRATION_TABLE,
      migrationLockTableName: MIGRATION_LOCK_TABLE,
      disableTransactions: dialect === "sqlite",
    }).migrateToLatest();

  const { error, results } =
    dialect === "postgres"
      ? await migrate(db)
      : await db.connection().execute(async (conn) => {
          await sql`begin immediate`.execute(conn);
          let outcome: MigrationResultSet;
          try {
            outcome = await migrate(conn);
          } catch (err) {
            await sql`rollback`.execute(conn).catch(() => undefined);
            throw err;
          }
          await sql.raw(outcome.error === undefined ? "commit" : "rollback").execute(conn);
          return outcome;
        });
  if (error !== undefined) {
    const failed = results?.find((r) => r.status === "Error")?.migrationName;
    throw new KilnError("internal", `database migration ${failed ?? "set-up"} failed`, { cause: error });
  }
  return (results ?? []).filter((r) => r.status === "Success").map((r) => r.migrationName);
}
