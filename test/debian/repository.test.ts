/**
 * The repository client against repositories made in the test (dpkg-deb, apt-ftparchive, gpg)
 * and served from disk (`file://`) or by a static HTTP server on 127.0.0.1.
 */
import { execFileSync } from "node:child_process";
import { cpSync, existsSync, readFileSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import path from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { BlobStore } from "../../src/blobs/blob-store.js";
import { makeParagraph } from "../../src/debian/control.js";
import { packageFromParagraph } from "../../src/debian/package.js";
import { clearIndexMemo } from "../../src/debian/packages-index.js";
import { openRepository, type OpenRepositoryOptions, type Repository } from "../../src/debian/repository.js";
import { loadKeyring, verifyClearsigned } from "../../src/debian/signature.js";
import { isKilnError, type ErrorKind } from "../../src/domain/errors.js";
import type { DistributionConfig } from "../../src/domain/distributions.js";
import { removeDir, tempDir, type DebSpec } from "../fixtures/debs.js";
import { MirrorServer } from "../helpers/mirror-server.js";
import { buildRepo, dropKey, makeKey, poolFiles, signRelease, writeRelease, type TestKey } from "./test-repo.js";

const MAIN: DebSpec[] = [
  { name: "hello", version: "1.0", depends: "libgreet (>= 1)" },
  { name: "libgreet", version: "1.2", files: [{ path: "usr/lib/libgreet.so.1", content: "x".repeat(4096) }] },
  { name: "extra-a", version: "1" },
  { name: "extra-b", version: "1" },
  { name: "extra-c", version: "1" },
  { name: "extra-d", version: "1" },
];
const CONTRIB: DebSpec[] = [{ name: "nonfree-ish", version: "2.0", depends: "hello" }];

let key: TestKey;
let otherKey: TestKey;
/** A signed repository (InRelease and Release.gpg), copied by tests that tamper with it. */
let pristine: string;
const cleanups: Array<() => void | Promise<void>> = [];

beforeAll(() => {
  key = makeKey("archive");
  otherKey = makeKey("stranger");
  pristine = tempDir("kiln-repo-");
  buildRepo(pristine, { suite: "stable", codename: "kiln1", components: { main: MAIN, contrib: CONTRIB } });
  signRelease(pristine, "stable", key);
});

afterAll(() => {
  removeDir(pristine);
  dropKey(key);
  dropKey(otherKey);
});

afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
  // Each test starts without parsed indices in memory, as a fresh process would.
  clearIndexMemo();
});

/** A copy of the pristine repository that a test may change. */
function copyRepo(): string {
  const dir = tempDir("kiln-repo-copy-");
  cpSync(pristine, dir, { recursive: true });
  cleanups.push(() => removeDir(dir));
  return dir;
}

function scratch(): { cacheDir: string; debs: BlobStore; root: string } {
  const root = tempDir("kiln-repo-data-");
  cleanups.push(() => removeDir(root));
  return { root, cacheDir: path.join(root, "cache"), debs: BlobStore.open(path.join(root, "blobs")) };
}

async function serve(dir: string): Promise<MirrorServer> {
  const server = await MirrorServer.start(dir);
  cleanups.push(() => server.close());
  return server;
}

function dist(mirror: string, keyring: string, overrides: Partial<DistributionConfig> = {}): DistributionConfig {
  return { name: "Debian", version: "12", arch: "x86_64", mirror, suite: "stable", components: ["main"], keyring, ...overrides };
}

function fileUrl(dir: string): string {
  return `file://${dir}/`;
}

async function failure(p: Promise<unknown>, kind: ErrorKind): Promise<string> {
  try {
    await p;
  } catch (err) {
    expect(isKilnError(err, kind), `${(err as Error).message}`).toBe(true);
    return (err as Error).message;
  }
  throw new Error("expected a failure");
}

function open(d: DistributionConfig, s: { cacheDir: string; debs: BlobStore }, extra: Partial<OpenRepositoryOptions> = {}): Promise<Repository> {
  return openRepository(d, { cacheDir: s.cacheDir, debs: s.debs, ...extra });
}

describe("signatures", () => {
  it("verifies a clearsigned InRelease with a binary keyring, over HTTP", async () => {
    const server = await serve(pristine);
    const repo = await open(dist(server.url, key.binaryKeyring, { components: ["main", "contrib"] }), scratch());
    expect(repo.release.signedBy).toBe(key.fingerprint);
    expect(repo.release).toMatchObject({ suite: "stable", codename: "kiln1", origin: "Kiln", architectures: ["amd64"], components: ["main", "contrib"] });
    expect(Math.abs(repo.release.date!.getTime() - Date.now())).toBeLessThan(3_600_000);
    // Both components, merged.
    expect(repo.packages.map((p) => p.name).sort()).toEqual([...MAIN, ...CONTRIB].map((s) => s.name).sort());
    expect(server.requestsFor("/dists/stable/InRelease")).toHaveLength(1);
    expect(server.requestsFor("/dists/stable/Release.gpg")).toHaveLength(0);
    expect(server.requestsFor("/dists/stable/main/binary-amd64/Packages.xz")).toHaveLength(1);
  });

  it("verifies Release with a detached Release.gpg and an armored keyring, from file://", async () => {
    const dir = copyRepo();
    execFileSync("rm", [path.join(dir, "dists/stable/InRelease")]);
    const repo = await open(dist(fileUrl(dir), key.armoredKeyring), scratch());
    expect(repo.release.signedBy).toBe(key.fingerprint);
    expect(repo.packages).toHaveLength(MAIN.length);
  });

  it("refuses an InRelease whose signed text was changed", async () => {
    const dir = copyRepo();
    const file = path.join(dir, "dists/stable/InRelease");
    writeFileSync(file, readFileSync(file, "utf8").replace("Suite: stable", "Suite: stab1e"));
    const message = await failure(open(dist(fileUrl(dir), key.binaryKeyring), scratch()), "integrityFailed");
    expect(message).toMatch(new RegExp(`^InRelease of stable at file://.* does not verify: the signature by key ${key.fingerprint.slice(-16)} is invalid`));
  });

  it("refuses a Release signed by a key that is not in the keyring", async () => {
    const message = await failure(open(dist(fileUrl(pristine), otherKey.binaryKeyring), scratch()), "integrityFailed");
    expect(message).toBe(`InRelease of stable at ${fileUrl(pristine)} does not verify: it is signed by key ${key.fingerprint.slice(-16)}, which is not in keyring ${otherKey.binaryKeyring}`);
  });

  it("refuses a tampered Release next to its detached signature", async () => {
    const dir = copyRepo();
    execFileSync("rm", [path.join(dir, "dists/stable/InRelease")]);
    const file = path.join(dir, "dists/stable/Release");
    writeFileSync(file, readFileSync(file, "utf8").replace("Codename: kiln1", "Codename: kiln2"));
    const message = await failure(open(dist(fileUrl(dir), key.binaryKeyring), scratch()), "integrityFailed");
    expect(message).toContain("Release of stable at");
    expect(message).toContain("(with Release.gpg) does not verify: the signature by key");
  });

  it("refuses an unsigned repository when a keyring is configured, and accepts it only with keyring: none", async () => {
    const dir = copyRepo();
    execFileSync("rm", [path.join(dir, "dists/stable/InRelease"), path.join(dir, "dists/stable/Release.gpg")]);
    const message = await failure(open(dist(fileUrl(dir), key.binaryKeyring), scratch()), "integrityFailed");
    expect(message).toBe(
      `the Release of stable at ${fileUrl(dir)} is not signed (no InRelease, no Release.gpg) but keyring ${key.binaryKeyring} is configured; only a distribution configured with "keyring: none" may use an unsigned mirror`,
    );
    const repo = await open(dist(fileUrl(dir), "none"), scratch());
    expect(repo.release.signedBy).toBeUndefined();
    expect(repo.packages).toHaveLength(MAIN.length);
  });

  it("reads a clearsigned InRelease without checking it only with keyring: none", async () => {
    const repo = await open(dist(fileUrl(pristine), "none"), scratch());
    expect(repo.release.signedBy).toBeUndefined();
    expect(repo.release.codename).toBe("kiln1");
  });

  it("refuses a missing or unreadable keyring", async () => {
    expect(await failure(open(dist(fileUrl(pristine), "/nonexistent/keyring.gpg"), scratch()), "repositoryFailed")).toBe("cannot read keyring /nonexistent/keyring.gpg: ENOENT");
    const junk = path.join(scratch().root, "junk.gpg");
    writeFileSync(junk, "not a key");
    expect(await failure(open(dist(fileUrl(pristine), junk), scratch()), "repositoryFailed")).toMatch(/^cannot use keyring .*junk\.gpg: /);
  });

  it.skipIf(!existsSync("/var/lib/apt/lists/deb.debian.org_debian_dists_bookworm_InRelease") || !existsSync("/usr/share/keyrings/debian-archive-keyring.gpg"))(
    "verifies Debian's own bookworm InRelease with debian-archive-keyring.gpg",
    async () => {
      const keyring = await loadKeyring("/usr/share/keyrings/debian-archive-keyring.gpg");
      const doc = readFileSync("/var/lib/apt/lists/deb.debian.org_debian_dists_bookworm_InRelease", "utf8");
      const verified = await verifyClearsigned(doc, keyring, "bookworm InRelease");
      expect(verified.text).toMatch(/^Origin: Debian\n/);
      expect(verified.text).toContain("Codename: bookworm");
      expect(verified.fingerprint).toMatch(/^[0-9A-F]{40}$/);
    },
  );
});

describe("the Release and the indices", () => {
  it("refuses a Packages.xz that is not the one the Release hashes", async () => {
    const dir = copyRepo();
    const xz = path.join(dir, "dists/stable/main/binary-amd64/Packages.xz");
    const other = readFileSync(path.join(dir, "dists/stable/main/binary-amd64/Packages"), "utf8").replace("Package: extra-a", "Package: evil-a");
    writeFileSync(xz, execFileSync("xz", ["-c"], { input: other }));
    const message = await failure(open(dist(fileUrl(dir), key.binaryKeyring), scratch()), "integrityFailed");
    expect(message).toMatch(/^main\/binary-amd64\/Packages\.xz of stable at file:\/\/.*: (SHA256|size) mismatch, expected/);
  });

  it("falls back from a missing .xz to .gz, and refuses an index missing altogether", async () => {
    const dir = copyRepo();
    execFileSync("rm", [path.join(dir, "dists/stable/main/binary-amd64/Packages.xz")]);
    const events: string[] = [];
    const repo = await open(dist(fileUrl(dir), key.binaryKeyring), scratch(), { onProgress: (e) => events.push(`${e.step}:${e.file}`) });
    expect(repo.packages).toHaveLength(MAIN.length);
    expect(events).toEqual(["release:InRelease", "index:main/binary-amd64/Packages.gz"]);
    const noArch = await failure(open(dist(fileUrl(dir), key.binaryKeyring, { components: ["non-free"] }), scratch()), "repositoryFailed");
    expect(noArch).toBe(`the Release of stable at ${fileUrl(dir)} lists no non-free/binary-amd64/Packages index (architectures: amd64; components: main contrib)`);
  });

  it("refuses a Release for another suite, and one past its Valid-Until", async () => {
    const dir = copyRepo();
    writeRelease(dir, "stable", { Suite: "oldstable", Codename: "kiln0" });
    expect(await failure(open(dist(fileUrl(dir), "none"), scratch()), "integrityFailed")).toBe(
      `the Release of stable at ${fileUrl(dir)} is for suite "oldstable" (codename "kiln0"), not "stable"`,
    );
    writeRelease(dir, "stable", { Codename: "kiln1", "Valid-Until": "Sat, 01 Jan 2000 00:00:00 UTC" });
    expect(await failure(open(dist(fileUrl(dir), "none"), scratch()), "integrityFailed")).toMatch(/expired on 2000-01-01T00:00:00\.000Z \(Valid-Until\)/);
    // The suite may also be named by its codename.
    writeRelease(dir, "stable", { Codename: "kiln1" });
    expect((await open(dist(fileUrl(dir), "none"), scratch())).release.suite).toBe("stable");
  });

  it("refuses an index whose Filename would leave the mirror", async () => {
    const dir = copyRepo();
    const binDir = path.join(dir, "dists/stable/main/binary-amd64");
    const text = readFileSync(path.join(binDir, "Packages"), "utf8").replace(/^Filename: pool\/main\/extra-a_1_amd64\.deb$/m, "Filename: pool/../../../etc/passwd");
    writeFileSync(path.join(binDir, "Packages"), text);
    execFileSync("rm", ["-f", path.join(binDir, "Packages.gz"), path.join(binDir, "Packages.xz")]);
    writeRelease(dir, "stable", { Codename: "kiln1" });
    expect(await failure(open(dist(fileUrl(dir), "none"), scratch()), "repositoryFailed")).toBe(
      `main/binary-amd64/Packages of stable at ${fileUrl(dir)}: package extra-a: refusing Filename "pool/../../../etc/passwd": it climbs out of the mirror with ..`,
    );
  });
});

describe("the HTTP cache", () => {
  it("revalidates the InRelease with If-None-Match / If-Modified-Since and reuses the cache on 304", async () => {
    const server = await serve(pristine);
    const s = scratch();
    const d = dist(server.url, key.binaryKeyring);
    const first = await open(d, s);
    clearIndexMemo();
    const events: string[] = [];
    const second = await open(d, s, { onProgress: (e) => events.push(`${e.step}:${e.file}:${e.fromCache}`) });
    const inRelease = server.requestsFor("/dists/stable/InRelease");
    expect(inRelease.map((r) => r.status)).toEqual([200, 304]);
    expect(inRelease[0]!.headers["if-none-match"]).toBeUndefined();
    expect(inRelease[1]!.headers["if-none-match"]).toMatch(/^".+"$/);
    expect(inRelease[1]!.headers["if-modified-since"]).toMatch(/GMT$/);
    // The index the Release still hashes the same is not asked for again.
    expect(server.requestsFor("/dists/stable/main/binary-amd64/Packages.xz")).toHaveLength(1);
    expect(events).toEqual(["release:InRelease:true", "index:main/binary-amd64/Packages.xz:true"]);
    expect(second.packages.map((p) => `${p.name} ${p.sha256}`)).toEqual(first.packages.map((p) => `${p.name} ${p.sha256}`));
    expect(second.release.signedBy).toBe(key.fingerprint);
  });

  it("downloads the new InRelease and index when the archive changes", async () => {
    const dir = copyRepo();
    const server = await serve(dir);
    const s = scratch();
    const d = dist(server.url, key.binaryKeyring);
    await open(d, s);
    // The archive gets a new package: new Packages, new Release, new signature.
    buildRepo(dir, { suite: "stable", codename: "kiln1", components: { main: [...MAIN, { name: "newcomer", version: "1" }], contrib: CONTRIB } });
    signRelease(dir, "stable", key);
    const repo = await open(d, s);
    expect(repo.packages.map((p) => p.name)).toContain("newcomer");
    expect(server.requestsFor("/dists/stable/InRelease").map((r) => r.status)).toEqual([200, 200]);
    expect(server.requestsFor("/dists/stable/main/binary-amd64/Packages.xz").map((r) => r.status)).toEqual([200, 200]);
  });

  it("fetches a cached InRelease again when the copy on disk no longer verifies", async () => {
    const server = await serve(pristine);
    const s = scratch();
    const d = dist(server.url, key.binaryKeyring);
    await open(d, s);
    // Damage the cached copy: the 304 then points at bytes that fail their signature.
    const { readdirSync } = await import("node:fs");
    const httpDir = path.join(s.cacheDir, "http");
    for (const f of readdirSync(httpDir).filter((f) => f.endsWith(".body"))) {
      const body = readFileSync(path.join(httpDir, f), "utf8");
      if (body.startsWith("-----BEGIN PGP SIGNED MESSAGE-----")) writeFileSync(path.join(httpDir, f), body.replace("Suite: stable", "Suite: st4ble"));
    }
    const repo = await open(d, s);
    expect(repo.release.suite).toBe("stable");
    expect(server.requestsFor("/dists/stable/InRelease").map((r) => r.status)).toEqual([200, 304, 200]);
  });

  it("sends a mirror URL's credentials as Basic auth and never shows them in messages", async () => {
    const server = await serve(pristine);
    server.requireAuthorization = `Basic ${Buffer.from("kiln:s3cret").toString("base64")}`;
    const withCreds = server.url.replace("http://", "http://kiln:s3cret@");
    const repo = await open(dist(withCreds, key.binaryKeyring), scratch());
    expect(repo.packages).toHaveLength(MAIN.length);
    const wrong = server.url.replace("http://", "http://kiln:wrong@");
    const message = await failure(open(dist(wrong, key.binaryKeyring), scratch()), "repositoryFailed");
    expect(message).toContain("HTTP 401");
    expect(message).not.toContain("wrong");
    expect(message).toContain(server.url);
  });

  it("follows a mirror's redirects, and sends its credentials to no other origin", async () => {
    const server = await serve(pristine);
    // A front that sends every request on to the mirror (another origin: another port).
    const seen: Array<string | undefined> = [];
    const front = createServer((req, res) => {
      seen.push(req.headers.authorization);
      res.writeHead(302, { location: new URL(req.url!, server.url).toString() }).end();
    });
    await new Promise<void>((resolve) => front.listen(0, "127.0.0.1", resolve));
    cleanups.push(() => new Promise<void>((resolve) => front.close(() => resolve())));
    const frontUrl = `http://kiln:s3cret@127.0.0.1:${(front.address() as AddressInfo).port}/`;
    const repo = await open(dist(frontUrl, key.binaryKeyring), scratch());
    expect(repo.packages).toHaveLength(MAIN.length);
    expect(seen.length).toBeGreaterThan(0);
    expect(seen.every((a) => a === `Basic ${Buffer.from("kiln:s3cret").toString("base64")}`)).toBe(true);
    expect(server.requestsFor("/dists/stable/InRelease").map((r) => [r.status, r.headers.authorization])).toEqual([[200, undefined]]);
  });

  it("retries a 503 and reports a mirror that stays down", async () => {
    const server = await serve(pristine);
    server.failNext.set("/dists/stable/InRelease", 1);
    const repo = await open(dist(server.url, key.binaryKeyring), scratch());
    expect(repo.packages).toHaveLength(MAIN.length);
    expect(server.requestsFor("/dists/stable/InRelease").map((r) => r.status)).toEqual([503, 200]);
    server.failNext.set("/dists/stable/InRelease", 10);
    const message = await failure(open(dist(server.url, key.binaryKeyring), scratch()), "repositoryFailed");
    expect(message).toBe(`${server.url}dists/stable/InRelease: HTTP 503 Service Unavailable`);
  });

  it("says so when nothing listens at the mirror's address", async () => {
    const server = await serve(pristine);
    const url = server.url;
    await server.close();
    const message = await failure(open(dist(url, key.binaryKeyring), scratch()), "repositoryFailed");
    expect(message).toBe(`cannot reach ${url}dists/stable/InRelease: connect ECONNREFUSED ${new URL(url).host}`);
  });
});

describe("fetchDebs", () => {
  it("downloads in parallel, up to the bound, into the blob store, verified", async () => {
    const server = await serve(pristine);
    server.debDelayMs = 150;
    const s = scratch();
    const repo = await open(dist(server.url, key.binaryKeyring), s);
    const progress: string[] = [];
    const digests = await repo.fetchDebs(repo.packages, { concurrency: 3, onProgress: (done, total, pkg) => progress.push(`${done}/${total} ${pkg.name}`) });
    expect(server.maxDebsInFlight).toBe(3);
    expect(server.debRequests()).toHaveLength(MAIN.length);
    expect(progress).toHaveLength(MAIN.length);
    expect(progress.map((p) => p.split(" ")[0])).toEqual(MAIN.map((_, i) => `${i + 1}/${MAIN.length}`));
    for (const pkg of repo.packages) {
      const digest = digests.get(pkg)!;
      expect(digest).toBe(`sha256:${pkg.sha256}`);
      // What a user would check: the stored file is the pool's file.
      const stored = execFileSync("sha256sum", [s.debs.path(digest)], { encoding: "utf8" }).split(" ")[0];
      expect(stored).toBe(execFileSync("sha256sum", [path.join(pristine, pkg.filename!)], { encoding: "utf8" }).split(" ")[0]);
    }
  });

  it("does not download a .deb already in the store, even for another repository object", async () => {
    const server = await serve(pristine);
    const s = scratch();
    const d = dist(server.url, key.binaryKeyring);
    const repo = await open(d, s);
    await repo.fetchDebs(repo.packages.slice(0, 2));
    expect(server.debRequests()).toHaveLength(2);
    const again = await open(d, { ...s, cacheDir: path.join(s.root, "other-cache") });
    const digests = await again.fetchDebs(again.packages);
    expect(digests.size).toBe(MAIN.length);
    expect(server.debRequests()).toHaveLength(MAIN.length);
    await again.fetchDebs(again.packages);
    expect(server.debRequests()).toHaveLength(MAIN.length);
  });

  it("refuses a .deb with the right size and wrong bytes, naming the package, and stores nothing", async () => {
    const dir = copyRepo();
    const server = await serve(dir);
    const s = scratch();
    const repo = await open(dist(server.url, key.binaryKeyring), s);
    const lib = repo.packages.find((p) => p.name === "libgreet")!;
    const file = path.join(dir, lib.filename!);
    const bytes = readFileSync(file);
    bytes[bytes.length - 100] ^= 0xff;
    writeFileSync(file, bytes);
    const message = await failure(repo.fetchDebs([lib]), "integrityFailed");
    expect(message).toBe(`package libgreet 1.2 (${lib.filename} from ${server.url}): digest mismatch: expected sha256:${lib.sha256}, got sha256:${execFileSync("sha256sum", [file], { encoding: "utf8" }).split(" ")[0]}`);
    expect(await s.debs.list()).toEqual([]);
  });

  it("refuses a .deb longer than the index says as soon as it overflows", async () => {
    const dir = copyRepo();
    const s = scratch();
    const repo = await open(dist(fileUrl(dir), key.binaryKeyring), s);
    const hello = repo.packages.find((p) => p.name === "hello")!;
    writeFileSync(path.join(dir, hello.filename!), Buffer.concat([readFileSync(path.join(dir, hello.filename!)), Buffer.alloc(10)]));
    const message = await failure(repo.fetchDebs([hello]), "integrityFailed");
    expect(message).toBe(`package hello 1.0 (${hello.filename} from ${fileUrl(dir)}): size mismatch, the download exceeds the ${hello.size} bytes of the index`);
  });

  it("retries a download cut short and a 503", async () => {
    const server = await serve(pristine);
    const repo = await open(dist(server.url, key.binaryKeyring), scratch());
    const [a, b] = repo.packages;
    server.cutNext.set(`/${a!.filename}`, 1);
    server.failNext.set(`/${b!.filename}`, 1);
    const digests = await repo.fetchDebs([a!, b!]);
    expect(digests.size).toBe(2);
    expect(server.requestsFor(`/${a!.filename}`)).toHaveLength(2);
    expect(server.requestsFor(`/${b!.filename}`).map((r) => r.status)).toEqual([503, 200]);
  });

  it("stops when cancelled and leaves no partial file", async () => {
    const server = await serve(pristine);
    server.debDelayMs = 300;
    const s = scratch();
    const repo = await open(dist(server.url, key.binaryKeyring), s);
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 100);
    const message = await failure(repo.fetchDebs(repo.packages, { signal: controller.signal, concurrency: 2 }), "cancelled");
    expect(message).toBe("the download was cancelled");
    expect(await s.debs.list()).toEqual([]);
  });

  it("refuses packages that no index describes", async () => {
    const repo = await open(dist(fileUrl(pristine), key.binaryKeyring), scratch());
    const local = packageFromParagraph(makeParagraph([["Package", "mine"], ["Version", "1"], ["Architecture", "amd64"]]));
    expect(await failure(repo.fetchDebs([local]), "repositoryFailed")).toBe(`package mine 1 (no Filename from ${fileUrl(pristine)}): it is not from a repository index (no Filename)`);
  });

  it("names the package whose file is missing on the mirror", async () => {
    const dir = copyRepo();
    const server = await serve(dir);
    const repo = await open(dist(server.url, key.binaryKeyring), scratch());
    const pkg = repo.packages.find((p) => p.name === "extra-b")!;
    execFileSync("rm", [path.join(dir, pkg.filename!)]);
    expect(await failure(repo.fetchDebs([pkg]), "repositoryFailed")).toBe(
      `package extra-b 1 (${pkg.filename} from ${server.url}): ${server.url}${pkg.filename} is not on the mirror (HTTP 404)`,
    );
    expect(poolFiles(dir)).not.toContain(path.basename(pkg.filename!));
  });
});
