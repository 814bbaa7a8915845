/**
 * UForge list criteria (`query`, `orderBy`, `descending`, `count`, `offset`) as SQL, shared by
 * every family: which fields may be sorted on, which columns `query` searches, and the one way
 * a page is cut.
 */
import { sql } from "kysely";
import type { Expression, OrderByItemBuilder, SelectQueryBuilder, SqlBool } from "kysely";
import { KilnError } from "../domain/errors.js";
import type { KilnDatabase } from "./schema.js";
import type { ListCriteria, Page } from "./types.js";

/** The families that have a `list`. */
export type ListFamily = "users" | "apiKeys" | "distributions" | "bundles" | "cloudAccounts" | "templates";

/**
 * The row field names each family's `list` accepts as `orderBy`. The API layer may check against
 * these before calling the store; the store refuses anything else with `invalidQuery` anyway.
 */
export const SORTABLE_FIELDS = {
  users: ["login", "email", "firstName", "surname", "created", "lastModified", "id"],
  apiKeys: ["name", "created", "lastModified", "id"],
  distributions: ["name", "version", "arch", "created", "id"],
  bundles: ["name", "version", "created", "lastModified", "id"],
  cloudAccounts: ["name", "type", "created", "lastModified", "id"],
  templates: ["distributionId", "created", "lastModified", "id"],
} as const satisfies Record<ListFamily, readonly string[]>;

/** A sort key's column and whether it is text (sorted case-insensitively, see {@link pageOf}). */
interface SortColumn {
  column: string;
  text: boolean;
}

const SORT_COLUMNS: { [F in ListFamily]: Record<(typeof SORTABLE_FIELDS)[F][number], SortColumn> } = {
  users: {
    login: { column: "users.login", text: true },
    email: { column: "users.email", text: true },
    firstName: { column: "users.first_name", text: true },
    surname: { column: "users.surname", text: true },
    created: { column: "users.created", text: false },
    lastModified: { column: "users.last_modified", text: false },
    id: { column: "users.id", text: false },
  },
  apiKeys: {
    name: { column: "api_keys.name", text: true },
    created: { column: "api_keys.created", text: false },
    lastModified: { column: "api_keys.last_modified", text: false },
    id: { column: "api_keys.id", text: false },
  },
  distributions: {
    name: { column: "distributions.name", text: true },
    version: { column: "distributions.version", text: true },
    arch: { column: "distributions.arch", text: true },
    created: { column: "distributions.created", text: false },
    id: { column: "distributions.id", text: false },
  },
  bundles: {
    name: { column: "bundles.name", text: true },
    version: { column: "bundles.version", text: true },
    created: { column: "bundles.created", text: false },
    lastModified: { column: "bundles.last_modified", text: false },
    id: { column: "bundles.id", text: false },
  },
  cloudAccounts: {
    name: { column: "cloud_accounts.name", text: true },
    type: { column: "cloud_accounts.type", text: true },
    created: { column: "cloud_accounts.created", text: false },
    lastModified: { column: "cloud_accounts.last_modified", text: false },
    id: { column: "cloud_accounts.id", text: false },
  },
  templates: {
    distributionId: { column: "templates.distribution_id", text: false },
    created: { column: "templates.created", text: false },
    lastModified: { column: "templates.last_modified", text: false },
    id: { column: "templates.id", text: false },
  },
};

/**
 * The columns `query` is matched against. Templates have no text of their own: they are found by
 * their distribution's name, version or architecture (the list query joins `distributions`).
 */
export const SEARCH_COLUMNS: Record<ListFamily, readonly string[]> = {
  users: ["users.login", "users.email", "users.first_name", "users.surname"],
  apiKeys: ["api_keys.name", "api_keys.description", "api_keys.public_key"],
  distributions: ["distributions.name", "distributions.version", "distributions.arch"],
  bundles: ["bundles.name", "bundles.version", "bundles.description", "bundles.tag"],
  cloudAccounts: ["cloud_accounts.name", "cloud_accounts.url", "cloud_accounts.login"],
  templates: ["distributions.name", "distributions.version", "distributions.arch"],
};

/** Large enough to mean "no limit" on both databases (SQLite needs a LIMIT before an OFFSET). */
const NO_LIMIT = Number.MAX_SAFE_INTEGER;

function checkCriteria(family: ListFamily, c: ListCriteria): SortColumn {
  const allowed: readonly string[] = SORTABLE_FIELDS[family];
  const field = c.orderBy ?? "id";
  if (!allowed.includes(field)) {
    throw new KilnError("invalidQuery", `cannot order by "${field}": use one of ${allowed.join(", ")}`);
  }
  for (const [name, v] of [["count", c.count], ["offset", c.offset]] as const) {
    if (v !== undefined && (!Number.isSafeInteger(v) || v < 0)) {
      throw new KilnError("invalidQuery", `${name} must be a whole number of 0 or more`);
    }
  }
  return (SORT_COLUMNS[family] as Record<string, SortColumn>)[field] as SortColumn;
}

/**
 * Case-insensitive substring match of `query` on any of `columns`. `%`, `_` and `!` in the query
 * match themselves. Both sides go through the database's own `lower()` so that they fold case
 * the same way (SQLite's folds ASCII only; PostgreSQL's follows the database's locale).
 */
export function matchesQuery(columns: readonly string[], query: string): Expression<SqlBool> {
  const pattern = `%${query.replace(/[!%_]/g, (ch) => `!${ch}`)}%`;
  return sql<SqlBool>`(${sql.join(
    columns.map((col) => sql`lower(${sql.ref(col)}) like lower(${pattern}) escape '!'`),
    sql` or `,
  )})`;
}

/**
 * Runs a list: `filtered` carries the family's ownership conditions; `pageOf` adds the search,
 * counts the matches (before paging), then reads one page in a deterministic order.
 *
 * Text keys sort case-insensitively first (what a person expects of a name list), then by their
 * exact value, then by id in the same direction, so equal keys never swap between pages. NULLs
 * sort as the smallest value on both databases (PostgreSQL's default is the opposite).
 */
export async function pageOf<TB extends keyof KilnDatabase, R, Row>(
  family: ListFamily,
  c: ListCriteria,
  filtered: SelectQueryBuilder<KilnDatabase, TB, {}>,
  select: (qb: SelectQueryBuilder<KilnDatabase, TB, {}>) => SelectQueryBuilder<KilnDatabase, TB, R>,
  toRow: (raw: R) => Row,
): Promise<Page<Row>> {
  const sort = checkCriteria(family, c);
  const searched =
    c.query !== undefined && c.query !== "" ? filtered.where(matchesQuery(SEARCH_COLUMNS[family], c.query)) : filtered;
  const counted = await searched.select(sql<number | string>`count(*)`.as("n")).executeTakeFirstOrThrow();
  const total = Number(counted.n);

  const desc = c.descending === true;
  const modifiers = (ob: OrderByItemBuilder): OrderByItemBuilder => (desc ? ob.desc().nullsLast() : ob.asc().nullsFirst());
  let q = select(searched);
  if (sort.text) q = q.orderBy(sql`lower(${sql.ref(sort.column)})`, modifiers);
  q = q.orderBy(sql.ref(sort.column), modifiers);
  const idColumn = (SORT_COLUMNS[family] as Record<string, SortColumn>)["id"] as SortColumn;
  if (idColumn.column !== sort.column) q = q.orderBy(sql.ref(idColumn.column), desc ? "desc" : "asc");
  if (c.count !== undefined || c.offset !== undefined) q = q.limit(c.count ?? NO_LIMIT).offset(c.offset ?? 0);
  const raws = await q.execute();
  return { items: raws.map(toRow), total };
}
