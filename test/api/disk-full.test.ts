/**
 * A full disk fails, it does not hang (issue 10, item 6): with the data directory on a small
 * real tmpfs, filled by a ballast file, a generation ends in error with "no space left on
 * device" (it used to stay at "writing layers" for ever: the blob writer waited for a `drain`
 * that never comes after ENOSPC), a cancel answers, an upload answers `507`, a database write
 * that cannot grow the database answers `507` with a message saying why, deleting an artifact
 * frees its space, and once space is free again new work succeeds. Runs as root (mount).
 */
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { closeSync, existsSync, ftruncateSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, statfsSync, writeSync, fstatSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { gzipSync } from "node:zlib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildDeb, makeTar, tempDir } from "../fixtures/debs.js";
import { errorMessage, jsonClient, startTestServer, type JsonStatus, type TestServer } from "../helpers/api.js";

let mountPoint: string;
let mounted = false;
let server: TestServer;
let bundleUri: string;
let templateUri: string;
let ballastFd: number | undefined;
const api: ReturnType<typeof jsonClient>["api"] = (...args) => jsonClient(server, "alice").api(...args);
const waitFor: ReturnType<typeof jsonClient>["waitFor"] = (...args) => jsonClient(server, "alice").waitFor(...args);

// What would end a real server process: none may happen.
const fatal: unknown[] = [];
const onFatal = (err: unknown): void => void fatal.push(err);

const free = (): number => {
  const s = statfsSync(mountPoint);
  return s.bavail * s.bsize;
};

/** Fills the filesystem to the last byte with the ballast file, then gives back `headroom` bytes. */
function fill(headroom: number): void {
  ballastFd ??= openSync(path.join(mountPoint, "ballast"), "a");
  const chunk = Buffer.alloc(1 << 20);
  for (let size = chunk.length; size > 0; ) {
    try {
      writeSync(ballastFd, chunk, 0, size);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ENOSPC") throw err;
      size >>= 1;
    }
  }
  ftruncateSync(ballastFd, Math.max(0, fstatSync(ballastFd).size - headroom));
}

function dropBallast(): void {
  if (ballastFd !== undefined) closeSync(ballastFd);
  ballastFd = undefined;
  rmSync(path.join(mountPoint, "ballast"), { force: true });
}

async function upload(artifactUri: string, name: string, bytes: Buffer) {
  return server.request({ method: "POST", url: `/api/${artifactUri}/bin/${name}`, user: "alice", headers: { "content-type": "application/octet-stream" }, payload: bytes });
}

async function generate(): Promise<{ uri: string; statusUri: string }> {
  const r = await api<{ uri: string; statusUri: string }>("POST", `${templateUri}/images`, { targetFormat: { name: "Docker" }, compress: true, entrypoint: '["/opt/full/bin/hello"]' });
  expect(r.status, JSON.stringify(r.json)).toBe(201);
  return r.json;
}

/** Temporary files Kiln may leave only while work is in flight. */
function leftovers(): string[] {
  const data = server.config.dataDir;
  return [path.join(data, "tmp", "jobs"), path.join(data, "blobs", "tmp")].flatMap((d) => (existsSync(d) ? readdirSync(d) : []));
}

beforeAll(async () => {
  process.on("unhandledRejection", onFatal);
  process.on("uncaughtException", onFatal);
  mountPoint = mkdtempSync(path.join(tmpdir(), "kiln-full-"));
  execFileSync("mount", ["-t", "tmpfs", "-o", "size=400m,mode=0700", "tmpfs", mountPoint]);
  mounted = true;
  // The bomb below unpacks to 128 MiB, twice the limit.
  server = await startTestServer({ dataDir: mountPoint, env: { KILN_MAX_IMAGE_SIZE: "64MiB" } });
  await server.createUser("alice");
  const b = await api<{ uri: string }>("POST", "users/alice/mysoftware", { name: "full", version: "1.0" });
  bundleUri = b.json.uri;
  const a = await api<{ uri: string }>("POST", `${bundleUri}/artifacts`, { name: "hello.tar.gz", extract: true, installLocation: "/opt/full" });
  const up = await upload(a.json.uri, "hello.tar.gz", gzipSync(await makeTar([{ name: "bin/hello", content: "#!/bin/sh\necho hello\n", mode: 0o755 }])));
  expect(up.statusCode, up.body).toBe(201);
  const t = await api<{ uri: string }>("POST", `${bundleUri}/templates`, { distribution: { name: "Debian", version: "12", arch: "x86_64" } });
  templateUri = t.json.uri;
  // A first image warms the package and layer caches: what fills the disk below is the bundle.
  const s = await waitFor((await generate()).statusUri, undefined, 240_000);
  expect(s.complete, JSON.stringify(s)).toBe(true);
}, 300_000);

afterAll(async () => {
  dropBallast();
  await server?.close();
  // Lazily: a descriptor still closing must not leave the mount behind.
  if (mounted) execFileSync("umount", ["-l", mountPoint]);
  rmSync(mountPoint, { recursive: true, force: true });
  process.off("unhandledRejection", onFatal);
  process.off("uncaughtException", onFatal);
});

describe("a decompression bomb", () => {
  it("fails its generation at KILN_MAX_IMAGE_SIZE, naming the limit and the artifact, leaving nothing in temp", async () => {
    const b = await api<{ uri: string }>("POST", "users/alice/mysoftware", { name: "bomb", version: "1.0" });
    const a = await api<{ uri: string }>("POST", `${b.json.uri}/artifacts`, { name: "zeros.tar.gz", extract: true, installLocation: "/opt/bomb" });
    const bomb = gzipSync(await makeTar([{ name: "zeros.bin", content: Buffer.alloc(128 << 20) }]));
    expect(bomb.length).toBeLessThan(1 << 20);
    const up = await upload(a.json.uri, "zeros.tar.gz", bomb);
    expect(up.statusCode, up.body).toBe(201);
    const t = await api<{ uri: string }>("POST", `${b.json.uri}/templates`, { distribution: { name: "Debian", version: "12", arch: "x86_64" } });
    const g = await api<{ statusUri: string }>("POST", `${t.json.uri}/images`, { targetFormat: { name: "Docker" }, compress: true });
    expect(g.status, JSON.stringify(g.json)).toBe(201);
    const s = await waitFor(g.json.statusUri, undefined, 120_000);
    expect(s.error, JSON.stringify(s)).toBe(true);
    expect(s.errorMessage).toMatch(/^artifact zeros\.tar\.gz: zeros\.bin: unpacking stopped, the image's content passes KILN_MAX_IMAGE_SIZE \(64 MiB\)/);
    expect(leftovers()).toEqual([]);
    await api("DELETE", b.json.uri);
  }, 180_000);

  it("counts a bundle's .deb too: a package of zeros stops unpacking at the limit", async () => {
    const dir = tempDir();
    try {
      const deb = readFileSync(buildDeb({ name: "zeros", version: "1.0", arch: "all", files: [{ path: "/opt/zeros.bin", content: Buffer.alloc(128 << 20) }] }, dir));
      expect(deb.length).toBeLessThan(1 << 20);
      const b = await api<{ uri: string }>("POST", "users/alice/mysoftware", { name: "deb-bomb", version: "1.0" });
      const a = await api<{ uri: string }>("POST", `${b.json.uri}/artifacts`, { name: "zeros_1.0_all.deb", install: true });
      const up = await upload(a.json.uri, "zeros_1.0_all.deb", deb);
      expect(up.statusCode, up.body).toBe(201);
      const t = await api<{ uri: string }>("POST", `${b.json.uri}/templates`, { distribution: { name: "Debian", version: "12", arch: "x86_64" } });
      const g = await api<{ statusUri: string }>("POST", `${t.json.uri}/images`, { targetFormat: { name: "Docker" }, compress: true });
      expect(g.status, JSON.stringify(g.json)).toBe(201);
      const s = await waitFor(g.json.statusUri, undefined, 120_000);
      expect(s.error, JSON.stringify(s)).toBe(true);
      expect(s.errorMessage).toMatch(/artifact zeros_1\.0_all\.deb: unpacking stopped, the image's content passes KILN_MAX_IMAGE_SIZE \(64 MiB\)/);
      expect(leftovers()).toEqual([]);
      // Nothing of the package stays in the unpacked-package cache either.
      const unpacked = path.join(server.config.dataDir, "cache", "unpacked");
      const partial = (existsSync(unpacked) ? readdirSync(unpacked) : []).flatMap((d) => readdirSync(path.join(unpacked, d)).filter((f) => f.includes(".tmp-")));
      expect(partial).toEqual([]);
      await api("DELETE", b.json.uri);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 180_000);
});

describe("a full disk", () => {
  let bigUri: string;

  it("fails a generation with 'no space left on device' instead of hanging", async () => {
    const a = await api<{ uri: string }>("POST", `${bundleUri}/artifacts`, { name: "big.bin", installLocation: "/opt/full" });
    bigUri = a.json.uri;
    const up = await upload(bigUri, "big.bin", randomBytes(24 << 20));
    expect(up.statusCode, up.body).toBe(201);
    // Room for the database to record the outcome, not for the bundle's 24 MiB file: the
    // generation fills the disk, fails, and its partial files go (as on a real disk, where the
    // write that finds no room is usually the big one).
    fill(8 << 20);
    const g = await generate();
    const s = await waitFor(g.statusUri, undefined, 120_000);
    expect(s.error, JSON.stringify(s)).toBe(true);
    expect(s.errorMessage).toMatch(/no space left on device/);
    expect(s.errorMessage).not.toContain(mountPoint);
    expect(leftovers()).toEqual([]);
  }, 180_000);

  it("answers a cancel", async () => {
    const g = await generate();
    const answer = await api<JsonStatus>("DELETE", g.statusUri);
    // The job may have failed on the full disk before the cancel came (409): either way it is over.
    expect([200, 409], JSON.stringify(answer.json)).toContain(answer.status);
    const s = await waitFor(g.statusUri, undefined, 120_000);
    expect(s.cancelled || s.error, JSON.stringify(s)).toBe(true);
    if (s.error) expect(s.errorMessage).toMatch(/no space left on device/);
    expect(leftovers()).toEqual([]);
  }, 180_000);

  it("answers an upload 507 Insufficient Storage", async () => {
    const a = await api<{ uri: string }>("POST", `${bundleUri}/artifacts`, { name: "more.bin" });
    const res = await upload(a.json.uri, "more.bin", randomBytes(16 << 20));
    expect(res.statusCode, res.body).toBe(507);
    expect(errorMessage(res)).toMatch(/no space left on device/);
    expect(leftovers()).toEqual([]);
    await api("DELETE", a.json.uri);
  });

  it("answers a database write that cannot grow the database 507, saying why", async () => {
    fill(0);
    // Each bundle takes a little room: some write finds none.
    let res: Awaited<ReturnType<typeof api>> | undefined;
    for (let i = 0; i < 500; i++) {
      res = await api("POST", "users/alice/mysoftware", { name: `filler ${i}`, version: "1.0", description: "x".repeat(4000) });
      if (res.status !== 201) break;
    }
    expect(res!.status, JSON.stringify(res!.json)).toBe(507);
    expect(errorMessage(res!.res)).toMatch(/no space left on device/);
  });

  it("frees the space of a deleted artifact", async () => {
    const before = free();
    // The database itself has no room left: its reserve (store.ts) lets the deletion through.
    const res = await api("DELETE", bigUri);
    expect(res.status, JSON.stringify(res.json)).toBe(204);
    // All of its 24 MiB but the few pages the database wrote to record the deletion.
    expect(free() - before).toBeGreaterThan(23 << 20);
  });

  it("works again once there is space", async () => {
    dropBallast();
    const a = await api<{ uri: string }>("POST", `${bundleUri}/artifacts`, { name: "again.bin", installLocation: "/opt/full" });
    const up = await upload(a.json.uri, "again.bin", randomBytes(1 << 20));
    expect(up.statusCode, up.body).toBe(201);
    const s = await waitFor((await generate()).statusUri, undefined, 240_000);
    expect(s.complete, JSON.stringify(s)).toBe(true);
    expect(leftovers()).toEqual([]);
    expect(fatal).toEqual([]);
  }, 300_000);
});
