/**
 * Multi-architecture images through the API: a generation that asks for several architectures
 * (Kiln's JSON extension `architectures`) builds one complete image per architecture, and its
 * publication pushes a Docker manifest list that skopeo reads from a real docker-registry and
 * resolves per platform. The mirrors are the suite's (bookworm amd64, and arm64 minbase + jq).
 */
import { execFileSync, spawnSync } from "node:child_process";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { errorMessage, jsonClient, startTestServer, type TestServer } from "../helpers/api.js";
import { ARM64_MIRROR_DIR, MIRROR_DIR } from "../helpers/global-setup.js";
import { startRegistry, type TestRegistry } from "../helpers/registry.js";

const PASSWORD = "registry-secret-pw";
const STORE_PASSWORD = "blob-store-secret-pw";
let server: TestServer;
let registry: TestRegistry;
let templateUri: string;
const client = (): ReturnType<typeof jsonClient> => jsonClient(server, "alice");

beforeAll(async () => {
  registry = await startRegistry({ auth: "htpasswd", users: { alice: PASSWORD, kiln: STORE_PASSWORD } });
  const dist = (arch: string, mirror: string): string => `  - {name: Debian, version: "12", arch: ${arch}, mirror: "file://${mirror}/", suite: bookworm, components: [main], keyring: none}\n`;
  server = await startTestServer({ yaml: `distributions:\n${dist("x86_64", MIRROR_DIR)}${dist("aarch64", ARM64_MIRROR_DIR)}`, env: { KILN_PUBLISH_ALLOW: "127.0.0.1" } });
  await server.createUser("alice");
  const b = await client().api<{ uri: string }>("POST", "users/alice/mysoftware", { name: "multi", version: "1.0" });
  const t = await client().api<{ uri: string }>("POST", `${b.json.uri}/templates`, { distribution: { name: "Debian", version: "12", arch: "x86_64" } });
  expect(t.status, JSON.stringify(t.json)).toBe(201);
  templateUri = t.json.uri;
});
afterAll(async () => {
  await server?.close();
  await registry?.stop();
});

describe("the default configuration", () => {
  it("offers Debian 12 and 13, for x86_64 and aarch64, from Debian's mirror, verified with its keyring", async () => {
    const { loadConfig } = await import("../../src/server/config.js");
    const config = loadConfig({ KILN_CONFIG: "" }, {});
    expect(config.configFile).toBeUndefined();
    expect(config.distributions.map((d) => `${d.name} ${d.version} ${d.arch} ${d.suite}`)).toEqual([
      "Debian 12 x86_64 bookworm",
      "Debian 13 x86_64 trixie",
      "Debian 12 aarch64 bookworm",
      "Debian 13 aarch64 trixie",
    ]);
    expect(new Set(config.distributions.map((d) => `${d.mirror} ${d.keyring}`))).toEqual(new Set(["http://deb.debian.org/debian/ /usr/share/keyrings/debian-archive-keyring.gpg"]));
  });
});

describe("arm64 distributions on the wire", () => {
  it("JSON clients see them; XML clients, bound by uforge.xsd's architectures, do not", async () => {
    const json = await client().api<{ distributions: Array<{ arch: string; dbId: number }> }>("GET", "distributions");
    expect(json.json.distributions.map((d) => d.arch)).toEqual(["x86_64", "aarch64"]);
    const xml = await server.request({ method: "GET", url: "/api/distributions", user: "alice" });
    expect(xml.statusCode).toBe(200);
    expect(xml.body).toContain("<arch>x86_64</arch>");
    expect(xml.body).not.toContain("aarch64");
    const arm = json.json.distributions.find((d) => d.arch === "aarch64")!;
    const one = await server.request({ method: "GET", url: `/api/distributions/${arm.dbId}`, user: "alice" });
    expect(one.statusCode).toBe(406);
    expect(errorMessage(one)).toMatch(/architecture uforge\.xsd cannot express in XML: ask with Accept: application\/json/);
  });
});

describe("a generation of several architectures", () => {
  it("refuses what it cannot do, saying why", async () => {
    const gen = async (body: Record<string, unknown>) => {
      const res = await server.request({ method: "POST", url: `/api/${templateUri}/images`, user: "alice", headers: { "content-type": "application/json", accept: "application/json" }, payload: JSON.stringify({ targetFormat: { name: "Docker" }, ...body }) });
      return { status: res.statusCode, message: errorMessage(res) };
    };
    expect(await gen({ compress: true, architectures: ["x86_64", "aarch64"] })).toEqual({ status: 400, message: expect.stringMatching(/cannot be compressed: its download, a docker-archive, holds one architecture/) });
    expect(await gen({ architectures: ["x86_64", "s390x"] })).toEqual({ status: 400, message: "Debian 12 is not offered for s390x (offered: x86_64, aarch64)" });
    expect(await gen({ architectures: ["aarch64"] })).toEqual({ status: 400, message: expect.stringMatching(/must include the template's architecture x86_64/) });
    expect(await gen({ architectures: "x86_64" })).toEqual({ status: 400, message: expect.stringMatching(/image\.architectures must be a list/) });
  });

  it("builds amd64 and arm64 images, and publishes them under one manifest list", async () => {
    const { api, waitFor } = client();
    const img = await api<{ uri: string; statusUri: string }>("POST", `${templateUri}/images`, { targetFormat: { name: "Docker" }, compress: false, architectures: ["x86_64", "aarch64"] });
    expect(img.status, JSON.stringify(img.json)).toBe(201);
    const done = await waitFor(img.json.statusUri, undefined, 280_000);
    expect(done.error ? done.detailedErrorMsg : "").toBe("");
    expect(done.complete).toBe(true);

    const acct = await api<{ uri: string }>("POST", "users/alice/accounts", { xsiType: "CredAccountDocker", name: "local", endpointUrl: registry.url, login: "alice", password: PASSWORD });
    const pub = await api<{ statusUri: string }>("POST", `${img.json.uri}/pimages`, { xsiType: "PublishImageDocker", credAccount: { xsiType: "CredAccountDocker", uri: acct.json.uri }, namespace: "team", repositoryName: "multi", tagName: "1.0" });
    expect(pub.status, JSON.stringify(pub.json)).toBe(201);
    const published = await waitFor(pub.json.statusUri);
    expect(published.error ? published.detailedErrorMsg : "").toBe("");

    const skopeo = (...args: string[]): string => execFileSync("skopeo", [...args.slice(0, -1), "--tls-verify=false", `--creds=alice:${PASSWORD}`, `docker://${registry.host}/team/multi:1.0`], { encoding: "utf8" });
    const raw = JSON.parse(skopeo("inspect", "--raw", "")) as { mediaType: string; manifests: Array<{ mediaType: string; platform: Record<string, string> }> };
    expect(raw.mediaType).toBe("application/vnd.docker.distribution.manifest.list.v2+json");
    expect(raw.manifests.map((m) => [m.mediaType, m.platform])).toEqual([
      ["application/vnd.docker.distribution.manifest.v2+json", { architecture: "amd64", os: "linux" }],
      ["application/vnd.docker.distribution.manifest.v2+json", { architecture: "arm64", os: "linux", variant: "v8" }],
    ]);
    // Each platform resolves to a complete image of its own architecture.
    for (const arch of ["amd64", "arm64"]) {
      const one = JSON.parse(skopeo("--override-arch", arch, "inspect", "")) as { Architecture: string; Layers: string[] };
      expect(one.Architecture).toBe(arch);
      expect(one.Layers.length).toBeGreaterThanOrEqual(5);
    }
  }, 300_000);
});

describe("with every blob in a registry (KILN_BLOB_STORE)", () => {
  it("tags a multi-architecture image there as a manifest list: its registeringName resolves per platform, until the image is deleted", async () => {
    const dist = (arch: string, mirror: string): string => `  - {name: Debian, version: "12", arch: ${arch}, mirror: "file://${mirror}/", suite: bookworm, components: [main], keyring: none}\n`;
    const stored = await startTestServer({
      yaml: `distributions:\n${dist("x86_64", MIRROR_DIR)}${dist("aarch64", ARM64_MIRROR_DIR)}`,
      env: { KILN_BLOB_STORE: `oci+${registry.url}/kiln`, KILN_BLOB_STORE_CREDENTIALS: `kiln:${STORE_PASSWORD}` },
    });
    try {
      await stored.createUser("alice");
      const { api, waitFor } = jsonClient(stored, "alice");
      const b = await api<{ uri: string }>("POST", "users/alice/mysoftware", { name: "stored", version: "1.0" });
      const t = await api<{ uri: string }>("POST", `${b.json.uri}/templates`, { distribution: { name: "Debian", version: "12", arch: "x86_64" } });
      const img = await api<{ uri: string; statusUri: string }>("POST", `${t.json.uri}/images`, { targetFormat: { name: "Docker" }, compress: false, architectures: ["x86_64", "aarch64"] });
      expect(img.status, JSON.stringify(img.json)).toBe(201);
      const done = await waitFor(img.json.statusUri, undefined, 280_000);
      expect(done.error ? done.detailedErrorMsg : "").toBe("");
      const { json } = await api<{ registeringName: string }>("GET", img.json.uri);
      expect(json.registeringName.startsWith(`${registry.host}/kiln/`)).toBe(true);
      const skopeo = (...args: string[]): string => execFileSync("skopeo", [...args, "--tls-verify=false", `--creds=kiln:${STORE_PASSWORD}`, `docker://${json.registeringName}`], { encoding: "utf8" });
      const raw = JSON.parse(skopeo("inspect", "--raw")) as { mediaType: string; manifests: Array<{ platform: Record<string, string> }> };
      expect(raw.mediaType).toBe("application/vnd.docker.distribution.manifest.list.v2+json");
      expect(raw.manifests.map((m) => m.platform.architecture)).toEqual(["amd64", "arm64"]);
      for (const arch of ["amd64", "arm64"]) {
        const one = JSON.parse(execFileSync("skopeo", ["--override-arch", arch, "inspect", "--tls-verify=false", `--creds=kiln:${STORE_PASSWORD}`, `docker://${json.registeringName}`], { encoding: "utf8" })) as { Architecture: string };
        expect(one.Architecture).toBe(arch);
      }
      // Deleting the image deletes its tag, the manifest list: the name resolves no more.
      expect((await api("DELETE", img.json.uri)).status).toBe(204);
      const pull = spawnSync("skopeo", ["inspect", "--raw", "--tls-verify=false", `--creds=kiln:${STORE_PASSWORD}`, `docker://${json.registeringName}`], { encoding: "utf8" });
      expect(pull.status).not.toBe(0);
      expect(pull.stderr).toMatch(/manifest unknown/i);
    } finally {
      await stored.close();
    }
  }, 300_000);
});
