/**
 * Console sessions: the cookie's attributes, CSRF and Origin checks on writes, no Basic
 * challenge for the console, sign-out that ends the session on the server, idle and absolute
 * expiry, and the console page rendered with (or without) its session.
 */
import { createHash } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { LightMyRequestResponse } from "fastify";
import { SESSION_MAX_AGE_MS, Sessions } from "../../src/server/session.js";
import { startTestServer, type TestServer } from "../helpers/api.js";

let server: TestServer;

beforeAll(async () => {
  server = await startTestServer();
  await server.createUser("alice");
  await server.createUser("bob");
});
afterAll(async () => server?.close());

async function signIn(login: string, password: string, headers: Record<string, string> = {}): Promise<LightMyRequestResponse> {
  return server.rt.app.inject({ method: "POST", url: "/api/session", headers: { "content-type": "application/json", accept: "application/json", ...headers }, payload: JSON.stringify({ login, password }) });
}

function cookieOf(res: LightMyRequestResponse): string {
  const set = String(res.headers["set-cookie"]);
  return set.split(";")[0]!;
}

describe("console sessions", () => {
  it("signs in with an HttpOnly, SameSite=Strict cookie; the token is nowhere but in the cookie", async () => {
    const res = await signIn("alice", "alice-password");
    expect(res.statusCode).toBe(201);
    const set = String(res.headers["set-cookie"]);
    expect(set).toMatch(/^kiln_session=[A-Za-z0-9_-]{43};/);
    expect(set).toMatch(/; HttpOnly/);
    expect(set).toMatch(/; SameSite=Strict/);
    expect(set).toMatch(/; Path=\//);
    const body = res.json() as { login: string; csrfToken: string };
    expect(body.login).toBe("alice");
    const token = cookieOf(res).split("=")[1]!;
    expect(res.body).not.toContain(token);
    // The store keeps a hash of it, not the token.
    const store = server.rt.deps.store;
    expect(await store.sessions.get(token, new Date())).toBeUndefined();
    expect(await store.sessions.get(createHash("sha256").update(token).digest("hex"), new Date())).toMatchObject({ csrfToken: body.csrfToken });
  });

  it("answers a wrong password with 401 and no Basic challenge; the API still challenges Basic clients", async () => {
    const res = await signIn("alice", "wrong");
    expect(res.statusCode).toBe(401);
    expect(res.headers["www-authenticate"]).toBeUndefined();
    expect((res.json() as { localizedErrorMsg: { message: string } }).localizedErrorMsg.message).toBe("wrong user name or password");
    const basic = await server.request({ method: "GET", url: "/api/users/alice/mysoftware", user: "alice", password: "wrong" });
    expect(basic.statusCode).toBe(401);
    expect(basic.headers["www-authenticate"]).toMatch(/^Basic /);
  });

  it("refuses a sign-in that an HTML form could send", async () => {
    const res = await server.rt.app.inject({ method: "POST", url: "/api/session", headers: { "content-type": "application/x-www-form-urlencoded" }, payload: "login=alice&password=alice-password" });
    expect(res.statusCode).toBe(415);
    expect(res.headers["set-cookie"]).toBeUndefined();
  });

  it("authenticates reads by cookie; writes need the CSRF token and this server's Origin", async () => {
    const res = await signIn("alice", "alice-password");
    const cookie = cookieOf(res);
    const csrf = (res.json() as { csrfToken: string }).csrfToken;
    const json = { "content-type": "application/json", accept: "application/json", cookie };
    const read = await server.rt.app.inject({ method: "GET", url: "/api/users/alice/mysoftware", headers: json });
    expect(read.statusCode).toBe(200);
    // Another user's space stays invisible.
    expect((await server.rt.app.inject({ method: "GET", url: "/api/users/bob/mysoftware", headers: json })).statusCode).toBe(404);

    const payload = JSON.stringify({ name: "from-the-console" });
    const forged = await server.rt.app.inject({ method: "POST", url: "/api/users/alice/mysoftware", headers: json, payload });
    expect(forged.statusCode).toBe(403);
    expect(forged.body).toContain("CSRF");
    const wrong = await server.rt.app.inject({ method: "POST", url: "/api/users/alice/mysoftware", headers: { ...json, "x-kiln-csrf": `${csrf}x` }, payload });
    expect(wrong.statusCode).toBe(403);
    const crossSite = await server.rt.app.inject({ method: "POST", url: "/api/users/alice/mysoftware", headers: { ...json, "x-kiln-csrf": csrf, origin: "https://evil.example" }, payload });
    expect(crossSite.statusCode).toBe(403);
    const ok = await server.rt.app.inject({ method: "POST", url: "/api/users/alice/mysoftware", headers: { ...json, "x-kiln-csrf": csrf, origin: "http://localhost:80", host: "localhost:80" }, payload });
    expect(ok.statusCode).toBe(201);
    const list = (await server.request({ method: "GET", url: "/api/users/alice/mysoftware", user: "alice", headers: { accept: "application/json" } })).json() as { mySoftwareList: Array<{ name: string }> };
    expect(list.mySoftwareList.map((b) => b.name)).toEqual(["from-the-console"]);
  });

  it("signs out on the server: the old cookie opens nothing, and gets no Basic challenge", async () => {
    const res = await signIn("alice", "alice-password");
    const cookie = cookieOf(res);
    const csrf = (res.json() as { csrfToken: string }).csrfToken;
    expect((await server.rt.app.inject({ method: "GET", url: "/api/session", headers: { cookie } })).statusCode).toBe(200);
    // Signing out is a write like any other: without the token it is refused.
    expect((await server.rt.app.inject({ method: "DELETE", url: "/api/session", headers: { cookie } })).statusCode).toBe(403);
    const out = await server.rt.app.inject({ method: "DELETE", url: "/api/session", headers: { cookie, "x-kiln-csrf": csrf } });
    expect(out.statusCode).toBe(204);
    expect(String(out.headers["set-cookie"])).toMatch(/kiln_session=;.*Expires=Thu, 01 Jan 1970/);
    for (const url of ["/api/session", "/api/users/alice/mysoftware"]) {
      const after = await server.rt.app.inject({ method: "GET", url, headers: { cookie } });
      expect(after.statusCode).toBe(401);
      expect(after.headers["www-authenticate"]).toBeUndefined();
    }
  });

  it("expires sessions after the idle time, is kept alive by use, and never outlives the absolute limit", async () => {
    let now = new Date("2026-01-01T00:00:00Z");
    const hour = 3600_000;
    const sessions = new Sessions(server.rt.deps.store, 2 * hour, () => now);
    const alice = (await server.rt.deps.store.users.getByLogin("alice"))!;
    const idle = await sessions.open(alice);
    now = new Date(now.getTime() + 2 * hour + 1);
    expect(await sessions.find(idle.token)).toBeUndefined();

    now = new Date("2026-02-01T00:00:00Z");
    const used = await sessions.open(alice);
    // Used every 90 minutes: alive well past the idle time, until the absolute limit.
    let alive = 0;
    for (let t = 0; t < SESSION_MAX_AGE_MS + 4 * hour; t += 1.5 * hour) {
      now = new Date(Date.parse("2026-02-01T00:00:00Z") + t);
      if (await sessions.find(used.token)) alive = t;
    }
    expect(alive).toBeGreaterThan(2 * hour);
    expect(alive).toBeLessThan(SESSION_MAX_AGE_MS);
    expect(alive).toBeGreaterThan(SESSION_MAX_AGE_MS - 2 * hour);
  });

  it("serves the console page with its session, a strict CSP and cached, compressed assets", async () => {
    const anonymous = await server.rt.app.inject({ method: "GET", url: "/library/3" });
    expect(anonymous.statusCode).toBe(200);
    expect(anonymous.headers["content-type"]).toMatch(/^text\/html/);
    expect(anonymous.headers["content-security-policy"]).toMatch(/default-src 'none'; script-src 'self'/);
    expect(anonymous.headers["cache-control"]).toBe("no-store");
    expect(anonymous.body).toContain('<script type="application/json" id="kiln-session">null</script>');
    expect(anonymous.body).toMatch(/<title>[^<]*Kiln/);

    const cookie = cookieOf(await signIn("alice", "alice-password"));
    const page = await server.rt.app.inject({ method: "GET", url: "/", headers: { cookie } });
    expect(page.body).toMatch(/id="kiln-session">\{"login":"alice","admin":false,"csrfToken":"[\w-]+"/);

    const script = /src="(\/assets\/app-[0-9a-f]{12}\.js)"/.exec(page.body)![1]!;
    const asset = await server.rt.app.inject({ method: "GET", url: script, headers: { "accept-encoding": "br, gzip" } });
    expect(asset.statusCode).toBe(200);
    expect(asset.headers["content-encoding"]).toBe("br");
    expect(asset.headers["cache-control"]).toMatch(/max-age=31536000.*immutable|immutable.*max-age=31536000/);
    // The whole first load's JavaScript, compressed, stays well under 200 KB.
    expect(asset.rawPayload.length).toBeLessThan(200 * 1024);
    // The API keeps its own 404s.
    expect((await server.rt.app.inject({ method: "GET", url: "/api/nothing-here" })).body).toContain("no endpoint");
  });
});
