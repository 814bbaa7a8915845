/**
 * `/etc/ld.so.cache`, as `ldconfig` (glibc 2.36, bookworm's libc-bin) would build it in the image.
 *
 * Replaces: libc-bin's postinst and its `ldconfig` trigger (activated by every shared-library
 * package), and debootstrap's own `ldconfig` run. The dynamic linker finds libraries in the
 * trusted directories without a cache, but not those of `/etc/ld.so.conf.d/*.conf` directories
 * (`/usr/local/lib`, a package's private directory), and every lookup costs a directory scan.
 *
 * The scan is ldconfig's: the directories of `/etc/ld.so.conf` (with `include` globs, `#`
 * comments, `dir=libc6` types, trailing slashes dropped, `hwcap` lines ignored) then the trusted
 * ones (`/lib/<triplet>`, `/usr/lib/<triplet>`, `/lib`, `/usr/lib`), each kept once per real
 * directory (the first name wins: `/lib/x86_64-linux-gnu` on merged /usr), missing ones skipped.
 * In each, names like `lib*.so*`, `ld-*.so*`, `ld.so.*`, `ld64.so.*` (not prelink temporaries)
 * that are regular files or links to them, ELF `ET_DYN` files for the machine, with a dynamic
 * section and string table. The soname is `DT_SONAME` or the file name; a link whose own name is
 * its target's soname, or a development link `libfoo.so` to a `libfoo.so.N` soname, is entered
 * under its own name. One entry per soname and directory; its path is `<dir>/<soname>`.
 * The machine rules are those of the image's architecture's ldconfig (each architecture's glibc
 * has its own `readelflib.c` and `ldconfig.h`):
 * - amd64: x86-64 objects get flags `0x0303` (libc6, x86-64), x32 `0x0803`, i386 ones are
 *   classified by interpreter and `DT_NEEDED` libc; other machines are skipped.
 * - arm64: every 64-bit object is `0x0a03` (libc6, AArch64: "AArch64 libraries are always
 *   libc.so.6+"); 32-bit ones are classified by interpreter and `DT_NEEDED` libc, then, for EABI
 *   version 5, by float ABI: hard `0x0903`, soft `0x0b03`, unmarked `0x0003`.
 *
 * Limits (documented, not guessed): amd64 and arm64 images only (other machines' flag rules are
 * not implemented: no cache is written and a warning says so); `glibc-hwcaps/` and legacy hwcap
 * subdirectories (`tls`, `haswell`, ...) are not indexed — the dynamic linker still searches them
 * itself; no `aux-cache` (an inode-keyed speed-up that means nothing in another filesystem).
 */
import type { Fixup, FixupContext, RootfsView } from "../types.js";
import { buildLdSoCache, FLAG_ELF_LIBC6, FLAG_X8664_LIB64, FLAG_X8664_LIBX32, libcmp, type LdCacheEntry } from "./ld-so-cache.js";
import { contentSource, EM_386, EM_X86_64, ET_DYN, readElf, type ElfInfo } from "./elf.js";
import type { FixupOptions } from "./options.js";
import { compareBytes, EntrySet, joinPath, parentOf, regularFile, treePath } from "./tree.js";

const FLAG_ANY = -1;
const FLAG_LIBC4 = 0x0000;
const FLAG_ELF = 0x0001;
const FLAG_ELF_LIBC5 = 0x0002;

const LIB_TYPES: Record<string, number> = { libc4: FLAG_LIBC4, libc5: FLAG_ELF_LIBC5, libc6: FLAG_ELF_LIBC6, glibc2: FLAG_ELF_LIBC6 };

/** `FLAG_ARM_LIBHF`, `FLAG_AARCH64_LIB64`, `FLAG_ARM_LIBSF` of glibc's ldconfig.h. */
const FLAG_ARM_LIBHF = 0x0900;
const FLAG_AARCH64_LIB64 = 0x0a00;
const FLAG_ARM_LIBSF = 0x0b00;
const EF_ARM_EABI_VER5 = 0x05000000;
const EF_ARM_ABI_FLOAT_SOFT = 0x200;
const EF_ARM_ABI_FLOAT_HARD = 0x400;

/** One architecture's ldconfig: its multiarch triplet and the rules of its `readelflib.c`. */
interface MachineRules {
  triplet: string;
  /** Names its ldconfig treats as legacy hwcap subdirectories. */
  hwcapDirs: ReadonlySet<string>;
  /** `SYSDEP_KNOWN_INTERPRETER_NAMES`: a 32-bit object with one of them is libc6. */
  interpreters: ReadonlySet<string>;
  /**
   * The flag of an ELF shared object before the generic rules: a number to use as is, `0` to
   * apply the generic rules (interpreter, `DT_NEEDED` libc), undefined to skip the file.
   */
  machineFlag(elf: ElfInfo): number | undefined;
  /** A flag that overrides the generic result (`0`: keep it). */
  afterGeneric?(elf: ElfInfo, flag: number): number;
}

/** `SYSDEP_KNOWN_LIBRARY_NAMES`: the same on every architecture Kiln knows. */
const KNOWN_LIBS = new Set(["libc.so.6", "libm.so.6"]);

const MACHINES: Record<string, MachineRules> = {
  amd64: {
    triplet: "x86_64-linux-gnu",
    hwcapDirs: new Set(["tls", "i586", "i686", "haswell", "xeon_phi", "x86_64", "sse2", "avx512_1"]),
    interpreters: new Set(["/lib/ld-linux-x86-64.so.2", "/lib/ld-linux.so.2", "/libx32/ld-linux-x32.so.2", "/lib64/ld-linux-x86-64.so.2"]),
    machineFlag: (elf) =>
      elf.machine === EM_X86_64 ? (elf.elfClass === 64 ? FLAG_X8664_LIB64 : FLAG_X8664_LIBX32) | FLAG_ELF_LIBC6 : elf.machine === EM_386 && elf.elfClass === 32 ? 0 : undefined,
  },
  arm64: {
    triplet: "aarch64-linux-gnu",
    hwcapDirs: new Set(["tls"]),
    interpreters: new Set(["/lib/ld-linux-aarch64.so.1", "/lib/ld-linux-aarch64_be.so.1", "/lib/ld-linux.so.3", "/lib/ld-linux-armhf.so.3"]),
    machineFlag: (elf) => (elf.elfClass === 64 ? FLAG_AARCH64_LIB64 | FLAG_ELF_LIBC6 : 0),
    afterGeneric: (elf) => {
      if ((elf.flags & 0xff000000) !== EF_ARM_EABI_VER5) return 0;
      if (elf.flags & EF_ARM_ABI_FLOAT_HARD) return FLAG_ARM_LIBHF | FLAG_ELF_LIBC6;
      if (elf.flags & EF_ARM_ABI_FLOAT_SOFT) return FLAG_ARM_LIBSF | FLAG_ELF_LIBC6;
      // Unmarked objects of the ABI's transition are taken as compatible with every variant.
      return FLAG_ELF_LIBC6;
    },
  },
};

/** A directory ldconfig scans: the name it was given and its type flag. */
export interface LdDir {
  path: string;
  flag: number;
}

/** glibc's `_dl_is_dso`: does the file name look like a shared object? */
export function isDsoName(name: string): boolean {
  return ((name.startsWith("lib") || name.startsWith("ld-")) && name.includes(".so")) || name.startsWith("ld.so.") || name.startsWith("ld64.so.");
}

function isPrelinkTemp(name: string): boolean {
  return name.endsWith(".#prelink#") || /\.#prelink#\.[^/]{6}$/.test(name);
}

/** glob(3) for one pattern segment: `*`, `?`, `[...]`; a leading dot is only matched explicitly. */
function segmentMatcher(segment: string): (name: string) => boolean {
  let re = "^";
  for (let i = 0; i < segment.length; i++) {
    const c = segment[i]!;
    if (c === "*") re += ".*";
    else if (c === "?") re += ".";
    else if (c === "[") {
      const end = segment.indexOf("]", i + 2);
      if (end < 0) re += "\\[";
      else {
        let body = segment.slice(i + 1, end);
        if (body.startsWith("!")) body = `^${body.slice(1)}`;
        re += `[${body.replace(/\\/g, "\\\\")}]`;
        i = end;
      }
    } else re += c.replace(/[.+^${}()|\\]/g, "\\$&");
  }
  const rx = new RegExp(`${re}$`, "s");
  return (name) => (name.startsWith(".") && !segment.startsWith(".") ? false : rx.test(name));
}

/** Absolute paths in the tree matching a glob pattern, sorted as glob(3) sorts them in the C locale. */
export function globPaths(fs: RootfsView, pattern: string): string[] {
  const segments = pattern.split("/").filter((s) => s !== "");
  let current = [""];
  for (const seg of segments) {
    const next: string[] = [];
    const magic = /[*?[]/.test(seg);
    for (const dir of current) {
      if (!magic) {
        const p = joinPath(dir, seg);
        if (fs.lstat(p) !== undefined || fs.stat(p) !== undefined) next.push(p);
        continue;
      }
      const match = segmentMatcher(seg);
      for (const name of fs.readdir(dir)) if (match(name)) next.push(joinPath(dir, name));
    }
    current = next;
  }
  return current.filter((p) => fs.stat(p) !== undefined).map((p) => `/${p}`).sort(compareBytes);
}

/** The directories of an ld.so.conf file and its includes, in order. */
export async function readLdSoConf(fs: RootfsView, file: string, out: LdDir[] = [], depth = 0): Promise<LdDir[]> {
  if (depth > 16) return out;
  let rel: string;
  try {
    rel = treePath(file);
  } catch {
    return out;
  }
  if (!regularFile(fs, rel)) return out;
  const text = (await fs.readFile(rel)).toString("utf8");
  for (const raw of text.split("\n")) {
    const line = raw.split("#")[0]!.replace(/^\s+/, "");
    if (line === "") continue;
    if (line.startsWith("include") && /^[ \t]$/.test(line[7] ?? "")) {
      for (const word of line.slice(8).split(/[ \t]/)) {
        if (word === "") continue;
        const pattern = word.startsWith("/") ? word : `${parentOf(file)}/${word}`;
        for (const inc of globPaths(fs, pattern)) await readLdSoConf(fs, inc, out, depth + 1);
      }
      continue;
    }
    if (/^hwcap[ \t]/i.test(line)) continue;
    let path = line;
    let flag = FLAG_ANY;
    const eq = path.indexOf("=");
    if (eq >= 0) {
      flag = LIB_TYPES[path.slice(eq + 1)] ?? FLAG_ANY;
      path = path.slice(0, eq);
    }
    path = path.replace(/\s+$/, "").replace(/\/+$/, "");
    if (path !== "") out.push({ path, flag });
  }
  return out;
}

/** The directories ldconfig scans, deduplicated by real directory (first name kept, last flag). */
export async function ldconfigDirs(fs: RootfsView, triplet: string): Promise<LdDir[]> {
  const listed = await readLdSoConf(fs, "/etc/ld.so.conf");
  for (const path of [`/lib/${triplet}`, `/usr/lib/${triplet}`, "/lib", "/usr/lib"]) listed.push({ path, flag: FLAG_ANY });
  const byReal = new Map<string, LdDir>();
  const out: LdDir[] = [];
  for (const d of listed) {
    let real: string | undefined;
    try {
      const rel = treePath(d.path);
      real = rel === "" ? "" : fs.realpath(rel);
    } catch {
      real = undefined;
    }
    if (real === undefined || (real !== "" && fs.stat(real)?.type !== "dir")) continue;
    const seen = byReal.get(real);
    if (seen) {
      seen.flag = d.flag;
      continue;
    }
    const entry = { path: d.path, flag: d.flag };
    byReal.set(real, entry);
    out.push(entry);
  }
  return out;
}

type Examined = { soname: string | undefined; flag: number } | undefined;

/**
 * ldconfig's classification of one file: its soname and flags, or undefined to skip it. Results
 * are remembered by real path: `libfoo.so.1 -> libfoo.so.1.2.3` costs one read, not two.
 */
async function examine(fs: RootfsView, path: string, machine: MachineRules, seen: Map<string, Promise<Examined>>): Promise<Examined> {
  const real = fs.realpath(path);
  if (real === undefined) return undefined;
  let result = seen.get(real);
  if (!result) {
    result = examineFile(fs, real, machine);
    seen.set(real, result);
  }
  return result;
}

async function examineFile(fs: RootfsView, path: string, machine: MachineRules): Promise<Examined> {
  const target = fs.stat(path);
  // ldconfig reads at least a full native ELF header (64 bytes on a 64-bit machine).
  if (!target || target.type !== "file" || !target.content || target.content.size < 64) return undefined;
  const src = contentSource(target.content);
  try {
    const elf = await readElf(src);
    if (!elf || elf.type !== ET_DYN) return undefined;
    const fileFlag = machine.machineFlag(elf);
    if (fileFlag === undefined) return undefined;
    if (!elf.dynamic || !elf.stringTable) return undefined;
    let flag = FLAG_ELF;
    if (elf.interpreter !== undefined && machine.interpreters.has(elf.interpreter)) flag = FLAG_ELF_LIBC6;
    let soname: string | undefined;
    for (const n of elf.names) {
      if (n.tag === "needed" && flag === FLAG_ELF && KNOWN_LIBS.has(n.value)) flag = FLAG_ELF_LIBC6;
      else if (n.tag === "soname") soname = n.value;
      if (soname !== undefined && flag !== FLAG_ELF) break;
    }
    if (fileFlag !== 0) return { soname, flag: fileFlag };
    return { soname, flag: machine.afterGeneric?.(elf, flag) || flag };
  } finally {
    src.close();
  }
}

interface DirLib {
  name: string;
  soname: string;
  flag: number;
  isLink: boolean;
}

/** ldconfig's `search_dir` for one directory: the cache entries it contributes. */
async function scanDirectory(fs: RootfsView, dir: LdDir, machine: MachineRules, warn: (m: string) => void, seen: Map<string, Promise<Examined>>): Promise<LdCacheEntry[]> {
  const real = fs.realpath(treePath(dir.path)) ?? treePath(dir.path);
  const dlibs: DirLib[] = [];
  for (const name of fs.readdir(real)) {
    const p = joinPath(real, name);
    const l = fs.lstat(p);
    if (!l || (l.type !== "file" && l.type !== "symlink" && l.type !== "dir")) continue;
    if (!isDsoName(name) && (l.type === "file" || !machine.hwcapDirs.has(name))) continue;
    if (isPrelinkTemp(name)) continue;
    let isLink = l.type === "symlink";
    const target = isLink ? fs.stat(p) : l;
    if (!target) continue;
    if (target.type === "dir") {
      if (machine.hwcapDirs.has(name)) warn(`ldconfig: hwcap subdirectory ${dir.path}/${name} is not indexed in ld.so.cache`);
      continue;
    }
    if (l.type !== "file" && !isLink) continue;
    const info = await examine(fs, p, machine, seen);
    if (!info) continue;
    let soname = info.soname ?? name;
    if (isLink && name !== soname && !(name.endsWith(".so") && soname.startsWith(name))) isLink = false;
    if (isLink) soname = name;
    let flag = info.flag;
    if (flag === FLAG_ELF && (dir.flag === FLAG_ELF_LIBC5 || dir.flag === FLAG_ELF_LIBC6)) flag = dir.flag;
    const same = dlibs.find((d) => d.soname === soname);
    if (same) {
      if ((!isLink && same.isLink) || (isLink === same.isLink && libcmp(same.name, name) < 0)) {
        if (same.flag !== flag) {
          if (same.flag === FLAG_ELF && (flag === FLAG_ELF_LIBC5 || flag === FLAG_ELF_LIBC6)) same.flag = flag;
          else if ((same.flag === FLAG_ELF_LIBC5 || same.flag === FLAG_ELF_LIBC6) && flag === FLAG_ELF) same.flag = flag;
        }
        same.name = name;
        same.isLink = isLink;
      }
      continue;
    }
    // ldconfig prepends to its list.
    dlibs.unshift({ name, soname, flag, isLink });
  }
  return dlibs.map((d) => ({ soname: d.soname, path: `${dir.path}/${d.soname}`, flags: d.flag }));
}

/** `ldconfig (Debian GLIBC 2.36-9+deb12u14) stable release version 2.36`, from libc-bin's version. */
export function generatorString(debianVersion: string): string {
  const noEpoch = debianVersion.replace(/^[0-9]+:/, "");
  const upstream = noEpoch.includes("-") ? noEpoch.slice(0, noEpoch.lastIndexOf("-")) : noEpoch;
  return `ldconfig (Debian GLIBC ${debianVersion}) stable release version ${upstream}`;
}

/** Builds the cache of a tree (undefined when the architecture is not supported). */
export async function buildTreeLdSoCache(fs: RootfsView, arch: string, glibcVersion: string, warn: (m: string) => void = () => {}): Promise<Buffer | undefined> {
  const machine = MACHINES[arch];
  if (!machine) return undefined;
  const entries: LdCacheEntry[] = [];
  const seen = new Map<string, Promise<Examined>>();
  for (const dir of await ldconfigDirs(fs, machine.triplet)) entries.push(...(await scanDirectory(fs, dir, machine, warn, seen)));
  return buildLdSoCache(entries, generatorString(glibcVersion));
}

/** The ld.so.cache fix-up. Runs after every fix-up that adds libraries or links. */
export function ldconfigFixup(options: FixupOptions = {}): Fixup {
  const warn = options.warn ?? (() => {});
  return {
    name: "ldconfig",
    replaces: "libc-bin postinst and ldconfig trigger (ldconfig)",
    async apply(ctx: FixupContext) {
      const set = new EntrySet(ctx.fs);
      const glibc = ctx.packages.find((p) => p.pkg.name === "libc-bin") ?? ctx.packages.find((p) => p.pkg.name === "libc6");
      if (!glibc) return set.result();
      const cache = await buildTreeLdSoCache(ctx.fs, ctx.arch, glibc.pkg.version, warn);
      if (!cache) {
        warn(`ldconfig: no ld.so.cache for architecture ${ctx.arch} (only amd64 and arm64 are implemented); the dynamic linker will search the trusted directories`);
        return set.result();
      }
      set.file("etc/ld.so.cache", cache);
      return set.result();
    },
  };
}
