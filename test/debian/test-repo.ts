/**
 * Debian repositories made in a test: `.deb` files from `dpkg-deb`, `Packages` from
 * `apt-ftparchive packages`, `Release` from `apt-ftparchive release`, signed by `gpg` with a key
 * generated in a throwaway GNUPGHOME — the same tools a real archive uses.
 */
import { execFileSync } from "node:child_process";
import { mkdirSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { buildDeb, tempDir, type DebSpec } from "../fixtures/debs.js";

export interface TestKey {
  home: string;
  fingerprint: string;
  /** `gpg --export`: a binary keyring like debian-archive-keyring.gpg. */
  binaryKeyring: string;
  /** `gpg --armor --export`: an `.asc` keyring. */
  armoredKeyring: string;
}

/** An ed25519 signing key in its own GNUPGHOME (fast to generate). */
export function makeKey(name: string): TestKey {
  const home = tempDir(`kiln-gpg-${name}-`);
  const gpg = (...args: string[]) => execFileSync("gpg", ["--homedir", home, "--batch", "--yes", "--quiet", ...args], { stdio: ["ignore", "pipe", "pipe"] });
  gpg("--passphrase", "", "--quick-gen-key", `Kiln ${name} <${name}@kiln.invalid>`, "ed25519", "sign", "never");
  const colons = gpg("--with-colons", "--list-keys").toString();
  const fingerprint = /^fpr:+([0-9A-F]{40}):/m.exec(colons)![1]!;
  const binaryKeyring = path.join(home, `${name}.gpg`);
  const armoredKeyring = path.join(home, `${name}.asc`);
  writeFileSync(binaryKeyring, gpg("--export"));
  writeFileSync(armoredKeyring, gpg("--armor", "--export"));
  return { home, fingerprint, binaryKeyring, armoredKeyring };
}

/** Stops the key's gpg-agent and removes its home. */
export function dropKey(key: TestKey): void {
  try {
    execFileSync("gpgconf", ["--homedir", key.home, "--kill", "gpg-agent"], { stdio: "ignore" });
  } catch {
    // No agent was started.
  }
  rmSync(key.home, { recursive: true, force: true });
}

export interface RepoOptions {
  suite?: string;
  codename?: string;
  components?: Record<string, DebSpec[]>;
  /** Extra Release fields (`Valid-Until`...). */
  releaseFields?: Record<string, string>;
}

/**
 * Lays a repository out under `dir`: `pool/<component>/*.deb`,
 * `dists/<suite>/<component>/binary-amd64/Packages{,.gz,.xz}` and an unsigned `Release`.
 */
export function buildRepo(dir: string, options: RepoOptions): void {
  const suite = options.suite ?? "stable";
  const components = options.components ?? {};
  const distDir = path.join(dir, "dists", suite);
  for (const [component, specs] of Object.entries(components)) {
    const pool = path.join(dir, "pool", component);
    mkdirSync(pool, { recursive: true });
    for (const spec of specs) buildDeb({ compression: "none", ...spec }, pool);
    const binDir = path.join(distDir, component, "binary-amd64");
    mkdirSync(binDir, { recursive: true });
    const packages = execFileSync("apt-ftparchive", ["packages", `pool/${component}`], { cwd: dir, stdio: ["ignore", "pipe", "ignore"] });
    writeFileSync(path.join(binDir, "Packages"), packages);
    execFileSync("gzip", ["-kf9n", "Packages"], { cwd: binDir });
    execFileSync("xz", ["-kf", "Packages"], { cwd: binDir });
  }
  writeRelease(dir, suite, { Codename: options.codename ?? suite, Components: Object.keys(components).join(" "), ...options.releaseFields });
}

/** (Re)writes `dists/<suite>/Release` over what is there now, with apt-ftparchive. */
export function writeRelease(dir: string, suite: string, fields: Record<string, string> = {}): void {
  const distDir = path.join(dir, "dists", suite);
  for (const f of ["Release", "InRelease", "Release.gpg"]) rmSync(path.join(distDir, f), { force: true });
  const all = Object.entries({ Origin: "Kiln", Suite: suite, Architectures: "amd64", ...fields });
  // apt-ftparchive writes these from options; anything else (Valid-Until) goes in after Date.
  const known = new Set(["Origin", "Label", "Suite", "Version", "Codename", "Architectures", "Components", "Description"]);
  const opts = all.filter(([k]) => known.has(k)).flatMap(([k, v]) => ["-o", `APT::FTPArchive::Release::${k}=${v}`]);
  const extra = all.filter(([k]) => !known.has(k)).map(([k, v]) => `${k}: ${v}\n`).join("");
  const release = execFileSync("apt-ftparchive", [...opts, "release", "."], { cwd: distDir, stdio: ["ignore", "pipe", "ignore"], encoding: "utf8" });
  writeFileSync(path.join(distDir, "Release"), release.replace(/^(Date: .*\n)/m, `$1${extra}`));
}

/** Signs `dists/<suite>/Release` as an archive does: `InRelease` (clearsigned) and/or `Release.gpg` (detached, armored). */
export function signRelease(dir: string, suite: string, key: TestKey, how: { inRelease?: boolean; releaseGpg?: boolean } = { inRelease: true, releaseGpg: true }): void {
  const distDir = path.join(dir, "dists", suite);
  const gpg = (...args: string[]) => execFileSync("gpg", ["--homedir", key.home, "--batch", "--yes", "--quiet", "--local-user", key.fingerprint, ...args], { cwd: distDir, stdio: "ignore" });
  if (how.inRelease) gpg("--clearsign", "--output", "InRelease", "Release");
  if (how.releaseGpg) gpg("--armor", "--detach-sign", "--output", "Release.gpg", "Release");
}

/** The `.deb` files of a component's pool. */
export function poolFiles(dir: string, component = "main"): string[] {
  return readdirSync(path.join(dir, "pool", component)).filter((f) => f.endsWith(".deb")).sort();
}
