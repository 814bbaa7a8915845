/**
 * Object answers must be revalidated by browsers: with only ETag and Last-Modified, Chromium
 * reuses an answer without asking (heuristic freshness), and the console's template page missed
 * the image it had just generated (a template's lastModified does not move when an image is
 * added) until the next change — issue 13's "cancel took effect only after the mirror released
 * the .deb". Every object GET says `Cache-Control: no-cache`, kept answers included, and the
 * conditional request still answers 304.
 */
import { afterAll, beforeAll, expect, it } from "vitest";
import { jsonClient, startTestServer, type TestServer } from "../helpers/api.js";

let server: TestServer;

beforeAll(async () => {
  server = await startTestServer();
  await server.createUser("alice");
});
afterAll(async () => {
  await server?.close();
});

it("answers object GETs with Cache-Control: no-cache, fresh or kept, and 304 to a matching If-None-Match", async () => {
  const { api } = jsonClient(server, "alice");
  const b = await api<{ uri: string }>("POST", "users/alice/mysoftware", { name: "hello", version: "1.0" });
  const t = await api<{ uri: string }>("POST", `${b.json.uri}/templates`, { distribution: { name: "Debian", version: "12", arch: "x86_64" } });
  for (const uri of [t.json.uri, t.json.uri, b.json.uri, "users/alice"]) {
    const res = (await api("GET", uri)).res;
    expect(res.statusCode, uri).toBe(200);
    expect(res.headers["cache-control"], uri).toBe("no-cache");
    const again = await server.request({ method: "GET", url: `/api/${uri}`, user: "alice", headers: { accept: "application/json", "if-none-match": String(res.headers.etag) } });
    expect(again.statusCode, uri).toBe(304);
  }
});
