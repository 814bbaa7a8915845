/**
 * One-time download keys under pressure: only an answer that sends the file (200/206) uses a
 * key up, an unchanged object answers the same live key instead of minting one per GET, expired
 * keys are purged, a disabled user's keys stop working — and a stranger without a valid key
 * learns nothing about which users and objects exist.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { LightMyRequestResponse } from "fastify";
import { hashDownloadKey, issueDownloadKey } from "../../src/library/download-keys.js";
import { errorMessage, jsonClient, startTestServer, type TestServer } from "../helpers/api.js";

let server: TestServer;
const api: ReturnType<typeof jsonClient>["api"] = (...args) => jsonClient(server, "alice").api(...args);
const bytes = Buffer.from("0123456789".repeat(100));
let artifactUri: string;

beforeAll(async () => {
  server = await startTestServer();
  await server.createUser("alice");
  await server.createUser("bob");
  const b = await api<{ uri: string }>("POST", "users/alice/mysoftware", { name: "files", version: "1" });
  const a = await api<{ uri: string }>("POST", `${b.json.uri}/artifacts`, { name: "data.bin" });
  artifactUri = a.json.uri;
  const up = await server.request({ method: "POST", url: `/api/${artifactUri}/bin/data.bin`, user: "alice", headers: { "content-type": "application/octet-stream" }, payload: bytes });
  expect(up.statusCode, up.body).toBe(201);
});
afterAll(async () => server?.close());

/** The artifact's binaryUri, with the one-time key its GET hands out. */
async function keyedUrl(): Promise<string> {
  const art = await api<{ binaryUri: string }>("GET", artifactUri);
  expect(art.json.binaryUri).toMatch(/\?downloadId=[\w-]{20,}$/);
  return `/api/${art.json.binaryUri}`;
}

const anonymous = (url: string, headers: Record<string, string> = {}): Promise<LightMyRequestResponse> => server.request({ method: "GET", url, headers });

describe("using up a one-time key", () => {
  it("a 304 or a 416 leaves the key usable; the 200 that sends the file uses it", async () => {
    const url = await keyedUrl();
    const notModified = await anonymous(url, { "if-none-match": `"${(await import("node:crypto")).createHash("sha256").update(bytes).digest("hex")}"` });
    expect(notModified.statusCode).toBe(304);
    const beyond = await anonymous(url, { range: `bytes=${bytes.length}-` });
    expect(beyond.statusCode).toBe(416);
    expect(beyond.headers["content-range"]).toBe(`bytes */${bytes.length}`);
    const head = await server.request({ method: "HEAD", url });
    expect(head.statusCode).toBe(200);
    const got = await anonymous(url);
    expect(got.statusCode).toBe(200);
    expect(got.rawPayload.equals(bytes)).toBe(true);
    const again = await anonymous(url);
    expect(again.statusCode).toBe(401);
    expect(errorMessage(again)).toMatch(/already used or expired/);
  });

  it("a 206 uses it too", async () => {
    const url = await keyedUrl();
    const part = await anonymous(url, { range: "bytes=10-19" });
    expect(part.statusCode).toBe(206);
    expect(part.body).toBe("0123456789");
    expect((await anonymous(url, { range: "bytes=20-29" })).statusCode).toBe(401);
  });
});

describe("handing out keys", () => {
  it("answers the same live key to every GET of an unchanged object, and a new one once it is used", async () => {
    const urls = new Set<string>();
    for (let i = 0; i < 20; i++) urls.add(await keyedUrl());
    expect(urls.size).toBe(1);
    const [url] = [...urls];
    expect((await anonymous(url!)).statusCode).toBe(200);
    const next = await keyedUrl();
    expect(next).not.toBe(url);
    expect((await anonymous(next)).statusCode).toBe(200);
  });

  it("purges expired keys when it issues one", async () => {
    const { store } = server.rt.deps;
    const alice = (await store.users.getByLogin("alice"))!;
    const past = new Date(Date.now() - 3_600_000);
    for (let i = 0; i < 50; i++) await store.downloadKeys.create({ keyHash: hashDownloadKey(`old-${i}`), userId: alice.id, target: `artifact:${i}`, expiresAt: past });
    await issueDownloadKey(store, alice.id, "artifact:9999", 60_000);
    // Nothing expired is left for a purge to find.
    expect(await store.downloadKeys.deleteExpired(new Date())).toBe(0);
  });

  it("a disabled user's keys stop working", async () => {
    const b = await jsonClient(server, "bob").api<{ uri: string }>("POST", "users/bob/mysoftware", { name: "bob's", version: "1" });
    const a = await jsonClient(server, "bob").api<{ uri: string }>("POST", `${b.json.uri}/artifacts`, { name: "f.txt" });
    await server.request({ method: "POST", url: `/api/${a.json.uri}/bin/f.txt`, user: "bob", headers: { "content-type": "application/octet-stream" }, payload: Buffer.from("bob's file") });
    const art = await jsonClient(server, "bob").api<{ binaryUri: string }>("GET", a.json.uri);
    const url = `/api/${art.json.binaryUri}`;
    const off = await server.request({ method: "PUT", url: "/api/users/bob", user: "root", headers: { "content-type": "application/json" }, payload: JSON.stringify({ active: false }) });
    expect(off.statusCode, off.body).toBe(200);
    const res = await anonymous(url);
    expect(res.statusCode).toBe(401);
    expect(errorMessage(res)).toMatch(/already used or expired/);
  });
});

describe("strangers learn nothing", () => {
  it("answers the same 401 for an unknown user, an unknown bundle or artifact, and an existing file", async () => {
    const existing = `/api/${artifactUri}/bin/data.bin`;
    const unknown = [
      existing.replace("/users/alice/", "/users/nosuch/"),
      existing.replace(/\/mysoftware\/\d+\//, "/mysoftware/99/"),
      existing.replace(/\/artifacts\/\d+\//, "/artifacts/99/"),
      existing.replace(/\/artifacts\/\d+\//, "/artifacts/x/"),
    ];
    for (const query of ["", "?downloadId=not-a-valid-key-at-all"]) {
      const reference = await anonymous(`${existing}${query}`);
      expect(reference.statusCode).toBe(401);
      for (const url of unknown) {
        const res = await anonymous(`${url}${query}`);
        expect(res.statusCode, url).toBe(401);
        expect(errorMessage(res), url).toBe(errorMessage(reference));
        expect(res.headers["www-authenticate"]).toBe(reference.headers["www-authenticate"]);
      }
    }
  });

  it("answers the same 401 for images of unknown users and unknown images", async () => {
    const reference = await anonymous(`/api/${artifactUri}/bin/data.bin?downloadId=nope`);
    for (const url of ["/api/users/nosuch/mysoftware/1/templates/1/images/1/downloads", "/api/users/alice/mysoftware/1/templates/1/images/99/downloads/x.tar.gz"]) {
      const res = await anonymous(`${url}?downloadId=nope`);
      expect(res.statusCode, url).toBe(401);
      expect(errorMessage(res)).toBe(errorMessage(reference));
    }
  });

  it("still answers 404 to the owner", async () => {
    const res = await server.request({ method: "GET", url: `/api/${artifactUri.replace(/\/artifacts\/\d+/, "/artifacts/99")}/bin/data.bin`, user: "alice" });
    expect(res.statusCode).toBe(404);
  });
});
