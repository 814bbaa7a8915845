/**
 * Runs once before the suite: makes sure the local Debian mirrors the builder tests use exist.
 * They are built by tools/make-local-mirror.sh (apt-get download of bookworm's minbase packages
 * plus a few extras, for amd64 into .cache/mirror and for arm64 into .cache/mirror-bookworm-arm64;
 * trixie's minbase for amd64 into .cache/mirror-trixie) and reused by later runs; tests only ever
 * read them from disk or serve them on loopback.
 */
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";

export const ROOT = path.resolve(import.meta.dirname, "../..");
export const MIRROR_DIR = path.join(ROOT, ".cache/mirror");
/** bookworm for arm64: minbase and jq (arm64 images, their ld.so.cache, multi-architecture images). */
export const ARM64_MIRROR_DIR = path.join(ROOT, ".cache/mirror-bookworm-arm64");
export const ARM64_PACKAGES = ["jq", "libjq1", "libonig5"];
/** trixie (Debian 13) for amd64: the 78 packages of its minbase (tools/minbase-trixie.txt), ~32 MB. */
export const TRIXIE_MIRROR_DIR = path.join(ROOT, ".cache/mirror-trixie");
/**
 * Packages beyond minbase that tests install: jq (a real dependency chain outside minbase), and
 * the suite's small set of packages whose maintainer scripts exercise each fix-up family
 * ({@link SCRIPTED_PACKAGES}), with their dependency closures (make-local-mirror.sh resolves
 * nothing).
 */
export const EXTRA_PACKAGES = [
  ...["jq", "libjq1", "libonig5"],
  ...["ca-certificates", "libssl3", "openssl"],
  ...["iputils-ping", "libcap2-bin"],
  ...["cron", "cron-daemon-common", "sensible-utils", "uuid-runtime", "ssl-cert", "readline-common", "wget", "libpsl5"],
  ...["curl", "libcurl4", "libbrotli1", "libgssapi-krb5-2", "libk5crypto3", "libkeyutils1", "libkrb5-3", "libkrb5support0", "libldap-2.5-0", "libnghttp2-14", "librtmp1", "libsasl2-2", "libsasl2-modules-db", "libssh2-1"],
  ...["python3", "python3-minimal", "python3.11", "python3.11-minimal", "libpython3-stdlib", "libpython3.11-minimal", "libpython3.11-stdlib", "media-types", "libexpat1", "libncursesw6", "libnsl2", "libreadline8", "libsqlite3-0", "libtirpc-common", "libtirpc3"],
];

/**
 * The packages (on minbase) the fix-up tests install with Kiln and with mmdebstrap, whose real
 * maintainer scripts are the reference: CA certificates, file capabilities, system users and
 * groups, statoverrides, files and links scripts make, automatic marks.
 */
export const SCRIPTED_PACKAGES = ["ca-certificates", "iputils-ping", "libcap2-bin", "cron", "uuid-runtime", "ssl-cert", "readline-common", "python3", "curl", "wget"];

/** Whether a mirror made by make-local-mirror.sh holds every package named. */
function mirrorHolds(dir: string, suite: string, arch: string, names: readonly string[]): boolean {
  const index = path.join(dir, `dists/${suite}/main/binary-${arch}/Packages`);
  if (!existsSync(path.join(dir, `dists/${suite}/Release`)) || !existsSync(path.join(dir, "override")) || !existsSync(index)) return false;
  const text = readFileSync(index, "utf8");
  return names.every((p) => text.includes(`\nPackage: ${p}\n`) || text.startsWith(`Package: ${p}\n`));
}

/** The package names of a release's minbase (tools/minbase-<suite>.txt). */
export function minbaseList(suite: string): string[] {
  return readFileSync(path.join(ROOT, `tools/minbase-${suite}.txt`), "utf8").split("\n").filter(Boolean);
}

export default function setup(): void {
  const minbase = minbaseList("bookworm");
  const tool = path.join(ROOT, "tools/make-local-mirror.sh");
  if (!mirrorHolds(MIRROR_DIR, "bookworm", "amd64", EXTRA_PACKAGES)) execFileSync("bash", [tool, MIRROR_DIR, ...minbase, ...EXTRA_PACKAGES], { stdio: "inherit" });
  if (!mirrorHolds(ARM64_MIRROR_DIR, "bookworm", "arm64", [...minbase, ...ARM64_PACKAGES])) {
    execFileSync("bash", [tool, ARM64_MIRROR_DIR, ...minbase, ...ARM64_PACKAGES], { stdio: "inherit", env: { ...process.env, SUITE: "bookworm", ARCH: "arm64" } });
  }
  const trixie = minbaseList("trixie");
  if (!mirrorHolds(TRIXIE_MIRROR_DIR, "trixie", "amd64", trixie)) {
    execFileSync("bash", [tool, TRIXIE_MIRROR_DIR, ...trixie], { stdio: "inherit", env: { ...process.env, SUITE: "trixie", ARCH: "amd64" } });
  }
}
