/**
 * Publication is no way into Kiln's own machine: an account whose endpoint is loopback (by
 * address or by name), the cloud metadata address, the unspecified address or one of the
 * server's own addresses fails with a clear error and no connection made; what the operator
 * allows in KILN_PUBLISH_ALLOW is reached, and a refused connection reads only "could not reach
 * the registry" — in the status and in its details.
 */
import net, { type AddressInfo } from "node:net";
import { networkInterfaces } from "node:os";
import { gzipSync } from "node:zlib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { makeTar } from "../fixtures/debs.js";
import { jsonClient, startTestServer, type JsonStatus, type TestServer } from "../helpers/api.js";

let server: TestServer;
const api: ReturnType<typeof jsonClient>["api"] = (...args) => jsonClient(server, "alice").api(...args);
const waitFor: ReturnType<typeof jsonClient>["waitFor"] = (...args) => jsonClient(server, "alice").waitFor(...args);
let imageUri: string;
/** Counts connections and drops them: what publication must not reach. */
let target: net.Server;
let targetPort: number;
let connections = 0;
/** A port nothing listens on, which the operator allows. */
let closedPort: number;

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address() as AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

beforeAll(async () => {
  target = net.createServer((s) => {
    connections++;
    s.destroy();
  });
  await new Promise<void>((r) => target.listen(0, "127.0.0.1", r));
  targetPort = (target.address() as AddressInfo).port;
  closedPort = await freePort();
  server = await startTestServer({ env: { KILN_PUBLISH_ALLOW: `127.0.0.1:${closedPort}` } });
  await server.createUser("alice");
  const b = await api<{ uri: string }>("POST", "users/alice/mysoftware", { name: "guarded", version: "1.0" });
  const a = await api<{ uri: string }>("POST", `${b.json.uri}/artifacts`, { name: "hello.tar.gz", extract: true, installLocation: "/opt/hello" });
  const tgz = gzipSync(await makeTar([{ name: "hello", content: "#!/bin/sh\necho hello\n", mode: 0o755 }]));
  expect((await server.request({ method: "POST", url: `/api/${a.json.uri}/bin/hello.tar.gz`, user: "alice", headers: { "content-type": "application/octet-stream" }, payload: tgz })).statusCode).toBe(201);
  const t = await api<{ uri: string }>("POST", `${b.json.uri}/templates`, { distribution: { uri: "distributions/1" } });
  const img = await api<{ uri: string; statusUri: string }>("POST", `${t.json.uri}/images`, { targetFormat: { name: "Docker" }, compress: false });
  imageUri = img.json.uri;
  expect((await waitFor(img.json.statusUri)).complete).toBe(true);
});
afterAll(async () => {
  await server?.close();
  await new Promise((r) => target?.close(r));
});

/** Publishes through an account at `endpointUrl` and waits for the publication to end. */
async function publishTo(endpointUrl: string): Promise<JsonStatus> {
  const acct = await api<{ uri: string }>("POST", "users/alice/accounts", { xsiType: "CredAccountDocker", name: endpointUrl, endpointUrl, login: "alice", password: "pw" });
  expect(acct.status, JSON.stringify(acct.json)).toBe(201);
  const pub = await api<{ statusUri: string }>("POST", `${imageUri}/pimages`, { xsiType: "PublishImageDocker", credAccount: { xsiType: "CredAccountDocker", uri: acct.json.uri }, namespace: "team", repositoryName: "app", tagName: "1" });
  expect(pub.status, JSON.stringify(pub.json)).toBe(201);
  return waitFor(pub.json.statusUri);
}

describe("publication to Kiln's own machine", () => {
  it("is refused for loopback, link-local and unspecified addresses, and names that resolve to them", async () => {
    const cases: Array<[string, RegExp]> = [
      [`http://127.0.0.1:${targetPort}`, /^publication to 127\.0\.0\.1:\d+ is refused: it is a loopback address, which Kiln does not publish to unless the server's KILN_PUBLISH_ALLOW lists it$/],
      [`http://localhost:${targetPort}`, /^publication to localhost:\d+ is refused: it resolves to a loopback address/],
      [`http://[::1]:${targetPort}`, /^publication to \[::1\]:\d+ is refused: it is a loopback address/],
      ["http://169.254.169.254", /^publication to 169\.254\.169\.254:80 is refused: it is a link-local address/],
      [`http://0.0.0.0:${targetPort}`, /^publication to 0\.0\.0\.0:\d+ is refused: it is an unspecified address/],
    ];
    for (const [url, message] of cases) {
      const s = await publishTo(url);
      expect(s.error, url).toBe(true);
      expect(s.errorMessage, url).toMatch(message);
    }
    expect(connections).toBe(0);
  });

  const own = Object.values(networkInterfaces()).flat().find((i) => i && !i.internal && i.family === "IPv4")?.address;
  it.skipIf(own === undefined)("is refused for the server's own addresses", async () => {
    const s = await publishTo(`http://${own}:${targetPort}`);
    expect(s.errorMessage).toMatch(/is refused: it is an address of the Kiln server itself/);
  });

  it("reports a connection refused by an allowed address only as \"could not reach the registry\"", async () => {
    const s = await publishTo(`http://127.0.0.1:${closedPort}`);
    expect(s.error).toBe(true);
    expect(s.errorMessage).toMatch(new RegExp(`^could not reach the registry 127\\.0\\.0\\.1:${closedPort}( \\(gave up after \\d+ tries\\))?$`));
    expect(`${s.errorMessage} ${s.detailedErrorMsg}`).not.toMatch(/ECONN|refused|connect /i);
  });
});
