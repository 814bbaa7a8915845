/**
 * UForge list criteria (`query`, `orderBy`, `descending`, `count`, `offset`) as SQL, shared by
 * every family: which fields may be searched and sorted on, the FIQL `query` as a Kysely
 * condition (never SQL made from the query's text), and the one way a page is cut.
 */
import { sql } from "kysely";
import type { OrderByItemBuilder, RawBuilder, SelectQueryBuilder, SqlBool } from "kysely";
import { KilnError } from "../domain/errors.js";
import { fiqlValue, likePattern, parseFiql, unknownSelector, type FiqlConstraint, type FiqlFieldKind, type FiqlNode } from "../domain/fiql.js";
import type { KilnDatabase } from "./schema.js";
import type { ListCriteria, Page } from "./types.js";

/** The families that have a `list`. */
export type ListFamily = "users" | "apiKeys" | "distributions" | "bundles" | "cloudAccounts" | "templates";

/** A field a list can be searched (`query`) and sorted (`orderBy`) by: its column and what it holds. */
interface ListField {
  column: string;
  kind: FiqlFieldKind;
}

const text = (column: string): ListField => ({ column, kind: "text" });
const num = (column: string): ListField => ({ column, kind: "number" });
const date = (column: string): ListField => ({ column, kind: "date" });
const bool = (column: string): ListField => ({ column, kind: "boolean" });

/**
 * The fields of each family, by the names the wire objects give them (`dbId`, `loginName`,
 * `distribution.name`: what a UForge client puts in `query` and `orderBy`), plus the row names
 * Kiln's first lists accepted for `orderBy` (`id`, `login`, `distributionId`).
 */
const LIST_FIELDS: Record<ListFamily, Record<string, ListField>> = {
  users: {
    dbId: num("users.id"),
    loginName: text("users.login"),
    email: text("users.email"),
    firstName: text("users.first_name"),
    surname: text("users.surname"),
    active: bool("users.active"),
    created: date("users.created"),
    lastModified: date("users.last_modified"),
    login: text("users.login"),
    id: num("users.id"),
  },
  apiKeys: {
    dbId: num("api_keys.id"),
    name: text("api_keys.name"),
    description: text("api_keys.description"),
    publicKey: text("api_keys.public_key"),
    created: date("api_keys.created"),
    lastModified: date("api_keys.last_modified"),
    id: num("api_keys.id"),
  },
  distributions: {
    dbId: num("distributions.id"),
    name: text("distributions.name"),
    version: text("distributions.version"),
    arch: text("distributions.arch"),
    active: bool("distributions.active"),
    created: date("distributions.created"),
    id: num("distributions.id"),
  },
  bundles: {
    dbId: num("bundles.id"),
    name: text("bundles.name"),
    version: text("bundles.version"),
    description: text("bundles.description"),
    release: text("bundles.release"),
    tag: text("bundles.tag"),
    defaultInstallLocation: text("bundles.default_install_location"),
    created: date("bundles.created"),
    lastModified: date("bundles.last_modified"),
    id: num("bundles.id"),
  },
  cloudAccounts: {
    dbId: num("cloud_accounts.id"),
    name: text("cloud_accounts.name"),
    type: text("cloud_accounts.type"),
    endpointUrl: text("cloud_accounts.url"),
    registryUrl: text("cloud_accounts.url"),
    login: text("cloud_accounts.login"),
    created: date("cloud_accounts.created"),
    lastModified: date("cloud_accounts.last_modified"),
    id: num("cloud_accounts.id"),
  },
  templates: {
    dbId: num("templates.id"),
    "distribution.dbId": num("distributions.id"),
    "distribution.name": text("distributions.name"),
    "distribution.version": text("distributions.version"),
    "distribution.arch": text("distributions.arch"),
    created: date("templates.created"),
    lastModified: date("templates.last_modified"),
    distributionId: num("templates.distribution_id"),
    id: num("templates.id"),
  },
};

/**
 * The field names each family's `list` accepts as `orderBy` and in `query`. The API layer may
 * check against these before calling the store; the store refuses anything else with
 * `invalidQuery` anyway.
 */
export const SORTABLE_FIELDS = Object.fromEntries(
  Object.entries(LIST_FIELDS).map(([family, fields]) => [family, Object.keys(fields)]),
) as unknown as Record<ListFamily, readonly string[]>;

/** The wire names of a family's fields (what an error lists: no legacy aliases). */
function documented(family: ListFamily): string[] {
  return Object.keys(LIST_FIELDS[family]).filter((f) => !["id", "login", "distributionId"].includes(f));
}

/** One constraint as SQL: identifiers come from {@link LIST_FIELDS}, values are parameters. */
function constraintSql(c: FiqlConstraint, family: ListFamily, listName: string): RawBuilder<SqlBool> {
  const field = Object.hasOwn(LIST_FIELDS[family], c.selector) ? LIST_FIELDS[family][c.selector]! : unknownSelector(c, listName, documented(family));
  const value = fiqlValue(c, field.kind);
  const column = sql.ref(field.column);
  let equal: RawBuilder<SqlBool>;
  if (field.kind === "text") {
    // Both sides through the database's own lower(), so that they fold case the same way.
    equal = c.wildcard
      ? sql<SqlBool>`lower(${column}) like lower(${likePattern(c.value)}) escape '!'`
      : sql<SqlBool>`lower(${column}) = lower(${value})`;
  } else {
    equal = sql<SqlBool>`${column} = ${field.kind === "boolean" ? (value ? 1 : 0) : value}`;
  }
  switch (c.operator) {
    case "==":
      return equal;
    case "!=":
      // A field without a value is "not equal" to anything (SQL's NULL would drop the row).
      return sql<SqlBool>`(${column} is null or not (${equal}))`;
    default: {
      const op = { "=gt=": ">", "=ge=": ">=", "=lt=": "<", "=le=": "<=" }[c.operator];
      const left = field.kind === "text" ? sql`lower(${column})` : column;
      const right = field.kind === "text" ? sql`lower(${value})` : field.kind === "boolean" ? (value ? 1 : 0) : value;
      return sql<SqlBool>`${left} ${sql.raw(op)} ${right}`;
    }
  }
}

/** A parsed `query` as one SQL condition. */
function fiqlSql(node: FiqlNode, family: ListFamily, listName: string): RawBuilder<SqlBool> {
  if (node.kind === "constraint") return constraintSql(node, family, listName);
  const parts = node.items.map((n) => fiqlSql(n, family, listName));
  return sql<SqlBool>`(${sql.join(parts, node.kind === "and" ? sql` and ` : sql` or `)})`;
}

/** What an error calls each family's list (its UForge root element). */
const LIST_NAMES: Record<ListFamily, string> = {
  users: "users",
  apiKeys: "apiKeyPairs",
  distributions: "distributions",
  bundles: "mySoftwareList",
  cloudAccounts: "credAccounts",
  templates: "containerTemplates",
};

/** Large enough to mean "no limit" on both databases (SQLite needs a LIMIT before an OFFSET). */
const NO_LIMIT = Number.MAX_SAFE_INTEGER;

function checkCriteria(family: ListFamily, c: ListCriteria): ListField {
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
  return LIST_FIELDS[family][field]!;
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
  const searched = c.query !== undefined && c.query !== "" ? filtered.where(fiqlSql(parseFiql(c.query), family, LIST_NAMES[family])) : filtered;
  const counted = await searched.select(sql<number | string>`count(*)`.as("n")).executeTakeFirstOrThrow();
  const total = Number(counted.n);

  const desc = c.descending === true;
  const modifiers = (ob: OrderByItemBuilder): OrderByItemBuilder => (desc ? ob.desc().nullsLast() : ob.asc().nullsFirst());
  let q = select(searched);
  if (sort.kind === "text") q = q.orderBy(sql`lower(${sql.ref(sort.column)})`, modifiers);
  q = q.orderBy(sql.ref(sort.column), modifiers);
  const idColumn = LIST_FIELDS[family]["id"]!;
  if (idColumn.column !== sort.column) q = q.orderBy(sql.ref(idColumn.column), desc ? "desc" : "asc");
  if (c.count !== undefined || c.offset !== undefined) q = q.limit(c.count ?? NO_LIMIT).offset(c.offset ?? 0);
  const raws = await q.execute();
  return { items: raws.map(toRow), total };
}
