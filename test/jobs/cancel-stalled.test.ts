/**
 * Cancelling a generation while the mirror stalls a package download (issue 13's console test:
 * "Cancel" took effect only once the mirror let the .deb go). The mirror here holds every `.deb`
 * until the test ends — before answering, or after the headers and half the body — so the cancel
 * can only end the job by aborting the request in flight: the job must reach "cancelled", and
 * Kiln must close the requests it had in flight, while the hold is still in place (a cancel that
 * waited for the mirror would wait forever).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { jsonClient, kilnYaml, startTestServer, type JsonStatus, type TestServer } from "../helpers/api.js";
import { MIRROR_DIR } from "../helpers/global-setup.js";
import { MirrorServer } from "../helpers/mirror-server.js";

let mirror: MirrorServer;
let server: TestServer;
let templateUri: string;
const api: ReturnType<typeof jsonClient>["api"] = (...args) => jsonClient(server, "alice").api(...args);

beforeAll(async () => {
  mirror = await MirrorServer.start(MIRROR_DIR);
  server = await startTestServer({ yaml: kilnYaml(mirror.url) });
  await server.createUser("alice");
  const b = await api<{ uri: string }>("POST", "users/alice/mysoftware", { name: "stalled", version: "1.0" });
  expect(b.status, JSON.stringify(b.json)).toBe(201);
  const t = await api<{ uri: string }>("POST", `${b.json.uri}/templates`, { distribution: { name: "Debian", version: "12", arch: "x86_64" } });
  expect(t.status, JSON.stringify(t.json)).toBe(201);
  templateUri = t.json.uri;
});

afterAll(async () => {
  await server?.close();
  await mirror?.close();
});

describe("cancelling a generation while the mirror holds a .deb", () => {
  for (const stage of ["headers", "body"] as const) {
    it(`ends it as cancelled with the hold still in place (held before the ${stage === "headers" ? "answer" : "end of the body"})`, async () => {
      mirror.holdDebs = stage;
      const abandonedBefore = mirror.held.abandoned;
      try {
        const g = await api<{ uri: string; statusUri: string }>("POST", `${templateUri}/images`, { targetFormat: { name: "Docker" }, compress: true });
        expect(g.status, JSON.stringify(g.json)).toBe(201);
        // The generation is now waiting on the mirror.
        await mirror.whenHeld((h) => h.now > 0);

        // The cancel answers once the job has stopped; the mirror still holds the package.
        const cancel = await api<JsonStatus>("DELETE", g.json.statusUri);
        expect(cancel.status, JSON.stringify(cancel.json)).toBe(200);
        expect(cancel.json.cancelled, JSON.stringify(cancel.json)).toBe(true);
        expect(mirror.holdDebs).toBe(stage);
        const status = (await api<JsonStatus>("GET", g.json.statusUri)).json;
        expect(status.cancelled, JSON.stringify(status)).toBe(true);
        // Kiln closed the requests it had in flight: none is left waiting on the mirror, which
        // still holds (a request that stayed open would keep this waiting until the test times out).
        await mirror.whenHeld((h) => h.now === 0);
        expect(mirror.held.abandoned).toBeGreaterThan(abandonedBefore);
        expect(mirror.holdDebs).toBe(stage);
      } finally {
        mirror.release();
      }
    });
  }
});
