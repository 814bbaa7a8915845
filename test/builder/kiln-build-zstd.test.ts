/**
 * `kiln build --compression zstd`, as a user runs it (the compiled command) against the local
 * bookworm mirror: the OCI layout skopeo inspects has zstd layers holding the same tree as the
 * gzip build (Debian's umoci 0.4.7 reads gzip only, so skopeo converts the layout to gzip for
 * it), builds are byte-reproducible, and the layer cache never serves one compression's layers
 * to the other. Bad values and impossible combinations are usage errors (exit 2).
 */
import { execFileSync } from "node:child_process";
import { readdirSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { tempDir } from "../fixtures/debs.js";
import { MIRROR_DIR } from "../helpers/global-setup.js";
import { runKiln, type KilnRun } from "../helpers/kiln-process.js";
import { MirrorServer } from "../helpers/mirror-server.js";

const OS = "Debian 12 x86_64";
const ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd";
const GZIP = "application/vnd.oci.image.layer.v1.tar+gzip";
let work: string;
let mirror: MirrorServer;
let config: string;

/** Runs the command (without blocking this process: the mirror is served from here). */
function kiln(args: string[], env: Record<string, string> = {}): Promise<KilnRun> {
  return runKiln(args, { cwd: work, env: { KILN_DATA_DIR: path.join(work, "data"), SOURCE_DATE_EPOCH: "", ...env }, timeout: 300_000 });
}

/** `kiln build -q` of minbase into a fresh layout, expecting success: the digest and the counts. */
async function build(layout: string, args: string[], env: Record<string, string> = {}): Promise<{ digest: string; cached: number; written: number }> {
  rmSync(path.join(work, layout), { recursive: true, force: true });
  const r = await kiln(["build", "-q", "--config", config, "--os", OS, "--oci", path.join(work, layout), "--tag", "m", ...args], env);
  expect(r.status, `kiln build failed:\n${r.stderr}`).toBe(0);
  const m = /^(sha256:[0-9a-f]{64})\s+88 packages, \d+ layers \((\d+) cached, (\d+) written\)/m.exec(r.stdout);
  expect(m, r.stdout).not.toBeNull();
  return { digest: m![1]!, cached: Number(m![2]), written: Number(m![3]) };
}

interface Manifest {
  config: { digest: string };
  layers: Array<{ mediaType: string; digest: string }>;
}

function manifestOf(layout: string): Manifest {
  return JSON.parse(execFileSync("skopeo", ["inspect", "--raw", `oci:${path.join(work, layout)}:m`], { encoding: "utf8" })) as Manifest;
}

/** Every blob of a layout, name → bytes' sha256 (the file name is the digest; the content is checked too). */
function blobsOf(layout: string): string[] {
  const dir = path.join(work, layout, "blobs/sha256");
  return readdirSync(dir)
    .sort()
    .map((name) => {
      const sum = execFileSync("sha256sum", [path.join(dir, name)], { encoding: "utf8" }).split(" ")[0];
      expect(sum).toBe(name);
      return name;
    });
}

/** umoci's unpack of a layout, listed as one line per path: type, mode, owner, size, link target, content hash. */
function tree(layout: string): string[] {
  const bundle = path.join(work, `bundle-${layout}`);
  rmSync(bundle, { recursive: true, force: true });
  execFileSync("umoci", ["unpack", "--image", `${path.join(work, layout)}:m`, bundle], { stdio: "pipe" });
  const listing = execFileSync(
    "sh",
    ["-c", `cd '${bundle}/rootfs' && find . -printf '%y %m %u:%g %s %l %p\\n' | sort && find . -type f -print0 | sort -z | xargs -0 sha256sum`],
    { encoding: "utf8", maxBuffer: 64 << 20 },
  );
  rmSync(bundle, { recursive: true, force: true });
  return listing.split("\n");
}

beforeAll(async () => {
  work = tempDir("kiln-build-zstd-");
  mirror = await MirrorServer.start(MIRROR_DIR);
  config = path.join(work, "kiln.yaml");
  writeFileSync(config, `distributions:\n  - name: Debian\n    version: "12"\n    arch: x86_64\n    mirror: ${mirror.url}\n    suite: bookworm\n    components: [main]\n    keyring: none\n`);
});
afterAll(async () => {
  await mirror?.close();
  if (work) rmSync(work, { recursive: true, force: true });
});

describe("kiln build --compression zstd", () => {
  let gzip: { digest: string };
  let zstd: { digest: string };

  it("writes zstd layers that skopeo inspects, holding the same tree as the gzip build", async () => {
    gzip = await build("gzip", []);
    zstd = await build("zstd", ["--compression", "zstd"]);
    const gz = manifestOf("gzip");
    const zs = manifestOf("zstd");
    expect(gz.layers.every((l) => l.mediaType === GZIP)).toBe(true);
    expect(zs.layers.length).toBe(gz.layers.length);
    expect(zs.layers.map((l) => l.mediaType)).toEqual(zs.layers.map(() => ZSTD));
    // Same tars: the image config (its diff_ids) is the same blob; only the layer digests differ.
    expect(zs.config.digest).toBe(gz.config.digest);
    expect(zstd.digest).not.toBe(gzip.digest);
    const diffIds = (JSON.parse(execFileSync("skopeo", ["inspect", "--config", `oci:${path.join(work, "zstd")}:m`], { encoding: "utf8" })) as { rootfs: { diff_ids: string[] } }).rootfs.diff_ids;
    for (const [i, l] of zs.layers.entries()) {
      const sum = execFileSync("sh", ["-c", `zstd -dc '${path.join(work, "zstd/blobs/sha256", l.digest.slice(7))}' | sha256sum`], { encoding: "utf8" }).split(" ")[0];
      expect(`sha256:${sum}`).toBe(diffIds[i]);
    }
    // Debian's umoci reads gzip layers only: skopeo (which reads zstd) converts the layout for it.
    execFileSync("skopeo", ["copy", "--dest-compress-format", "gzip", `oci:${path.join(work, "zstd")}:m`, `oci:${path.join(work, "zstd-as-gzip")}:m`], { stdio: "pipe" });
    expect(manifestOf("zstd-as-gzip").layers.map((l) => l.mediaType)).toEqual(zs.layers.map(() => GZIP));
    const expected = tree("gzip");
    expect(expected.length).toBeGreaterThan(5000);
    expect(tree("zstd-as-gzip")).toEqual(expected);
  }, 300_000);

  it("is reproducible: --no-cache and a fresh data directory give the same blobs, byte for byte", async () => {
    const again = await build("zstd-again", ["--compression", "zstd", "--no-cache"], { KILN_DATA_DIR: path.join(work, "data-fresh") });
    expect(again.digest).toBe(zstd.digest);
    expect(again.cached).toBe(0);
    expect(blobsOf("zstd-again")).toEqual(blobsOf("zstd"));
  }, 180_000);

  it("never serves a zstd layer to a gzip build from the cache, nor a gzip layer to a zstd build", async () => {
    // A fresh cache: zstd first, then gzip, then each again.
    const data = { KILN_DATA_DIR: path.join(work, "data-cache") };
    const z1 = await build("c-z1", ["--compression", "zstd"], data);
    expect(z1.cached).toBe(0);
    const g1 = await build("c-g1", ["--compression", "gzip"], data);
    expect([g1.digest, g1.cached]).toEqual([gzip.digest, 0]);
    expect(manifestOf("c-g1").layers.every((l) => l.mediaType === GZIP)).toBe(true);
    const z2 = await build("c-z2", ["--compression", "zstd"], data);
    expect([z2.digest, z2.written]).toEqual([zstd.digest, 0]);
    const g2 = await build("c-g2", [], data);
    expect([g2.digest, g2.written]).toEqual([gzip.digest, 0]);
  }, 180_000);

  it("refuses a compression it does not know, and a docker-archive of zstd layers, as usage errors", async () => {
    const bad = await kiln(["build", "-q", "--config", config, "--os", OS, "--oci", path.join(work, "never"), "--compression", "lz4"]);
    expect(bad.status).toBe(2);
    expect(bad.stderr.split("\n")[0]).toBe("kiln: option '--compression <format>' argument 'lz4' is invalid. Allowed choices are gzip, zstd.");
    const archive = await kiln(["build", "-q", "--config", config, "--os", OS, "--docker-archive", path.join(work, "never.tar"), "--compression", "zstd"]);
    expect(archive.status).toBe(2);
    expect(archive.stderr.split("\n")[0]).toMatch(/^kiln: --compression zstd needs --oci DIR: a docker-archive is for docker load, which reads zstd layers only from Docker 23 on/);
    expect(readdirSync(work).filter((f) => f.startsWith("never"))).toEqual([]);
  }, 180_000);

  it("says what to install when the zstd program is missing, before downloading anything", async () => {
    const r = await kiln(["build", "-q", "--config", config, "--os", OS, "--oci", path.join(work, "never"), "--compression", "zstd"], { PATH: path.join(work, "empty-path"), KILN_DATA_DIR: path.join(work, "data-nozstd") });
    expect(r.status).toBe(1);
    expect(r.stderr.trim()).toBe("kiln: zstd layers need the zstd program, which is not installed (Debian package zstd)");
    expect(readdirSync(work).filter((f) => f.startsWith("never") || f === "data-nozstd")).toEqual([]);
  }, 180_000);
});
