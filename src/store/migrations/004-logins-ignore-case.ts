/**
 * Logins are unique whatever their case: `ALICE` beside `alice` would be two accounts that people
 * (and case-insensitive systems downstream: mail, LDAP, registries) take for one. A unique index
 * on the lower-cased login makes the database itself refuse the second, race-free. Logins are
 * ASCII (the API checks them), where both databases' `lower()` agree.
 */
import { sql } from "kysely";
import type { Kysely } from "kysely";
import type { KilnMigration } from "./index.js";

async function up(db: Kysely<unknown>): Promise<void> {
  const clashes = await sql<{ folded: string }>`select lower(login) as folded from users group by lower(login) having count(*) > 1`.execute(db);
  if (clashes.rows.length > 0) {
    // An index cannot be made over them; which account to keep is the operator's decision.
    throw new Error(`logins that differ only in case must be merged or renamed first: ${clashes.rows.map((r) => r.folded).join(", ")}`);
  }
  await db.schema.createIndex("users_login_folded").on("users").unique().expression(sql`lower(login)`).execute();
}

export const loginsIgnoreCase: KilnMigration = { up };
