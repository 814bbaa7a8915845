/**
 * Publication's guard against server-side request forgery: the addresses a user-chosen registry
 * may not reach (loopback, link-local, unspecified, Kiln's own) unless KILN_PUBLISH_ALLOW lists
 * them, checked after DNS resolution on every connection — the registry's token service and the
 * upload locations it hands out included — and failures to connect that all read the same.
 */
import http from "node:http";
import net, { type AddressInfo } from "node:net";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BlobStore } from "../../src/blobs/blob-store.js";
import { KilnError } from "../../src/domain/errors.js";
import type { BuiltImage } from "../../src/oci/types.js";
import { RegistryClient } from "../../src/registry/client.js";
import { parseAllowList, publicationEgress, type EgressPolicy } from "../../src/registry/egress.js";
import { pushImage } from "../../src/registry/push.js";
import { makeImage } from "../fixtures/images.js";

/** What `fn` threw (its message), or "" when it did not. */
function refusal(fn: () => void): string {
  try {
    fn();
    return "";
  } catch (err) {
    expect(err).toBeInstanceOf(KilnError);
    return (err as KilnError).message;
  }
}

describe("KILN_PUBLISH_ALLOW", () => {
  it("reads hosts, host:port, IPv6 in brackets and CIDRs", () => {
    expect(parseAllowList(" 127.0.0.1:5000, registry.lan ,10.0.0.0/8,[::1]:5000, ::1, 169.254.0.0/16")).toEqual([
      { kind: "host", text: "127.0.0.1:5000", host: "127.0.0.1", port: 5000 },
      { kind: "host", text: "registry.lan", host: "registry.lan", port: undefined },
      { kind: "cidr", text: "10.0.0.0/8", network: "10.0.0.0", prefix: 8, family: "ipv4" },
      { kind: "host", text: "[::1]:5000", host: "::1", port: 5000 },
      { kind: "host", text: "::1", host: "::1", port: undefined },
      { kind: "cidr", text: "169.254.0.0/16", network: "169.254.0.0", prefix: 16, family: "ipv4" },
    ]);
    expect(parseAllowList(undefined)).toEqual([]);
  });

  it("refuses what it cannot read, naming the entry", () => {
    expect(() => parseAllowList("10.0.0.0/33")).toThrow('KILN_PUBLISH_ALLOW: "10.0.0.0/33" is not a valid CIDR');
    expect(() => parseAllowList("host:99999")).toThrow('KILN_PUBLISH_ALLOW: "host:99999" has no valid port');
    expect(() => parseAllowList("http://x")).toThrow('KILN_PUBLISH_ALLOW: "http://x" is neither a host, a host:port nor a CIDR');
  });
});

describe("the publication policy", () => {
  const own = (): Set<string> => new Set(["192.0.2.2", "fd00::2"]);
  const closed = publicationEgress([], own);

  it("refuses loopback, link-local, unspecified and Kiln's own addresses, saying which kind", () => {
    const cases: Array<[string, string, RegExp]> = [
      ["127.0.0.1", "127.0.0.1", /^publication to 127\.0\.0\.1:5000 is refused: it is a loopback address, which Kiln does not publish to unless the server's KILN_PUBLISH_ALLOW lists it$/],
      ["127.9.9.9", "127.9.9.9", /loopback/],
      ["::1", "::1", /^publication to \[::1\]:5000 is refused: it is a loopback address/],
      ["localhost", "::ffff:127.0.0.1", /^publication to localhost:5000 is refused: it resolves to a loopback address/],
      ["169.254.169.254", "169.254.169.254", /link-local/],
      ["metadata.internal", "fe80::1", /resolves to a link-local address/],
      ["0.0.0.0", "0.0.0.0", /unspecified/],
      ["::", "::", /unspecified/],
      ["kiln.lan", "192.0.2.2", /resolves to an address of the Kiln server itself/],
      ["fd00::2", "fd00::2", /it is an address of the Kiln server itself/],
    ];
    for (const [host, address, message] of cases) expect(refusal(() => closed.check(host, address, 5000)), `${host} → ${address}`).toMatch(message);
  });

  it("lets every other address through, private networks included", () => {
    for (const address of ["10.1.2.3", "192.168.1.10", "172.16.0.1", "93.184.216.34", "2001:db8::1", "fd12::1"]) expect(refusal(() => closed.check("r.example", address, 443)), address).toBe("");
  });

  it("lets through what the operator allows: by CIDR, by host, by host:port only on that port", () => {
    const policy = publicationEgress(parseAllowList("127.0.0.0/8,localhost,[::1]:5000,169.254.10.1:80"), own);
    expect(refusal(() => policy.check("127.0.0.1", "127.0.0.1", 1))).toBe("");
    expect(refusal(() => policy.check("localhost", "::1", 9999))).toBe("");
    expect(refusal(() => policy.check("::1", "::1", 5000))).toBe("");
    expect(refusal(() => policy.check("::1", "::1", 5001))).toMatch(/loopback/);
    expect(refusal(() => policy.check("169.254.10.1", "169.254.10.1", 80))).toBe("");
    expect(refusal(() => policy.check("169.254.169.254", "169.254.169.254", 80))).toMatch(/link-local/);
  });
});

describe("a guarded registry client", () => {
  let work: string;
  let blobs: BlobStore;
  let image: BuiltImage;
  /** A TCP listener that counts connections and never answers: what must not be reached. */
  let target: net.Server;
  let targetPort: number;
  let connections = 0;
  const open: Array<{ close: () => void }> = [];

  beforeAll(async () => {
    work = await mkdtemp(path.join(os.tmpdir(), "kiln-egress-"));
    blobs = BlobStore.open(path.join(work, "blobs"));
    image = await makeImage(blobs, { seed: "egress" });
    target = net.createServer((s) => {
      connections++;
      s.destroy();
    });
    await new Promise<void>((r) => target.listen(0, "127.0.0.1", r));
    targetPort = (target.address() as AddressInfo).port;
  });
  afterAll(async () => {
    for (const o of open) o.close();
    await new Promise((r) => target.close(r));
    await rm(work, { recursive: true, force: true });
  });

  /** A fake registry on loopback whose answers send the client elsewhere. */
  async function fakeRegistry(handler: http.RequestListener): Promise<string> {
    const server = http.createServer(handler);
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    open.push({ close: () => server.close() });
    return `127.0.0.1:${(server.address() as AddressInfo).port}`;
  }

  const once = { attempts: 1 };

  async function pushTo(host: string, egress: EgressPolicy): Promise<string> {
    const err = await pushImage(image, blobs, { registry: `http://${host}`, repository: "team/app", tag: "1" }, {}, { clientOptions: { egress, retry: once } }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(KilnError);
    return (err as KilnError).message;
  }

  it("connects to nothing forbidden, whether named by address or by a name that resolves to it", async () => {
    const before = connections;
    for (const host of [`127.0.0.1:${targetPort}`, `localhost:${targetPort}`]) {
      const client = new RegistryClient(`http://${host}`, { egress: publicationEgress([]), retry: once });
      const err = await client.ping().then(() => undefined, (e: unknown) => e);
      client.close();
      expect((err as Error).message, host).toMatch(/is refused: it (is|resolves to) a loopback address/);
    }
    expect(connections).toBe(before);
  });

  it("refuses an upload location the registry points at a forbidden address", async () => {
    const registry = await fakeRegistry((req, res) => {
      if (req.url === "/v2/") res.writeHead(200).end("{}");
      else if (req.method === "HEAD") res.writeHead(404).end();
      else if (req.method === "POST") res.writeHead(202, { location: `http://127.0.0.1:${targetPort}/v2/team/app/blobs/uploads/x`, "content-length": "0" }).end();
      else res.writeHead(500).end();
    });
    const before = connections;
    const message = await pushTo(registry, publicationEgress(parseAllowList(registry)));
    expect(message).toMatch(new RegExp(`publication to 127\\.0\\.0\\.1:${targetPort} is refused: it is a loopback address`));
    expect(connections).toBe(before);
  });

  it("refuses a token service the registry points at the metadata address", async () => {
    const registry = await fakeRegistry((_req, res) => res.writeHead(401, { "www-authenticate": 'Bearer realm="http://169.254.169.254/latest/meta-data",service="x"' }).end());
    const message = await pushTo(registry, publicationEgress(parseAllowList(registry)));
    expect(message).toMatch(/publication to 169\.254\.169\.254:80 is refused: it is a link-local address/);
  });

  it("says only \"could not reach the registry\" whether the port is closed or resets", async () => {
    const closedPort = await new Promise<number>((resolve) => {
      const s = net.createServer();
      s.listen(0, "127.0.0.1", () => {
        const { port } = s.address() as AddressInfo;
        s.close(() => resolve(port));
      });
    });
    const allowAll = publicationEgress(parseAllowList("127.0.0.1"));
    const closedMessage = await pushTo(`127.0.0.1:${closedPort}`, allowAll);
    const resetMessage = await pushTo(`127.0.0.1:${targetPort}`, allowAll);
    expect(closedMessage).toBe(`could not reach the registry 127.0.0.1:${closedPort} (gave up after 1 try)`);
    expect(resetMessage).toBe(`could not reach the registry 127.0.0.1:${targetPort} (gave up after 1 try)`);
    // Unguarded (an operator's registry), the cause is told.
    const err = await pushImage(image, blobs, { registry: `http://127.0.0.1:${closedPort}`, repository: "team/app", tag: "1" }, {}, { clientOptions: { retry: once } }).catch((e: unknown) => e);
    expect((err as Error).message).toMatch(/ECONNREFUSED/);
  });
});
