/**
 * Cloud accounts: the registries images are published to. Docker accounts hold an endpoint URL,
 * a login and a password; OpenShift accounts a registry URL and a token. Secrets are sealed at
 * rest and never sent back.
 */
import { fail } from "../domain/errors.js";
import type { CloudAccountRow, CloudAccountType, ListCriteria, NewCloudAccount, Page, UserRow } from "../store/types.js";
import type { AnyCredAccount, CredAccountDocker, CredAccountOpenShift } from "../wire/index.js";
import type { LibraryDeps, Sealer } from "./context.js";
import { optionalString, requiredString } from "./fields.js";
import { accountWire } from "./representations.js";

const TYPES: Partial<Record<string, CloudAccountType>> = { CredAccountDocker: "docker", CredAccountOpenShift: "openshift" };

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
  if (url.pathname !== "/" && url.pathname !== "") fail("invalidField", `${what} must be a registry host, without a path (got "${url.pathname}")`);
  if (url.search || url.hash) fail("invalidField", `${what} must not have a query or fragment`);
  return `${url.protocol}//${url.host}`;
}

export type AccountFields = Partial<NewCloudAccount> & { type: CloudAccountType };

/** The fields a client sets on an account; on update (`existing`), each is optional. */
export function accountFields(secrets: Sealer, value: AnyCredAccount, existing: CloudAccountRow | undefined, options: { nameOptional?: boolean } = {}): AccountFields {
  const xsiType = value.xsiType;
  const type = xsiType ? TYPES[xsiType] : existing?.type;
  if (!type) fail("invalidField", `credAccount must be of xsi:type CredAccountDocker or CredAccountOpenShift${xsiType ? `, not ${xsiType}` : ""}`);
  if (existing && existing.type !== type) fail("invalidField", `a ${existing.type} account cannot become ${type}`);
  const out: AccountFields = { type };
  const name = existing || options.nameOptional ? optionalString(value, "credAccount", "name", 255) : requiredString(value, "credAccount", "name", 255);
  if (name !== undefined) out.name = name;
  if (type === "docker") {
    const docker = value as CredAccountDocker;
    const url = existing ? optionalString(docker, "credAccount", "endpointUrl", 1024) : requiredString(docker, "credAccount", "endpointUrl", 1024);
    if (url !== undefined) out.url = checkRegistryUrl(url, "credAccount.endpointUrl");
    const login = existing ? optionalString(docker, "credAccount", "login", 255) : requiredString(docker, "credAccount", "login", 255);
    if (login !== undefined) out.login = login;
    const password = existing ? optionalString(docker, "credAccount", "password") : requiredString(docker, "credAccount", "password");
    if (password !== undefined) out.secretEnc = secrets.encrypt(password);
  } else {
    const openshift = value as CredAccountOpenShift;
    const url = existing ? optionalString(openshift, "credAccount", "registryUrl", 1024) : requiredString(openshift, "credAccount", "registryUrl", 1024);
    if (url !== undefined) out.url = checkRegistryUrl(url, "credAccount.registryUrl");
    const token = existing ? optionalString(openshift, "credAccount", "token") : requiredString(openshift, "credAccount", "token");
    if (token !== undefined) out.secretEnc = secrets.encrypt(token);
    out.login = null;
  }
  return out;
}

export function accountOperations(deps: LibraryDeps) {
  const { store } = deps;

  async function load(owner: UserRow, caid: number): Promise<CloudAccountRow> {
    const a = await store.cloudAccounts.get(owner.id, caid);
    if (!a) fail("notFound", `no cloud account ${caid}`);
    return a;
  }

  return {
    async list(owner: UserRow, criteria: ListCriteria): Promise<Page<AnyCredAccount>> {
      const page = await store.cloudAccounts.list(owner.id, criteria);
      return { total: page.total, items: page.items.map((a) => accountWire(owner.login, a)) };
    },

    async create(owner: UserRow, value: AnyCredAccount): Promise<AnyCredAccount> {
      const f = accountFields(deps.secrets, value, undefined);
      const a = await store.cloudAccounts.create({ userId: owner.id, name: f.name!, type: f.type, url: f.url!, login: f.login ?? null, secretEnc: f.secretEnc! });
      return accountWire(owner.login, a);
    },

    async get(owner: UserRow, caid: number): Promise<AnyCredAccount> {
      return accountWire(owner.login, await load(owner, caid));
    },

    async update(owner: UserRow, caid: number, value: AnyCredAccount): Promise<AnyCredAccount> {
      const a = await load(owner, caid);
      const { type: _type, ...patch } = accountFields(deps.secrets, value, a);
      const updated = await store.cloudAccounts.update(owner.id, a.id, patch);
      if (!updated) fail("notFound", `no cloud account ${a.id}`);
      return accountWire(owner.login, updated);
    },

    async delete(owner: UserRow, caid: number): Promise<void> {
      const a = await load(owner, caid);
      await store.cloudAccounts.delete(owner.id, a.id);
    },

    /** Container registries have no resources in UForge's sense (regions, networks, ...): none. */
    async resources(owner: UserRow, caid: number): Promise<[]> {
      await load(owner, caid);
      return [];
    },
  };
}

export type AccountOperations = ReturnType<typeof accountOperations>;
