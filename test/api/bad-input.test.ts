/**
 * Every kind of bad input the foundation issue lists: each gets the right 4xx, a message that
 * names the problem, and stores nothing.
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { basic, errorMessage, startTestServer, xmlField, type TestServer } from "../helpers/api.js";

const NS = 'xmlns:ns0="http://www.usharesoft.com/uforge"';
const XML = { "content-type": "application/xml" };
let server: TestServer;
let msid: number;
let tid: number;

async function bundleCount(user = "alice"): Promise<number> {
  const res = await server.request({ method: "GET", url: `/api/users/${user}/mysoftware`, user });
  return Number(xmlField(res.body, "total"));
}

beforeAll(async () => {
  server = await startTestServer({ env: { KILN_MAX_UPLOAD: "1MiB" } });
  await server.createUser("alice");
  await server.createUser("bob");
  const res = await server.request({ method: "POST", url: "/api/users/alice/mysoftware", user: "alice", headers: XML, payload: `<ns0:mySoftware ${NS}><name>a</name><version>1</version></ns0:mySoftware>` });
  msid = Number(xmlField(res.body, "dbId"));
  const t = await server.request({
    method: "POST",
    url: `/api/users/alice/mysoftware/${msid}/templates`,
    user: "alice",
    headers: XML,
    payload: `<ns0:containerTemplate ${NS}><distribution><uri>distributions/1</uri></distribution></ns0:containerTemplate>`,
  });
  tid = Number(xmlField(t.body, "dbId"));
});
afterAll(async () => server?.close());

/**
 * Sends `total` bytes as a chunked body (no Content-Length), as fast as the server takes them,
 * and stops sending once an answer arrives: the answer, or the connection error instead of one.
 */
function chunkedPost(port: number, url: string, type: string, total: number): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: "127.0.0.1", port, path: url, method: "POST", headers: { authorization: basic("alice", "alice-password"), "content-type": type } });
    let answered = false;
    req.on("response", (res) => {
      answered = true;
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => {
        // As curl does once it has the answer: stop the upload.
        req.destroy();
        resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString("utf8") });
      });
      res.on("error", reject);
    });
    req.on("error", (err) => {
      if (!answered) reject(new Error(`no answer, the connection failed: ${err.message}`));
    });
    const chunk = Buffer.alloc(64 * 1024, 0x41);
    let sent = 0;
    const pump = (): void => {
      while (!answered && sent < total) {
        sent += chunk.length;
        if (!req.write(chunk)) return void req.once("drain", pump);
      }
      if (!answered) req.end();
    };
    pump();
  });
}

describe("malformed and hostile bodies", () => {
  it.each([
    ["malformed XML", XML, `<ns0:mySoftware ${NS}><name>x</name>`, 400, /malformed|unclosed|end of/i],
    ["malformed JSON", { "content-type": "application/json" }, `{"name": "x",`, 400, /JSON/i],
    ["a DOCTYPE", XML, `<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "b">]><ns0:mySoftware ${NS}><name>&a;</name></ns0:mySoftware>`, 400, /DTD|DOCTYPE/i],
    ["an external entity", XML, `<?xml version="1.0"?><!DOCTYPE x [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><ns0:mySoftware ${NS}><name>&xxe;</name></ns0:mySoftware>`, 400, /DTD|DOCTYPE/i],
    ["a wrong root element", XML, `<ns0:image ${NS}><name>x</name></ns0:image>`, 400, /mySoftware/],
    ["a root outside UForge's namespace", XML, `<mySoftware><name>x</name></mySoftware>`, 400, /mySoftware|namespace/],
    ["a wrong field type", { "content-type": "application/json" }, JSON.stringify({ name: "x", dbId: "seven" }), 400, /dbId/],
    ["an unsupported content type", { "content-type": "text/plain" }, "name=x", 415, /Content-Type/],
    ["no content type", {}, "<x/>", 415, /Content-Type/],
  ])("refuses %s", async (_what, headers, payload, status, message) => {
    const before = await bundleCount();
    const res = await server.request({ method: "POST", url: "/api/users/alice/mysoftware", user: "alice", headers: headers as Record<string, string>, payload });
    expect(res.statusCode, res.body).toBe(status);
    expect(errorMessage(res)).toMatch(message);
    expect(res.body).not.toMatch(/at .*\.(ts|js):\d+/); // never a stack trace
    expect(await bundleCount()).toBe(before);
  });

  it("refuses a 50 MB XML body with 413 before reading it all", async () => {
    const big = `<ns0:mySoftware ${NS}><name>x</name><description>${"a".repeat(50 * 1024 * 1024)}</description></ns0:mySoftware>`;
    const before = await bundleCount();
    const res = await server.request({ method: "POST", url: "/api/users/alice/mysoftware", user: "alice", headers: XML, payload: big });
    expect(res.statusCode).toBe(413);
    expect(errorMessage(res)).toMatch(/limit/);
    expect(await bundleCount()).toBe(before);
  });

  it("refuses an unknown distribution", async () => {
    const res = await server.request({
      method: "POST",
      url: `/api/users/alice/mysoftware/${msid}/templates`,
      user: "alice",
      headers: XML,
      payload: `<ns0:containerTemplate ${NS}><distribution><arch>x86_64</arch><name>CentOS</name><version>7</version></distribution></ns0:containerTemplate>`,
    });
    expect(res.statusCode).toBe(400);
    expect(errorMessage(res)).toMatch(/no distribution CentOS 7 x86_64.*Debian 12 x86_64/);
    const list = await server.request({ method: "GET", url: `/api/users/alice/mysoftware/${msid}/templates`, user: "alice" });
    expect(xmlField(list.body, "total")).toBe("1");
  });

  it("refuses a restriction rule with a syntax error and points at it", async () => {
    const b = await server.request({ method: "GET", url: `/api/users/alice/mysoftware/${msid}`, user: "alice" });
    const uri = /<bundleRestriction>[\s\S]*?<uri>([^<]+)<\/uri>/.exec(b.body)![1]!;
    const res = await server.request({
      method: "PUT",
      url: `/api/${uri}`,
      user: "alice",
      headers: XML,
      payload: `<ns0:bundleRestriction ${NS}><restrictionRule>Distribution#name=Debian &amp;&amp; (TargetFormat#type=container</restrictionRule></ns0:bundleRestriction>`,
    });
    expect(res.statusCode).toBe(400);
    expect(errorMessage(res)).toMatch(/position 57: expected "\)"/);
    const after = await server.request({ method: "GET", url: `/api/${uri}/distributions`, user: "alice" });
    expect(xmlField(after.body, "total")).toBe("1"); // the old (empty) rule still holds
  });

  it("evaluates a 4,096-character rule of stars at once, and answers /api/status meanwhile", async () => {
    // As a regular expression, each star a ".*", this rule backtracked for ever (issue 10, item 5).
    // Carol's bundle: the other tests count alice's and bob's.
    await server.createUser("carol");
    // Carol's bundle: the other tests count alice's and bob's.
    await server.createUser("carol");
    const rule = `Distribution#name=${"*".repeat(4096 - 19)}x`;
    expect(rule).toHaveLength(4096);
    const b = await server.request({ method: "POST", url: "/api/users/carol/mysoftware", user: "carol", headers: XML, payload: `<ns0:mySoftware ${NS}><name>stars</name><version>1</version></ns0:mySoftware>` });
    const id = Number(xmlField(b.body, "dbId"));
    const uri = /<bundleRestriction>[\s\S]*?<uri>([^<]+)<\/uri>/.exec(b.body)![1]!;
    const put = await server.request({ method: "PUT", url: `/api/${uri}`, user: "carol", headers: XML, payload: `<ns0:bundleRestriction ${NS}><restrictionRule>${rule}</restrictionRule></ns0:bundleRestriction>` });
    expect(put.statusCode).toBe(200);
    const [dists, status, template] = await Promise.all([
      server.request({ method: "GET", url: `/api/${uri}/distributions`, user: "carol" }),
      server.request({ method: "GET", url: "/api/status" }),
      server.request({ method: "POST", url: `/api/users/carol/mysoftware/${id}/templates`, user: "carol", headers: XML, payload: `<ns0:containerTemplate ${NS}><distribution><uri>distributions/1</uri></distribution></ns0:containerTemplate>` }),
    ]);
    expect(xmlField(dists.body, "total")).toBe("0"); // "Debian" does not end in x
    expect(status.statusCode).toBe(200);
    expect(template.statusCode).toBe(400);
    expect(errorMessage(template)).toMatch(/restriction rule of software bundle stars/);
  });
});

describe("bad ids and query parameters", () => {
  it.each([
    ["/api/users/alice/mysoftware/abc", /msid must be a positive integer/],
    ["/api/users/alice/mysoftware/-3", /msid must be a positive integer/],
    ["/api/users/alice/mysoftware/0", /msid must be a positive integer/],
    ["/api/users/alice/mysoftware/1.5", /msid must be a positive integer/],
    ["/api/users/alice/mysoftware?count=-1", /count must be a non-negative integer/],
    ["/api/users/alice/mysoftware?offset=x", /offset must be a non-negative integer/],
    ["/api/users/alice/mysoftware?orderBy=password", /cannot order by "password"/],
    ["/api/users/alice/mysoftware?descending=perhaps", /descending must be true or false/],
  ])("GET %s is a 400", async (url, message) => {
    const res = await server.request({ method: "GET", url, user: "alice" });
    expect(res.statusCode).toBe(400);
    expect(errorMessage(res)).toMatch(message);
  });

  it("answers 404 for an unknown id", async () => {
    const res = await server.request({ method: "GET", url: "/api/users/alice/mysoftware/999999", user: "alice" });
    expect(res.statusCode).toBe(404);
    expect(errorMessage(res)).toMatch(/no software bundle 999999/);
  });
});

describe("uploads", () => {
  let said: number;
  beforeAll(async () => {
    const res = await server.request({ method: "POST", url: `/api/users/alice/mysoftware/${msid}/artifacts`, user: "alice", headers: XML, payload: `<ns0:softwareArtifact ${NS}><name>f.bin</name></ns0:softwareArtifact>` });
    said = Number(xmlField(res.body, "dbId"));
  });

  it("refuses an upload above KILN_MAX_UPLOAD with 413 and stores nothing", async () => {
    const res = await server.request({
      method: "POST",
      url: `/api/users/alice/mysoftware/${msid}/artifacts/${said}/bin/f.bin`,
      user: "alice",
      headers: { "content-type": "application/octet-stream" },
      payload: Buffer.alloc(1024 * 1024 + 1, 7),
    });
    expect(res.statusCode).toBe(413);
    expect(errorMessage(res)).toMatch(/limit of 1048576 bytes/);
    const a = await server.request({ method: "GET", url: `/api/users/alice/mysoftware/${msid}/artifacts/${said}`, user: "alice" });
    expect(xmlField(a.body, "uploaded")).toBe("false");
    expect(await server.rt.deps.blobs.list()).toEqual([]);
  });

  it("answers 413 to a chunked upload (no Content-Length) that grows past KILN_MAX_UPLOAD, and to a chunked object body too large", async () => {
    await server.rt.app.listen({ port: 0, host: "127.0.0.1" });
    const { port } = server.rt.app.server.address() as AddressInfo;
    for (const [url, type] of [
      [`/api/users/alice/mysoftware/${msid}/artifacts/${said}/bin/f.bin`, "application/octet-stream"],
      ["/api/users/alice/mysoftware", "application/xml"],
    ] as const) {
      const answer = await chunkedPost(port, url, type, 8 * 1024 * 1024);
      expect(answer.status, url).toBe(413);
      expect(answer.body, url).toMatch(/exceeds the limit of \d+ bytes/);
    }
    expect(await server.rt.deps.blobs.list()).toEqual([]);
  });

  it.each([
    ["a slash", "a%2Fb"],
    ["a dot-dot", ".."],
    ["a NUL", "a%00b"],
    ["a backslash", "a%5Cb"],
  ])("refuses a fileName with %s", async (_what, name) => {
    const res = await server.request({
      method: "POST",
      url: `/api/users/alice/mysoftware/${msid}/artifacts/${said}/bin/${name}`,
      user: "alice",
      headers: { "content-type": "application/octet-stream" },
      payload: "x",
    });
    expect([400, 404]).toContain(res.statusCode);
    if (res.statusCode === 400) expect(errorMessage(res)).toMatch(/invalid file name/);
    expect(await server.rt.deps.blobs.list()).toEqual([]);
  });
});

describe("isolation between users", () => {
  it("answers 404 for another user's objects, whatever the verb", async () => {
    for (const [method, url] of [
      ["GET", `/api/users/alice/mysoftware/${msid}`],
      ["DELETE", `/api/users/alice/mysoftware/${msid}`],
      ["GET", `/api/users/alice/mysoftware/${msid}/templates/${tid}`],
      ["GET", `/api/users/alice`],
      ["GET", `/api/users/alice/accounts`],
    ] as const) {
      const res = await server.request({ method, url, user: "bob" });
      expect(res.statusCode, `${method} ${url}`).toBe(404);
    }
    // Bob's own space does not reach Alice's ids either.
    const res = await server.request({ method: "GET", url: `/api/users/bob/mysoftware/${msid}`, user: "bob" });
    expect(res.statusCode).toBe(404);
    expect(await bundleCount()).toBe(1);
  });

  it("answers 403 when an entitlement is missing", async () => {
    const bob = (await server.rt.deps.store.users.getByLogin("bob"))!;
    await server.rt.deps.store.users.update(bob.id, { entitlements: bob.entitlements.filter((e) => e !== "software_upload") });
    const res = await server.request({ method: "POST", url: "/api/users/bob/mysoftware", user: "bob", headers: XML, payload: `<ns0:mySoftware ${NS}><name>x</name></ns0:mySoftware>` });
    expect(res.statusCode).toBe(403);
    expect(errorMessage(res)).toMatch(/lacks the entitlement software_upload/);
    expect(await bundleCount("bob")).toBe(0);
  });

  it("lets only the administrator create users", async () => {
    const res = await server.request({ method: "POST", url: "/api/users", user: "alice", headers: XML, payload: `<ns0:user ${NS}><loginName>eve</loginName><password>long-enough</password></ns0:user>` });
    expect(res.statusCode).toBe(403);
    expect(await server.rt.deps.store.users.getByLogin("eve")).toBeUndefined();
  });
});
