/**
 * Authentication: HTTP Basic, or UForge's API-key signature. The signature is
 * `urlencode(base64(HMAC-SHA1(secret, <URI up to and including apiKey=...>)))`, carried last in
 * the query as `&signature=`. UForge clients sign the full URL they call
 * (`https://host/api/...?apiKey=...`); clients behind a proxy may sign the path alone — both forms
 * are accepted, with the host taken from the request.
 */
import { createHash, createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import type { FastifyRequest } from "fastify";
import { KilnError } from "../domain/errors.js";
import type { Store, UserRow } from "../store/types.js";
import { verifyPassword } from "./passwords.js";
import { KeptWhileUnchanged } from "./kept.js";
import type { SecretBox } from "./secrets.js";

export interface Principal {
  user: UserRow;
  via: "basic" | "apikey";
}

const CHALLENGE = { "WWW-Authenticate": 'Basic realm="kiln", charset="UTF-8"' };

export function unauthorized(message: string): KilnError {
  return new KilnError("unauthorized", message, { headers: CHALLENGE });
}

const SIGNED_URL_RE = /^(.*[?&]apiKey=([^&#]*))&signature=([^&#]*)$/;

/** Signs a URL (or path) the way UForge clients do: what the SDK and the tests use. */
export function signUrl(urlWithApiKey: string, secret: string): string {
  const sig = createHmac("sha1", secret).update(urlWithApiKey, "utf8").digest("base64");
  return `${urlWithApiKey}&signature=${encodeURIComponent(sig)}`;
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

  constructor(
    private readonly store: Store,
    private readonly secrets: SecretBox,
  ) {
    this.logins = new KeptWhileUnchanged(store, LOGIN_CACHE_SIZE);
  }

  /**
   * Who sent the request, if it carries credentials. Wrong credentials throw `401`; none at all
   * return undefined (the caller decides whether the endpoint needs them).
   */
  async identify(req: FastifyRequest): Promise<Principal | undefined> {
    const header = req.headers.authorization;
    if (header !== undefined) {
      // Keyed by a hash: the credentials themselves are not kept.
      const key = createHash("sha256").update(header).digest("base64");
      return this.logins.get(key) ?? this.logins.compute(key, () => this.basic(header));
    }
    if (req.url.includes("apiKey=")) return this.apiKey(req);
    return undefined;
  }

  private async basic(header: string): Promise<Principal> {
    const m = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(header);
    if (!m) throw unauthorized("unsupported Authorization scheme: use HTTP Basic or an API key signature");
    const decoded = Buffer.from(m[1]!, "base64").toString("utf8");
    const colon = decoded.indexOf(":");
    if (colon < 0) throw unauthorized("malformed Basic credentials");
    const login = decoded.slice(0, colon);
    const password = decoded.slice(colon + 1);
    const user = await this.store.users.getByLogin(login);
    if (!user) {
      // Spend the same time as a real check so logins cannot be probed by timing.
      await verifyPassword(password, DUMMY_HASH);
      throw unauthorized("wrong user name or password");
    }
    if (!this.verified.has(login, password, user.passwordHash)) {
      if (!(await verifyPassword(password, user.passwordHash))) throw unauthorized("wrong user name or password");
      this.verified.add(login, password, user.passwordHash);
    }
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
    const host = req.headers.host ?? "";
    const candidates = [`${req.protocol}://${host}${signedPath}`, signedPath];
    const ok = candidates.some((c) => {
      const expected = createHmac("sha1", secret).update(c, "utf8").digest();
      return expected.length === signature.length && timingSafeEqual(expected, signature);
    });
    if (!ok) throw unauthorized("the API key signature does not match the request");
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
