/**
 * The two trees the fix-up families are compared on: the suite's {@link SCRIPTED_PACKAGES} on
 * minbase installed for real — `mmdebstrap --mode=root --variant=minbase --include=apt,<set>`
 * from the suite's mirror, which runs every maintainer script, trigger and apt's marks in a
 * chroot — and Kiln's image of the same packages, unpacked by a privileged `umoci unpack` (so
 * file capabilities land as xattrs). mmdebstrap rather than debootstrap + apt-get: its apt run
 * marks automatic packages the way apt does, which `apt-mark showauto` is compared on.
 *
 * Both are built once per mirror content (with a lock, so parallel test files wait for one
 * build) under .cache/, with the same SOURCE_DATE_EPOCH so that dates scripts write agree.
 */
import { execFile, execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { MIRROR_DIR, ROOT, SCRIPTED_PACKAGES } from "./global-setup.js";
import { MirrorServer } from "./mirror-server.js";

/** The build clock of both trees: 2025-01-01T00:00:00Z. */
export const SCRIPTED_EPOCH = "1735689600";
const KILN = path.join(ROOT, "bin/kiln.js");

function mirrorKey(): string {
  const packages = readFileSync(path.join(MIRROR_DIR, "dists/bookworm/main/binary-amd64/Packages"));
  return createHash("sha256").update(packages).update(SCRIPTED_PACKAGES.join(",")).digest("hex").slice(0, 16);
}

function run(cmd: string, args: string[], env: Record<string, string> = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { env: { ...process.env, ...env }, maxBuffer: 64 << 20, timeout: 900_000 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${cmd} failed: ${String(stderr).slice(-3000)}`, { cause: err }));
      else resolve(stdout);
    });
  });
}

/** Builds `<base>` once (a directory), waiting for another process that is already building it. */
async function once(base: string, build: (tmp: string) => Promise<void>): Promise<string> {
  const done = (): boolean => existsSync(path.join(base, "done"));
  if (done()) return base;
  mkdirSync(path.dirname(base), { recursive: true });
  const lock = `${base}.lock`;
  for (let waited = 0; ; waited++) {
    try {
      mkdirSync(lock);
      break;
    } catch {
      if (done()) return base;
      if (Date.now() - statSync(lock).mtimeMs > 1_200_000) rmSync(lock, { recursive: true, force: true });
      if (waited > 2400) throw new Error(`timed out waiting for ${base}`);
      await new Promise((r) => setTimeout(r, 500));
    }
  }
  try {
    if (!done()) {
      const tmp = `${base}.tmp`;
      rmSync(tmp, { recursive: true, force: true });
      mkdirSync(tmp, { recursive: true });
      await build(tmp);
      writeFileSync(path.join(tmp, "done"), "");
      rmSync(base, { recursive: true, force: true });
      renameSync(tmp, base);
    }
  } finally {
    rmSync(lock, { recursive: true, force: true });
  }
  return base;
}

/** Extracts a stored tree into a fresh temp dir (numeric owners, xattrs kept). */
function extract(tar: string, prefix: string): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), prefix));
  execFileSync("tar", ["--xattrs", "--xattrs-include=*", "--numeric-owner", "-C", dir, "-xf", tar]);
  return dir;
}

/** mmdebstrap's tree of minbase + the scripted packages, extracted into a fresh temp dir. */
export async function referenceTree(): Promise<string> {
  const base = await once(path.join(ROOT, ".cache/scripted-reference", mirrorKey()), async (tmp) => {
    const mirror = await MirrorServer.start(MIRROR_DIR);
    const target = path.join(tmp, "tree");
    try {
      await run(
        "mmdebstrap",
        ["--mode=root", "--variant=minbase", `--include=${["apt", ...SCRIPTED_PACKAGES].join(",")}`, "--hook-dir=/usr/share/mmdebstrap/hooks/merged-usr", "bookworm", target, `deb [trusted=yes] ${mirror.url} bookworm main`],
        { SOURCE_DATE_EPOCH: SCRIPTED_EPOCH },
      );
      execFileSync("tar", ["--xattrs", "--xattrs-include=*", "--numeric-owner", "-C", target, "-cf", path.join(tmp, "tree.tar"), "."]);
    } finally {
      await mirror.close();
      rmSync(target, { recursive: true, force: true });
    }
  });
  return extract(path.join(base, "tree.tar"), "kiln-ref-scripted-");
}

/** Where Kiln's builds of these tests keep their caches (downloaded packages, layers). */
const KILN_DATA = path.join(ROOT, ".cache/scripted-kiln-data");

/**
 * Runs `kiln build` of minbase + the scripted packages (and `extra` arguments) against the
 * suite's mirror on loopback, with the shared build clock and cache.
 */
export async function kilnBuild(extra: string[]): Promise<string> {
  const mirror = await MirrorServer.start(MIRROR_DIR);
  try {
    const config = path.join(mkdtempSync(path.join(os.tmpdir(), "kiln-scripted-cfg-")), "kiln.yaml");
    writeFileSync(config, `distributions:\n  - {name: Debian, version: "12", arch: x86_64, mirror: "${mirror.url}", suite: bookworm, components: [main], keyring: none}\n`);
    return await run(process.execPath, [KILN, "build", "-q", "--config", config, "--os", "Debian 12 x86_64", "--packages", SCRIPTED_PACKAGES.join(","), ...extra], {
      KILN_DATA_DIR: KILN_DATA,
      SOURCE_DATE_EPOCH: SCRIPTED_EPOCH,
    });
  } finally {
    await mirror.close();
  }
}

/** Unpacks an OCI layout's tag with a privileged umoci (xattrs kept) into a fresh temp dir; returns the rootfs. */
export function unpackImage(layout: string, tag: string): string {
  const bundle = path.join(mkdtempSync(path.join(os.tmpdir(), "kiln-umoci-")), "bundle");
  execFileSync("umoci", ["unpack", "--image", `${layout}:${tag}`, bundle], { stdio: "pipe" });
  return path.join(bundle, "rootfs");
}

/** A fingerprint of the compiled Kiln (dist/): a cached image is Kiln's output only for the code that made it. */
function codeKey(): string {
  const h = createHash("sha256");
  const walk = (dir: string): void => {
    for (const name of readdirSync(dir).sort()) {
      const p = path.join(dir, name);
      if (statSync(p).isDirectory()) walk(p);
      else if (name.endsWith(".js")) h.update(name).update(readFileSync(p));
    }
  };
  walk(path.join(ROOT, "dist"));
  return h.digest("hex").slice(0, 16);
}

/** Kiln's image of the same packages (its OCI layout, report and SBOM), unpacked into a fresh temp dir. */
export async function kilnTree(): Promise<{ root: string; report: string; sbom: string; layout: string }> {
  const base = await once(path.join(ROOT, ".cache/scripted-kiln", `${mirrorKey()}-${codeKey()}`), async (tmp) => {
    await kilnBuild(["--oci", path.join(tmp, "oci"), "--tag", "scripted", "--report", path.join(tmp, "report.json"), "--sbom", path.join(tmp, "sbom.json")]);
    const rootfs = unpackImage(path.join(tmp, "oci"), "scripted");
    execFileSync("tar", ["--xattrs", "--xattrs-include=*", "--numeric-owner", "-C", rootfs, "-cf", path.join(tmp, "tree.tar"), "."]);
    rmSync(path.dirname(path.dirname(rootfs)), { recursive: true, force: true });
  });
  return { root: extract(path.join(base, "tree.tar"), "kiln-kiln-scripted-"), report: path.join(base, "report.json"), sbom: path.join(base, "sbom.json"), layout: path.join(base, "oci") };
}
