/**
 * Registry authentication (distribution's "Token Authentication Specification"): the
 * `WWW-Authenticate` challenge of a `401`, Basic credentials, and Bearer tokens fetched from the
 * challenge's realm with `service` and `scope`s, cached per scope set until shortly before they
 * expire, fetched again when the registry refuses one mid-push.
 *
 * Secrets (the password, tokens) live only in this module's memory and in `Authorization`
 * headers; they are never part of a message.
 */
import type { RegistryEndpoint } from "./names.js";
import type { HttpTransport } from "./http.js";
import { MAX_ERROR_BODY, RegistryError, formatDetails, isRetryableStatus, parseErrorBody, scrub } from "./errors.js";
import { parseRetryAfter } from "./retry.js";

/** An account's credentials for a registry. Either may be absent (anonymous access). */
export interface Credentials {
  username?: string;
  password?: string;
}

/** One challenge of a `WWW-Authenticate` header. */
export interface Challenge {
  /** Lower case: `basic`, `bearer`. */
  scheme: string;
  /** Parameter names in lower case; values unquoted. */
  params: Record<string, string>;
}

/** A token answer is small; anything longer is not a token service's. */
const MAX_TOKEN_BODY = 1 << 20;
/** What the token specification says a token lives when `expires_in` is absent. */
export const DEFAULT_TOKEN_LIFETIME_S = 60;

// Sticky patterns, matched where the scanner stands (no slicing: a header may be 16 KiB of junk).
const TOKEN68 = /([A-Za-z0-9._~+/-]+=*)[ \t]*(?:,|$)/y;
const PARAM = /([!#$%&'*+.^_`|~0-9A-Za-z-]+)[ \t]*=[ \t]*/y;
const TOKEN = /[!#$%&'*+.^_`|~0-9A-Za-z-]+/y;

function at(re: RegExp, text: string, i: number): RegExpExecArray | null {
  re.lastIndex = i;
  return re.exec(text);
}

/**
 * Parses a `WWW-Authenticate` header (RFC 9110 §11.6.1): several challenges, each a scheme and
 * comma-separated `name=value` parameters whose quoted values may hold commas and `\"`.
 */
export function parseChallenges(header: string | string[] | undefined): Challenge[] {
  if (header === undefined) return [];
  const text = Array.isArray(header) ? header.join(", ") : header;
  const out: Challenge[] = [];
  let current: Challenge | undefined;
  // True right after a scheme: a lone token68 (`Negotiate abc==`) may follow.
  let afterScheme = false;
  let i = 0;
  while (i < text.length) {
    const c = text[i]!;
    if (c === " " || c === "\t") {
      i++;
      continue;
    }
    if (c === ",") {
      afterScheme = false;
      i++;
      continue;
    }
    if (afterScheme) {
      const t68 = at(TOKEN68, text, i);
      if (t68) {
        i += t68[1]!.length;
        afterScheme = false;
        continue;
      }
    }
    const param = at(PARAM, text, i);
    if (param) {
      // A parameter before any scheme has nothing to belong to: it is read and dropped.
      const target = current ?? { scheme: "", params: {} };
      i += param[0].length;
      let value = "";
      if (text[i] === '"') {
        i++;
        while (i < text.length && text[i] !== '"') {
          if (text[i] === "\\" && i + 1 < text.length) i++;
          value += text[i];
          i++;
        }
        i++; // the closing quote
      } else {
        while (i < text.length && text[i] !== "," && text[i] !== " " && text[i] !== "\t") value += text[i++];
      }
      target.params[param[1]!.toLowerCase()] = value;
      afterScheme = false;
      continue;
    }
    const scheme = at(TOKEN, text, i);
    if (!scheme) {
      i++; // a stray character: skip it rather than give up on the rest
      continue;
    }
    i += scheme[0].length;
    current = { scheme: scheme[0].toLowerCase(), params: {} };
    out.push(current);
    afterScheme = true;
  }
  return out;
}

/** `repository:<name>:<actions>` as the token specification writes a scope. */
export function repositoryScope(repository: string, actions: readonly string[]): string {
  return `repository:${repository}:${[...new Set(actions)].sort().join(",")}`;
}

interface CachedToken {
  token: string;
  /** Epoch ms after which it is not used any more. */
  renewAt: number;
}

/** Options of {@link RegistryAuth}. */
export interface RegistryAuthOptions {
  endpoint: RegistryEndpoint;
  credentials: Credentials;
  transport: HttpTransport;
  now?: () => number;
}

/** The authentication state of one client: what the registry asked for, and the tokens it gave. */
export class RegistryAuth {
  private challenge: Challenge | undefined;
  private readonly tokens = new Map<string, CachedToken>();
  private readonly pending = new Map<string, Promise<CachedToken>>();
  private readonly now: () => number;
  /** Token requests sent (for tests and diagnostics). */
  tokenRequests = 0;

  constructor(private readonly options: RegistryAuthOptions) {
    this.now = options.now ?? Date.now;
  }

  /** True when the account has something to authenticate with. */
  get hasCredentials(): boolean {
    const c = this.options.credentials;
    return Boolean(c.username || c.password);
  }

  /** The secrets this client holds, for scrubbing text that came back from a server. */
  secrets(): string[] {
    const out = [this.options.credentials.password ?? ""];
    for (const t of this.tokens.values()) out.push(t.token);
    return out.filter((s) => s !== "");
  }

  /** Remembers the challenge of a `/v2/` probe so that the first real request carries credentials. */
  learn(header: string | string[] | undefined): void {
    const c = pickChallenge(parseChallenges(header));
    if (c) this.challenge = c;
  }

  /** The `Authorization` header for a request that needs `scopes`, or undefined (anonymous). */
  async authorization(scopes: readonly string[], signal?: AbortSignal): Promise<string | undefined> {
    const c = this.challenge;
    if (!c) return undefined;
    if (c.scheme === "basic") return this.basic();
    const key = scopeKey(scopes);
    const cached = this.tokens.get(key);
    if (cached && cached.renewAt > this.now()) return `Bearer ${cached.token}`;
    const t = await this.fetchShared(key, c, scopes, signal);
    return `Bearer ${t.token}`;
  }

  /**
   * Reacts to a `401`: learns its challenge and gets fresh credentials. Returns false when there is
   * nothing new to try (the credentials that were just sent are the ones refused).
   */
  async renew(header: string | string[] | undefined, scopes: readonly string[], sent: string | undefined, signal?: AbortSignal): Promise<boolean> {
    const c = pickChallenge(parseChallenges(header));
    if (!c) return false;
    this.challenge = c;
    if (c.scheme === "basic") {
      if (!this.hasCredentials) return false;
      return sent === undefined || !sent.startsWith("Basic ");
    }
    const key = scopeKey(scopes);
    const cached = this.tokens.get(key);
    if (cached && sent === `Bearer ${cached.token}`) this.tokens.delete(key);
    const wanted = c.params.scope ? [...new Set([...scopes, ...c.params.scope.split(" ").filter(Boolean)])] : [...scopes];
    await this.fetchShared(key, c, wanted, signal);
    return true;
  }

  /** Forgets every token (a client reused after its account's password changed). */
  reset(): void {
    this.tokens.clear();
  }

  private basic(): string | undefined {
    if (!this.hasCredentials) return undefined;
    const { username = "", password = "" } = this.options.credentials;
    return `Basic ${Buffer.from(`${username}:${password}`, "utf8").toString("base64")}`;
  }

  /** One token request per scope set at a time: parallel uploads share it. */
  private fetchShared(key: string, c: Challenge, scopes: readonly string[], signal?: AbortSignal): Promise<CachedToken> {
    const running = this.pending.get(key);
    if (running) return running;
    const p = this.fetchToken(c, scopes, signal).then(
      (t) => {
        this.pending.delete(key);
        this.tokens.set(key, t);
        return t;
      },
      (err: unknown) => {
        this.pending.delete(key);
        throw err;
      },
    );
    this.pending.set(key, p);
    return p;
  }

  private async fetchToken(c: Challenge, scopes: readonly string[], signal?: AbortSignal): Promise<CachedToken> {
    const { endpoint, transport } = this.options;
    const registry = endpoint.name;
    const realm = c.params.realm;
    if (!realm) throw new RegistryError(`${registry} asks for a Bearer token but names no token service (realm)`, { registry, retryable: false });
    let url: URL;
    try {
      url = new URL(realm);
    } catch {
      throw new RegistryError(`${registry} names a token service that is not a URL`, { registry, retryable: false });
    }
    if (url.protocol !== "https:" && url.protocol !== "http:") throw new RegistryError(`${registry} names a token service that is not http(s)`, { registry, retryable: false });
    const authorization = this.basic();
    if (authorization && url.protocol === "http:" && !endpoint.insecure) {
      // The registry is reached over TLS: its users' passwords must not travel in clear to a realm it names.
      throw new RegistryError(`${registry} names a token service over plain http://; Kiln will not send credentials there`, { registry, retryable: false });
    }
    if (c.params.service) url.searchParams.set("service", c.params.service);
    for (const s of scopes) url.searchParams.append("scope", s);
    if (this.options.credentials.username) url.searchParams.set("account", this.options.credentials.username);

    const started = this.now();
    this.tokenRequests++;
    const res = await transport.send({
      method: "GET",
      url,
      headers: { accept: "application/json", ...(authorization ? { authorization } : {}) },
      maxResponseBytes: MAX_TOKEN_BODY,
      ...(signal ? { signal } : {}),
    });
    if (res.status === 401 || res.status === 403) {
      const details = parseErrorBody(res.body.subarray(0, MAX_ERROR_BODY));
      const said = details.length ? `: ${scrub(formatDetails(details), this.secrets())}` : "";
      throw new RegistryError(`authentication failed for ${registry}${said}`, { registry, retryable: false, httpStatus: res.status, details, authentication: true });
    }
    if (res.status !== 200) {
      const retryAfterMs = parseRetryAfter(header(res.headers["retry-after"]));
      throw new RegistryError(`the token service of ${registry} answered ${res.status}`, {
        registry,
        retryable: isRetryableStatus(res.status),
        httpStatus: res.status,
        details: parseErrorBody(res.body.subarray(0, MAX_ERROR_BODY)),
        ...(retryAfterMs !== undefined ? { retryAfterMs } : {}),
      });
    }
    let doc: { token?: unknown; access_token?: unknown; expires_in?: unknown; issued_at?: unknown };
    try {
      doc = JSON.parse(res.body.toString("utf8")) as typeof doc;
    } catch {
      throw new RegistryError(`the token service of ${registry} did not answer JSON`, { registry, retryable: false });
    }
    const token = typeof doc.token === "string" && doc.token !== "" ? doc.token : typeof doc.access_token === "string" ? doc.access_token : "";
    if (token === "" || /[\r\n]/.test(token)) throw new RegistryError(`the token service of ${registry} gave no usable token`, { registry, retryable: false });
    const lifetimeS = typeof doc.expires_in === "number" && doc.expires_in > 0 ? doc.expires_in : DEFAULT_TOKEN_LIFETIME_S;
    // The earlier of our clock and the service's `issued_at`: a token is never kept past its life.
    const issued = typeof doc.issued_at === "string" ? Date.parse(doc.issued_at) : NaN;
    const base = Number.isFinite(issued) && issued < started ? issued : started;
    const lifetimeMs = lifetimeS * 1000;
    const margin = Math.min(10_000, lifetimeMs / 5);
    return { token, renewAt: base + lifetimeMs - margin };
  }
}

/** Bearer if offered (it scopes access), else Basic. */
function pickChallenge(list: Challenge[]): Challenge | undefined {
  return list.find((c) => c.scheme === "bearer") ?? list.find((c) => c.scheme === "basic");
}

function scopeKey(scopes: readonly string[]): string {
  return [...new Set(scopes)].sort().join(" ");
}

function header(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}
