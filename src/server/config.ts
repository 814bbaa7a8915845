/**
 * Kiln's configuration: environment variables (the fixed interface of design.md) and the
 * optional `kiln.yaml` that lists the distributions Kiln offers.
 */
import { existsSync, readFileSync } from "node:fs";
import { cpus } from "node:os";
import path from "node:path";
import { createRequire } from "node:module";
import type { parse as parseYamlType } from "yaml";
import { SIGNATURE_SCHEMES, type SignatureScheme } from "../domain/api-key-signature.js";
import { DEBIAN_ARCHIVE_KEYRING, debianArch, distributionLabel, type DistributionConfig } from "../domain/distributions.js";
import { KilnError } from "../domain/errors.js";
import { lazy } from "../domain/lazy.js";
import { parseAllowList, type AllowEntry } from "../registry/egress.js";
import { DEFAULT_BLOB_CACHE_SIZE } from "../blobs/blob-cache.js";

/** yaml's parser, loaded only when there is a kiln.yaml to read. */
const parseYaml = lazy(() => (createRequire(import.meta.url)("yaml") as { parse: typeof parseYamlType }).parse);

/** What a `kiln serve` process does (KILN_ROLE / `--role`): everything, the API only, or jobs only. */
export type Role = "all" | "api" | "worker";
export const ROLES: readonly Role[] = ["all", "api", "worker"];

/**
 * KILN_BLOB_STORE: where every blob lives — a directory (`file:///dir`, one every process
 * mounts) or a registry (`oci+http(s)://host:port/prefix`). Credentials stay out of the URL.
 */
export type BlobStoreConfig = { kind: "file"; root: string } | { kind: "oci"; registry: string; prefix: string; credentials?: { username: string; password: string } };

export interface KilnConfig {
  blobStore: BlobStoreConfig;
  /**
   * KILN_BLOB_CACHE_SIZE: the most this process keeps as local copies of a registry blob store's
   * blobs (for builds and downloads), least recently used evicted first.
   */
  blobCacheSize: number;
  /**
   * KILN_PREFETCH_IMAGES: whether a process serving the API (on PostgreSQL, with a registry blob
   * store) fetches each image file other processes generate into its cache when the job completes.
   */
  prefetchImages: boolean;
  /** `all` (the single process), `api` (serves the API, runs no jobs) or `worker` (runs jobs, serves only GET /api/status). */
  role: Role;
  /** KILN_JOB_LEASE: how long a worker's claim on a job holds without renewal. */
  jobLeaseMs: number;
  host: string;
  port: number;
  dataDir: string;
  databaseUrl: string | undefined;
  adminPassword: string | undefined;
  secretKey: string | undefined;
  maxUpload: number;
  /** The most a generation may unpack from its bundle (a decompression bomb stops there). */
  maxImageSize: number;
  buildConcurrency: number;
  downloadKeyTtlMs: number;
  /** How long a console session lasts without use (it never outlives SESSION_MAX_AGE_MS). */
  sessionTtlMs: number;
  logLevel: string;
  /** KILN_APIKEY_SIGNATURES: what a signature of a non-GET request covers (see domain/api-key-signature.ts). */
  apiKeySignatures: SignatureScheme;
  /**
   * KILN_TRUST_PROXY: whose `X-Forwarded-*` headers are believed — `false` (nobody, the default),
   * `true` (any peer), or the proxies' addresses and CIDRs (`127.0.0.1,10.0.0.0/8`), in Fastify's form.
   */
  trustProxy: boolean | string;
  /**
   * KILN_PUBLISH_ALLOW: loopback, link-local, unspecified or own addresses that publication may
   * reach anyway (hosts, `host:port`, CIDRs); by default it reaches none of them.
   */
  publishAllow: AllowEntry[];
  configFile: string | undefined;
  distributions: DistributionConfig[];
}

/**
 * What Kiln offers without a config file: Debian 12 (bookworm) and 13 (trixie), for x86_64 and
 * aarch64, from Debian's official mirror. Debian 12 x86_64 comes first: it keeps id 1.
 */
export const DEFAULT_DISTRIBUTIONS: DistributionConfig[] = (
  [
    ["12", "bookworm", "x86_64"],
    ["13", "trixie", "x86_64"],
    ["12", "bookworm", "aarch64"],
    ["13", "trixie", "aarch64"],
  ] as const
).map(([version, suite, arch]) => ({
  name: "Debian",
  version,
  arch,
  mirror: "http://deb.debian.org/debian/",
  suite,
  components: ["main"],
  keyring: DEBIAN_ARCHIVE_KEYRING,
}));

function parseSize(raw: string, what: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([kmgt]i?b?|b)?\s*$/i.exec(raw);
  if (!m) throw new KilnError("badRequest", `${what}: "${raw}" is not a size (e.g. 10GiB, 500MB, 1048576)`);
  const n = Number(m[1]);
  const unit = (m[2] ?? "b").toLowerCase();
  const pow = { b: 0, k: 1, m: 2, g: 3, t: 4 }[unit[0] as "b" | "k" | "m" | "g" | "t"];
  const base = unit.includes("i") || unit.length === 1 ? 1024 : 1000;
  return Math.floor(n * base ** pow);
}

function parseIntEnv(raw: string | undefined, what: string, fallback: number, min = 0): number {
  if (raw === undefined || raw === "") return fallback;
  if (!/^\d+$/.test(raw) || Number(raw) < min) throw new KilnError("badRequest", `${what} must be an integer ≥ ${min}, got "${raw}"`);
  return Number(raw);
}

function parseDuration(raw: string | undefined, what: string, fallbackMs: number): number {
  if (raw === undefined || raw === "") return fallbackMs;
  const m = /^(\d+)\s*(ms|s|m|h)?$/.exec(raw.trim());
  if (!m) throw new KilnError("badRequest", `${what}: "${raw}" is not a duration (e.g. 600, 10m, 1h)`);
  const mult = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[(m[2] ?? "s") as "ms" | "s" | "m" | "h"];
  return Number(m[1]) * mult;
}

function parseSignatureScheme(raw: string | undefined): SignatureScheme {
  if (raw === undefined || raw === "") return "kiln";
  const v = raw.trim().toLowerCase();
  if (!(SIGNATURE_SCHEMES as readonly string[]).includes(v)) throw new KilnError("badRequest", `KILN_APIKEY_SIGNATURES must be ${SIGNATURE_SCHEMES.join(" or ")}, got "${raw}"`);
  return v as SignatureScheme;
}

const ADDRESS_OR_CIDR = /^(?:[0-9.]+|[0-9a-f:.]+)(?:\/\d{1,3})?$|^(?:loopback|linklocal|uniquelocal)$/i;

function parseFlag(raw: string | undefined, name: string, fallback: boolean): boolean {
  if (raw === undefined || raw.trim() === "") return fallback;
  if (/^(true|1|yes)$/i.test(raw.trim())) return true;
  if (/^(false|0|no)$/i.test(raw.trim())) return false;
  throw new KilnError("badRequest", `${name} must be true or false, got "${raw}"`);
}

function parseTrustProxy(raw: string | undefined): boolean | string {
  if (raw === undefined || raw.trim() === "" || /^(false|0|no)$/i.test(raw.trim())) return false;
  if (/^(true|1|yes)$/i.test(raw.trim())) return true;
  const list = raw.split(",").map((s) => s.trim()).filter(Boolean);
  const bad = list.find((s) => !ADDRESS_OR_CIDR.test(s));
  if (bad !== undefined) throw new KilnError("badRequest", `KILN_TRUST_PROXY must be true, or proxy addresses and CIDRs separated by commas; "${bad}" is neither`);
  return list.join(",");
}

/** Validates one `distributions:` entry of kiln.yaml and fills defaults. */
function parseDistribution(raw: unknown, index: number, file: string): DistributionConfig {
  const where = `${file}: distributions[${index}]`;
  if (typeof raw !== "object" || raw === null) throw new KilnError("badRequest", `${where} must be a mapping`);
  const r = raw as Record<string, unknown>;
  const str = (key: string, fallback?: string): string => {
    const v = r[key];
    if (v === undefined || v === null) {
      if (fallback !== undefined) return fallback;
      throw new KilnError("badRequest", `${where}: "${key}" is required`);
    }
    if (typeof v !== "string" && typeof v !== "number") throw new KilnError("badRequest", `${where}: "${key}" must be a string`);
    return String(v);
  };
  const mirror = str("mirror");
  if (!/^(https?|file):\/\//.test(mirror)) throw new KilnError("badRequest", `${where}: mirror must be an http(s):// or file:// URL, got "${mirror}"`);
  const components = r.components === undefined ? ["main"] : r.components;
  if (!Array.isArray(components) || components.length === 0 || !components.every((c) => typeof c === "string")) {
    throw new KilnError("badRequest", `${where}: components must be a non-empty list of strings`);
  }
  const arch = str("arch", "x86_64");
  debianArch(arch);
  const keyringRaw = str("keyring", DEBIAN_ARCHIVE_KEYRING);
  const keyring = keyringRaw === "none" ? "none" : path.resolve(path.dirname(file), keyringRaw);
  return {
    name: str("name"),
    version: str("version"),
    arch,
    mirror: mirror.endsWith("/") ? mirror : `${mirror}/`,
    suite: str("suite"),
    components: components as string[],
    keyring,
  };
}

/** Reads the distributions of a kiln.yaml file. */
export function loadDistributions(file: string): DistributionConfig[] {
  let doc: unknown;
  try {
    doc = parseYaml()(readFileSync(file, "utf8"));
  } catch (err) {
    throw new KilnError("badRequest", `cannot read config ${file}: ${(err as Error).message}`, { cause: err });
  }
  if (doc === null || doc === undefined) return DEFAULT_DISTRIBUTIONS;
  if (typeof doc !== "object") throw new KilnError("badRequest", `${file}: expected a mapping at the top`);
  const list = (doc as Record<string, unknown>).distributions;
  if (list === undefined) return DEFAULT_DISTRIBUTIONS;
  if (!Array.isArray(list) || list.length === 0) throw new KilnError("badRequest", `${file}: distributions must be a non-empty list`);
  const out = list.map((d, i) => parseDistribution(d, i, file));
  const seen = new Set<string>();
  for (const d of out) {
    const key = distributionLabel(d);
    if (seen.has(key)) throw new KilnError("badRequest", `${file}: distribution "${key}" is listed twice`);
    seen.add(key);
  }
  return out;
}

function parseBlobStore(raw: string | undefined, credentials: string | undefined, dataDir: string): BlobStoreConfig {
  const value = raw?.trim();
  if (!value) return { kind: "file", root: path.join(dataDir, "blobs") };
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    // Not repeated: a mistyped URL may hold a password.
    throw new KilnError("badRequest", "KILN_BLOB_STORE must be a file:///dir or oci+http(s)://host:port/prefix URL");
  }
  if (url.username || url.password) throw new KilnError("badRequest", "KILN_BLOB_STORE must not hold credentials: put user:password in KILN_BLOB_STORE_CREDENTIALS");
  if (url.protocol === "file:") {
    if (url.host) throw new KilnError("badRequest", "KILN_BLOB_STORE: a file URL names a local directory (file:///dir), not a host");
    return { kind: "file", root: path.resolve(decodeURIComponent(url.pathname)) };
  }
  if (url.protocol !== "oci+http:" && url.protocol !== "oci+https:") {
    throw new KilnError("badRequest", `KILN_BLOB_STORE must be a file:///dir or oci+http(s)://host:port/prefix URL, not ${url.protocol.replace(/:$/, "")}`);
  }
  const prefix = url.pathname.replace(/^\/+|\/+$/g, "");
  if (!/^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$/.test(prefix)) {
    throw new KilnError("badRequest", "KILN_BLOB_STORE: the registry URL needs a path prefix of lowercase repository components (oci+http://host:port/kiln)");
  }
  let creds: { username: string; password: string } | undefined;
  if (credentials) {
    const colon = credentials.indexOf(":");
    if (colon <= 0) throw new KilnError("badRequest", "KILN_BLOB_STORE_CREDENTIALS must be user:password");
    creds = { username: credentials.slice(0, colon), password: credentials.slice(colon + 1) };
  }
  return { kind: "oci", registry: `${url.protocol.slice(4)}//${url.host}`, prefix, ...(creds ? { credentials: creds } : {}) };
}

function parseRole(raw: string | undefined, databaseUrl: string | undefined, secretKey: string | undefined): Role {
  const role = (raw ?? "").trim().toLowerCase() || "all";
  if (!(ROLES as readonly string[]).includes(role)) throw new KilnError("badRequest", `the role must be ${ROLES.join(", ")}; got "${raw}"`);
  // SQLite is one process's database: the roles only make sense beside others.
  if (role !== "all" && !databaseUrl) {
    throw new KilnError("badRequest", `the ${role} role runs beside other Kiln processes, which share one PostgreSQL database: set KILN_DATABASE_URL (SQLite serves a single "all" process)`);
  }
  // Account secrets and API-key secrets are sealed with this key: every process must open what
  // any other sealed, so the key cannot be each data directory's own key file.
  if (role !== "all" && !secretKey) {
    throw new KilnError("badRequest", `the ${role} role shares secrets with other Kiln processes: set KILN_SECRET_KEY, the same in every process`);
  }
  return role as Role;
}

/** Reads the whole configuration from an environment (process.env by default). */
export function loadConfig(env: NodeJS.ProcessEnv = process.env, overrides: { configFile?: string; role?: string } = {}): KilnConfig {
  const explicit = overrides.configFile ?? env.KILN_CONFIG;
  const configFile = explicit ? path.resolve(explicit) : existsSync("kiln.yaml") ? path.resolve("kiln.yaml") : undefined;
  if (explicit && !existsSync(configFile!)) throw new KilnError("badRequest", `config file ${configFile} does not exist`);
  const port = parseIntEnv(env.KILN_PORT, "KILN_PORT", 8080);
  if (port > 65535) throw new KilnError("badRequest", `KILN_PORT must be at most 65535, got ${port}`);
  const jobLeaseMs = parseDuration(env.KILN_JOB_LEASE, "KILN_JOB_LEASE", 30_000);
  if (jobLeaseMs < 300) throw new KilnError("badRequest", `KILN_JOB_LEASE must be at least 300ms, got "${env.KILN_JOB_LEASE}"`);
  const dataDir = path.resolve(env.KILN_DATA_DIR || "data");
  return {
    blobStore: parseBlobStore(env.KILN_BLOB_STORE, env.KILN_BLOB_STORE_CREDENTIALS, dataDir),
    blobCacheSize: env.KILN_BLOB_CACHE_SIZE ? parseSize(env.KILN_BLOB_CACHE_SIZE, "KILN_BLOB_CACHE_SIZE") : DEFAULT_BLOB_CACHE_SIZE,
    prefetchImages: parseFlag(env.KILN_PREFETCH_IMAGES, "KILN_PREFETCH_IMAGES", true),
    role: parseRole(overrides.role ?? env.KILN_ROLE, env.KILN_DATABASE_URL || undefined, env.KILN_SECRET_KEY || undefined),
    jobLeaseMs,
    host: env.KILN_HOST || "127.0.0.1",
    port,
    dataDir,
    databaseUrl: env.KILN_DATABASE_URL || undefined,
    adminPassword: env.KILN_ADMIN_PASSWORD || undefined,
    secretKey: env.KILN_SECRET_KEY || undefined,
    maxUpload: env.KILN_MAX_UPLOAD ? parseSize(env.KILN_MAX_UPLOAD, "KILN_MAX_UPLOAD") : 10 * 1024 ** 3,
    maxImageSize: env.KILN_MAX_IMAGE_SIZE ? parseSize(env.KILN_MAX_IMAGE_SIZE, "KILN_MAX_IMAGE_SIZE") : 20 * 1024 ** 3,
    buildConcurrency: parseIntEnv(env.KILN_BUILD_CONCURRENCY, "KILN_BUILD_CONCURRENCY", Math.max(1, cpus().length), 1),
    downloadKeyTtlMs: parseDuration(env.KILN_DOWNLOAD_KEY_TTL, "KILN_DOWNLOAD_KEY_TTL", 10 * 60_000),
    sessionTtlMs: parseDuration(env.KILN_SESSION_TTL, "KILN_SESSION_TTL", 12 * 3600_000),
    logLevel: env.KILN_LOG_LEVEL || "info",
    apiKeySignatures: parseSignatureScheme(env.KILN_APIKEY_SIGNATURES),
    trustProxy: parseTrustProxy(env.KILN_TRUST_PROXY),
    publishAllow: parseAllowList(env.KILN_PUBLISH_ALLOW),
    configFile,
    distributions: configFile ? loadDistributions(configFile) : DEFAULT_DISTRIBUTIONS,
  };
}
