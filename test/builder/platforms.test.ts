/**
 * Platforms beyond bookworm amd64, as a user builds them with the compiled command: an arm64
 * image made on this x86_64 machine (no emulation while building), checked with Debian's
 * `qemu-aarch64-static` — its own `ldconfig` is the oracle of `/etc/ld.so.cache`, and its `jq`
 * must run. A multi-architecture image: an OCI image index that skopeo reads and picks each
 * platform from, each image complete (umoci unpacks it). The mirrors are the suite's (bookworm
 * amd64, and minbase + jq for arm64, made by global setup).
 */
import { execFile, execFileSync } from "node:child_process";
import { copyFileSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { tempDir } from "../fixtures/debs.js";
import { ARM64_MIRROR_DIR, MIRROR_DIR, ROOT } from "../helpers/global-setup.js";

const KILN = path.join(ROOT, "bin/kiln.js");
let work: string;
let config: string;

function kiln(args: string[]): Promise<{ status: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [KILN, ...args],
      { cwd: work, env: { ...process.env, KILN_DATA_DIR: path.join(work, "data"), SOURCE_DATE_EPOCH: "" }, encoding: "utf8", timeout: 240_000, maxBuffer: 16 << 20 },
      (err, stdout, stderr) => resolve({ status: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

/** Unpacks one image of an OCI layout with umoci; returns its rootfs. */
function unpack(layout: string, tag: string, platform?: string): string {
  const bundle = path.join(work, `bundle-${tag.replace(/\W/g, "_")}${platform ? `-${platform.replace(/\W/g, "_")}` : ""}`);
  rmSync(bundle, { recursive: true, force: true });
  execFileSync("umoci", ["unpack", "--image", `${layout}:${tag}`, ...(platform ? ["--platform", platform] : []), bundle], { stdio: "pipe" });
  return path.join(bundle, "rootfs");
}

/** Runs an arm64 program of the tree under qemu-user, the tree as its root for absolute paths. */
function arm64(rootfs: string, argv: string[], input?: string): string {
  return execFileSync("qemu-aarch64-static", ["-L", rootfs, path.join(rootfs, argv[0]!), ...argv.slice(1)], { encoding: "utf8", input, env: { PATH: "/usr/bin:/bin", LANG: "C" } });
}

beforeAll(() => {
  work = tempDir("kiln-platforms-");
  config = path.join(work, "kiln.yaml");
  writeFileSync(
    config,
    `distributions:\n  - {name: Debian, version: "12", arch: aarch64, mirror: "file://${ARM64_MIRROR_DIR}/", suite: bookworm, components: [main], keyring: none}\n` +
      `  - {name: Debian, version: "12", arch: x86_64, mirror: "file://${MIRROR_DIR}/", suite: bookworm, components: [main], keyring: none}\n`,
  );
});
afterAll(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

describe("arm64 images", () => {
  it("minbase + jq: an ld.so.cache byte-equal to arm64 ldconfig's, and jq runs under qemu", async () => {
    const layout = path.join(work, "arm64");
    const r = await kiln(["build", "-q", "--config", config, "--os", "Debian 12 aarch64", "--packages", "jq", "--oci", layout, "--tag", "jq"]);
    expect(r.status, r.stderr).toBe(0);
    // As complete as amd64's: no ld.so.cache warning, no script effect left unreproduced.
    expect(r.stderr).toBe("");
    const rootfs = unpack(layout, "jq");
    const ours = readFileSync(path.join(rootfs, "etc/ld.so.cache"));
    // The oracle: the image's own ldconfig (glibc's aarch64 rules), on the very tree, with -X (no links).
    arm64(rootfs, ["/sbin/ldconfig", "-r", rootfs, "-X", "-C", "/kiln-oracle.cache"]);
    expect(ours.equals(readFileSync(path.join(rootfs, "kiln-oracle.cache")))).toBe(true);
    // The dynamic linker reads it: libjq is found through the cache.
    copyFileSync(path.join(rootfs, "etc/ld.so.cache"), path.join(rootfs, "kiln-ours.cache"));
    expect(arm64(rootfs, ["/sbin/ldconfig", "-r", rootfs, "-p", "-C", "/kiln-ours.cache"])).toMatch(/\tlibjq\.so\.1 \(libc6,AArch64\) => \/lib\/aarch64-linux-gnu\/libjq\.so\.1\n/);
    expect(arm64(rootfs, ["/usr/bin/jq", "-c", ".a | map(. * 2)"], '{"a":[1,2,3]}')).toBe("[2,4,6]\n");
    expect(arm64(rootfs, ["/bin/sh", "-c", "echo hello $((6 * 7))"])).toBe("hello 42\n");
  }, 300_000);
});

describe("multi-architecture images", () => {
  it("--arch x86_64,aarch64 --oci: an image index of two complete images", async () => {
    const layout = path.join(work, "multi");
    const r = await kiln(["build", "-q", "--config", config, "--os", "Debian 12", "--arch", "x86_64,aarch64", "--packages", "jq", "--oci", layout, "--tag", "jq"]);
    expect(r.status, r.stderr).toBe(0);
    const raw = JSON.parse(execFileSync("skopeo", ["inspect", "--raw", `oci:${layout}:jq`], { encoding: "utf8" })) as { mediaType: string; manifests: Array<{ mediaType: string; digest: string; platform: Record<string, string> }> };
    expect(raw.mediaType).toBe("application/vnd.oci.image.index.v1+json");
    expect(raw.manifests.map((m) => [m.mediaType, m.platform])).toEqual([
      ["application/vnd.oci.image.manifest.v1+json", { architecture: "amd64", os: "linux" }],
      ["application/vnd.oci.image.manifest.v1+json", { architecture: "arm64", os: "linux", variant: "v8" }],
    ]);
    expect(r.stdout).toContain(`  arm64/v8 ${raw.manifests[1]!.digest}  91 packages`);
    // skopeo picks each platform out of the index (umoci 0.4 cannot choose in an index itself).
    for (const [arch, variant] of [["amd64", undefined], ["arm64", "v8"]] as const) {
      const one = path.join(work, `one-${arch}`);
      execFileSync("skopeo", ["copy", "-q", "--override-arch", arch, ...(variant ? ["--override-variant", variant] : []), `oci:${layout}:jq`, `oci:${one}:jq`], { stdio: "pipe" });
      const cfg = JSON.parse(execFileSync("skopeo", ["inspect", "--config", `oci:${one}:jq`], { encoding: "utf8" })) as { architecture: string; variant?: string };
      expect([cfg.architecture, cfg.variant]).toEqual([arch, variant]);
      const rootfs = unpack(one, "jq");
      const jq = arch === "arm64" ? arm64(rootfs, ["/usr/bin/jq", "-n", "1 + 1"]) : execFileSync("chroot", [rootfs, "/usr/bin/jq", "-n", "1 + 1"], { encoding: "utf8" });
      expect(jq).toBe("2\n");
      expect(readFileSync(path.join(rootfs, "var/lib/dpkg/status"), "utf8")).toContain(`Package: jq\nStatus: install ok installed\n`);
    }
  }, 300_000);

  it("a docker-archive of several architectures is refused, saying why", async () => {
    const r = await kiln(["build", "-q", "--config", config, "--os", "Debian 12", "--arch", "x86_64,aarch64", "--docker-archive", path.join(work, "x.tar")]);
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(/a docker-archive holds one architecture .*: build x86_64 and aarch64 with --oci DIR, or one --arch at a time/);
  });
});
