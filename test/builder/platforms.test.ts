/**
 * Platforms beyond bookworm amd64, as a user builds them with the compiled command: an arm64
 * image made on this x86_64 machine (no emulation while building), checked with Debian's
 * `qemu-aarch64-static` — its own `ldconfig` is the oracle of `/etc/ld.so.cache`, and its `jq`
 * must run. The arm64 mirror is the suite's (bookworm minbase + jq, made by global setup).
 */
import { execFile, execFileSync } from "node:child_process";
import { copyFileSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { tempDir } from "../fixtures/debs.js";
import { ARM64_MIRROR_DIR, ROOT } from "../helpers/global-setup.js";

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
  writeFileSync(config, `distributions:\n  - {name: Debian, version: "12", arch: aarch64, mirror: "file://${ARM64_MIRROR_DIR}/", suite: bookworm, components: [main], keyring: none}\n`);
});
afterAll(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

describe("arm64 images", () => {
  it("minbase + jq: an ld.so.cache byte-equal to arm64 ldconfig's, and jq runs under qemu", async () => {
    const layout = path.join(work, "arm64");
    const r = await kiln(["build", "-q", "--config", config, "--os", "Debian 12 aarch64", "--packages", "jq", "--oci", layout, "--tag", "jq"]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).not.toMatch(/ld\.so\.cache/);
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
  });
});
