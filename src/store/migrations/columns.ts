/**
 * Column shapes whose SQL differs between the two databases. Migrations use these and
 * otherwise stick to Kysely's portable schema builder, so one migration runs on both.
 */
import type { ColumnDefinitionBuilder } from "kysely";
import type { StoreDialect } from "./index.js";

/**
 * An integer primary key the database numbers itself. SQLite's AUTOINCREMENT (not just
 * `integer primary key`) and PostgreSQL's identity both never hand out an id twice: a deleted
 * object's id must not come back as someone else's, since ids end up in URLs and download keys.
 */
export function autoId(dialect: StoreDialect): (col: ColumnDefinitionBuilder) => ColumnDefinitionBuilder {
  return dialect === "postgres"
    ? (col) => col.primaryKey().generatedByDefaultAsIdentity()
    : (col) => col.primaryKey().autoIncrement();
}
