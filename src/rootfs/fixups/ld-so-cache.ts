/**
 * A writer of glibc's `/etc/ld.so.cache` in the "new" format only (`glibc-ld.so.cache1.1`), as
 * glibc 2.32+ `ldconfig` writes it by default — byte for byte what bookworm's 2.36 writes for the
 * same entries:
 *
 * ```
 * header (48 bytes)   magic "glibc-ld.so.cache" "1.1", nlibs u32, len_strings u32,
 *                     flags u8 (2 = little endian), 3 pad, extension_offset u32, 3 × u32 unused
 * entries (24 each)   flags i32, key u32, value u32, osversion u32 (0), hwcap u64
 * string table        every distinct string once, sorted by reversed bytes with suffixes
 *                     shared (tail merging: a soname is stored inside its path)
 * pad to 4
 * extensions          magic 0xeaa42174, count, sections {tag, flags, offset, size}; here the
 *                     one "generator" section (tag 0): "ldconfig (Debian GLIBC <v>) stable ..."
 * ```
 * `key`/`value` are offsets from the start of the file (the string table follows the entries).
 * Entries are sorted as ldconfig's `compare` does: by soname with `_dl_cache_libcmp` (digit runs
 * compared as numbers), highest first; then flags, highest first; ties keep insertion order.
 * Little-endian machines only (the header flag says so).
 */

/** `FLAG_ELF_LIBC6`: a glibc library. */
export const FLAG_ELF_LIBC6 = 0x0003;
/** `FLAG_X8664_LIB64`: x86-64. */
export const FLAG_X8664_LIB64 = 0x0300;
/** `FLAG_X8664_LIBX32`: x32. */
export const FLAG_X8664_LIBX32 = 0x0800;

/** One library in the cache. */
export interface LdCacheEntry {
  /** The name a program asks for (`libc.so.6`). */
  soname: string;
  /** Where it is (`/lib/x86_64-linux-gnu/libc.so.6`). */
  path: string;
  flags: number;
}

const MAGIC = "glibc-ld.so.cache1.1";
const HEADER_SIZE = 48;
const ENTRY_SIZE = 24;
const EXTENSION_MAGIC = 0xeaa42174;
/** ldconfig reserves room for all known extension sections (generator, glibc-hwcaps). */
const EXTENSION_DIRECTORY_SIZE = 8 + 2 * 16;
const SECTION_SIZE = 16;

/** Signed `char` value, as x86's C compares `*p1 - *p2`. */
function signedByte(b: number): number {
  return b > 127 ? b - 256 : b;
}

function isDigit(b: number | undefined): boolean {
  return b !== undefined && b >= 0x30 && b <= 0x39;
}

/** glibc's `_dl_cache_libcmp`: like strcmp, but runs of digits compare as numbers. */
export function libcmp(a: string, b: string): number {
  const p1 = Buffer.from(a, "utf8");
  const p2 = Buffer.from(b, "utf8");
  let i = 0;
  let j = 0;
  while (i < p1.length) {
    const c1 = p1[i]!;
    const c2 = p2[j];
    if (isDigit(c1)) {
      if (isDigit(c2)) {
        let v1 = 0;
        let v2 = 0;
        while (isDigit(p1[i])) v1 = v1 * 10 + p1[i++]! - 0x30;
        while (isDigit(p2[j])) v2 = v2 * 10 + p2[j++]! - 0x30;
        if (v1 !== v2) return v1 - v2;
      } else {
        return 1;
      }
    } else if (isDigit(c2)) {
      return -1;
    } else if (c2 === undefined || c1 !== c2) {
      return signedByte(c1) - signedByte(c2 ?? 0);
    } else {
      i++;
      j++;
    }
  }
  return 0 - signedByte(p2[j] ?? 0);
}

/** ldconfig's `compare` (without hwcaps): sonames descending, then flags descending. */
function compareEntries(e1: LdCacheEntry, e2: LdCacheEntry): number {
  const res = libcmp(e2.soname, e1.soname);
  if (res !== 0) return res;
  if (e1.flags < e2.flags) return 1;
  if (e1.flags > e2.flags) return -1;
  return 0;
}

/** The entries in cache order (a stable sort, like ldconfig's insertion into its sorted list). */
export function sortCacheEntries(entries: readonly LdCacheEntry[]): LdCacheEntry[] {
  return [...entries].sort(compareEntries);
}

/** glibc's string table: distinct strings, sorted on their reversed bytes, suffixes shared. */
export function buildStringTable(strings: Iterable<string>): { bytes: Buffer; offsets: Map<string, number> } {
  const unique = [...new Set(strings)].map((s) => ({ s, b: Buffer.from(s, "utf8"), offset: 0 }));
  if (unique.length === 0) return { bytes: Buffer.alloc(0), offsets: new Map() };
  unique.sort((l, r) => {
    const n = Math.min(l.b.length, r.b.length);
    for (let i = 1; i <= n; i++) {
      const lc = l.b[l.b.length - i]!;
      const rc = r.b[r.b.length - i]!;
      if (lc !== rc) return rc - lc;
    }
    return r.b.length - l.b.length;
  });
  for (let j = 1; j < unique.length; j++) {
    const prev = unique[j - 1]!;
    const cur = unique[j]!;
    const tailShared = prev.b.length >= cur.b.length && prev.b.subarray(prev.b.length - cur.b.length).equals(cur.b);
    cur.offset = tailShared ? prev.offset + prev.b.length - cur.b.length : prev.offset + prev.b.length + 1;
  }
  const last = unique[unique.length - 1]!;
  const bytes = Buffer.alloc(last.offset + last.b.length + 1);
  for (const u of unique) u.b.copy(bytes, u.offset);
  return { bytes, offsets: new Map(unique.map((u) => [u.s, u.offset])) };
}

/**
 * The cache file for these entries (sorted here), with `generator` as the generator extension
 * (`ldconfig (Debian GLIBC 2.36-9+deb12u14) stable release version 2.36`).
 */
export function buildLdSoCache(entries: readonly LdCacheEntry[], generator: string): Buffer {
  const sorted = sortCacheEntries(entries);
  const table = buildStringTable(sorted.flatMap((e) => [e.path, e.soname]));
  const stringsAt = HEADER_SIZE + sorted.length * ENTRY_SIZE;
  const extensionAt = Math.ceil((stringsAt + table.bytes.length) / 4) * 4;
  const gen = Buffer.from(generator, "utf8");
  const generatorAt = extensionAt + EXTENSION_DIRECTORY_SIZE - SECTION_SIZE;
  const out = Buffer.alloc(generatorAt + gen.length);
  out.write(MAGIC, 0, "latin1");
  out.writeUInt32LE(sorted.length, 20);
  out.writeUInt32LE(table.bytes.length, 24);
  out.writeUInt8(2, 28); // cache_file_new_flags_endian_little
  out.writeUInt32LE(extensionAt, 32);
  sorted.forEach((e, i) => {
    const o = HEADER_SIZE + i * ENTRY_SIZE;
    out.writeInt32LE(e.flags, o);
    out.writeUInt32LE(stringsAt + table.offsets.get(e.soname)!, o + 4);
    out.writeUInt32LE(stringsAt + table.offsets.get(e.path)!, o + 8);
    // osversion (o + 12) and hwcap (o + 16) stay 0.
  });
  table.bytes.copy(out, stringsAt);
  out.writeUInt32LE(EXTENSION_MAGIC, extensionAt);
  out.writeUInt32LE(1, extensionAt + 4);
  out.writeUInt32LE(0, extensionAt + 8); // tag: generator
  out.writeUInt32LE(0, extensionAt + 12); // flags
  out.writeUInt32LE(generatorAt, extensionAt + 16);
  out.writeUInt32LE(gen.length, extensionAt + 20);
  gen.copy(out, generatorAt);
  return out;
}
