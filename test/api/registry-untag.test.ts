/**
 * Deleting an image deletes its tag from a registry blob store (KILN_BLOB_STORE=oci+…), whether
 * the image is deleted itself or with its template: afterwards its registeringName no longer
 * resolves (skopeo fails, the registry answers 404 to the manifest's HEAD). A registry that
 * cannot be reached, or that does not allow deletion, does not keep the image alive in Kiln: it is
 * deleted, its tag stays, and the server logs a warning that says so (without the credentials).
 * (A multi-architecture image's tag, a manifest list, is deleted in multi-arch.test.ts.)
 * Real docker-registry on loopback; a proxy in front of one cuts the tag deletions on demand.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { Writable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { jsonClient, startTestServer, type TestServer } from "../helpers/api.js";
import { startProxy, startRegistry, type TestProxy, type TestRegistry } from "../helpers/registry.js";

const PASSWORD = "untag-store-secret-pw";

interface LogLine {
  level: number;
  msg: string;
  image?: number;
  reference?: string;
  outcome?: string;
  err?: string;
  digest?: string;
}

/** A server whose blob store is `registryUrl`, and what it logs. */
async function storeServer(registryUrl: string): Promise<{ server: TestServer; logs: LogLine[] }> {
  const logs: LogLine[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString("utf8").split("\n")) if (line.trim()) logs.push(JSON.parse(line) as LogLine);
      done();
    },
  });
  const server = await startTestServer({ env: { KILN_BLOB_STORE: `oci+${registryUrl}/kiln`, KILN_BLOB_STORE_CREDENTIALS: `kiln:${PASSWORD}` }, logger: { level: "info", stream } });
  await server.createUser("alice");
  return { server, logs };
}

/**
 * Generates `count` uncompressed images of a new template; their uris and registeringNames. Their
 * entrypoints differ: identical images are one manifest, whose tags docker-registry cannot delete
 * one without the others.
 */
async function generate(server: TestServer, count: number, options: { identical?: boolean } = {}): Promise<{ templateUri: string; images: Array<{ uri: string; name: string; id: number }> }> {
  const { api, waitFor } = jsonClient(server, "alice");
  const b = await api<{ uri: string }>("POST", "users/alice/mysoftware", { name: `untag-${Math.random().toString(36).slice(2, 8)}`, version: "1.0" });
  const t = await api<{ uri: string }>("POST", `${b.json.uri}/templates`, { distribution: { name: "Debian", version: "12", arch: "x86_64" } });
  expect(t.status, JSON.stringify(t.json)).toBe(201);
  const images = [];
  for (let i = 0; i < count; i++) {
    const img = await api<{ uri: string; statusUri: string; dbId: number }>("POST", `${t.json.uri}/images`, { targetFormat: { name: "Docker" }, compress: false, entrypoint: `["/bin/echo","${options.identical ? 0 : i}"]` });
    expect(img.status, JSON.stringify(img.json)).toBe(201);
    const done = await waitFor(img.json.statusUri, undefined, 280_000);
    expect(done.error ? done.detailedErrorMsg : "").toBe("");
    const { json } = await api<{ registeringName: string }>("GET", img.json.uri);
    images.push({ uri: img.json.uri, name: json.registeringName, id: img.json.dbId });
  }
  return { templateUri: t.json.uri, images };
}

function inspect(name: string): { ok: boolean; err: string } {
  const r = spawnSync("skopeo", ["inspect", "--raw", "--tls-verify=false", `--creds=kiln:${PASSWORD}`, `docker://${name}`], { encoding: "utf8" });
  return { ok: r.status === 0, err: r.stderr };
}

/** The registry's answer to a HEAD of the manifest `name` (`host/repository:tag`) names. */
async function manifestHead(registry: TestRegistry, name: string): Promise<number> {
  const rest = name.slice(`${registry.host}/`.length);
  const colon = rest.lastIndexOf(":");
  const res = await fetch(`${registry.url}/v2/${rest.slice(0, colon)}/manifests/${rest.slice(colon + 1)}`, {
    method: "HEAD",
    headers: {
      authorization: `Basic ${Buffer.from(`kiln:${PASSWORD}`).toString("base64")}`,
      accept: "application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json",
    },
  });
  return res.status;
}

/** The registry's answer to a HEAD of the blob store's blob `digest`. */
async function blobHead(registry: TestRegistry, digest: string): Promise<number> {
  const res = await fetch(`${registry.url}/v2/kiln/blobs/blobs/${digest}`, {
    method: "HEAD",
    headers: { authorization: `Basic ${Buffer.from(`kiln:${PASSWORD}`).toString("base64")}` },
  });
  return res.status;
}

describe("a registry that allows deletion", () => {
  let registry: TestRegistry;
  let proxy: TestProxy;
  let server: TestServer;
  let logs: LogLine[];
  let cutTagDeletions = false;

  beforeAll(async () => {
    registry = await startRegistry({ auth: "htpasswd", users: { kiln: PASSWORD }, deleteEnabled: true });
    // Only the manifests' DELETE is cut (a registry down at that moment); blobs go through.
    proxy = await startProxy(registry.port, { fault: (r) => (cutTagDeletions && r.method === "DELETE" && r.url.includes("/manifests/") ? "reset" : undefined) });
    ({ server, logs } = await storeServer(proxy.url));
  });
  afterAll(async () => {
    await server?.close();
    await proxy?.stop();
    await registry?.stop();
  });

  it("deleting an image, or its template, deletes its tag; a registry that cannot be reached keeps it, and says so", async () => {
    const { api } = jsonClient(server, "alice");
    const { templateUri, images } = await generate(server, 3);
    const [one, two, three] = images as [(typeof images)[0], (typeof images)[0], (typeof images)[0]];
    for (const img of images) {
      expect(img.name.startsWith(`${proxy.host}/kiln/alice/`)).toBe(true);
      expect(inspect(img.name.replace(proxy.host, registry.host))).toMatchObject({ ok: true });
    }
    const onRegistry = (name: string): string => name.replace(proxy.host, registry.host);

    // The image itself.
    expect((await api("DELETE", one.uri)).status).toBe(204);
    expect((await api("GET", one.uri)).status).toBe(404);
    expect(await manifestHead(registry, onRegistry(one.name))).toBe(404);
    const gone = inspect(onRegistry(one.name));
    expect(gone.ok).toBe(false);
    expect(gone.err).toMatch(/manifest unknown|not found/i);
    expect(logs.find((l) => l.image === one.id && l.msg === "registry tag deletion")).toMatchObject({ level: 30, reference: one.name, outcome: expect.stringMatching(/^(tag|digest)$/) });
    // The others are untouched.
    expect(await manifestHead(registry, onRegistry(two.name))).toBe(200);

    // The registry cannot be reached for the tag: the image is deleted all the same, its tag stays, a warning says so.
    cutTagDeletions = true;
    expect((await api("DELETE", two.uri)).status).toBe(204);
    cutTagDeletions = false;
    expect((await api("GET", two.uri)).status).toBe(404);
    expect(await manifestHead(registry, onRegistry(two.name))).toBe(200);
    const warning = logs.find((l) => l.image === two.id && l.level === 40);
    expect(warning).toMatchObject({ reference: two.name, msg: "the image's registry tag stays: could not delete it from the registry", err: expect.any(String) });
    expect(JSON.stringify(logs)).not.toContain(PASSWORD);

    // With its template.
    expect((await api("DELETE", templateUri)).status).toBe(204);
    expect(await manifestHead(registry, onRegistry(three.name))).toBe(404);
    expect(inspect(onRegistry(three.name)).ok).toBe(false);
  }, 900_000);

  it("identical images are one manifest: docker-registry cannot delete one's tag alone, which stays, and a warning says why", async () => {
    const { api } = jsonClient(server, "alice");
    const { images } = await generate(server, 2, { identical: true });
    const [one, two] = images as [(typeof images)[0], (typeof images)[0]];
    expect((await api("DELETE", one.uri)).status).toBe(204);
    expect(await manifestHead(registry, one.name.replace(proxy.host, registry.host))).toBe(200);
    expect(logs.find((l) => l.image === one.id && l.level === 40)).toMatchObject({ reference: one.name, outcome: "shared", err: expect.stringContaining(`tag ${two.name.slice(two.name.lastIndexOf(":") + 1)} names the same image`) });
  }, 600_000);
});

describe("a registry that does not allow deletion", () => {
  let registry: TestRegistry;
  let server: TestServer;
  let logs: LogLine[];

  beforeAll(async () => {
    registry = await startRegistry({ auth: "htpasswd", users: { kiln: PASSWORD }, deleteEnabled: false });
    ({ server, logs } = await storeServer(registry.url));
  });
  afterAll(async () => {
    await server?.close();
    await registry?.stop();
  });

  it("the image is deleted from Kiln; its tag stays, and a warning says the registry refused", async () => {
    const { api } = jsonClient(server, "alice");
    const { images } = await generate(server, 1);
    const img = images[0]!;
    const res = await api("DELETE", img.uri);
    // The image is gone from Kiln, and the answer says so. Its blobs cannot be deleted from such a
    // store either (docs/deploy.md says it needs deletion): they stay, and a warning names each.
    expect(res.status).toBe(204);
    expect((await api("GET", img.uri)).status).toBe(404);
    const left = logs.filter((l) => l.level === 40 && l.msg === "a blob nothing refers to stays in the blob store: it could not be deleted");
    expect(left.length).toBeGreaterThan(0);
    for (const l of left) {
      expect(l.digest).toMatch(/^sha256:[0-9a-f]{64}$/);
      expect(l.err).toMatch(/answered 405 to DELETE \/v2\/kiln\/blobs\/blobs\/sha256:[0-9a-f]{64}: UNSUPPORTED/);
      expect(await blobHead(registry, l.digest as string)).toBe(200);
    }
    expect(await manifestHead(registry, img.name)).toBe(200);
    expect(JSON.parse(execFileSync("skopeo", ["inspect", "--raw", "--tls-verify=false", `--creds=kiln:${PASSWORD}`, `docker://${img.name}`], { encoding: "utf8" })) as object).toHaveProperty("layers");
    expect(logs.find((l) => l.image === img.id && l.level === 40)).toMatchObject({ reference: img.name, outcome: "unsupported", msg: "the image's registry tag stays: the registry did not delete it" });
    expect(JSON.stringify(logs)).not.toContain(PASSWORD);
  }, 600_000);
});
