/**
 * A Kiln server for API tests: a fresh data directory, a kiln.yaml pointing at the local mirror,
 * the real store and blob store, and `request()` — Fastify's `inject()` that checks every XML
 * body it receives against uforge.xsd with xmllint (a test fails on any schema error).
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import type { InjectOptions, LightMyRequestResponse } from "fastify";
import { loadConfig, type KilnConfig } from "../../src/server/config.js";
import { openRuntime, type Runtime } from "../../src/server/serve.js";
import { assertValidXml } from "./xsd.js";
import { MIRROR_DIR } from "./global-setup.js";

export const ADMIN_PASSWORD = "root-password-for-tests";

export interface TestServer {
  rt: Runtime;
  config: KilnConfig;
  dataDir: string;
  /** inject() plus XSD validation of XML answers. */
  request(opts: InjectOptions & { user?: string; password?: string }): Promise<LightMyRequestResponse>;
  /** Creates a user (as root) and returns its password. */
  createUser(login: string, password?: string): Promise<string>;
  close(): Promise<void>;
}

export function basic(user: string, password: string): string {
  return `Basic ${Buffer.from(`${user}:${password}`).toString("base64")}`;
}

export function kilnYaml(mirror = `file://${MIRROR_DIR}/`): string {
  return [
    "distributions:",
    "  - name: Debian",
    '    version: "12"',
    "    arch: x86_64",
    `    mirror: ${mirror}`,
    "    suite: bookworm",
    "    components: [main]",
    "    keyring: none",
    "",
  ].join("\n");
}

/** `logger`: the server's logger options (none by default), e.g. `{ stream }` to read what it logs. */
export async function startTestServer(
  options: { env?: Record<string, string>; yaml?: string; databaseUrl?: string; dataDir?: string; logger?: Record<string, unknown>; sweeper?: NonNullable<Parameters<typeof openRuntime>[1]>["sweeper"] } = {},
): Promise<TestServer> {
  // A given directory outlives the server (restart tests); a fresh one is removed at close.
  const dataDir = options.dataDir ?? mkdtempSync(path.join(tmpdir(), "kiln-api-"));
  const configFile = path.join(dataDir, "kiln.yaml");
  writeFileSync(configFile, options.yaml ?? kilnYaml());
  const config = loadConfig({
    KILN_DATA_DIR: path.join(dataDir, "data"),
    KILN_CONFIG: configFile,
    KILN_ADMIN_PASSWORD: ADMIN_PASSWORD,
    ...(options.databaseUrl ? { KILN_DATABASE_URL: options.databaseUrl } : {}),
    ...options.env,
  });
  const rt = await openRuntime(config, { logger: options.logger ?? false, announce: () => undefined, ...(options.sweeper ? { sweeper: options.sweeper } : {}) });
  const server: TestServer = {
    rt,
    config,
    dataDir,
    async request(opts) {
      const { user, password, ...rest } = opts;
      const headers = { ...(rest.headers ?? {}) } as Record<string, string>;
      if (user !== undefined) headers.authorization = basic(user, password ?? (user === "root" ? ADMIN_PASSWORD : `${user}-password`));
      const res = await rt.app.inject({ ...rest, headers });
      const type = String(res.headers["content-type"] ?? "");
      if (/xml/.test(type) && res.body.length > 0) await assertValidXml(res.body);
      return res;
    },
    async createUser(login, password = `${login}-password`) {
      if (await rt.deps.store.users.getByLogin(login)) return password;
      const res = await server.request({
        method: "POST",
        url: "/api/users",
        user: "root",
        headers: { "content-type": "application/xml" },
        payload: `<ns0:user xmlns:ns0="http://www.usharesoft.com/uforge"><loginName>${login}</loginName><email>${login}@example.com</email><password>${password}</password></ns0:user>`,
      });
      if (res.statusCode !== 201) throw new Error(`cannot create user ${login}: ${res.statusCode} ${res.body}`);
      return password;
    },
    async close() {
      await rt.close();
      if (!options.dataDir) rmSync(dataDir, { recursive: true, force: true });
    },
  };
  return server;
}

/** The `localizedErrorMsg.message` of a uforgeError body (XML or JSON). */
export function errorMessage(res: LightMyRequestResponse): string {
  if (/json/.test(String(res.headers["content-type"]))) return (res.json() as { localizedErrorMsg?: { message?: string } }).localizedErrorMsg?.message ?? "";
  return /<message>([\s\S]*?)<\/message>/.exec(res.body)?.[1] ?? "";
}

/** Text of the first `<tag>` in an XML body. */
export function xmlField(body: string, tag: string): string | undefined {
  const m = new RegExp(`<${tag}>([\\s\\S]*?)</${tag}>`).exec(body);
  return m?.[1];
}

/** An OpStatus as the JSON representation gives it. */
export interface JsonStatus {
  percentage: number;
  message?: string;
  complete: boolean;
  error: boolean;
  cancelled: boolean;
  errorMessage?: string;
  detailedErrorMsg?: string;
  bytesLoaded?: number;
  bytesTotal?: number;
}

type Method = "GET" | "POST" | "PUT" | "DELETE";

/** A JSON client for one user of a test server, and a status poller. */
export function jsonClient(server: TestServer, user: string) {
  async function api<T = Record<string, unknown>>(method: Method, url: string, body?: unknown): Promise<{ status: number; json: T; res: LightMyRequestResponse }> {
    const res = await server.request({
      method,
      url: url.startsWith("/api/") ? url : `/api/${url}`,
      user,
      headers: { "content-type": "application/json", accept: "application/json" },
      ...(body === undefined ? {} : { payload: JSON.stringify(body) }),
    });
    return { status: res.statusCode, json: (res.body ? res.json() : {}) as T, res };
  }
  /** Polls a status until `until` holds (default: it ended), checking that the percentage never goes down. */
  async function waitFor(statusUri: string, until: (s: JsonStatus) => boolean = (s) => s.complete || s.error || s.cancelled, timeoutMs = 120_000): Promise<JsonStatus> {
    const started = Date.now();
    let last = 0;
    for (;;) {
      const s = (await api<JsonStatus>("GET", statusUri)).json;
      if (s.percentage < last) throw new Error(`the percentage of ${statusUri} went down from ${last} to ${s.percentage}`);
      last = s.percentage;
      if (until(s)) return s;
      if (Date.now() - started > timeoutMs) throw new Error(`timed out waiting on ${statusUri}: ${JSON.stringify(s)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  return { api, waitFor };
}
