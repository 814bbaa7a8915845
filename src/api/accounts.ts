/**
 * Cloud accounts: the registries images are published to. Docker accounts hold an endpoint URL,
 * a login and a password; OpenShift accounts a registry URL and a token. Secrets are encrypted
 * at rest and never sent back.
 */
import { fail } from "../domain/errors.js";
import type { ApiContext, Call, HandlerMap } from "../server/app.js";
import { parseCriteria, parseId, readObject, sendCreated, sendList, sendNoContent, sendObject, sendBody } from "../server/http.js";
import { SORTABLE_FIELDS } from "../store/store.js";
import type { CloudAccountRow, CloudAccountType, NewCloudAccount, UserRow } from "../store/types.js";
import { accountWire, uris, type Wire } from "./representations.js";
import { optionalString, requiredString } from "./values.js";

function ownerOf(call: Call): UserRow {
  if (!call.owner) fail("unauthorized", "authentication required");
  return call.owner;
}

const TYPES: Record<string, CloudAccountType> = { CredAccountDocker: "docker", CredAccountOpenShift: "openshift" };

/**
 * A registry endpoint: `https://registry.example.com`, `http://127.0.0.1:5000`, or a bare host
 * (`docker.io`, `ghcr.io`), which means HTTPS. No path beyond `/`, no credentials in the URL.
 */
export function checkRegistryUrl(raw: string, what: string): string {
  const text = /^[a-z][a-z0-9+.-]*:\/\//i.test(raw) ? raw : `https://${raw}`;
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    fail("invalidField", `${what} "${raw}" is not a URL`);
  }
  if (url.protocol !== "https:" && url.protocol !== "http:") fail("invalidField", `${what} must be an http:// or https:// URL, got "${raw}"`);
  if (url.username || url.password) fail("invalidField", `${what} must not carry credentials: use the account's login and password`);
  if (url.pathname !== "/" && url.pathname !== "" ) fail("invalidField", `${what} must be a registry host, without a path (got "${url.pathname}")`);
  if (url.search || url.hash) fail("invalidField", `${what} must not have a query or fragment`);
  return `${url.protocol}//${url.host}`;
}

function accountFields(ctx: ApiContext, value: Wire, existing: CloudAccountRow | undefined): Partial<NewCloudAccount> & { type: CloudAccountType } {
  const xsiType = value.xsiType as string | undefined;
  const type = xsiType ? TYPES[xsiType] : existing?.type;
  if (!type) fail("invalidField", `credAccount must be of xsi:type CredAccountDocker or CredAccountOpenShift${xsiType ? `, not ${xsiType}` : ""}`);
  if (existing && existing.type !== type) fail("invalidField", `a ${existing.type} account cannot become ${type}`);
  const out: Partial<NewCloudAccount> & { type: CloudAccountType } = { type };
  const name = existing ? optionalString(value, "credAccount", "name", 255) : requiredString(value, "credAccount", "name", 255);
  if (name !== undefined) out.name = name;
  if (type === "docker") {
    const url = existing ? optionalString(value, "credAccount", "endpointUrl", 1024) : requiredString(value, "credAccount", "endpointUrl", 1024);
    if (url !== undefined) out.url = checkRegistryUrl(url, "credAccount.endpointUrl");
    const login = existing ? optionalString(value, "credAccount", "login", 255) : requiredString(value, "credAccount", "login", 255);
    if (login !== undefined) out.login = login;
    const password = existing ? optionalString(value, "credAccount", "password") : requiredString(value, "credAccount", "password");
    if (password !== undefined) out.secretEnc = ctx.secrets.encrypt(password);
  } else {
    const url = existing ? optionalString(value, "credAccount", "registryUrl", 1024) : requiredString(value, "credAccount", "registryUrl", 1024);
    if (url !== undefined) out.url = checkRegistryUrl(url, "credAccount.registryUrl");
    const token = existing ? optionalString(value, "credAccount", "token") : requiredString(value, "credAccount", "token");
    if (token !== undefined) out.secretEnc = ctx.secrets.encrypt(token);
    out.login = null;
  }
  return out;
}

export function accountHandlers(ctx: ApiContext): HandlerMap {
  async function load(call: Call, raw: string | undefined): Promise<CloudAccountRow> {
    const u = ownerOf(call);
    const id = parseId(raw, "caid");
    const a = await ctx.store.cloudAccounts.get(u.id, id);
    if (!a) fail("notFound", `no cloud account ${id}`);
    return a;
  }
  return {
    async cloudAccount_getAll(req, reply, call) {
      const u = ownerOf(call);
      const page = await ctx.store.cloudAccounts.list(u.id, parseCriteria(req.query as Record<string, string>, SORTABLE_FIELDS.cloudAccounts));
      return sendList(req, reply, "credAccounts", { total: page.total, credAccounts: page.items.map((a) => accountWire(u.login, a)) });
    },

    async cloudAccount_create(req, reply, call) {
      const u = ownerOf(call);
      const { value } = await readObject(req, "credAccount");
      const f = accountFields(ctx, value, undefined);
      const a = await ctx.store.cloudAccounts.create({ userId: u.id, name: f.name!, type: f.type, url: f.url!, login: f.login ?? null, secretEnc: f.secretEnc! });
      return sendCreated(req, reply, "credAccount", accountWire(u.login, a), uris.account(u.login, a.id));
    },

    async cloudAccount_get(req, reply, call) {
      const a = await load(call, (req.params as Record<string, string>).caid);
      return sendObject(req, reply, "credAccount", accountWire(call.owner!.login, a));
    },

    async cloudAccount_update(req, reply, call) {
      const a = await load(call, (req.params as Record<string, string>).caid);
      const { value } = await readObject(req, "credAccount");
      const { type: _type, ...patch } = accountFields(ctx, value, a);
      const updated = await ctx.store.cloudAccounts.update(a.userId, a.id, patch);
      if (!updated) fail("notFound", `no cloud account ${a.id}`);
      return sendObject(req, reply, "credAccount", accountWire(call.owner!.login, updated));
    },

    async cloudAccount_delete(req, reply, call) {
      const a = await load(call, (req.params as Record<string, string>).caid);
      await ctx.store.cloudAccounts.delete(a.userId, a.id);
      return sendNoContent(reply);
    },

    async cloudAccountResources_get(req, reply, call) {
      // Container registries have no "resources" in UForge's sense (regions, networks, ...):
      // the account's resources are an empty list.
      await load(call, (req.params as Record<string, string>).caid);
      return sendBody(req, reply, 200, "credAccountResources", { resources: [] });
    },
  };
}
