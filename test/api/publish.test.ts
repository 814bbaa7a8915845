/**
 * Publication through the UForge API (flow steps 9–10): a generated image pushed to Debian's
 * docker-registry on loopback (htpasswd Basic auth, behind a recording proxy), read back by
 * skopeo and umoci and run in a chroot; a second tag uploads no layer bytes; and the errors.
 */
import { execFileSync } from "node:child_process";
import { mkdirSync, readFileSync, rmSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildDeb, makeTar, tempDir } from "../fixtures/debs.js";
import { errorMessage, jsonClient, startTestServer, type JsonStatus, type TestServer } from "../helpers/api.js";
import { startProxy, startRegistry, type TestProxy, type TestRegistry } from "../helpers/registry.js";
import { gzipSync } from "node:zlib";

const NS = 'xmlns:ns0="http://www.usharesoft.com/uforge"';
const XSI = 'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"';
const REGISTRY_PASSWORD = "registry-secret-pw";
let server: TestServer;
const api: ReturnType<typeof jsonClient>["api"] = (...args) => jsonClient(server, "alice").api(...args);
const waitFor: ReturnType<typeof jsonClient>["waitFor"] = (...args) => jsonClient(server, "alice").waitFor(...args);
let registry: TestRegistry;
let proxy: TestProxy;
let work: string;
let imageUri: string;
let accountUri: string;




async function account(name: string, endpointUrl: string, password: string): Promise<string> {
  const r = await api<{ uri: string }>("POST", "users/alice/accounts", { xsiType: "CredAccountDocker", name, endpointUrl, login: "alice", password });
  expect(r.status, JSON.stringify(r.json)).toBe(201);
  return r.json.uri;
}

/** Publishes with an XML body, as UForge clients send it. */
async function publish(acct: string, repository: string, tag: string, type = "PublishImageDocker"): Promise<Awaited<ReturnType<TestServer["request"]>>> {
  return server.request({
    method: "POST",
    url: `/api/${imageUri}/pimages`,
    user: "alice",
    headers: { "content-type": "application/xml" },
    payload: `<ns0:publishImage ${NS} ${XSI} xsi:type="ns0:${type}"><credAccount xsi:type="ns0:CredAccountDocker"><uri>${acct}</uri></credAccount><namespace>team</namespace><repositoryName>${repository}</repositoryName><tagName>${tag}</tagName></ns0:publishImage>`,
  });
}

function layerBytes(records: TestProxy["records"], since: number): number {
  return records.slice(since).filter((r) => /\/blobs\/uploads\//.test(r.url) && (r.method === "PATCH" || r.method === "PUT")).reduce((n, r) => n + r.bytesForwarded, 0);
}

beforeAll(async () => {
  work = tempDir("kiln-pub-");
  registry = await startRegistry({ auth: "htpasswd", users: { alice: REGISTRY_PASSWORD } });
  proxy = await startProxy(registry.port);
  // The test registries listen on loopback, which publication refuses unless allowed.
  server = await startTestServer({ env: { KILN_PUBLISH_ALLOW: "127.0.0.1" } });
  await server.createUser("alice");
  // A small image, generated without compress: publishing does not need a download file.
  const b = await api<{ uri: string }>("POST", "users/alice/mysoftware", { name: "hello", version: "1.0" });
  const a = await api<{ uri: string }>("POST", `${b.json.uri}/artifacts`, { name: "hello.tar.gz", extract: true, installLocation: "/opt/hello" });
  const tgz = gzipSync(await makeTar([{ name: "hello", content: "#!/bin/sh\necho published hello\n", mode: 0o755 }]));
  expect((await server.request({ method: "POST", url: `/api/${a.json.uri}/bin/hello.tar.gz`, user: "alice", headers: { "content-type": "application/octet-stream" }, payload: tgz })).statusCode).toBe(201);
  const t = await api<{ uri: string }>("POST", `${b.json.uri}/templates`, { distribution: { uri: "distributions/1" } });
  const img = await api<{ uri: string; statusUri: string }>("POST", `${t.json.uri}/images`, { targetFormat: { name: "Docker" }, compress: false, entrypoint: '["/opt/hello/hello"]' });
  expect(img.status).toBe(201);
  imageUri = img.json.uri;
  expect((await waitFor(img.json.statusUri)).complete).toBe(true);
  accountUri = await account("local registry", proxy.url, REGISTRY_PASSWORD);
});
afterAll(async () => {
  await server?.close();
  await proxy?.stop();
  await registry?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

describe("publishing to a registry", () => {
  let firstUri: string;

  it("pushes the image; skopeo and umoci read it back and its entrypoint runs", async () => {
    const res = await publish(accountUri, "hello", "1.0");
    expect(res.statusCode, res.body).toBe(201);
    expect(res.body).toContain('xsi:type="ns0:PublishImageDocker"');
    const pub = await api<{ uri: string; statusUri: string }>("GET", res.headers.location!.slice(5));
    firstUri = pub.json.uri;
    const s = await waitFor(pub.json.statusUri);
    expect(s.errorMessage ?? "").toBe("");
    expect(s).toMatchObject({ complete: true, percentage: 100 });
    expect(s.bytesTotal).toBeGreaterThan(40_000_000);
    expect(s.bytesLoaded).toBe(s.bytesTotal);
    const done = (await api<{ cloudId: string; registeringName: string; publishLocation: string }>("GET", firstUri)).json;
    expect(done.cloudId).toMatch(new RegExp(`^${proxy.host.replace(/\./g, "\\.")}/team/hello@sha256:[0-9a-f]{64}$`));
    expect(done.registeringName).toBe(`${proxy.host}/team/hello:1.0`);
    expect(done.publishLocation).toBe(done.registeringName);

    const creds = `--creds=alice:${REGISTRY_PASSWORD}`;
    const ref = `docker://${registry.host}/team/hello:1.0`;
    const inspect = JSON.parse(execFileSync("skopeo", ["inspect", "--tls-verify=false", creds, ref], { encoding: "utf8" })) as { Digest: string };
    expect(`${proxy.host}/team/hello@${inspect.Digest}`).toBe(done.cloudId);
    const raw = JSON.parse(execFileSync("skopeo", ["inspect", "--raw", "--tls-verify=false", creds, ref], { encoding: "utf8" })) as { mediaType: string };
    expect(raw.mediaType).toBe("application/vnd.docker.distribution.manifest.v2+json");
    const layout = path.join(work, "oci");
    execFileSync("skopeo", ["copy", "--src-tls-verify=false", `--src-creds=alice:${REGISTRY_PASSWORD}`, ref, `oci:${layout}:hello`], { stdio: "pipe" });
    const bundle = path.join(work, "bundle");
    execFileSync("umoci", ["unpack", "--image", `${layout}:hello`, bundle], { stdio: "pipe" });
    expect(execFileSync("/usr/sbin/chroot", [path.join(bundle, "rootfs"), "/opt/hello/hello"], { encoding: "utf8" })).toBe("published hello\n");
  });

  it("publishes a second tag without uploading any layer again", async () => {
    const since = proxy.records.length;
    const res = await publish(accountUri, "hello", "latest");
    expect(res.statusCode).toBe(201);
    const pub = (await api<{ statusUri: string }>("GET", res.headers.location!.slice(5))).json;
    expect((await waitFor(pub.statusUri)).complete).toBe(true);
    expect(layerBytes(proxy.records, since)).toBe(0);
    expect(proxy.records.slice(since).some((r) => r.method === "PUT" && r.url.includes("/manifests/latest"))).toBe(true);
    // A new repository of the same registry mounts the blobs instead of uploading them.
    const since2 = proxy.records.length;
    const res2 = await publish(accountUri, "hello-copy", "1.0");
    const pub2 = (await api<{ statusUri: string }>("GET", res2.headers.location!.slice(5))).json;
    expect((await waitFor(pub2.statusUri)).complete).toBe(true);
    expect(layerBytes(proxy.records, since2)).toBe(0);
    expect(proxy.records.slice(since2).some((r) => r.url.includes("mount="))).toBe(true);
  });

  it("lists the user's published images and statuses", async () => {
    const list = await api<{ total: number; publishImages: Array<{ tagName: string }> }>("GET", "users/alice/pimages");
    expect(list.json.publishImages.map((p) => p.tagName).sort()).toEqual(["1.0", "1.0", "latest"]);
    const statuses = await api<{ total: number; statuses: JsonStatus[] }>("GET", "users/alice/pimages/status");
    expect(statuses.json.statuses.every((s) => s.complete)).toBe(true);
    const xml = await server.request({ method: "GET", url: "/api/users/alice/pimages", user: "alice" });
    expect(xml.statusCode).toBe(200);
  });

  it("deletes a published image and its tag from the registry", async () => {
    const res = await publish(accountUri, "to-delete", "gone");
    const pub = (await api<{ uri: string; statusUri: string }>("GET", res.headers.location!.slice(5))).json;
    expect((await waitFor(pub.statusUri)).complete).toBe(true);
    const ref = `docker://${registry.host}/team/to-delete:gone`;
    execFileSync("skopeo", ["inspect", "--tls-verify=false", `--creds=alice:${REGISTRY_PASSWORD}`, ref], { stdio: "pipe" });
    expect((await api("DELETE", pub.uri)).status).toBe(204);
    expect((await api("GET", pub.uri)).status).toBe(404);
    expect(() => execFileSync("skopeo", ["inspect", "--tls-verify=false", `--creds=alice:${REGISTRY_PASSWORD}`, ref], { stdio: "pipe" })).toThrow();
  });
});

describe("publication errors", () => {
  it("reports a wrong password as an authentication failure, without the password", async () => {
    const wrong = await account("wrong password", registry.url, "not-the-password-xyz");
    const res = await publish(wrong, "hello", "nope");
    expect(res.statusCode).toBe(201);
    const pub = (await api<{ statusUri: string }>("GET", res.headers.location!.slice(5))).json;
    const s = await waitFor(pub.statusUri);
    expect(s.error).toBe(true);
    expect(s.errorMessage).toMatch(new RegExp(`authentication failed for ${registry.host.replace(/\./g, "\\.")}`));
    expect(JSON.stringify(s)).not.toContain("not-the-password-xyz");
  });

  it("cancels a push within 2 s", async () => {
    const slow = await startProxy(registry.port, { bytesPerSecond: 2 * 1024 * 1024 });
    try {
      const acct = await account("slow registry", slow.url, REGISTRY_PASSWORD);
      const res = await publish(acct, "slow", "1.0");
      const pub = (await api<{ uri: string; statusUri: string }>("GET", res.headers.location!.slice(5))).json;
      await waitFor(pub.statusUri, (s) => (s.bytesLoaded ?? 0) > 0 || s.complete || s.error);
      const started = Date.now();
      const c = await api<JsonStatus>("DELETE", `${pub.uri}/cancel`);
      expect(c.status, JSON.stringify(c.json)).toBe(200);
      expect(c.json.cancelled).toBe(true);
      expect(Date.now() - started).toBeLessThan(2000);
    } finally {
      await slow.stop();
    }
  });

  it("validates the request at once", async () => {
    let res = await publish(accountUri, "Bad_Name!", "1.0");
    expect(res.statusCode).toBe(400);
    expect(errorMessage(res)).toMatch(/repository/i);
    res = await publish(accountUri, "hello", "-bad-tag");
    expect(res.statusCode).toBe(400);
    res = await publish(accountUri, "hello", "1.0", "PublishImageOpenShift");
    expect(res.statusCode).toBe(400);
    expect(errorMessage(res)).toMatch(/PublishImageDocker/);
    res = await publish("users/alice/accounts/999999", "hello", "1.0");
    expect(res.statusCode).toBe(400);
    expect(errorMessage(res)).toMatch(/no cloud account 999999/);
    const ocp = await api<{ uri: string }>("POST", "users/alice/accounts", { xsiType: "CredAccountOpenShift", name: "ocp", registryUrl: registry.url, token: "t" });
    res = await publish(ocp.json.uri, "hello", "1.0", "PublishImageOpenShift");
    expect(res.statusCode).toBe(400);
    expect(errorMessage(res)).toBe("cloud account ocp is for an OpenShift registry; Docker images are published to a Docker registry");
    const mine = (await api<{ total: number }>("GET", "users/alice/pimages")).json.total;
    expect(mine).toBe(5); // nothing was recorded by the refused requests
  });
});

describe("OpenShift", () => {
  it("publishes an OpenShift image to a token-auth registry with the account's token", async () => {
    const tokenRegistry = await startRegistry({ auth: "token", users: { "*": "sha256~ocp-token-value" } });
    try {
      const b = await api<{ uri: string }>("POST", "users/alice/mysoftware", { name: "ocp", version: "2" });
      const a = await api<{ uri: string }>("POST", `${b.json.uri}/artifacts`, { name: "note.txt" });
      await server.request({ method: "POST", url: `/api/${a.json.uri}/bin/note.txt`, user: "alice", headers: { "content-type": "application/octet-stream" }, payload: "for openshift\n" });
      const t = await api<{ uri: string }>("POST", `${b.json.uri}/templates`, { distribution: { uri: "distributions/1" } });
      const img = await api<{ uri: string; statusUri: string }>("POST", `${t.json.uri}/images`, { targetFormat: { name: "OpenShift" }, compress: false, entrypoint: '["/bin/cat", "/opt/ocp/note.txt"]' });
      expect((await waitFor(img.json.statusUri)).complete).toBe(true);
      const acct = await api<{ uri: string }>("POST", "users/alice/accounts", { xsiType: "CredAccountOpenShift", name: "ocp", registryUrl: tokenRegistry.url, token: "sha256~ocp-token-value" });
      const res = await api<{ uri: string; statusUri: string }>("POST", `${img.json.uri}/pimages`, {
        xsiType: "PublishImageOpenShift",
        credAccount: { xsiType: "CredAccountOpenShift", uri: acct.json.uri },
        namespace: "my-project",
        repositoryName: "ocp",
        tagName: "2",
      });
      expect(res.status, JSON.stringify(res.json)).toBe(201);
      const s = await waitFor(res.json.statusUri);
      expect(s.errorMessage ?? "").toBe("");
      expect(s.complete).toBe(true);
      const done = (await api<{ cloudId: string; registeringName: string }>("GET", res.json.uri)).json;
      expect(done.registeringName).toBe(`${tokenRegistry.host}/my-project/ocp:2`);
      expect(JSON.stringify(done)).not.toContain("ocp-token-value");
    } finally {
      await tokenRegistry.stop();
    }
  });
});

describe("a credAccount given by value (UForge's publish example)", () => {
  /** Publishes with the account's credentials in the body, no uri. */
  async function publishByValue(endpointUrl: string, repository: string): Promise<Awaited<ReturnType<TestServer["request"]>>> {
    return server.request({
      method: "POST",
      url: `/api/${imageUri}/pimages`,
      user: "alice",
      headers: { "content-type": "application/xml" },
      payload: `<ns0:publishImage ${NS} ${XSI} xsi:type="ns0:PublishImageDocker"><credAccount xsi:type="ns0:CredAccountDocker"><targetPlatform><name>Docker</name></targetPlatform><endpointUrl>${endpointUrl}</endpointUrl><login>alice</login><password>${REGISTRY_PASSWORD}</password></credAccount><namespace>byvalue</namespace><repositoryName>${repository}</repositoryName><tagName>1.0</tagName></ns0:publishImage>`,
    });
  }

  it("uses the user's account with the same credentials, or makes one, and publishes", async () => {
    const accounts = async () => (await api<{ credAccounts?: Array<{ uri: string; endpointUrl: string }> }>("GET", "users/alice/accounts")).json.credAccounts ?? [];
    const before = await accounts();
    const same = await publishByValue(proxy.url, "same");
    expect(same.statusCode, same.body).toBe(201);
    const pub = (await api<{ statusUri: string; credAccount: { uri: string } }>("GET", same.headers.location!.slice(5))).json;
    expect(pub.credAccount.uri).toBe(accountUri);
    expect((await waitFor(pub.statusUri)).complete).toBe(true);
    expect(await accounts()).toHaveLength(before.length);

    const direct = await publishByValue(registry.url, "direct");
    expect(direct.statusCode, direct.body).toBe(201);
    const pub2 = (await api<{ statusUri: string; credAccount: { uri: string } }>("GET", direct.headers.location!.slice(5))).json;
    expect((await waitFor(pub2.statusUri)).complete).toBe(true);
    const after = await accounts();
    expect(after).toHaveLength(before.length + 1);
    expect(after.find((a) => a.uri === pub2.credAccount.uri)).toMatchObject({ endpointUrl: registry.url });
    // The password never comes back.
    expect(JSON.stringify(after)).not.toContain(REGISTRY_PASSWORD);
  });

  it("still refuses a credAccount with neither uri nor credentials", async () => {
    const res = await server.request({
      method: "POST",
      url: `/api/${imageUri}/pimages`,
      user: "alice",
      headers: { "content-type": "application/xml" },
      payload: `<ns0:publishImage ${NS} ${XSI} xsi:type="ns0:PublishImageDocker"><credAccount xsi:type="ns0:CredAccountDocker"><name>x</name></credAccount><namespace>n</namespace><repositoryName>r</repositoryName><tagName>t</tagName></ns0:publishImage>`,
    });
    expect(res.statusCode).toBe(400);
    expect(errorMessage(res)).toMatch(/endpointUrl/);
  });
});

// Last: it adds an image and a publication, which the counts above do not expect.
describe("layers shared across images", () => {
  it("a bundle with a fresh .deb reuses the distribution's layers: its push uploads only the changed ones", async () => {
    // What every bundle with a .deb artifact is: a package built today, depending on the distribution's.
    const deb = buildDeb({ name: "hello-kiln", version: "1.0", arch: "all", depends: "jq", sourceDateEpoch: Math.floor(Date.now() / 1000), files: [{ path: "usr/bin/hello-kiln", content: "#!/bin/sh\necho hi\n", mode: 0o755 }] }, work);
    const b = await api<{ uri: string }>("POST", "users/alice/mysoftware", { name: "hello-deb", version: "1.0" });
    const a = await api<{ uri: string }>("POST", `${b.json.uri}/artifacts`, { name: "hello-kiln_1.0_all.deb", install: true, tag: "ospkg" });
    expect((await server.request({ method: "POST", url: `/api/${a.json.uri}/bin/hello-kiln_1.0_all.deb`, user: "alice", headers: { "content-type": "application/octet-stream" }, payload: readFileSync(deb) })).statusCode).toBe(201);
    const t = await api<{ uri: string }>("POST", `${b.json.uri}/templates`, { distribution: { uri: "distributions/1" } });
    const img = await api<{ uri: string; statusUri: string }>("POST", `${t.json.uri}/images`, { targetFormat: { name: "Docker" }, compress: false });
    expect((await waitFor(img.json.statusUri)).complete).toBe(true);
    const since = proxy.records.length;
    const pub = await api<{ statusUri: string }>("POST", `${img.json.uri}/pimages`, { xsiType: "PublishImageDocker", credAccount: { xsiType: "CredAccountDocker", uri: accountUri }, namespace: "team", repositoryName: "hello", tagName: "deb" });
    expect(pub.status, JSON.stringify(pub.json)).toBe(201);
    expect((await waitFor(pub.json.statusUri)).complete).toBe(true);

    const manifest = (tag: string): { config: { digest: string }; layers: Array<{ digest: string }> } =>
      JSON.parse(execFileSync("skopeo", ["inspect", "--raw", "--tls-verify=false", `--creds=alice:${REGISTRY_PASSWORD}`, `docker://${registry.host}/team/hello:${tag}`], { encoding: "utf8" }));
    const first = manifest("1.0").layers.map((l) => l.digest);
    const second = manifest("deb");
    const secondLayers = second.layers.map((l) => l.digest);
    // The first image's distribution layers (all but its bundle-files layer on top): every one
    // reused but the fix-up layer.
    const distribution = first.slice(0, -1);
    expect(distribution.filter((d) => secondLayers.includes(d))).toHaveLength(distribution.length - 1);
    // Uploaded: the new layers and the config, nothing the registry had.
    const uploaded = proxy.records.slice(since).filter((r) => r.method === "PUT" && /\/blobs\/uploads\/.*[?&]digest=/.test(r.url)).map((r) => decodeURIComponent(/[?&]digest=([^&]+)/.exec(r.url)![1]!));
    expect(uploaded.sort()).toEqual([second.config.digest, ...secondLayers.filter((d) => !first.includes(d))].sort());
  });
});
