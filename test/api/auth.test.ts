/**
 * Authentication: HTTP Basic and UForge API-key signatures, and secrets kept out of answers and logs.
 */
import { Writable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { signUrl } from "../../src/server/auth.js";
import { basic, errorMessage, startTestServer, xmlField, type TestServer } from "../helpers/api.js";

const NS = 'xmlns:ns0="http://www.usharesoft.com/uforge"';
let server: TestServer;
const logLines: string[] = [];

beforeAll(async () => {
  server = await startTestServer();
  await server.createUser("alice", "alice-secret-pw");
});
afterAll(async () => server?.close());

describe("HTTP Basic", () => {
  it("answers 401 with a Basic challenge without credentials", async () => {
    const res = await server.request({ method: "GET", url: "/api/users/alice/mysoftware" });
    expect(res.statusCode).toBe(401);
    expect(res.headers["www-authenticate"]).toMatch(/^Basic realm="kiln"/);
    expect(errorMessage(res)).toMatch(/authentication required/);
  });

  it("answers 401 for a wrong password or an unknown user", async () => {
    for (const auth of [basic("alice", "wrong"), basic("nobody", "x"), "Bearer abc"]) {
      const res = await server.request({ method: "GET", url: "/api/users/alice/mysoftware", headers: { authorization: auth } });
      expect(res.statusCode).toBe(401);
      expect(res.headers["www-authenticate"]).toMatch(/^Basic/);
    }
  });

  it("lets the right password in", async () => {
    const res = await server.request({ method: "GET", url: "/api/users/alice", headers: { authorization: basic("alice", "alice-secret-pw") } });
    expect(res.statusCode).toBe(200);
    expect(xmlField(res.body, "loginName")).toBe("alice");
    expect(res.body).not.toContain("alice-secret-pw");
    expect(res.body).not.toContain("scrypt");
  });

  it("slows repeated wrong passwords with 429 and Retry-After, but lets the real user in from where they signed in before", async () => {
    await server.createUser("grace", "grace-password-1");
    const as = (password: string, remoteAddress: string) => server.request({ method: "GET", url: "/api/users/grace", remoteAddress, headers: { authorization: basic("grace", password) } });
    expect((await as("grace-password-1", "192.0.2.10")).statusCode).toBe(200);
    const answers: number[] = [];
    for (let i = 0; i < 6; i++) answers.push((await as(`guess-${i}`, "203.0.113.1")).statusCode);
    expect(answers).toEqual([401, 401, 401, 401, 401, 401]);
    const held = await as("guess-7", "203.0.113.1");
    expect(held.statusCode).toBe(429);
    expect(Number(held.headers["retry-after"])).toBeGreaterThanOrEqual(1);
    expect(Number(held.headers["retry-after"])).toBeLessThanOrEqual(30);
    expect(errorMessage(held)).toMatch(/^too many wrong passwords for grace: try again in \d+ s$/);
    // Even the right password waits, from an address grace never used (a guess must not pass)...
    expect((await as("grace-password-1", "203.0.113.2")).statusCode).toBe(429);
    // ...but grace gets in from where she signed in before, and other users are not affected.
    expect((await as("grace-password-1", "192.0.2.10")).statusCode).toBe(200);
    expect((await server.request({ method: "GET", url: "/api/users/alice", remoteAddress: "203.0.113.2", headers: { authorization: basic("alice", "alice-secret-pw") } })).statusCode).toBe(200);
  });

  it("serves the status without credentials", async () => {
    const res = await server.request({ method: "GET", url: "/api/status" });
    expect(res.statusCode).toBe(200);
    expect(xmlField(res.body, "alive")).toBe("true");
  });
});

describe("API keys", () => {
  let publicKey: string;
  let secret: string;
  let keyUri: string;

  beforeAll(async () => {
    const res = await server.request({
      method: "POST",
      url: "/api/users/alice/apikeys",
      headers: { authorization: basic("alice", "alice-secret-pw"), "content-type": "application/xml" },
      payload: `<ns0:apiKeyPair ${NS}><name>ci</name></ns0:apiKeyPair>`,
    });
    expect(res.statusCode, res.body).toBe(201);
    publicKey = xmlField(res.body, "publicKey")!;
    secret = xmlField(res.body, "secretKey")!;
    keyUri = xmlField(res.body, "uri")!;
    expect(publicKey.length).toBeGreaterThan(20);
    expect(secret.length).toBeGreaterThan(30);
  });

  it("shows the secret only at creation", async () => {
    const res = await server.request({ method: "GET", url: "/api/users/alice/apikeys", headers: { authorization: basic("alice", "alice-secret-pw") } });
    expect(res.body).toContain(publicKey);
    expect(res.body).not.toContain(secret);
    expect(res.body).not.toContain("<secretKey>");
  });

  it("accepts a signature of the full URL and of the path", async () => {
    for (const base of ["http://localhost:80/api/users/alice/mysoftware?apiKey=", "/api/users/alice/mysoftware?apiKey="]) {
      const signed = signUrl(`${base}${encodeURIComponent(publicKey)}`, secret);
      const url = signed.slice(signed.indexOf("/api/"));
      const res = await server.request({ method: "GET", url, headers: { host: "localhost:80" } });
      expect(res.statusCode, res.body).toBe(200);
    }
  });

  it("refuses a tampered signature, a signature of another URL, and an unknown key", async () => {
    const good = signUrl(`/api/users/alice/mysoftware?apiKey=${encodeURIComponent(publicKey)}`, secret);
    const tampered = good.replace(/signature=(.)/, (_m, c: string) => `signature=${c === "A" ? "B" : "A"}`);
    const otherUrl = signUrl(`/api/users/alice/accounts?apiKey=${encodeURIComponent(publicKey)}`, secret).replace("/accounts?", "/mysoftware?");
    const unknown = signUrl(`/api/users/alice/mysoftware?apiKey=nosuchkey`, secret);
    const wrongSecret = signUrl(`/api/users/alice/mysoftware?apiKey=${encodeURIComponent(publicKey)}`, "not-the-secret");
    for (const url of [tampered, otherUrl, unknown, wrongSecret, `/api/users/alice/mysoftware?apiKey=${publicKey}`]) {
      const res = await server.request({ method: "GET", url });
      expect(res.statusCode, url).toBe(401);
    }
  });

  it("refuses a revoked key", async () => {
    const url = signUrl(`/api/users/alice/mysoftware?apiKey=${encodeURIComponent(publicKey)}`, secret);
    expect((await server.request({ method: "GET", url })).statusCode).toBe(200);
    const del = await server.request({ method: "DELETE", url: `/api/${keyUri}`, headers: { authorization: basic("alice", "alice-secret-pw") } });
    expect(del.statusCode).toBe(204);
    const res = await server.request({ method: "GET", url });
    expect(res.statusCode).toBe(401);
    expect(errorMessage(res)).toMatch(/unknown or revoked API key/);
  });
});

describe("API-key signatures bound to their method", () => {
  let publicKey: string;
  let secret: string;
  const alice = { authorization: basic("alice", "alice-secret-pw") };

  beforeAll(async () => {
    const res = await server.request({ method: "POST", url: "/api/users/alice/apikeys", headers: { ...alice, "content-type": "application/xml" }, payload: `<ns0:apiKeyPair ${NS}><name>replay</name></ns0:apiKeyPair>` });
    publicKey = xmlField(res.body, "publicKey")!;
    secret = xmlField(res.body, "secretKey")!;
  });

  async function newBundle(): Promise<string> {
    const res = await server.request({ method: "POST", url: "/api/users/alice/mysoftware", headers: { ...alice, "content-type": "application/json", accept: "application/json" }, payload: JSON.stringify({ name: "precious", version: "1" }) });
    expect(res.statusCode, res.body).toBe(201);
    return `/api/${(res.json() as { uri: string }).uri}`;
  }
  const keyed = (path: string): string => `${path}?apiKey=${encodeURIComponent(publicKey)}`;

  it("refuses a signed GET URL replayed as DELETE or PUT: nothing is deleted or changed", async () => {
    const bundle = await newBundle();
    const signedGet = signUrl(keyed(bundle), secret);
    expect((await server.request({ method: "GET", url: signedGet })).statusCode).toBe(200);
    const replayed = await server.request({ method: "DELETE", url: signedGet });
    expect(replayed.statusCode).toBe(401);
    expect(errorMessage(replayed)).toMatch(/covers the URL only.*for a DELETE, sign "DELETE " followed by the URL/);
    expect((await server.request({ method: "GET", url: bundle, headers: alice })).statusCode).toBe(200);

    const signedUser = signUrl(keyed("/api/users/alice"), secret);
    expect((await server.request({ method: "GET", url: signedUser })).statusCode).toBe(200);
    const put = await server.request({ method: "PUT", url: signedUser, headers: { "content-type": "application/json" }, payload: JSON.stringify({ email: "mallory@example.com" }) });
    expect(put.statusCode).toBe(401);
    const me = await server.request({ method: "GET", url: "/api/users/alice", headers: { ...alice, accept: "application/json" } });
    expect((me.json() as { email: string }).email).toBe("alice@example.com");
  });

  it("accepts a signature of \"<METHOD> <URL>\" for that method only", async () => {
    const bundle = await newBundle();
    const signedDelete = signUrl(`http://localhost:80${keyed(bundle)}`, secret, "DELETE");
    const url = signedDelete.slice(signedDelete.indexOf("/api/"));
    // The DELETE signature opens neither a GET nor a PUT of the same URL.
    expect((await server.request({ method: "GET", url, headers: { host: "localhost:80" } })).statusCode).toBe(401);
    expect((await server.request({ method: "PUT", url, headers: { host: "localhost:80", "content-type": "application/json" }, payload: "{}" })).statusCode).toBe(401);
    expect((await server.request({ method: "DELETE", url, headers: { host: "localhost:80" } })).statusCode).toBe(204);
    expect((await server.request({ method: "GET", url: bundle, headers: alice })).statusCode).toBe(404);
  });

  it("accepts URL-only signatures for every method when KILN_APIKEY_SIGNATURES=uforge", async () => {
    const uforge = await startTestServer({ env: { KILN_APIKEY_SIGNATURES: "uforge" } });
    try {
      await uforge.createUser("alice", "alice-secret-pw");
      const key = await uforge.request({ method: "POST", url: "/api/users/alice/apikeys", headers: { ...alice, "content-type": "application/xml" }, payload: `<ns0:apiKeyPair ${NS}/>` });
      const [pub, sec] = [xmlField(key.body, "publicKey")!, xmlField(key.body, "secretKey")!];
      const created = await uforge.request({ method: "POST", url: "/api/users/alice/mysoftware", headers: { ...alice, "content-type": "application/json", accept: "application/json" }, payload: JSON.stringify({ name: "b", version: "1" }) });
      const bundle = `/api/${(created.json() as { uri: string }).uri}?apiKey=${encodeURIComponent(pub)}`;
      // Kiln's own clients sign the method too: still accepted.
      const put = await uforge.request({ method: "PUT", url: signUrl(bundle, sec, "PUT"), headers: { "content-type": "application/json" }, payload: JSON.stringify({ description: "d" }) });
      expect(put.statusCode, put.body).toBe(200);
      expect((await uforge.request({ method: "DELETE", url: signUrl(bundle, sec) })).statusCode).toBe(204);
    } finally {
      await uforge.close();
    }
  });

  it("refuses an unknown KILN_APIKEY_SIGNATURES at start", async () => {
    const { loadConfig } = await import("../../src/server/config.js");
    expect(() => loadConfig({ KILN_APIKEY_SIGNATURES: "none" })).toThrow(/KILN_APIKEY_SIGNATURES must be kiln or uforge/);
  });
});

describe("API-key signatures as UForge clients make them", () => {
  let publicKey: string;
  let secret: string;

  beforeAll(async () => {
    const res = await server.request({ method: "POST", url: "/api/users/alice/apikeys", headers: { authorization: basic("alice", "alice-secret-pw"), "content-type": "application/xml" }, payload: `<ns0:apiKeyPair ${NS}/>` });
    publicKey = xmlField(res.body, "publicKey")!;
    secret = xmlField(res.body, "secretKey")!;
  });

  it("accepts the signature of the URL relative to /api, with or without its leading slash", async () => {
    for (const relative of ["users/alice/mysoftware?apiKey=", "/users/alice/mysoftware?apiKey="]) {
      const signed = signUrl(`${relative}${encodeURIComponent(publicKey)}`, secret);
      const url = `/api/users/alice/mysoftware${signed.slice(signed.indexOf("?"))}`;
      const res = await server.request({ method: "GET", url });
      expect(res.statusCode, `${relative}: ${res.body}`).toBe(200);
    }
    // Relative to /api means under it: the same text does not pass for another path.
    const signed = signUrl(`users/alice/mysoftware?apiKey=${encodeURIComponent(publicKey)}`, secret);
    expect((await server.request({ method: "GET", url: `/api/users/alice/accounts${signed.slice(signed.indexOf("?"))}` })).statusCode).toBe(401);
  });

  async function throughProxy(env: Record<string, string>, remoteAddress = "127.0.0.1"): Promise<number> {
    const behind = await startTestServer({ env });
    try {
      await behind.createUser("alice", "alice-secret-pw");
      const key = await behind.request({ method: "POST", url: "/api/users/alice/apikeys", headers: { authorization: basic("alice", "alice-secret-pw"), "content-type": "application/xml" }, payload: `<ns0:apiKeyPair ${NS}/>` });
      const [pub, sec] = [xmlField(key.body, "publicKey")!, xmlField(key.body, "secretKey")!];
      // The client called the public URL; the proxy (TLS ended there) forwards to Kiln on loopback.
      const signed = signUrl(`https://kiln.example.com/api/users/alice/mysoftware?apiKey=${encodeURIComponent(pub)}`, sec, "POST");
      const res = await behind.request({
        method: "POST",
        url: signed.slice(signed.indexOf("/api/")),
        remoteAddress,
        headers: { host: "127.0.0.1:8080", "x-forwarded-proto": "https", "x-forwarded-host": "kiln.example.com", "content-type": "application/json" },
        payload: JSON.stringify({ name: "via-proxy", version: "1" }),
      });
      return res.statusCode;
    } finally {
      await behind.close();
    }
  }

  it("checks a signature of the public https URL behind a TLS-terminating proxy only when KILN_TRUST_PROXY trusts it", async () => {
    expect(await throughProxy({})).toBe(401);
    expect(await throughProxy({ KILN_TRUST_PROXY: "true" })).toBe(201);
    expect(await throughProxy({ KILN_TRUST_PROXY: "127.0.0.1" })).toBe(201);
    // Headers from a peer that is not the trusted proxy are ignored.
    expect(await throughProxy({ KILN_TRUST_PROXY: "10.0.0.1" })).toBe(401);
    expect(await throughProxy({ KILN_TRUST_PROXY: "10.0.0.0/8" }, "10.1.2.3")).toBe(201);
  });
});

describe("secrets in logs", () => {
  it("never writes a password, a signature or a download key to the log", async () => {
    const { loadConfig } = await import("../../src/server/config.js");
    const { openRuntime } = await import("../../src/server/serve.js");
    const sink = new Writable({
      write(chunk, _enc, cb) {
        logLines.push(String(chunk));
        cb();
      },
    });
    const rt = await openRuntime(loadConfig({ ...process.env, KILN_DATA_DIR: `${server.dataDir}/data`, KILN_CONFIG: `${server.dataDir}/kiln.yaml`, KILN_LOG_LEVEL: "debug" }), {
      logger: { stream: sink },
      announce: () => undefined,
    });
    try {
      await rt.app.inject({ method: "GET", url: "/api/users/alice", headers: { authorization: basic("alice", "alice-secret-pw") } });
      await rt.app.inject({ method: "GET", url: "/api/users/alice", headers: { authorization: basic("alice", "wrong-pw-xyz") } });
      await rt.app.inject({ method: "GET", url: "/api/users/alice/mysoftware?apiKey=pubkey123&signature=SIGNATUREVALUE" });
      await rt.app.inject({ method: "GET", url: "/api/users/alice/mysoftware/1/artifacts/1/bin?downloadId=DOWNLOADKEYVALUE" });
    } finally {
      await rt.close();
    }
    const log = logLines.join("");
    expect(log).toContain("/api/users/alice"); // the log is there...
    for (const secret of ["alice-secret-pw", "wrong-pw-xyz", "SIGNATUREVALUE", "DOWNLOADKEYVALUE", Buffer.from("alice:alice-secret-pw").toString("base64")]) {
      expect(log).not.toContain(secret); // ...but not the secrets
    }
  });
});

describe("remembered logins and answers", () => {
  it("forget a login as soon as the user changes", async () => {
    await server.createUser("carol", "carol-password-1");
    const as = (pw: string) => server.request({ method: "GET", url: "/api/users/carol", headers: { authorization: basic("carol", pw) } });
    expect((await as("carol-password-1")).statusCode).toBe(200);
    expect((await as("carol-password-1")).statusCode).toBe(200); // answered from memory now
    const changed = await server.request({
      method: "PUT",
      url: "/api/users/carol",
      headers: { authorization: basic("carol", "carol-password-1"), "content-type": "application/json" },
      payload: JSON.stringify({ password: "carol-password-2" }),
    });
    expect(changed.statusCode).toBe(200);
    expect((await as("carol-password-1")).statusCode).toBe(401);
    expect((await as("carol-password-2")).statusCode).toBe(200);
    const carol = (await server.rt.deps.store.users.getByLogin("carol"))!;
    await server.rt.deps.store.users.update(carol.id, { active: false });
    const disabled = await as("carol-password-2");
    expect(disabled.statusCode).toBe(401);
    expect(errorMessage(disabled)).toMatch(/disabled/);
  });

  it("never serve a kept answer after the object changed", async () => {
    const b = await server.request({ method: "POST", url: "/api/users/alice/mysoftware", headers: { authorization: basic("alice", "alice-secret-pw"), "content-type": "application/json", accept: "application/json" }, payload: JSON.stringify({ name: "cached", version: "1" }) });
    const uri = (b.json() as { uri: string }).uri;
    const get = () => server.request({ method: "GET", url: `/api/${uri}`, headers: { authorization: basic("alice", "alice-secret-pw"), accept: "application/json" } });
    const first = await get();
    const second = await get();
    expect(second.body).toBe(first.body);
    expect(second.headers.etag).toBe(first.headers.etag);
    await server.request({ method: "PUT", url: `/api/${uri}`, headers: { authorization: basic("alice", "alice-secret-pw"), "content-type": "application/json" }, payload: JSON.stringify({ description: "now described" }) });
    const third = await get();
    expect((third.json() as { description: string }).description).toBe("now described");
    expect(third.headers.etag).not.toBe(first.headers.etag);
    // A kept answer still honours conditional requests.
    expect((await server.request({ method: "GET", url: `/api/${uri}`, headers: { authorization: basic("alice", "alice-secret-pw"), accept: "application/json", "if-none-match": third.headers.etag as string } })).statusCode).toBe(304);
  });
});
