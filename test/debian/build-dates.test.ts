/**
 * Packages' build dates from their .deb headers (src/debian/build-dates.ts): real .debs made by
 * dpkg-deb with known SOURCE_DATE_EPOCHs, a repository served on 127.0.0.1 by a static server
 * that answers `Range` with 206 (or, told to, ignores it), and the package cache; then the
 * suite's local mirror served over HTTP to a Kiln server.
 */
import { execFileSync } from "node:child_process";
import { readFileSync, rmSync } from "node:fs";
import path from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { BlobStore } from "../../src/blobs/blob-store.js";
import { clearIndexMemo } from "../../src/debian/packages-index.js";
import { openRepository, type Repository } from "../../src/debian/repository.js";
import { removeDir, tempDir, type DebSpec } from "../fixtures/debs.js";
import { decode } from "../../src/wire/index.js";
import { kilnYaml, startTestServer } from "../helpers/api.js";
import { MIRROR_DIR } from "../helpers/global-setup.js";
import { MirrorServer } from "../helpers/mirror-server.js";
import { buildRepo } from "./test-repo.js";

// Whole minutes, so that `ar tv` (minute resolution) shows them exactly.
const DEBS: DebSpec[] = [
  { name: "alpha", version: "1.0-1", sourceDateEpoch: 1_600_000_020 },
  { name: "beta", version: "2.0-3", sourceDateEpoch: 1_650_000_000 },
  { name: "gamma", version: "3", sourceDateEpoch: 1_700_000_040 },
];

let dir: string;
const cleanups: Array<() => void | Promise<void>> = [];

beforeAll(() => {
  dir = tempDir("kiln-dates-repo-");
  buildRepo(dir, { suite: "stable", components: { main: DEBS } });
});
afterAll(() => removeDir(dir));
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
  clearIndexMemo();
});

async function setUp(): Promise<{ server: MirrorServer; repo: Repository; debs: BlobStore }> {
  const server = await MirrorServer.start(dir);
  cleanups.push(() => server.close());
  const root = tempDir("kiln-dates-data-");
  cleanups.push(() => removeDir(root));
  const debs = BlobStore.open(path.join(root, "blobs"));
  const repo = await openRepository(
    { name: "Debian", version: "12", arch: "x86_64", mirror: server.url, suite: "stable", components: ["main"], keyring: "none" },
    { cacheDir: path.join(root, "cache"), debs },
  );
  return { server, repo, debs };
}

/** The date `ar tv` shows for the .deb's debian-binary member, read by binutils, in UTC. */
function arDate(file: string): Date {
  const line = execFileSync("ar", ["tv", file], { encoding: "utf8", env: { ...process.env, TZ: "UTC", LC_ALL: "C" } }).split("\n")[0]!;
  const m = / (\w{3}) +(\d+) (\d\d):(\d\d) (\d{4}) debian-binary$/.exec(line);
  expect(m, line).not.toBeNull();
  return new Date(`${m![2]} ${m![1]} ${m![5]} ${m![3]}:${m![4]}:00 UTC`);
}

describe("build dates", () => {
  it("reads each date with one 68-byte range request, equal to dpkg-deb's ar mtime, and asks once", async () => {
    const { server, repo } = await setUp();
    await repo.buildDates.learn(repo.packages, { limit: 100 });
    for (const p of repo.packages) {
      const spec = DEBS.find((s) => s.name === p.name)!;
      expect(repo.buildDates.known(p)).toEqual(new Date(spec.sourceDateEpoch! * 1000));
      expect(repo.buildDates.known(p)).toEqual(arDate(path.join(dir, p.filename!)));
    }
    const asked = server.debRequests();
    expect(asked).toHaveLength(DEBS.length);
    for (const r of asked) expect([r.headers.range, r.status]).toEqual(["bytes=0-67", 206]);
    // Known now: a second list asks nothing.
    await repo.buildDates.learn(repo.packages, { limit: 100 });
    expect(server.debRequests()).toHaveLength(DEBS.length);
  });

  it("looks up at most `limit` dates per call, and none after the signal", async () => {
    const { server, repo } = await setUp();
    await repo.buildDates.learn(repo.packages, { limit: 2 });
    expect(repo.packages.filter((p) => repo.buildDates.known(p) !== undefined)).toHaveLength(2);
    const stop = new AbortController();
    stop.abort();
    await repo.buildDates.learn(repo.packages, { limit: 100, signal: stop.signal });
    expect(server.debRequests()).toHaveLength(2);
  });

  it("reads a .deb already in the package cache without asking the mirror", async () => {
    const { server, repo } = await setUp();
    const beta = repo.packages.find((p) => p.name === "beta")!;
    await repo.fetchDebs([beta]);
    const before = server.debRequests().length;
    await repo.buildDates.learn([beta], { limit: 10 });
    expect(server.debRequests()).toHaveLength(before);
    expect(repo.buildDates.known(beta)).toEqual(new Date(DEBS[1]!.sourceDateEpoch! * 1000));
  });

  it("takes the head of a whole answer from a server that ignores Range", async () => {
    const { server, repo } = await setUp();
    server.honourRange = false;
    await repo.buildDates.learn(repo.packages, { limit: 100 });
    expect(server.debRequests().map((r) => r.status)).toEqual(DEBS.map(() => 200));
    for (const p of repo.packages) expect(repo.buildDates.known(p)).toEqual(arDate(path.join(dir, p.filename!)));
  });

  it("leaves a date it cannot read unknown, without failing, and tries it again later", async () => {
    const { server, repo } = await setUp();
    const gamma = repo.packages.find((p) => p.name === "gamma")!;
    server.failNext.set(`/${gamma.filename!}`, 3);
    await repo.buildDates.learn(repo.packages, { limit: 100 });
    expect(repo.buildDates.known(gamma)).toBeUndefined();
    expect(repo.packages.filter((p) => repo.buildDates.known(p) !== undefined)).toHaveLength(DEBS.length - 1);
    await repo.buildDates.learn(repo.packages, { limit: 100 });
    expect(repo.buildDates.known(gamma)).toEqual(new Date(DEBS[2]!.sourceDateEpoch! * 1000));
  });

  it("leaves the date of a .deb missing from the mirror unknown", async () => {
    const { repo } = await setUp();
    const copy = tempDir("kiln-dates-missing-");
    cleanups.push(() => removeDir(copy));
    const alpha = repo.packages.find((p) => p.name === "alpha")!;
    // The mirror loses the file after its index was read.
    execFileSync("cp", ["-a", path.join(dir, alpha.filename!), copy]);
    rmSync(path.join(dir, alpha.filename!));
    cleanups.push(() => {
      execFileSync("cp", ["-a", path.join(copy, path.basename(alpha.filename!)), path.join(dir, alpha.filename!)]);
    });
    await repo.buildDates.learn([alpha], { limit: 10 });
    expect(repo.buildDates.known(alpha)).toBeUndefined();
  });
});

describe("through the API, from an HTTP mirror", () => {
  it("a package list carries every pkgBuildDate (valid XML), asking each .deb's 68 bytes once", async () => {
    const mirror = await MirrorServer.start(MIRROR_DIR);
    cleanups.push(() => mirror.close());
    const server = await startTestServer({ yaml: kilnYaml(mirror.url) });
    cleanups.push(() => server.close());
    await server.createUser("dates");
    const list = async () => {
      // XML: the test server checks the answer against uforge.xsd (pkgBuildDate is an xs:dateTime).
      const res = await server.request({ method: "GET", url: `/api/distributions/1/pkgs?query=${encodeURIComponent("name==libc*")}`, user: "dates" });
      expect(res.statusCode, res.body).toBe(200);
      return decode("packages", res.body, "xml").value.pkgs ?? [];
    };
    const pkgs = await list();
    expect(pkgs.length).toBeGreaterThan(1);
    for (const p of pkgs) {
      const head = readFileSync(path.join(MIRROR_DIR, "pool", p.fullName!)).subarray(0, 68);
      expect(p.pkgBuildDate?.getTime(), p.name).toBe(Number(head.toString("latin1", 24, 36).trim()) * 1000);
    }
    const asked = mirror.debRequests();
    expect(asked.map((r) => [r.headers.range, r.status])).toEqual(pkgs.map(() => ["bytes=0-67", 206]));
    expect(await list()).toEqual(pkgs);
    expect(mirror.debRequests()).toHaveLength(asked.length);
  });
});
