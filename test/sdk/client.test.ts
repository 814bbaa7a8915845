/**
 * The typed client against a live Kiln server on loopback: every operation of endpoints.tsv is
 * called through a typed method (a test at the end checks none was missed), Basic and API-key
 * authentication, typed errors carrying the uforgeError, streamed uploads and resumable
 * downloads with progress, and `waitFor` following a generation (and a cancelled one).
 */
import { createHash, randomBytes } from "node:crypto";
import { existsSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import type { AddressInfo } from "node:net";
import path from "node:path";
import { Readable } from "node:stream";
import { gzipSync } from "node:zlib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { KilnAbortError, KilnApiError, KilnClient, KilnConnectionError, KilnIntegrityError, KilnTimeoutError, OPERATIONS, signUrl, type OpStatus, type ResponseEvent } from "../../src/sdk/index.js";
import { signUrl as serverSignUrl } from "../../src/server/auth.js";
import { loadEndpoints, SPEC_DIR } from "../../src/server/endpoints.js";
import { makeTar, tempDir } from "../fixtures/debs.js";
import { startTestServer, type TestServer } from "../helpers/api.js";
import { startRegistry, type TestRegistry } from "../helpers/registry.js";

let server: TestServer;
let registry: TestRegistry;
let url: string;
let work: string;
const seen = new Set<string>();
const record = (e: ResponseEvent): void => {
  if (e.operationId && e.status < 500) seen.add(e.operationId);
};
let alice: KilnClient;
let root: KilnClient;

function client(options: Partial<ConstructorParameters<typeof KilnClient>[0]> = {}): KilnClient {
  return new KilnClient({ url, user: "alice", password: "alice-password", onResponse: record, ...options });
}

beforeAll(async () => {
  work = tempDir("kiln-sdk-");
  // The test registries listen on loopback, which publication refuses unless allowed.
  server = await startTestServer({ env: { KILN_PUBLISH_ALLOW: "127.0.0.1" } });
  await server.rt.app.listen({ port: 0, host: "127.0.0.1" });
  url = `http://127.0.0.1:${(server.rt.app.server.address() as AddressInfo).port}`;
  registry = await startRegistry();
  alice = client();
  root = client({ user: "root", password: "root-password-for-tests" });
});
afterAll(async () => {
  alice?.close();
  root?.close();
  await server?.close();
  await registry?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

describe("the operation table", () => {
  it("is endpoints.tsv, operation for operation, plus the image package list and the bundle import and export of endpoints-added.tsv", () => {
    const fromFile = Object.fromEntries(loadEndpoints().map((e) => [e.operationId, { method: e.method, path: e.path }]));
    const added = loadEndpoints(`${SPEC_DIR}endpoints-added.tsv`).filter((e) => /^softwareBundle|^mySoftware_?[eE]xport/.test(e.operationId));
    for (const e of added) fromFile[e.operationId] = { method: e.method, path: e.path };
    const { containerTemplateImagePkgs_getAll: pkgs, ...table } = OPERATIONS;
    expect(table).toEqual(fromFile);
    expect(Object.keys(table)).toHaveLength(66 + 8);
    expect(pkgs.path).toBe("/users/{uid}/mysoftware/{msid}/templates/{tid}/images/{tiid}/pkgs");
  });
});

describe("users, keys, distributions and formats", () => {
  it("creates a user as root and reads the platform", async () => {
    const created = await root.users.create({ loginName: "alice", email: "alice@example.com", password: "alice-password" });
    expect(created.loginName).toBe("alice");
    expect(created.uri).toBe("users/alice");
    expect((await root.users.list({ query: "loginName==alice" })).users?.map((u) => u.loginName)).toEqual(["alice"]);
    const status = await alice.status();
    expect(status.alive).toBe(true);
    const me = await alice.users.get();
    expect(me.admin).toBe(false);
    expect((await alice.users.update({ firstName: "Alice" })).firstName).toBe("Alice");

    const dists = await alice.distributions.list();
    expect(dists.total).toBe(1);
    const debian = dists.distributions![0]!;
    expect(debian).toMatchObject({ name: "Debian", version: "12", arch: "x86_64" });
    expect((await alice.distributions.listForUser()).total).toBe(1);
    expect((await alice.distributions.get(debian.dbId!)).name).toBe("Debian");
    expect((await root.distributions.update(debian.dbId!, { active: true })).active).toBe(true);
    const pkgs = await alice.distributions.packages(debian.dbId!, { query: "name==jq*", count: 5 });
    const jq = pkgs.pkgs!.find((p) => p.name === "jq")!;
    expect(jq).toBeDefined();
    expect((await alice.distributions.package(debian.dbId!, jq.dbId!)).name).toBe("jq");

    expect((await alice.formats.imageFormats()).imageFormats?.map((f) => f.name).sort()).toEqual(["docker", "openshift"]);
    const targets = await alice.formats.targetFormats();
    expect(targets.targetFormats?.map((f) => f.name).sort()).toEqual(["Docker", "OpenShift"]);
    const platforms = (await alice.formats.targetPlatforms()).targetPlatforms!;
    expect(platforms.length).toBeGreaterThan(0);
    expect((await alice.formats.targetPlatformFormats(platforms[0]!.dbId!)).total).toBeGreaterThan(0);
  });

  it("authenticates with an API key pair, signing each URL as the server checks it", async () => {
    const key = await alice.apiKeys.create({ name: "ci" });
    expect(key.secretKey).toBeTruthy();
    expect(await alice.apiKeys.update(key.dbId!, { description: "for CI" })).toMatchObject({ description: "for CI" });
    expect((await alice.apiKeys.list()).apiKeyPairs?.map((k) => k.name)).toEqual(["ci"]);
    // The same signature as the server's own helper.
    expect(signUrl("http://h/api/users/alice?apiKey=p", "s")).toBe(serverSignUrl("http://h/api/users/alice?apiKey=p", "s"));

    const byKey = client({ password: undefined, apiKey: { publicKey: key.publicKey!, secret: key.secretKey! } });
    try {
      expect((await byKey.users.get()).loginName).toBe("alice");
      // Query parameters and the signature live together.
      expect((await byKey.bundles.list({ count: 1 })).total).toBe(0);
      // Writes are signed with their method ("POST <URL>", "DELETE <URL>"), as the server requires.
      const made = await byKey.bundles.create({ name: "by-key", version: "1" });
      await byKey.bundles.delete(made.dbId!);
      expect((await byKey.bundles.list()).total).toBe(0);
      const wrong = client({ password: undefined, apiKey: { publicKey: key.publicKey!, secret: "not-the-secret" } });
      const err = await wrong.users.get().catch((e: unknown) => e);
      wrong.close();
      expect(err).toBeInstanceOf(KilnApiError);
      expect(err).toMatchObject({ status: 401, code: "Unauthorized" });
      expect((err as KilnApiError).message).toMatch(/signature does not match/);
      expect((err as KilnApiError).url).not.toContain(key.publicKey!);
    } finally {
      byKey.close();
    }
    await alice.apiKeys.delete(key.dbId!);
    expect((await alice.apiKeys.list()).total).toBe(0);
  });

  it("throws typed errors that carry the uforgeError", async () => {
    const missing = await alice.bundles.get(99999).catch((e: unknown) => e);
    expect(missing).toBeInstanceOf(KilnApiError);
    const e = missing as KilnApiError;
    expect(e).toMatchObject({ status: 404, code: "NotFound", method: "GET" });
    expect(e.message).toBe("no software bundle 99999");
    expect(e.uforgeError).toMatchObject({ statusCode: 404, requestMethod: "GET", requestUri: "/api/users/alice/mysoftware/99999" });

    const bad = await alice.bundles.create({ name: "x", defaultInstallLocation: "/opt/../etc" }).catch((x: unknown) => x);
    expect(bad).toMatchObject({ status: 400, code: "InvalidField" });

    const wrongPassword = client({ password: "nope" });
    const unauth = await wrongPassword.users.get().catch((x: unknown) => x);
    wrongPassword.close();
    expect(unauth).toMatchObject({ status: 401, code: "Unauthorized", message: "wrong user name or password" });

    const nowhere = new KilnClient({ url: "http://127.0.0.1:1", user: "alice", password: "x" });
    const refused = await nowhere.status().catch((x: unknown) => x);
    expect(refused).toBeInstanceOf(KilnConnectionError);
    expect((refused as Error).message).toMatch(/cannot reach Kiln at http:\/\/127\.0\.0\.1:1: ECONNREFUSED/);

    const aborted = await alice.transport.json("GET", "users/alice", { signal: AbortSignal.abort() }).catch((x: unknown) => x);
    expect(aborted).toBeInstanceOf(KilnAbortError);
  });
});

describe("bundles, artifacts and their bytes", () => {
  let bundleId: number;
  let fileId: number;
  const big = randomBytes(6 * 1024 * 1024 + 123);
  const bigSha = createHash("sha256").update(big).digest("hex");

  it("manages bundles, restrictions and artifact trees", async () => {
    const b = await alice.bundles.create({ name: "sdk", version: "1.0", defaultInstallLocation: "/opt/sdk" });
    bundleId = b.dbId!;
    expect((await alice.bundles.list()).mySoftwareList?.map((x) => x.name)).toEqual(["sdk"]);
    expect((await alice.bundles.update(bundleId, { description: "typed" })).description).toBe("typed");
    expect((await alice.bundles.get(bundleId)).description).toBe("typed");
    const brid = b.bundleRestriction!.dbId!;
    expect((await alice.bundles.evaluateRestriction(bundleId, brid, "Distribution#name=Ubuntu")).total).toBe(0);
    expect((await alice.bundles.setRestriction(bundleId, brid, "Distribution#name=Debian")).restrictionRule).toBe("Distribution#name=Debian");
    expect((await alice.bundles.restrictionDistributions(bundleId, brid)).total).toBe(1);
    expect((await alice.bundles.restrictionDistributions(bundleId, brid, { compatibility: false })).total).toBe(0);

    const folder = await alice.artifacts.add(bundleId, { name: "etc", type: "folder" });
    const child = await alice.artifacts.addChild(bundleId, folder.dbId!, { name: "app.conf" });
    expect(child.parentUri).toBe(folder.uri);
    const file = await alice.artifacts.add(bundleId, { name: "big.bin", installLocation: "/opt/sdk/data" });
    fileId = file.dbId!;
    expect((await alice.artifacts.update(bundleId, fileId, { params: "rights=0640" })).params).toBe("rights=0640");
    const all = await alice.artifacts.updateAll(bundleId, [{ dbId: child.dbId!, installLocation: "/etc/sdk" }]);
    expect(all.softwareArtifacts?.find((a) => a.dbId === folder.dbId)?.subSoftwareArtifacts?.[0]?.installLocation).toBe("/etc/sdk");
    expect((await alice.artifacts.list(bundleId, { filename: "app.conf" })).total).toBe(1);
    await alice.artifacts.delete(bundleId, folder.dbId!);
    expect((await alice.artifacts.list(bundleId)).softwareArtifacts?.map((a) => a.name)).toEqual(["big.bin"]);

    const copy = await alice.bundles.clone(bundleId, { name: "sdk-copy" });
    expect(copy.name).toBe("sdk-copy");
    await alice.artifacts.deleteAll(copy.dbId!);
    expect((await alice.artifacts.list(copy.dbId!)).total).toBe(0);
    await alice.bundles.delete(copy.dbId!);
  });

  it("streams an upload from a file with its size, reporting progress to the last byte", async () => {
    const source = path.join(work, "big.bin");
    writeFileSync(source, big);
    const progress: number[] = [];
    const a = await alice.artifacts.upload(bundleId, fileId, "big.bin", source, { onProgress: (p) => progress.push(p.loaded) });
    expect(a).toMatchObject({ size: big.length, sha256sum: bigSha, uploaded: true, origName: "big.bin" });
    expect(progress[0]).toBe(0);
    expect(progress.at(-1)).toBe(big.length);
    expect(progress.every((v, i) => i === 0 || v >= progress[i - 1]!)).toBe(true);
    expect(progress.length).toBeGreaterThan(5);
  });

  it("streams an upload of unknown length, and refuses a bad file name with a typed error", async () => {
    const small = await alice.artifacts.add(bundleId, { name: "notes.txt" });
    const body = Readable.from([Buffer.from("line one\n"), Buffer.from("line two\n")]);
    const up = await alice.artifacts.upload(bundleId, small.dbId!, "notes.txt", body);
    expect(up.size).toBe(18);
    // ".." would climb out of the path: the client refuses it before sending anything.
    await expect(alice.artifacts.upload(bundleId, small.dbId!, "..", Readable.from([Buffer.from("x")]))).rejects.toThrow(/not a path under the API/);
    const err = await alice.artifacts.upload(bundleId, small.dbId!, "a/b", Readable.from([Buffer.from("x")])).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(KilnApiError);
    expect(err).toMatchObject({ status: 400, code: "InvalidFileName" });
  });

  it("resumes an interrupted download with a Range request and checks the result", async () => {
    const dest = path.join(work, "down.bin");
    const controller = new AbortController();
    const first = await alice.artifacts
      .download(bundleId, fileId, dest, {
        signal: controller.signal,
        onProgress: (p) => {
          if (p.loaded > 1024 * 1024) controller.abort();
        },
      })
      .catch((e: unknown) => e);
    expect(first).toBeInstanceOf(Error);
    expect(existsSync(dest)).toBe(false);
    const partSize = statSync(`${dest}.part`).size;
    expect(partSize).toBeGreaterThan(0);
    expect(partSize).toBeLessThan(big.length);

    const seenLoaded: number[] = [];
    const result = await alice.artifacts.download(bundleId, fileId, dest, { sha256: bigSha, fileName: "big.bin", onProgress: (p) => seenLoaded.push(p.loaded) });
    expect(result).toMatchObject({ size: big.length, resumedFrom: partSize, sha256: bigSha });
    expect(seenLoaded[0]).toBe(partSize);
    expect(seenLoaded.at(-1)).toBe(big.length);
    expect(readFileSync(dest).equals(big)).toBe(true);
    expect(existsSync(`${dest}.part`)).toBe(false);

    // A part holding other bytes is caught by the checksum, removed, and the next try starts afresh.
    const other = path.join(work, "other.bin");
    writeFileSync(`${other}.part`, Buffer.alloc(1000, 7));
    const bad = await alice.artifacts.download(bundleId, fileId, other, { sha256: bigSha }).catch((e: unknown) => e);
    expect(bad).toBeInstanceOf(KilnIntegrityError);
    expect(existsSync(`${other}.part`)).toBe(false);
    const again = await alice.artifacts.download(bundleId, fileId, other, { sha256: bigSha });
    expect(again.resumedFrom).toBe(0);
    expect(readFileSync(other).equals(big)).toBe(true);

    // A part that is already whole is only checked.
    writeFileSync(`${dest}.part`, big);
    const whole = await alice.artifacts.download(bundleId, fileId, dest, { sha256: bigSha });
    expect(whole.resumedFrom).toBe(big.length);
  });

  it("reads an artifact with its one-time binary URI", async () => {
    const a = await alice.artifacts.get(bundleId, fileId);
    expect(a.binaryUri).toMatch(/\/bin\/big\.bin\?downloadId=/);
  });
});

describe("templates, generation, waitFor, download and publication", () => {
  let templateUri: string;
  let imageUri: string;

  it("follows a generation to complete with waitFor, progress only going up", async () => {
    const b = await alice.bundles.create({ name: "hello", version: "2.0" });
    const tgz = gzipSync(await makeTar([{ name: "hello", content: "#!/bin/sh\necho hi\n", mode: 0o755 }]));
    const a = await alice.artifacts.add(b.dbId!, { name: "hello.tar.gz", extract: true, installLocation: "/opt/hello" });
    await alice.artifacts.upload(b.dbId!, a.dbId!, "hello.tar.gz", Readable.from([tgz]), { size: tgz.length });
    const t = await alice.templates.create(b.dbId!, { distribution: { name: "Debian", version: "12", arch: "x86_64" } });
    templateUri = t.uri!;
    expect((await alice.templates.list(b.dbId!)).total).toBe(1);
    expect((await alice.templates.get(t)).distribution?.name).toBe("Debian");
    expect((await alice.templates.find(t.dbId!)).uri).toBe(t.uri);
    expect((await alice.templates.formats(t)).targetFormats?.map((f) => f.name).sort()).toEqual(["Docker", "OpenShift"]);

    const ticket = await alice.images.generate(t, { targetFormat: { name: "Docker" }, compress: true, entrypoint: '["/opt/hello/hello"]' });
    imageUri = ticket.uri!;
    const statuses: OpStatus[] = [];
    const final = await alice.waitFor(ticket, { intervalMs: 100, maxIntervalMs: 500, onStatus: (s) => statuses.push(s) });
    expect(final.errorMessage ?? "").toBe("");
    expect(final).toMatchObject({ complete: true, percentage: 100 });
    const pcts = statuses.map((s) => s.percentage ?? 0);
    expect(pcts.every((v, i) => i === 0 || v >= pcts[i - 1]!)).toBe(true);
    expect(statuses.length).toBeGreaterThan(1);
    expect((await alice.images.status(ticket)).complete).toBe(true);
  });

  it("finds the image by id, lists its packages and downloads it checked against its sha256", async () => {
    const listed = await alice.images.list();
    expect(listed.total).toBe(1);
    const id = listed.images![0]!.dbId!;
    const found = await alice.images.find(id);
    expect(found.uri).toBe(imageUri);
    expect((await alice.images.statuses()).statuses?.[0]?.complete).toBe(true);
    const pkgs = await alice.images.packages(found);
    expect(pkgs.imagePkgs?.map((p) => p.pkg?.name)).toContain("bash");

    const img = await alice.images.get(found);
    expect(img.registeringName).toBe("hello:2.0");
    const dest = path.join(work, img.fileName!);
    const loaded: number[] = [];
    const r = await alice.images.download(img, dest, { onProgress: (p) => loaded.push(p.loaded) });
    expect(r.size).toBe(img.fileSize);
    expect(r.sha256).toBe(img.sha256sum);
    expect(createHash("sha256").update(readFileSync(dest)).digest("hex")).toBe(img.sha256sum);
    expect(loaded.at(-1)).toBe(img.fileSize);
    // Without a file name (`.../downloads`), as a stream.
    const { stream, size } = await alice.images.open(found);
    const hash = createHash("sha256");
    for await (const chunk of stream) hash.update(chunk as Buffer);
    expect(size).toBe(img.fileSize);
    expect(hash.digest("hex")).toBe(img.sha256sum);
  });

  it("times out a wait, cancels a running generation and sees it cancelled", async () => {
    const ticket = await alice.images.generate(templateUri, { targetFormat: { name: "OpenShift" }, compress: true });
    const timeout = await alice.waitFor(ticket, { timeoutMs: 1, intervalMs: 1 }).catch((e: unknown) => e);
    // A generation cannot finish within a millisecond of its start.
    expect(timeout).toBeInstanceOf(KilnTimeoutError);
    await alice.images.cancel(ticket);
    const end = await alice.waitFor(ticket.statusUri!);
    expect(end.cancelled).toBe(true);
    await alice.images.delete(ticket);
    expect((await alice.images.list()).total).toBe(1);
  });

  it("publishes to a registry and follows the push", async () => {
    const account = await alice.accounts.create({ xsiType: "CredAccountDocker", name: "local", endpointUrl: registry.url, login: "anyone", password: "unused" });
    expect(account.xsiType).toBe("CredAccountDocker");
    expect((await alice.accounts.list()).total).toBe(1);
    expect((await alice.accounts.get(account.dbId!)).name).toBe("local");
    expect((await alice.accounts.update(account.dbId!, { xsiType: "CredAccountDocker", name: "local registry" })).name).toBe("local registry");
    expect((await alice.accounts.resources(account.dbId!)).resources ?? []).toEqual([]);

    const pub = await alice.publications.publish(imageUri, { account: account.dbId!, namespace: "sdk", repository: "hello", tag: "2.0" });
    expect(pub.xsiType).toBe("PublishImageDocker");
    const done = await alice.waitFor(pub);
    expect(done.errorMessage ?? "").toBe("");
    expect(done.complete).toBe(true);
    const listed = await alice.publications.list();
    expect(listed.total).toBe(1);
    const found = await alice.publications.find(listed.publishImages![0]!.dbId!);
    expect((await alice.publications.get(found)).registeringName).toBe(`${registry.host}/sdk/hello:2.0`);
    expect((await alice.publications.status(found)).complete).toBe(true);
    expect((await alice.publications.statuses()).total).toBe(1);
    // Nothing left to cancel: the answer is the publication's status, unchanged (UForge's page: 200).
    expect(await alice.publications.cancel(found)).toMatchObject({ complete: true, cancelled: false });
    // A second push through the raw body, cancelled at once or already done.
    const raw = await alice.publications.publishRaw(imageUri, { xsiType: "PublishImageDocker", credAccount: { xsiType: "CredAccountDocker", uri: account.uri! }, namespace: "sdk", repositoryName: "hello", tagName: "latest" });
    await alice.waitFor(raw);
    await alice.publications.delete(found);
    await alice.publications.delete(raw);
    expect((await alice.publications.list()).total).toBe(0);
    await alice.accounts.delete(account.dbId!);

    await alice.templates.delete(templateUri);
    expect((await alice.images.list()).total).toBe(0);
  });
});

describe("bundle archives", () => {
  it("exports a bundle as hammr's archive and imports it back as an equal bundle", async () => {
    const b = await alice.bundles.create({ name: "sdk-archive", version: "1.0" });
    const a = await alice.artifacts.add(b.dbId!, { name: "hello.txt" });
    await alice.artifacts.upload(b.dbId!, a.dbId!, "hello.txt", Readable.from([Buffer.from("hello\n")]), { size: 6 });
    const file = path.join(work, "sdk-archive.tar.gz");
    await alice.bundles.exportArchive(b.dbId!, file);
    const again = await alice.bundles.importArchive(file, { imported: true });
    expect(again).toMatchObject({ name: "sdk-archive", version: "1.0", imported: true });
    const files = await alice.artifacts.list(again.dbId!);
    expect(files.softwareArtifacts?.map((f) => [f.name, f.size])).toEqual([["hello.txt", 6]]);
    // A refused archive is the server's typed error.
    const refused = await alice.bundles.importArchive(Readable.from([Buffer.from("not a tar.gz")])).catch((e: unknown) => e);
    expect(refused).toMatchObject({ status: 400 });
  });
});

describe("coverage", () => {
  it("called every operation of endpoints.tsv (and the package list) through the typed client", () => {
    const missing = Object.keys(OPERATIONS).filter((op) => !seen.has(op));
    expect(missing).toEqual([]);
  });
});
