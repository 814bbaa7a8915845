/**
 * Users, API keys and the platform status.
 */
import { fail, isKilnError } from "../domain/errors.js";
import type { ApiContext, HandlerMap } from "../server/app.js";
import { newApiKeyPair } from "../server/auth.js";
import { USER_ENTITLEMENTS, allEntitlements } from "../server/endpoints.js";
import { parseBooleanParam, parseCriteria, pathIds, readObject, sendCreated, sendList, sendNoContent, sendObject, sendBody, type Query } from "../server/http.js";
import { generatePassword, hashPassword } from "../server/passwords.js";
import { SORTABLE_FIELDS } from "../store/store.js";
import type { UserRow } from "../store/types.js";
import { optionalString, requiredString } from "../library/fields.js";
import { apiKeyWire, userWire } from "../library/representations.js";

const LOGIN_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const VERSION = process.env.npm_package_version ?? "0.1.0";

function checkPassword(pw: string): string {
  if (pw.length < 8) fail("invalidField", "user.password must have at least 8 characters");
  if (pw.length > 1024) fail("invalidField", "user.password is too long");
  return pw;
}

export function userHandlers(ctx: ApiContext): HandlerMap {
  return {
    global: {
      async uforgeStatus_get(req, reply) {
        const plain = /^text\/plain/i.test(req.headers.accept ?? "");
        // Alive means able to serve: without its database or its blob store Kiln cannot (503,
        // saying which). The headers say which process answered and what it reaches.
        const [database, blobStore] = await Promise.allSettled([ctx.store.ping(), ctx.blobs.ping()]);
        reply.header("X-Kiln-Role", ctx.config.role);
        reply.header("X-Kiln-Database", database.status === "fulfilled" ? "reachable" : "unreachable");
        reply.header("X-Kiln-Blob-Store", blobStore.status === "fulfilled" ? "reachable" : "unreachable");
        const failed = [database, blobStore].find((r): r is PromiseRejectedResult => r.status === "rejected");
        if (failed) {
          const err: unknown = failed.reason;
          if (!plain || !isKilnError(err)) throw err;
          for (const [k, v] of Object.entries(err.headers)) reply.header(k, v);
          return reply.code(err.status).type("text/plain; charset=utf-8").send(`unavailable: ${err.message}`);
        }
        if (plain) return reply.type("text/plain; charset=utf-8").send(`alive (role ${ctx.config.role})`);
        return sendBody(req, reply, 200, "serviceStatus", { alive: true, version: VERSION, serviceLoad: 0 });
      },

      async user_getAll(req, reply) {
        const criteria = parseCriteria(req.query as Query, SORTABLE_FIELDS.users);
        const active = parseBooleanParam(req.query as Query, "active");
        const page = await ctx.store.users.list({ ...criteria, ...(active === undefined ? {} : { active }) });
        return sendList(req, reply, "users", { total: page.total, users: page.items.map((u) => userWire(u)) });
      },

      async user_create(req, reply, call) {
        if (!call.principal?.user.admin) fail("forbidden", "only an administrator can create users");
        const q = req.query as Query;
        const { value } = await readObject(req, "user");
        const login = requiredString(value, "user", "loginName");
        if (!LOGIN_RE.test(login)) fail("invalidField", `user.loginName "${login}" must be 1-64 letters, digits, dots, dashes or underscores, starting with a letter or digit`);
        const clash = await ctx.store.users.getByLoginIgnoringCase(login);
        if (clash) fail("conflict", clash.login === login ? `a user ${login} already exists` : `a user ${clash.login} already exists: logins are unique whatever their case`);
        const auto = parseBooleanParam(q, "autopasswd") === true;
        const given = optionalString(value, "user", "password");
        if (!auto && given === undefined) fail("invalidField", "user.password is required (or use ?autopasswd=true)");
        const password = auto ? generatePassword() : checkPassword(given!);
        const admin = parseBooleanParam(q, "admin") === true || value.admin === true;
        const user = await ctx.store.users.create({
          login,
          email: optionalString(value, "user", "email") ?? null,
          firstName: optionalString(value, "user", "firstName") ?? null,
          surname: optionalString(value, "user", "surname") ?? null,
          passwordHash: await hashPassword(password),
          admin,
          active: value.active !== false,
          entitlements: admin ? allEntitlements(ctx.endpoints) : [...USER_ENTITLEMENTS],
        });
        // A generated password is shown once, in this answer.
        return sendCreated(req, reply, "user", userWire(user, auto ? { password } : {}));
      },
    },
    user: {
      async user_get(req, reply, { owner }) {
        return sendObject(req, reply, "user", userWire(owner));
      },

      async user_update(req, reply, call) {
        const target = call.owner;
        const actor = call.principal!.user;
        const { value } = await readObject(req, "user");
        const patch: Partial<Omit<UserRow, "id" | "created" | "lastModified">> = {};
        for (const f of ["email", "firstName", "surname"] as const) {
          const v = optionalString(value, "user", f);
          if (v !== undefined) patch[f] = v;
        }
        const pw = optionalString(value, "user", "password");
        if (pw !== undefined) patch.passwordHash = await hashPassword(checkPassword(pw));
        if (value.loginName !== undefined && value.loginName !== target.login) fail("invalidField", "user.loginName cannot be changed");
        // A user may send back what they read (the docs' example sends `active` unchanged): only a change needs an administrator.
        if ((value.active !== undefined && value.active !== target.active) || (value.admin !== undefined && value.admin !== target.admin)) {
          if (!actor.admin) fail("forbidden", "only an administrator can change user.active or user.admin");
          if (typeof value.active === "boolean") patch.active = value.active;
          if (typeof value.admin === "boolean" && value.admin !== target.admin) {
            if (target.id === actor.id) fail("invalidField", "an administrator cannot change their own admin flag");
            patch.admin = value.admin;
            patch.entitlements = value.admin ? allEntitlements(ctx.endpoints) : [...USER_ENTITLEMENTS];
          }
        }
        const updated = await ctx.store.users.update(target.id, patch);
        if (!updated) fail("notFound", `no user ${target.login}`);
        return sendObject(req, reply, "user", userWire(updated));
      },

      async apiKey_getAll(req, reply, { owner: u }) {
        const page = await ctx.store.apiKeys.list(u.id, parseCriteria(req.query as Query, SORTABLE_FIELDS.apiKeys));
        return sendList(req, reply, "apiKeyPairs", { total: page.total, apiKeyPairs: page.items.map((k) => apiKeyWire(u.login, k)) });
      },

      async apiKey_create(req, reply, { owner: u }) {
        const { value } = await readObject(req, "apiKeyPair");
        const { publicKey, secret } = newApiKeyPair();
        const key = await ctx.store.apiKeys.create({
          userId: u.id,
          name: optionalString(value, "apiKeyPair", "name") ?? null,
          description: optionalString(value, "apiKeyPair", "description") ?? null,
          publicKey,
          secretEnc: ctx.secrets.encrypt(secret),
        });
        return sendCreated(req, reply, "apiKeyPair", apiKeyWire(u.login, key, secret));
      },

      async apiKey_update(req, reply, { owner: u }) {
        const id = pathIds(req, "akid").akid;
        const { value } = await readObject(req, "apiKeyPair");
        const patch: { name?: string | null; description?: string | null } = {};
        const name = optionalString(value, "apiKeyPair", "name");
        if (name !== undefined) patch.name = name;
        const description = optionalString(value, "apiKeyPair", "description");
        if (description !== undefined) patch.description = description;
        const key = await ctx.store.apiKeys.update(u.id, id, patch);
        if (!key) fail("notFound", `no API key ${id}`);
        return sendObject(req, reply, "apiKeyPair", apiKeyWire(u.login, key));
      },

      async apiKey_delete(req, reply, { owner: u }) {
        const id = pathIds(req, "akid").akid;
        if (!(await ctx.store.apiKeys.delete(u.id, id))) fail("notFound", `no API key ${id}`);
        return sendNoContent(reply);
      },
    },
  };
}
