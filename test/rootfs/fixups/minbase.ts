/**
 * Real inputs for the fix-up tests: the bookworm minbase packages of the local mirror extracted
 * with dpkg-deb into a directory (with the merged-/usr links Kiln's unpacker creates), their
 * `InstalledPackage` records, and a real `debootstrap --variant=minbase` of the same mirror to
 * compare against (built once and cached under .cache/, keyed by the mirror's Packages sha256).
 */
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { parseParagraph } from "../../../src/debian/control.js";
import type { BinaryPackage, MultiArch, Paragraph } from "../../../src/debian/types.js";
import type { InstalledPackage } from "../../../src/rootfs/types.js";
import { MIRROR_DIR, minbaseList, ROOT } from "../../helpers/global-setup.js";

/** The 88 package names of debootstrap's minbase for bookworm. */
export function minbaseNames(): string[] {
  return minbaseList("bookworm");
}

/** A control paragraph, read by Kiln's own deb822 parser (what the builder uses for `.deb` files). */
export function parseControl(text: string): Paragraph {
  return parseParagraph(text);
}

/** The BinaryPackage fields the fix-ups use, from a control paragraph (relations left empty). */
export function binaryPackage(p: Paragraph): BinaryPackage {
  const name = p.get("Package")!;
  return {
    name,
    version: p.get("Version")!,
    architecture: p.get("Architecture")!,
    multiArch: (p.get("Multi-Arch") ?? "no") as MultiArch,
    essential: p.get("Essential") === "yes",
    priority: p.get("Priority"),
    section: p.get("Section"),
    source: (p.get("Source") ?? name).split(" ")[0]!,
    installedSizeKiB: p.get("Installed-Size") ? Number(p.get("Installed-Size")) : undefined,
    preDepends: [],
    depends: [],
    recommends: [],
    provides: [],
    conflicts: [],
    breaks: [],
    replaces: [],
    filename: undefined,
    size: undefined,
    sha256: undefined,
    paragraph: p,
  };
}

/** The `.deb` of a package in the local mirror. */
export function debPath(name: string): string {
  const f = readdirSync(path.join(MIRROR_DIR, "pool")).find((x) => x.startsWith(`${name}_`));
  if (!f) throw new Error(`${name} is not in the local mirror`);
  return path.join(MIRROR_DIR, "pool", f);
}

/**
 * Extracts packages into `dir` in order (tar keeps the merged-/usr links, as Kiln's unpacker
 * stores `/bin/x` under `usr/bin/x`) and returns what dpkg would know about each.
 */
export function extractPackages(dir: string, names: readonly string[]): InstalledPackage[] {
  return extractDebs(dir, names.map(debPath));
}

/** Like {@link extractPackages}, for `.deb` files given by path. */
export function extractDebs(dir: string, debs: readonly string[]): InstalledPackage[] {
  for (const d of ["bin", "sbin", "lib", "lib64"]) {
    mkdirSync(path.join(dir, "usr", d), { recursive: true });
    if (!existsSync(path.join(dir, d))) execFileSync("ln", ["-s", `usr/${d}`, path.join(dir, d)]);
  }
  const ctlRoot = mkdtempSync(path.join(os.tmpdir(), "kiln-ctl-"));
  // One shell for all packages: extract with a verbose listing (archive order), and the control members.
  const script = `set -e
i=0
for deb in "$@"; do
  echo "@@@ $deb"
  dpkg-deb --fsys-tarfile "$deb" | tar -xv --keep-directory-symlink --quoting-style=literal -C "${dir}" -f -
  mkdir -p "${ctlRoot}/$i"; dpkg-deb -e "$deb" "${ctlRoot}/$i"; i=$((i+1))
done`;
  const out = execFileSync("bash", ["-c", script, "extract", ...debs], { maxBuffer: 256 << 20 }).toString("utf8");
  const lists = out.split("@@@ ").slice(1).map((chunk) => chunk.split("\n").slice(1).filter(Boolean));
  const result = debs.map((_, i) => {
    const ctl = path.join(ctlRoot, String(i));
    const controlFiles = new Map<string, Buffer>();
    for (const f of readdirSync(ctl)) if (f !== "control") controlFiles.set(f, readFileSync(path.join(ctl, f)));
    // The archive's Priority and Section, as dpkg records them (the mirror's override file).
    let text = readFileSync(path.join(ctl, "control"), "utf8");
    const name = /^Package: (\S+)$/m.exec(text)![1]!;
    const override = overrides().get(name);
    if (override) text = text.replace(/^Priority: .*$/m, `Priority: ${override[0]}`).replace(/^Section: .*$/m, `Section: ${override[1]}`);
    const paragraph = parseControl(text);
    const files = lists[i]!.map((n) => (n === "./" ? "/." : `/${n.replace(/^\.\//, "").replace(/\/$/, "")}`));
    return { pkg: binaryPackage(paragraph), controlFiles, files };
  });
  rmSync(ctlRoot, { recursive: true, force: true });
  return result;
}

function overrides(): Map<string, [string, string]> {
  const file = path.join(MIRROR_DIR, "override");
  if (!existsSync(file)) return new Map();
  return new Map(readFileSync(file, "utf8").split("\n").filter(Boolean).map((l) => { const [n, p, s] = l.split(" "); return [n!, [p!, s!]]; }));
}

interface StoredPackage {
  control: string;
  members: Record<string, string>;
  files: string[];
}

/**
 * A fresh temp dir holding the extracted minbase (88 packages) and their records. Extracting
 * means decompressing 88 xz archives (seconds of CPU), so the result is kept once per mirror
 * content under .cache/fixups-minbase/<key> (a zstd tar and the records) and reused.
 */
export function minbaseTree(): { root: string; packages: InstalledPackage[] } {
  const base = path.join(ROOT, ".cache/fixups-minbase", mirrorKey());
  const root = mkdtempSync(path.join(os.tmpdir(), "kiln-minbase-"));
  const records = path.join(base, "packages.json");
  withLock(base, () => existsSync(records), () => {
    const tmp = `${base}.tmp`;
    rmSync(tmp, { recursive: true, force: true });
    mkdirSync(tmp, { recursive: true });
    const scratch = mkdtempSync(path.join(os.tmpdir(), "kiln-minbase-build-"));
    try {
      const packages = extractPackages(scratch, minbaseNames());
      execFileSync("tar", ["--zstd", "--numeric-owner", "-C", scratch, "-cf", path.join(tmp, "tree.tar.zst"), "."]);
      const stored: StoredPackage[] = packages.map((p) => ({
        control: p.pkg.paragraph.fields.map(([k, v]) => `${k}: ${v.replace(/\n/g, "\n ")}\n`).join(""),
        members: Object.fromEntries([...p.controlFiles].map(([k, v]) => [k, v.toString("base64")])),
        files: p.files,
      }));
      writeFileSync(path.join(tmp, "packages.json"), JSON.stringify(stored));
      rmSync(base, { recursive: true, force: true });
      renameSync(tmp, base);
    } finally {
      rmSync(scratch, { recursive: true, force: true });
    }
  });
  execFileSync("tar", ["--zstd", "--numeric-owner", "-C", root, "-xf", path.join(base, "tree.tar.zst")]);
  const stored = JSON.parse(readFileSync(records, "utf8")) as StoredPackage[];
  const packages = stored.map((s) => ({
    pkg: binaryPackage(parseControl(s.control)),
    controlFiles: new Map(Object.entries(s.members).map(([k, v]) => [k, Buffer.from(v, "base64")])),
    files: s.files,
  }));
  return { root, packages };
}

/**
 * Runs `build` once across parallel test processes: the first to create `<base>.lock` builds,
 * the others wait until `done()` holds.
 */
function withLock(base: string, done: () => boolean, build: () => void): void {
  if (done()) return;
  mkdirSync(path.dirname(base), { recursive: true });
  const lock = `${base}.lock`;
  for (let waited = 0; ; waited++) {
    try {
      mkdirSync(lock);
      break;
    } catch {
      if (done()) return;
      // A lock older than 10 minutes belongs to a run that died.
      if (Date.now() - statSync(lock).mtimeMs > 600_000) rmSync(lock, { recursive: true, force: true });
      if (waited > 600) throw new Error(`timed out waiting for ${base}`);
      execFileSync("sleep", ["0.5"]);
    }
  }
  try {
    if (!done()) build();
  } finally {
    rmSync(lock, { recursive: true, force: true });
  }
}

function mirrorKey(): string {
  const packages = readFileSync(path.join(MIRROR_DIR, "dists/bookworm/main/binary-amd64/Packages"));
  return createHash("sha256").update(packages).digest("hex").slice(0, 16);
}

/**
 * A real debootstrap --variant=minbase of the local mirror, as a tar of the parts the fix-ups
 * are compared with (etc, var/lib/{dpkg,pam,shells.state}) plus a listing of the whole tree.
 * Built once per mirror content (~20 s) under .cache/debootstrap-minbase/<key>, with a lock so
 * that parallel test files do not build it twice.
 */
export function debootstrapReference(): { tar: string; listing: string } {
  const base = path.join(ROOT, ".cache/debootstrap-minbase", mirrorKey());
  const tarFile = path.join(base, "ref.tar");
  const listing = path.join(base, "listing.txt");
  withLock(base, () => existsSync(listing), () => {
    const target = mkdtempSync(path.join(os.tmpdir(), "kiln-debootstrap-"));
    try {
      execFileSync("debootstrap", ["--variant=minbase", "--no-check-gpg", "bookworm", target, `file://${MIRROR_DIR}`], { stdio: "ignore" });
      const tmp = `${base}.tmp`;
      rmSync(tmp, { recursive: true, force: true });
      mkdirSync(tmp, { recursive: true });
      execFileSync("tar", ["-C", target, "-cf", path.join(tmp, "ref.tar"), "etc", "var/lib/dpkg", "var/lib/pam", "var/lib/shells.state"]);
      const list = execFileSync("find", [".", "-path", "./proc", "-prune", "-o", "-path", "./sys", "-prune", "-o", "-path", "./dev", "-prune", "-o", "-printf", "%p %y %m %U:%G %l\\n"], { cwd: target, maxBuffer: 64 << 20 });
      writeFileSync(path.join(tmp, "listing.txt"), list);
      rmSync(base, { recursive: true, force: true });
      renameSync(tmp, base);
    } finally {
      unmountUnder(target);
      rmSync(target, { recursive: true, force: true });
    }
  });
  return { tar: tarFile, listing };
}

/** debootstrap mounts /proc (and more) in the target; never let rm recurse into a mount. */
function unmountUnder(dir: string): void {
  const mounts = readFileSync("/proc/mounts", "utf8").split("\n").map((l) => l.split(" ")[1] ?? "");
  for (const m of mounts.filter((x) => x === dir || x.startsWith(`${dir}/`)).sort().reverse()) {
    execFileSync("umount", ["-l", m]);
  }
}

/** Extracts the debootstrap reference into a fresh temp dir. */
export function debootstrapTree(): string {
  const { tar } = debootstrapReference();
  const dir = mkdtempSync(path.join(os.tmpdir(), "kiln-ref-"));
  execFileSync("tar", ["-C", dir, "-xf", tar]);
  return dir;
}
