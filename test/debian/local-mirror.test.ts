/**
 * Profiles and resolution on the local bookworm mirror (88 minbase packages + jq's chain), read
 * from disk (`file://`) and over HTTP from a static server on 127.0.0.1.
 */
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BlobStore } from "../../src/blobs/blob-store.js";
import { parseParagraphs } from "../../src/debian/control.js";
import { clearIndexMemo } from "../../src/debian/packages-index.js";
import { selectProfile } from "../../src/debian/profiles.js";
import { openRepository } from "../../src/debian/repository.js";
import { resolvePackages } from "../../src/debian/resolver.js";
import type { DistributionConfig } from "../../src/domain/distributions.js";
import { removeDir, tempDir } from "../fixtures/debs.js";
import { MIRROR_DIR, ROOT } from "../helpers/global-setup.js";
import { MirrorServer } from "../helpers/mirror-server.js";

const MINBASE = readFileSync(path.join(ROOT, "tools/minbase-bookworm.txt"), "utf8").split("\n").filter(Boolean).sort();
const INDEX = readFileSync(path.join(MIRROR_DIR, "dists/bookworm/main/binary-amd64/Packages"), "utf8");

let server: MirrorServer;
let data: string;

beforeAll(async () => {
  server = await MirrorServer.start(MIRROR_DIR);
  data = tempDir("kiln-local-mirror-");
});
afterAll(async () => {
  await server.close();
  removeDir(data);
});

function bookworm(mirror: string): DistributionConfig {
  return { name: "Debian", version: "12", arch: "x86_64", mirror, suite: "bookworm", components: ["main"], keyring: "none" };
}

/**
 * jq's closure computed straight from the index text, independently of the resolver: follow
 * Pre-Depends and Depends, taking in each group the first alternative the index has.
 */
function closureFromIndex(start: string): string[] {
  const stanzas = new Map<string, string>();
  for (const p of parseParagraphs(INDEX)) stanzas.set(p.get("Package")!, `${p.get("Pre-Depends") ?? ""},${p.get("Depends") ?? ""}`);
  const seen = new Set<string>();
  const todo = [start];
  while (todo.length > 0) {
    const name = todo.pop()!;
    if (seen.has(name)) continue;
    seen.add(name);
    for (const group of stanzas.get(name)!.split(",")) {
      const names = group.split("|").map((alt) => alt.trim().split(/[\s(:]/)[0]!).filter(Boolean);
      const found = names.find((n) => stanzas.has(n));
      if (names.length > 0) {
        expect(found, `${name}: ${group}`).toBeDefined();
        todo.push(found!);
      }
    }
  }
  return [...seen].sort();
}

describe.each([
  ["file://", () => `file://${MIRROR_DIR}/`],
  ["http://", () => server.url],
])("the local bookworm mirror over %s", (_, mirror) => {
  it("resolves profile minbase to exactly the 88 packages debootstrap --variant=minbase installs", async () => {
    clearIndexMemo();
    const repo = await openRepository(bookworm(mirror()), { cacheDir: path.join(data, "cache"), debs: BlobStore.open(path.join(data, "blobs")) });
    const names = selectProfile("minbase", repo.packages, repo.arch);
    expect(names).toContain("apt");
    expect(names).toContain("usr-is-merged");
    const resolved = resolvePackages(repo.packages, { names, arch: repo.arch });
    expect(resolved.map((p) => p.name).sort()).toEqual(MINBASE);
  });

  it("resolves jq with profile none to jq and what the index says it depends on", async () => {
    const repo = await openRepository(bookworm(mirror()), { cacheDir: path.join(data, "cache"), debs: BlobStore.open(path.join(data, "blobs")) });
    expect(selectProfile("none", repo.packages)).toEqual([]);
    const resolved = resolvePackages(repo.packages, { names: ["jq"], arch: repo.arch });
    const expected = closureFromIndex("jq");
    expect(expected).toEqual(expect.arrayContaining(["jq", "libjq1", "libonig5", "libc6"]));
    expect(resolved.map((p) => p.name).sort()).toEqual(expected);
    // Every versioned dependency holds, by dpkg's own comparison.
    for (const p of resolved) {
      for (const group of [...p.preDepends, ...p.depends]) {
        const rel = group.find((r) => resolved.some((q) => q.name === r.name))!;
        const dep = resolved.find((q) => q.name === rel.name)!;
        if (rel.op) execFileSync("dpkg", ["--compare-versions", dep.version, rel.op.replace("<<", "lt").replace(">>", "gt").replace("<=", "le").replace(">=", "ge").replace("=", "eq"), rel.version!]);
      }
    }
    expect(resolved[resolved.length - 1]!.name).toBe("jq");
  });
});

describe("fetching the minbase packages", () => {
  it("downloads the 88 .debs over HTTP once, verified, and a warm rebuild's repository work takes well under a second", async () => {
    const blobs = BlobStore.open(path.join(data, "fetch-blobs"));
    const cacheDir = path.join(data, "fetch-cache");
    const d = bookworm(server.url);
    const repo = await openRepository(d, { cacheDir, debs: blobs });
    const pkgs = resolvePackages(repo.packages, { names: selectProfile("minbase", repo.packages, repo.arch), arch: repo.arch });
    const before = server.debRequests().length;
    const digests = await repo.fetchDebs(pkgs, { concurrency: 4 });
    expect(server.debRequests().length - before).toBe(88);
    expect(new Set(digests.values()).size).toBe(88);
    for (const pkg of pkgs.slice(0, 5)) {
      const onDisk = execFileSync("sha256sum", [blobs.path(digests.get(pkg)!)], { encoding: "utf8" }).split(" ")[0];
      expect(`sha256:${onDisk}`).toBe(digests.get(pkg));
    }
    // The warm path a rebuild takes: revalidate the Release, resolve, find every .deb stored.
    // (How fast it is, is measured by bench/build-minbase.mjs: the warm rebuild.)
    const warm = await openRepository(d, { cacheDir, debs: blobs });
    const again = resolvePackages(warm.packages, { names: selectProfile("minbase", warm.packages, warm.arch), arch: warm.arch });
    const warmDigests = await warm.fetchDebs(again);
    expect(server.debRequests().length - before).toBe(88);
    expect([...warmDigests.values()].sort()).toEqual([...digests.values()].sort());
  });
});
