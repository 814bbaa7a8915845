/**
 * Authentication against docker-registry: htpasswd Basic auth and token auth (a token service in
 * the test that the registry trusts), right and wrong passwords, tokens that expire mid-push,
 * mounts under tokens, OpenShift-style credentials, and secrets kept out of every message.
 */
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { BlobStore } from "../../src/blobs/blob-store.js";
import { causeChain, isKilnError } from "../../src/domain/errors.js";
import type { BuiltImage } from "../../src/oci/types.js";
import { parseChallenges } from "../../src/registry/auth.js";
import { RegistryError } from "../../src/registry/errors.js";
import { openShiftCredentials, pushImage } from "../../src/registry/push.js";
import { makeImage } from "../fixtures/images.js";
import { run, startProxy, startRegistry, type ProxyRecord, type TestRegistry } from "../helpers/registry.js";

const PASSWORD = "s3cret-Pa55word-for-kiln";
const WRONG = "Wr0ng-Pa55word-for-kiln";
const OPENSHIFT_TOKEN = "sha256~kilnOpenShiftTokenValue0123456789";

let work: string;
let blobs: BlobStore;
let small: BuiltImage;
let big: BuiltImage;

beforeAll(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), "kiln-auth-"));
  blobs = BlobStore.open(path.join(work, "blobs"));
  small = await makeImage(blobs, { seed: "auth-small" });
  big = await makeImage(blobs, { seed: "auth-big", bigLayerBytes: 3 << 20 });
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

/** The error's every visible form: message, causes, JSON. */
function everything(err: unknown): string {
  return [...causeChain(err), JSON.stringify(err)].join("\n");
}

/** Requests sent more than once (same method and URL): what a retry would look like. */
function repeated(records: ProxyRecord[]): string[] {
  const seen = new Set<string>();
  const dup: string[] = [];
  for (const r of records) {
    const k = `${r.method} ${r.url}`;
    if (seen.has(k)) dup.push(k);
    seen.add(k);
  }
  return dup;
}

describe("WWW-Authenticate challenges", () => {
  test.each([
    ['Basic realm="Registry Realm"', [{ scheme: "basic", params: { realm: "Registry Realm" } }]],
    [
      'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:samalba/my-app:pull,push"',
      [{ scheme: "bearer", params: { realm: "https://auth.docker.io/token", service: "registry.docker.io", scope: "repository:samalba/my-app:pull,push" } }],
    ],
    // Several challenges in one header; spaces around "="; an escaped quote; unquoted values.
    [
      'Bearer realm = "https://r/t", service=reg, error="insufficient_scope", Basic realm="say \\"hi\\""',
      [
        { scheme: "bearer", params: { realm: "https://r/t", service: "reg", error: "insufficient_scope" } },
        { scheme: "basic", params: { realm: 'say "hi"' } },
      ],
    ],
    // A token68 challenge, then another one.
    ["Negotiate abc123==, Basic realm=x", [{ scheme: "negotiate", params: {} }, { scheme: "basic", params: { realm: "x" } }]],
    ["", []],
  ])("%s", (header, expected) => {
    expect(parseChallenges(header)).toEqual(expected);
  });

  test("several header lines are read as one list", () => {
    expect(parseChallenges(['Basic realm="a"', 'Bearer realm="b",scope="s t"']).map((c) => [c.scheme, c.params])).toEqual([
      ["basic", { realm: "a" }],
      ["bearer", { realm: "b", scope: "s t" }],
    ]);
  });

  test("junk does not hang the parser", () => {
    const junk = `${"\u0001,=\"".repeat(4000)}Basic realm=x`;
    const t0 = Date.now();
    parseChallenges(junk);
    // Linear work is a few milliseconds; a backtracking pattern would take minutes.
    expect(Date.now() - t0).toBeLessThan(1000);
  });
});

describe("htpasswd (Basic) registry", () => {
  let registry: TestRegistry;
  beforeAll(async () => {
    registry = await startRegistry({ auth: "htpasswd", users: { alice: PASSWORD } });
  });
  afterAll(async () => registry?.stop());

  test("the right password pushes; skopeo with the same credentials sees the image", async () => {
    const result = await pushImage(small, blobs, { registry: registry.url, repository: "alice/app", tag: "v1" }, { username: "alice", password: PASSWORD });
    expect(result.blobsUploaded).toBe(1 + small.layers.length);
    const { stdout } = await run("skopeo", ["inspect", "--tls-verify=false", "--creds", `alice:${PASSWORD}`, `docker://${registry.host}/alice/app:v1`]);
    expect((JSON.parse(stdout) as { Digest: string }).Digest).toBe(small.dockerManifestDigest);
    // And without credentials, the registry indeed refuses (the test is not vacuous).
    await expect(run("skopeo", ["inspect", "--tls-verify=false", "--no-creds", `docker://${registry.host}/alice/app:v1`])).rejects.toThrow();
  });

  test("a wrong password fails at once: 'authentication failed for <host>', no retry, no secret", async () => {
    const proxy = await startProxy(registry.port);
    try {
      const err = await pushImage(small, blobs, { registry: proxy.url, repository: "alice/app", tag: "v2" }, { username: "alice", password: WRONG }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(RegistryError);
      expect((err as RegistryError).message).toMatch(new RegExp(`^authentication failed for ${proxy.host.replace(/\./g, "\\.")}`));
      expect((err as RegistryError).authentication).toBe(true);
      expect(everything(err)).not.toContain(WRONG);
      expect(everything(err)).not.toContain(Buffer.from(`alice:${WRONG}`).toString("base64"));
      expect(repeated(proxy.records)).toEqual([]);
      expect(proxy.records.length).toBeLessThanOrEqual(1 + 1 + small.layers.length);
      expect(proxy.records.some((r) => r.url.includes("/manifests/"))).toBe(false);
    } finally {
      await proxy.stop();
    }
  });

  test("no credentials on a registry that wants them: authentication failed", async () => {
    const err = await pushImage(small, blobs, { registry: registry.url, repository: "alice/app", tag: "v3" }, {}).catch((e: unknown) => e);
    expect(isKilnError(err, "registryFailed")).toBe(true);
    expect((err as Error).message).toContain(`authentication failed for ${registry.host}`);
  });
});

describe("token-auth registry", () => {
  let registry: TestRegistry;
  beforeAll(async () => {
    registry = await startRegistry({ auth: "token", users: { bob: PASSWORD, "*": OPENSHIFT_TOKEN } });
  });
  afterAll(async () => registry?.stop());

  test("pushes with a Bearer token for the repository's pull,push scope, fetched once", async () => {
    const before = registry.token!.requests.length;
    const result = await pushImage(small, blobs, { registry: registry.url, repository: "bob/app", tag: "v1" }, { username: "bob", password: PASSWORD });
    expect(result.manifestDigest).toBe(small.dockerManifestDigest);
    const asked = registry.token!.requests.slice(before);
    expect(asked).toEqual([{ account: "bob", scopes: ["repository:bob/app:pull,push"], status: 200 }]);
    const { stdout } = await run("skopeo", ["inspect", "--tls-verify=false", "--creds", `bob:${PASSWORD}`, `docker://${registry.host}/bob/app:v1`]);
    expect((JSON.parse(stdout) as { Digest: string }).Digest).toBe(small.dockerManifestDigest);
  });

  test("a wrong password: the token service refuses once, the push fails without retrying", async () => {
    const before = registry.token!.requests.length;
    const proxy = await startProxy(registry.port);
    try {
      const err = await pushImage(small, blobs, { registry: proxy.url, repository: "bob/app", tag: "v2" }, { username: "bob", password: WRONG }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(RegistryError);
      expect((err as Error).message).toBe(`authentication failed for ${proxy.host}: UNAUTHORIZED: invalid username or password`);
      expect(everything(err)).not.toContain(WRONG);
      expect(registry.token!.requests.slice(before).map((r) => r.status)).toEqual([401]);
      expect(repeated(proxy.records)).toEqual([]);
      expect(proxy.records.map((r) => `${r.method} ${r.url}`)).toEqual(["GET /v2/"]);
    } finally {
      await proxy.stop();
    }
  });

  test("anonymous: the token grants nothing, and the push fails as an authentication failure", async () => {
    const err = await pushImage(small, blobs, { registry: registry.url, repository: "bob/app", tag: "v3" }, {}).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RegistryError);
    expect((err as Error).message).toContain(`authentication failed for ${registry.host}`);
  });

  test("a token the registry stops accepting mid-push is renewed on the 401, and the push completes", async () => {
    // The service says tokens live 300 s, but the registry accepts them for only 2 s.
    registry.token!.setLifetime(300, 2);
    const proxy = await startProxy(registry.port, { bytesPerSecond: 1 << 20 });
    const before = registry.token!.requests.length;
    try {
      const result = await pushImage(big, blobs, { registry: proxy.url, repository: "bob/slow", tag: "v1" }, { username: "bob", password: PASSWORD }, { clientOptions: { monolithicMaxBytes: 256 << 10, chunkBytes: 512 << 10 } });
      expect(result.manifestDigest).toBe(big.dockerManifestDigest);
      const refusedMidPush = proxy.records.filter((r) => r.status === 401 && r.authorization?.startsWith("Bearer "));
      expect(refusedMidPush.length).toBeGreaterThanOrEqual(1);
      expect(registry.token!.requests.length - before).toBeGreaterThanOrEqual(2);
      const { stdout } = await run("skopeo", ["inspect", "--tls-verify=false", "--creds", `bob:${PASSWORD}`, `docker://${registry.host}/bob/slow:v1`]);
      expect((JSON.parse(stdout) as { Digest: string }).Digest).toBe(big.dockerManifestDigest);
    } finally {
      registry.token!.setLifetime(300, 300);
      await proxy.stop();
    }
  });

  test("a short expires_in is renewed before it runs out: no request is refused", async () => {
    registry.token!.setLifetime(2, 2);
    const proxy = await startProxy(registry.port, { bytesPerSecond: 1 << 20 });
    const before = registry.token!.requests.length;
    try {
      await pushImage(big, blobs, { registry: proxy.url, repository: "bob/renewed", tag: "v1" }, { username: "bob", password: PASSWORD }, { clientOptions: { monolithicMaxBytes: 256 << 10, chunkBytes: 512 << 10 } });
      expect(registry.token!.requests.length - before).toBeGreaterThanOrEqual(2);
      expect(proxy.records.filter((r) => r.status === 401 && r.authorization !== undefined)).toEqual([]);
    } finally {
      registry.token!.setLifetime(300, 300);
      await proxy.stop();
    }
  });

  test("a mount asks for pull on the source repository and links the blobs", async () => {
    await pushImage(small, blobs, { registry: registry.url, repository: "bob/source", tag: "v1" }, { username: "bob", password: PASSWORD });
    const before = registry.token!.requests.length;
    const result = await pushImage(small, blobs, { registry: registry.url, repository: "bob/target", tag: "v1" }, { username: "bob", password: PASSWORD }, { mountFrom: ["bob/source"] });
    expect(result.blobsMounted).toBe(1 + small.layers.length);
    expect(result.bytesUploaded).toBe(0);
    expect(registry.token!.requests.slice(before).map((r) => [...r.scopes].sort())).toContainEqual(["repository:bob/source:pull", "repository:bob/target:pull,push"]);
  });

  test("OpenShift: any user name with the token as password; the namespace is the project", async () => {
    const result = await pushImage(small, blobs, { registry: registry.url, repository: "my-project/app", tag: "latest" }, openShiftCredentials(OPENSHIFT_TOKEN));
    expect(result.registeringName).toBe(`${registry.host}/my-project/app:latest`);
    expect(result.cloudId).toBe(`${registry.host}/my-project/app@${small.dockerManifestDigest}`);
  });
});
