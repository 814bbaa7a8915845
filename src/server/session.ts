/**
 * Console sessions: the browser signs in once (`POST /api/session`) and then carries an
 * `HttpOnly`, `SameSite=Strict` cookie instead of credentials. The API keeps accepting Basic and
 * API keys; a cookie is only looked at when a request carries neither.
 *
 * - The cookie holds a random 256-bit token; the store keeps its sha256 only.
 * - A session ends after `KILN_SESSION_TTL` without use (12 h by default), after
 *   {@link SESSION_MAX_AGE_MS} whatever the use, at sign-out (`DELETE /api/session`, which removes
 *   it on the server), or with its user.
 * - Cross-site request forgery: besides `SameSite=Strict`, a state-changing request made with a
 *   session must carry the session's CSRF token in `X-Kiln-CSRF` (a page of another site can
 *   neither read the token nor set the header without CORS, which Kiln never grants), and an
 *   `Origin` header, when the browser sends one, must be this server's.
 * - A `401` answered to the console carries no `WWW-Authenticate: Basic` challenge: a browser
 *   would otherwise pop up its own login prompt over the page.
 */
import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { KilnError, fail } from "../domain/errors.js";
import type { SessionRow, Store, UserRow } from "../store/types.js";
import type { Authenticator, Principal, SessionResolver } from "./auth.js";
import { readBody } from "./http.js";

export const SESSION_COOKIE = "kiln_session";
export const CSRF_HEADER = "x-kiln-csrf";
/** No session outlives this, however often it is used. */
export const SESSION_MAX_AGE_MS = 7 * 24 * 3600_000;
/** A session's use is recorded at most this often (each record is a write). */
const TOUCH_EVERY_MS = 60_000;
const SAFE_METHODS = new Set(["GET", "HEAD", "OPTIONS"]);

/** What the console learns about its session (never the token: that stays in the cookie). */
export interface SessionInfo {
  login: string;
  admin: boolean;
  csrfToken: string;
  expiresAt: string;
}

function hashToken(token: string): string {
  return createHash("sha256").update(token, "utf8").digest("hex");
}

function sameToken(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/** The session token a request's cookie carries, if it looks like one. */
export function sessionToken(req: FastifyRequest): string | undefined {
  const raw = req.cookies?.[SESSION_COOKIE];
  return raw !== undefined && /^[A-Za-z0-9_-]{43}$/.test(raw) ? raw : undefined;
}

/** Whether an answer to this request must not carry a Basic challenge (it comes from the console). */
export function fromConsole(req: FastifyRequest): boolean {
  return req.cookies?.[SESSION_COOKIE] !== undefined || req.headers[CSRF_HEADER] !== undefined;
}

export class Sessions implements SessionResolver {
  constructor(
    private readonly store: Store,
    private readonly ttlMs: number,
    private readonly now: () => Date = () => new Date(),
  ) {}

  /** Opens a session for `user`; returns the cookie's token (shown nowhere else) and the row. */
  async open(user: UserRow): Promise<{ token: string; session: SessionRow }> {
    const now = this.now();
    // Expired sessions are removed here rather than by a timer: sign-ins are rare, and a lookup
    // never returns an expired one anyway.
    await this.store.sessions.deleteExpired(now);
    const token = randomBytes(32).toString("base64url");
    const session: SessionRow = {
      tokenHash: hashToken(token),
      userId: user.id,
      csrfToken: randomBytes(24).toString("base64url"),
      created: now,
      lastSeen: now,
      expiresAt: new Date(Math.min(now.getTime() + this.ttlMs, now.getTime() + SESSION_MAX_AGE_MS)),
    };
    await this.store.sessions.create(session);
    return { token, session };
  }

  /** The live session and its (active) user for a token; records its use now and then. */
  async find(token: string): Promise<{ session: SessionRow; user: UserRow } | undefined> {
    const now = this.now();
    const session = await this.store.sessions.get(hashToken(token), now);
    if (!session) return undefined;
    const user = await this.store.users.get(session.userId);
    if (!user || !user.active) return undefined;
    if (now.getTime() - session.lastSeen.getTime() >= TOUCH_EVERY_MS) {
      const expiresAt = new Date(Math.min(now.getTime() + this.ttlMs, session.created.getTime() + SESSION_MAX_AGE_MS));
      await this.store.sessions.touch(session.tokenHash, now, expiresAt);
      session.lastSeen = now;
      session.expiresAt = expiresAt;
    }
    return { session, user };
  }

  async close(token: string): Promise<void> {
    await this.store.sessions.delete(hashToken(token));
  }

  /** {@link SessionResolver}: the principal of a request that carries a live session cookie. */
  async identify(req: FastifyRequest): Promise<Principal | undefined> {
    const token = sessionToken(req);
    if (!token) return undefined;
    const found = await this.find(token);
    if (!found) return undefined;
    if (!SAFE_METHODS.has(req.method)) checkForgery(req, found.session);
    return { user: found.user, via: "session" };
  }
}

/** The checks a state-changing request made with a session cookie must pass. */
function checkForgery(req: FastifyRequest, session: SessionRow): void {
  checkOrigin(req);
  const sent = req.headers[CSRF_HEADER];
  if (typeof sent !== "string" || !sameToken(sent, session.csrfToken)) {
    fail("forbidden", `a request that changes something with a console session must carry the session's CSRF token in the ${CSRF_HEADER} header`);
  }
}

/** A browser sends `Origin` with cross-site and most same-site requests: it must be this server. */
function checkOrigin(req: FastifyRequest): void {
  const origin = req.headers.origin;
  if (origin === undefined) return;
  const host = req.headers.host;
  if (!host || (origin !== `http://${host}` && origin !== `https://${host}`)) {
    fail("forbidden", `requests from ${origin === "null" ? "an opaque origin" : origin} may not use a console session`);
  }
}

function info(user: UserRow, session: SessionRow): SessionInfo {
  return { login: user.login, admin: user.admin, csrfToken: session.csrfToken, expiresAt: session.expiresAt.toISOString() };
}

function sendJson(reply: FastifyReply, status: number, value: unknown): FastifyReply {
  return reply.code(status).header("Cache-Control", "no-store").type("application/json; charset=utf-8").send(JSON.stringify(value));
}

/** The session of a page request, for the console's first render (undefined when signed out). */
export async function pageSession(sessions: Sessions, req: FastifyRequest): Promise<SessionInfo | undefined> {
  const token = sessionToken(req);
  const found = token ? await sessions.find(token) : undefined;
  return found && info(found.user, found.session);
}

/**
 * `POST /api/session` (sign in: `{"login", "password"}` in JSON), `GET /api/session` (who is
 * signed in, with the CSRF token) and `DELETE /api/session` (sign out), plus the hook that keeps
 * Basic challenges away from the console.
 */
export function registerSessionRoutes(app: FastifyInstance, deps: { auth: Authenticator; sessions: Sessions; secureCookies?: boolean }): void {
  const { auth, sessions } = deps;
  const cookieOptions = (req: FastifyRequest) => ({
    path: "/",
    httpOnly: true,
    sameSite: "strict" as const,
    secure: deps.secureCookies ?? req.protocol === "https",
  });

  app.addHook("onSend", async (req, reply, payload) => {
    if (reply.statusCode === 401 && (fromConsole(req) || req.routeOptions.url === "/api/session")) reply.removeHeader("WWW-Authenticate");
    return payload;
  });

  app.post("/api/session", async (req, reply) => {
    const type = (req.headers["content-type"] ?? "").split(";")[0]!.trim().toLowerCase();
    // JSON only: an HTML form of another site cannot send it, so nobody can be signed in unawares.
    if (type !== "application/json") fail("unsupportedMediaType", `sign in with a JSON body {"login": ..., "password": ...} (Content-Type: application/json), not "${type || "none"}"`);
    checkOrigin(req);
    let body: unknown;
    try {
      body = JSON.parse((await readBody(req, 64 * 1024)).toString("utf8"));
    } catch (err) {
      if (err instanceof KilnError) throw err;
      fail("malformedBody", "the sign-in body is not valid JSON");
    }
    const { login, password } = (body ?? {}) as { login?: unknown; password?: unknown };
    if (typeof login !== "string" || login === "" || typeof password !== "string" || password === "") {
      fail("invalidField", "sign in with both a login and a password");
    }
    // The same check as HTTP Basic, wrong-password throttle included (429 with Retry-After).
    const { user } = await auth.signIn(login, password, req.ip);
    const { token, session } = await sessions.open(user);
    req.log.info({ login: user.login }, "console sign-in");
    reply.setCookie(SESSION_COOKIE, token, { ...cookieOptions(req), maxAge: Math.floor(SESSION_MAX_AGE_MS / 1000) });
    return sendJson(reply, 201, info(user, session));
  });

  app.get("/api/session", async (req, reply) => {
    const found = await pageSession(sessions, req);
    if (!found) fail("unauthorized", "not signed in, or the session has ended: sign in again");
    return sendJson(reply, 200, found);
  });

  app.delete("/api/session", async (req, reply) => {
    const token = sessionToken(req);
    const found = token ? await sessions.find(token) : undefined;
    if (token && found) {
      checkForgery(req, found.session);
      await sessions.close(token);
      req.log.info({ login: found.user.login }, "console sign-out");
    }
    reply.clearCookie(SESSION_COOKIE, cookieOptions(req));
    return reply.code(204).header("Cache-Control", "no-store").send();
  });
}
