/** Users: accounts, looked up by id or login. Deleting one deletes everything they own. */
import { sql, type Selectable, type Updateable } from "kysely";
import { KilnError } from "../../domain/errors.js";
import { fromBool, fromMillis, toBool, toMillis } from "../codec.js";
import { pageOf } from "../list.js";
import type { UsersTable } from "../schema.js";
import type { NewUser, UserRepo, UserRow } from "../types.js";
import type { RepoContext } from "./context.js";

function toRow(r: Selectable<UsersTable>): UserRow {
  return {
    id: r.id,
    login: r.login,
    email: r.email,
    firstName: r.first_name,
    surname: r.surname,
    passwordHash: r.password_hash,
    admin: fromBool(r.admin),
    active: fromBool(r.active),
    entitlements: parseEntitlements(r.entitlements),
    created: fromMillis(r.created),
    lastModified: fromMillis(r.last_modified),
  };
}

function parseEntitlements(text: string): string[] {
  const parsed: unknown = JSON.parse(text);
  if (!Array.isArray(parsed) || !parsed.every((e) => typeof e === "string")) {
    throw new KilnError("internal", "stored entitlements are not a list of names");
  }
  return parsed;
}

function toColumns(u: Partial<NewUser>): Updateable<UsersTable> {
  const cols: Updateable<UsersTable> = {};
  if (u.login !== undefined) cols.login = u.login;
  if (u.email !== undefined) cols.email = u.email;
  if (u.firstName !== undefined) cols.first_name = u.firstName;
  if (u.surname !== undefined) cols.surname = u.surname;
  if (u.passwordHash !== undefined) cols.password_hash = u.passwordHash;
  if (u.admin !== undefined) cols.admin = toBool(u.admin);
  if (u.active !== undefined) cols.active = toBool(u.active);
  if (u.entitlements !== undefined) cols.entitlements = JSON.stringify(u.entitlements);
  return cols;
}

export function userRepo(ctx: RepoContext): UserRepo {
  const { db } = ctx;
  return {
    async create(u) {
      const now = toMillis(ctx.now());
      const row = await db
        .insertInto("users")
        .values({
          login: u.login,
          email: u.email,
          first_name: u.firstName,
          surname: u.surname,
          password_hash: u.passwordHash,
          admin: toBool(u.admin),
          active: toBool(u.active),
          entitlements: JSON.stringify(u.entitlements),
          created: now,
          last_modified: now,
        })
        .returningAll()
        .executeTakeFirstOrThrow();
      return toRow(row);
    },

    async get(id) {
      const row = await db.selectFrom("users").selectAll().where("id", "=", id).executeTakeFirst();
      return row && toRow(row);
    },

    async getByLogin(login) {
      const row = await db.selectFrom("users").selectAll().where("login", "=", login).executeTakeFirst();
      return row && toRow(row);
    },

    async getByLoginIgnoringCase(login) {
      const row = await db
        .selectFrom("users")
        .selectAll()
        .where(sql<string>`lower(login)`, "=", login.toLowerCase())
        .executeTakeFirst();
      return row && toRow(row);
    },

    async list(c) {
      const filtered = db
        .selectFrom("users")
        .$if(c.active !== undefined, (q) => q.where("active", "=", toBool(c.active === true)));
      return pageOf("users", c, filtered, (q) => q.selectAll(), toRow);
    },

    async update(id, patch) {
      const row = await db
        .updateTable("users")
        .set({ ...toColumns(patch), last_modified: toMillis(ctx.now()) })
        .where("id", "=", id)
        .returningAll()
        .executeTakeFirst();
      return row && toRow(row);
    },

    async delete(id) {
      const r = await db.deleteFrom("users").where("id", "=", id).executeTakeFirst();
      return r.numDeletedRows > 0n;
    },
  };
}
