/**
 * The two trees the fix-up families are compared on: the suite's {@link SCRIPTED_PACKAGES} on
 * minbase installed for real — `mmdebstrap --mode=root --variant=minbase --include=apt,<set>`
 * from the suite's mirror, which runs every maintainer script, trigger and apt's marks in a
 * chroot — and Kiln's image of the same packages, unpacked by a privileged `umoci unpack` (so
 * file capabilities land as xattrs). mmdebstrap rather than debootstrap + apt-get: its apt run
 * marks automatic packages the way apt does, which `apt-mark showauto` is compared on. The same
 * pair for another release's mirror ({@link TRIXIE}: its minbase alone, trixie.test.ts).
 *
 * Both are built once per mirror content (with a lock, so parallel test files wait for one
 * build) under .cache/, with the same SOURCE_DATE_EPOCH so that dates scripts write agree;
 * Kiln's once per mirror content and compiled code (dist/).
 */
import { execFile, execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { MIRROR_DIR, ROOT, SCRIPTED_PACKAGES, TRIXIE_MIRROR_DIR } from "./global-setup.js";
import { MirrorServer } from "./mirror-server.js";

/** The build clock of both trees: 2025-01-01T00:00:00Z. */
export const SCRIPTED_EPOCH = "1735689600";
const KILN = path.join(ROOT, "bin/kiln.js");

/** A local mirror of one Debian release (amd64) that tests build images from. */
export interface LocalRelease {
  /** The mirror's directory (tools/make-local-mirror.sh). */
  dir: string;
  suite: string;
  /** The distribution's version in Kiln's configuration ("12"). */
  version: string;
  /** Whether mmdebstrap needs its merged-usr hook (bookworm; trixie's base-files merges /usr itself). */
  mergedUsrHook: boolean;
}
export const BOOKWORM: LocalRelease = { dir: MIRROR_DIR, suite: "bookworm", version: "12", mergedUsrHook: true };
export const TRIXIE: LocalRelease = { dir: TRIXIE_MIRROR_DIR, suite: "trixie", version: "13", mergedUsrHook: false };

function mirrorKey(release: LocalRelease, packages: readonly string[]): string {
  const index = readFileSync(path.join(release.dir, `dists/${release.suite}/main/binary-amd64/Packages`));
  return createHash("sha256").update(index).update(packages.join(",")).digest("hex").slice(0, 16);
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

/** The mount points of this process's mount namespace (/proc/self/mountinfo), as paths. */
export function mountPoints(): string[] {
  return readFileSync("/proc/self/mountinfo", "utf8")
    .split("\n")
    .filter(Boolean)
    .map((l) => l.split(" ")[4]!.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8))));
}

/**
 * `mmdebstrap --mode=root --variant=minbase --include=apt,<packages>` of a local release into
 * `target`, in a private mount namespace: whatever it mounts in the chroot (/dev, /proc, /sys, a
 * tmpfs on dev/shm) goes away with the namespace even if it fails or is killed, and never reaches
 * the host's (a tmpfs left over the host's /dev/shm once broke PostgreSQL). Checked afterwards:
 * nothing is mounted under `target`.
 */
export async function mmdebstrap(release: LocalRelease, packages: readonly string[], target: string): Promise<void> {
  const mirror = await MirrorServer.start(release.dir);
  try {
    const hook = release.mergedUsrHook ? ["--hook-dir=/usr/share/mmdebstrap/hooks/merged-usr"] : [];
    await run(
      "unshare",
      ["-m", "--propagation", "private", "mmdebstrap", "--mode=root", "--variant=minbase", `--include=${["apt", ...packages].join(",")}`, ...hook, release.suite, target, `deb [trusted=yes] ${mirror.url} ${release.suite} main`],
      { SOURCE_DATE_EPOCH: SCRIPTED_EPOCH },
    );
  } finally {
    await mirror.close();
  }
  const left = mountPoints().filter((m) => m === target || m.startsWith(`${target}/`));
  if (left.length > 0) throw new Error(`mmdebstrap left ${left.length} mounts under its target: ${left.join(", ")}`);
}

/**
 * mmdebstrap's tree of minbase + `packages` from a local release, built once per mirror content
 * under .cache/<name>-reference and extracted into a fresh temp dir.
 */
export async function referenceTree(release = BOOKWORM, packages: readonly string[] = SCRIPTED_PACKAGES, name = "scripted"): Promise<string> {
  const base = await once(path.join(ROOT, `.cache/${name}-reference`, mirrorKey(release, packages)), async (tmp) => {
    const target = path.join(tmp, "tree");
    try {
      await mmdebstrap(release, packages, target);
      execFileSync("tar", ["--xattrs", "--xattrs-include=*", "--numeric-owner", "-C", target, "-cf", path.join(tmp, "tree.tar"), "."]);
    } finally {
      rmSync(target, { recursive: true, force: true });
    }
  });
  return extract(path.join(base, "tree.tar"), `kiln-ref-${name}-`);
}

/** Where Kiln's builds of these tests keep their caches (downloaded packages, layers). */
const KILN_DATA = path.join(ROOT, ".cache/scripted-kiln-data");

/**
 * Runs `kiln build` of minbase + `packages` (and `extra` arguments) against a local release's
 * mirror on loopback, with the shared build clock and cache.
 */
export async function kilnBuild(extra: string[], release = BOOKWORM, packages: readonly string[] = SCRIPTED_PACKAGES): Promise<string> {
  const mirror = await MirrorServer.start(release.dir);
  const cfgDir = mkdtempSync(path.join(os.tmpdir(), "kiln-scripted-cfg-"));
  try {
    const config = path.join(cfgDir, "kiln.yaml");
    writeFileSync(config, `distributions:\n  - {name: Debian, version: "${release.version}", arch: x86_64, mirror: "${mirror.url}", suite: ${release.suite}, components: [main], keyring: none}\n`);
    const selected = packages.length > 0 ? ["--packages", packages.join(",")] : [];
    return await run(process.execPath, [KILN, "build", "-q", "--config", config, "--os", `Debian ${release.version} x86_64`, ...selected, ...extra], {
      KILN_DATA_DIR: KILN_DATA,
      SOURCE_DATE_EPOCH: SCRIPTED_EPOCH,
    });
  } finally {
    await mirror.close();
    rmSync(cfgDir, { recursive: true, force: true });
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

/**
 * Kiln's image of minbase + `packages` from a local release (its OCI layout, report and SBOM),
 * built once per mirror content and code under .cache/<name>-kiln (older builds of the same
 * mirror and packages are removed), unpacked into a fresh temp dir.
 */
export async function kilnTree(release = BOOKWORM, packages: readonly string[] = SCRIPTED_PACKAGES, name = "scripted"): Promise<{ root: string; report: string; sbom: string; layout: string }> {
  const dir = path.join(ROOT, `.cache/${name}-kiln`);
  const key = mirrorKey(release, packages);
  const base = await once(path.join(dir, `${key}-${codeKey()}`), async (tmp) => {
    await kilnBuild(["--oci", path.join(tmp, "oci"), "--tag", name, "--report", path.join(tmp, "report.json"), "--sbom", path.join(tmp, "sbom.json")], release, packages);
    const rootfs = unpackImage(path.join(tmp, "oci"), name);
    execFileSync("tar", ["--xattrs", "--xattrs-include=*", "--numeric-owner", "-C", rootfs, "-cf", path.join(tmp, "tree.tar"), "."]);
    rmSync(path.dirname(path.dirname(rootfs)), { recursive: true, force: true });
  });
  for (const old of readdirSync(dir)) if (old.startsWith(`${key}-`) && !/\.(lock|tmp)$/.test(old) && path.join(dir, old) !== base) rmSync(path.join(dir, old), { recursive: true, force: true });
  return { root: extract(path.join(base, "tree.tar"), `kiln-kiln-${name}-`), report: path.join(base, "report.json"), sbom: path.join(base, "sbom.json"), layout: path.join(base, "oci") };
}
