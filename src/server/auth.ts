/**
 * Authentication: HTTP Basic, or UForge's API-key signature. The signature is
 * `urlencode(base64(HMAC-SHA1(secret, <URI up to and including apiKey=...>)))`, carried last in
 * the query as `&signature=` — bound to its method unless the operator chose UForge's scheme (see
 * domain/api-key-signature.ts). UForge clients sign the full URL they call
 * (`https://host/api/...?apiKey=...`), or the URL relative to the API base (`users/...`, the
 * docs' diagram); clients behind a proxy may sign the path alone. Every form is accepted, with
 * scheme and host taken from the request — from `X-Forwarded-Proto`/`X-Forwarded-Host` only when
 * the request came through a proxy the operator trusts (KILN_TRUST_PROXY).
 */
import { createHash, createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import type { FastifyRequest } from "fastify";
import { apiKeySignature, signsUrlOnly, type SignatureScheme } from "../domain/api-key-signature.js";
import { KilnError } from "../domain/errors.js";
import type { Store, UserRow } from "../store/types.js";
import { verifyPassword } from "./passwords.js";
import { KeptWhileUnchanged } from "./kept.js";
import { SignInThrottle } from "./sign-in-throttle.js";
import type { SecretBox } from "./secrets.js";

export interface Principal {
  user: UserRow;
  via: "basic" | "apikey" | "session";
}

/** Finds the console session a request carries (see session.ts); undefined when it has none. */
export interface SessionResolver {
  identify(req: FastifyRequest): Promise<Principal | undefined>;
}

const CHALLENGE = { "WWW-Authenticate": 'Basic realm="kiln", charset="UTF-8"' };

export function unauthorized(message: string): KilnError {
  return new KilnError("unauthorized", message, { headers: CHALLENGE });
}

const SIGNED_URL_RE = /^(.*[?&]apiKey=([^&#]*))&signature=([^&#]*)$/;

export { signUrl } from "../domain/api-key-signature.js";

/** Where the API lives under the server's root: what UForge clients sign relative to. */
const API_PREFIX = "/api";

/**
 * The URL forms a client may have signed for a request whose path and query, up to the apiKey
 * parameter, are `signedPath`: the absolute URL (with and without the scheme's default port),
 * the path, and the path relative to `/api` (with and without its leading slash).
 */
export function signedUrlForms(protocol: string, host: string, signedPath: string): string[] {
  const forms = new Set<string>();
  const defaultPort = protocol === "https" ? ":443" : protocol === "http" ? ":80" : undefined;
  if (host !== "") {
    forms.add(`${protocol}://${host}${signedPath}`);
    if (defaultPort && host.endsWith(defaultPort)) forms.add(`${protocol}://${host.slice(0, -defaultPort.length)}${signedPath}`);
  }
  forms.add(signedPath);
  if (signedPath.startsWith(`${API_PREFIX}/`)) {
    const relative = signedPath.slice(API_PREFIX.length);
    forms.add(relative);
    forms.add(relative.slice(1));
  }
  return [...forms];
}

export interface AuthenticatorOptions {
  /** KILN_APIKEY_SIGNATURES: `kiln` (default) binds a signature to its method; `uforge` does not. */
  signatures?: SignatureScheme;
  signIns?: SignInThrottle;
}

/** Login and password of an HTTP Basic `Authorization` header; anything else is a `401`. */
function parseBasic(header: string): { login: string; password: string } {
  const m = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(header);
  if (!m) throw unauthorized("unsupported Authorization scheme: use HTTP Basic or an API key signature");
  const decoded = Buffer.from(m[1]!, "base64").toString("utf8");
  const colon = decoded.indexOf(":");
  if (colon < 0) throw unauthorized("malformed Basic credentials");
  return { login: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}

/**
 * Remembers recently verified Basic credentials so that scrypt (deliberately slow) runs once per
 * client, not once per request. Entries are keyed by a keyed hash of login, password and the
 * stored hash, so a password change invalidates them; nothing reversible is kept.
 */
class VerifiedCredentials {
  private readonly pepper = randomBytes(32);
  private readonly entries = new Map<string, number>();
  constructor(
    private readonly ttlMs = 5 * 60_000,
    private readonly max = 10_000,
  ) {}

  private key(login: string, password: string, storedHash: string): string {
    return createHmac("sha256", this.pepper).update(`${login}\0${password}\0${storedHash}`).digest("base64");
  }

  has(login: string, password: string, storedHash: string): boolean {
    const k = this.key(login, password, storedHash);
    const exp = this.entries.get(k);
    if (exp === undefined) return false;
    if (exp < Date.now()) {
      this.entries.delete(k);
      return false;
    }
    return true;
  }

  add(login: string, password: string, storedHash: string): void {
    if (this.entries.size >= this.max) this.entries.delete(this.entries.keys().next().value!);
    this.entries.set(this.key(login, password, storedHash), Date.now() + this.ttlMs);
  }
}

/** At most this many logins are remembered (by Authorization header). */
const LOGIN_CACHE_SIZE = 1000;

export class Authenticator {
  private readonly verified = new VerifiedCredentials();
  /**
   * Who an Authorization header identified, while the store has not changed since: any write
   * (a password, a user disabled, ...) moves `store.generation` and so forgets every entry. Saves
   * the user lookup that every request would otherwise make.
   */
  private readonly logins: KeptWhileUnchanged<Principal>;

  private readonly signatures: SignatureScheme;
  /** Wrong passwords slowed down, for every sign-in path (see {@link signIn}). */
  readonly signIns: SignInThrottle;
  /** The console's sessions, once the app has set them up (a cookie is the last way in). */
  sessions: SessionResolver | undefined;

  constructor(
    private readonly store: Store,
    private readonly secrets: SecretBox,
    options: AuthenticatorOptions = {},
  ) {
    this.logins = new KeptWhileUnchanged(store, LOGIN_CACHE_SIZE);
    this.signatures = options.signatures ?? "kiln";
    this.signIns = options.signIns ?? new SignInThrottle();
  }

  /**
   * Who sent the request, if it carries credentials. Wrong credentials throw `401`; none at all
   * return undefined (the caller decides whether the endpoint needs them).
   */
  async identify(req: FastifyRequest): Promise<Principal | undefined> {
    const header = req.headers.authorization;
    if (header !== undefined) {
      const { login, password } = parseBasic(header);
      // Before the remembered logins: while guesses are held back, a right one must not pass.
      this.signIns.check(login, req.ip);
      // Keyed by a hash: the credentials themselves are not kept.
      const key = createHash("sha256").update(header).digest("base64");
      return this.logins.get(key) ?? this.logins.compute(key, () => this.signIn(login, password, req.ip));
    }
    if (req.url.includes("apiKey=")) return this.apiKey(req);
    return this.sessions?.identify(req);
  }

  /**
   * Checks a login and password from a client `address`: the one way to sign in with a password
   * (HTTP Basic, a sign-in form). Wrong passwords are slowed down ({@link SignInThrottle}):
   * `429` with `Retry-After` after a handful; a wrong password or an unknown login is a `401`.
   */
  async signIn(login: string, password: string, address: string): Promise<Principal> {
    this.signIns.attempt(login, address);
    let user: UserRow | undefined;
    try {
      user = await this.store.users.getByLogin(login);
    } catch (err) {
      // Nothing was checked (the database did not answer): no wrong password to count.
      this.signIns.unchecked(login, address);
      throw err;
    }
    if (!user) {
      // Spend the same time as a real check so logins cannot be probed by timing.
      await verifyPassword(password, DUMMY_HASH);
      throw unauthorized("wrong user name or password");
    }
    if (!this.verified.has(login, password, user.passwordHash)) {
      if (!(await verifyPassword(password, user.passwordHash))) throw unauthorized("wrong user name or password");
      this.verified.add(login, password, user.passwordHash);
    }
    this.signIns.succeeded(login, address);
    if (!user.active) throw unauthorized(`user ${login} is disabled`);
    return { user, via: "basic" };
  }

  private async apiKey(req: FastifyRequest): Promise<Principal> {
    const m = SIGNED_URL_RE.exec(req.url);
    if (!m) throw unauthorized("an API key request must end with &signature=<signature of the URL up to apiKey>");
    const signedPath = m[1]!;
    let publicKey: string;
    let signature: Buffer;
    try {
      publicKey = decodeURIComponent(m[2]!);
      signature = Buffer.from(decodeURIComponent(m[3]!), "base64");
    } catch {
      throw unauthorized("malformed apiKey or signature parameter");
    }
    const key = await this.store.apiKeys.getByPublicKey(publicKey);
    if (!key) throw unauthorized("unknown or revoked API key");
    const secret = this.secrets.decrypt(key.secretEnc);
    // Fastify answers X-Forwarded-Proto / X-Forwarded-Host here only for a trusted proxy.
    const urls = signedUrlForms(req.protocol, req.host ?? "", signedPath);
    const matches = (text: string): boolean => {
      const expected = apiKeySignature(secret, text);
      return expected.length === signature.length && timingSafeEqual(expected, signature);
    };
    const method = req.method.toUpperCase();
    const bound = !signsUrlOnly(method);
    const ok = urls.some((u) => matches(bound ? `${method} ${u}` : u) || (bound && this.signatures === "uforge" && matches(u)));
    if (!ok) {
      if (bound && urls.some(matches)) {
        throw unauthorized(`this signature covers the URL only, which authorises GET and HEAD; for a ${method}, sign "${method} " followed by the URL up to apiKey (KILN_APIKEY_SIGNATURES in the README)`);
      }
      throw unauthorized("the API key signature does not match the request");
    }
    const user = await this.store.users.get(key.userId);
    if (!user || !user.active) throw unauthorized("the API key's user is disabled");
    return { user, via: "apikey" };
  }
}

/** A scrypt hash of a random password, used to equalise timing for unknown logins. */
const DUMMY_HASH = `scrypt$16384$8$1$${randomBytes(16).toString("base64")}$${createHash("sha256").update(randomBytes(8)).digest("base64")}`;

/** New API key material: a public key and a secret (shown once). */
export function newApiKeyPair(): { publicKey: string; secret: string } {
  return { publicKey: randomBytes(24).toString("base64url"), secret: randomBytes(32).toString("base64url") };
}
