/**
 * A reader for the few things ldconfig needs from an ELF file: class, byte order, type,
 * machine, the program interpreter, and the `DT_NEEDED`/`DT_SONAME` strings of the dynamic
 * section. It reads only those byte ranges — the header, the program headers, the interpreter
 * string, the dynamic section and the dynamic string table — through a {@link ByteSource}, so a
 * 2 MiB libc costs a few KiB of memory, not 2 MiB.
 *
 * Addresses are mapped to file offsets as glibc 2.36's readelflib.c does: `DT_STRTAB` is a
 * virtual address, translated through the `PT_LOAD` segment whose file image contains it.
 * Truncated or inconsistent files give `undefined` (ldconfig skips them with a warning).
 */
import type { Readable } from "node:stream";
import type { ContentRef } from "../types.js";

/** Random reads over a file's bytes. */
export interface ByteSource {
  readonly size: number;
  /** Exactly `length` bytes from `offset` (fewer only at the end of the file). */
  read(offset: number, length: number): Promise<Buffer>;
  /** Releases what the source holds open. Safe to call twice. */
  close(): void;
}

/** A ByteSource over bytes already in memory. */
export function bufferSource(buf: Buffer): ByteSource {
  return {
    size: buf.length,
    read: async (offset, length) => buf.subarray(offset, Math.min(buf.length, offset + length)),
    close: () => {},
  };
}

/**
 * How much of a file's beginning a {@link contentSource} keeps while streaming past it. ELF reads
 * go forward except for the dynamic string table, which lies in the first segment, before the
 * dynamic section (libc's is at 106 KiB, libstdc++'s at 181 KiB): keeping the first 512 KiB
 * usually saves a second pass over a 2 MiB library, at a bounded cost.
 */
const RETAINED_PREFIX = 512 << 10;

/**
 * A ByteSource over a ContentRef: reads forward through one stream, keeping the current chunk and
 * the file's first {@link RETAINED_PREFIX} bytes; a read further back reopens the stream.
 */
export function contentSource(ref: ContentRef): ByteSource {
  const readAt = ref.readAt?.bind(ref);
  // Random access when the content offers it: a library's headers, not its whole body.
  if (readAt) return { size: ref.size, read: (offset, length) => readAt(offset, Math.min(length, ref.size - offset)), close: () => undefined };
  let stream: Readable | undefined;
  let iter: AsyncIterator<Buffer> | undefined;
  let chunk: Buffer = Buffer.alloc(0);
  let chunkStart = 0;
  let prefix: Buffer[] = [];
  let prefixEnd = 0;
  let firstPass = true;
  const reopen = (): void => {
    if (iter) firstPass = false;
    stream?.destroy();
    stream = ref.open();
    iter = (stream as AsyncIterable<Buffer>)[Symbol.asyncIterator]();
    chunk = Buffer.alloc(0);
    chunkStart = 0;
  };
  return {
    size: ref.size,
    async read(offset: number, length: number): Promise<Buffer> {
      const end = Math.min(ref.size, offset + length);
      if (end <= offset) return Buffer.alloc(0);
      if (iter && offset < chunkStart && end <= prefixEnd) return Buffer.concat(prefix).subarray(offset, end);
      if (!iter || offset < chunkStart) reopen();
      const parts: Buffer[] = [];
      let pos = offset;
      while (pos < end) {
        if (pos < chunkStart + chunk.length) {
          const from = pos - chunkStart;
          const take = Math.min(chunk.length - from, end - pos);
          parts.push(chunk.subarray(from, from + take));
          pos += take;
          continue;
        }
        chunkStart += chunk.length;
        const next = await iter!.next();
        if (next.done) break;
        chunk = Buffer.isBuffer(next.value) ? next.value : Buffer.from(next.value);
        if (firstPass && chunkStart < RETAINED_PREFIX) {
          prefix.push(chunk);
          prefixEnd = chunkStart + chunk.length;
        }
      }
      return parts.length === 1 ? Buffer.from(parts[0]!) : Buffer.concat(parts);
    },
    close(): void {
      stream?.destroy();
      stream = undefined;
      iter = undefined;
      prefix = [];
      prefixEnd = 0;
    },
  };
}

/** `e_type` of shared objects (and PIE executables). */
export const ET_DYN = 3;
/** `e_machine` of i386. */
export const EM_386 = 3;
/** `e_machine` of x86-64 (and x32). */
export const EM_X86_64 = 62;
/** `e_machine` of 32-bit Arm. */
export const EM_ARM = 40;
/** `e_machine` of AArch64. */
export const EM_AARCH64 = 183;

const PT_LOAD = 1;
const PT_DYNAMIC = 2;
const PT_INTERP = 3;
const DT_NULL = 0;
const DT_NEEDED = 1;
const DT_STRTAB = 5;
const DT_STRSZ = 10;
const DT_SONAME = 14;

/** What ldconfig learns from an ELF file. */
export interface ElfInfo {
  elfClass: 32 | 64;
  littleEndian: boolean;
  /** `e_type` (`ET_DYN` = 3 for shared objects and PIE executables). */
  type: number;
  /** `e_machine` (`EM_X86_64` = 62). */
  machine: number;
  /** `e_flags` (on 32-bit Arm: the EABI version and float ABI ldconfig classifies by). */
  flags: number;
  /** `PT_INTERP` string, if any. */
  interpreter?: string;
  /** Whether a non-empty `PT_DYNAMIC` segment exists. */
  dynamic: boolean;
  /** Whether the dynamic section has a `DT_STRTAB` (ldconfig skips files without one). */
  stringTable: boolean;
  /** `DT_NEEDED` and `DT_SONAME` entries in dynamic-section order (ldconfig stops early on them). */
  names: Array<{ tag: "needed" | "soname"; value: string }>;
}

interface Segment {
  type: number;
  offset: number;
  vaddr: number;
  filesz: number;
}

/** A NUL-terminated string from a buffer, or undefined if it runs off the end. */
function cString(buf: Buffer, at: number): string | undefined {
  if (at < 0 || at >= buf.length) return undefined;
  const end = buf.indexOf(0, at);
  return end < 0 ? undefined : buf.toString("utf8", at, end);
}

/**
 * Reads an ELF file's identity and dynamic names. Returns undefined when the bytes are not ELF
 * or do not hold together (truncated headers, a dynamic section or string table outside the file).
 * Names are decoded as UTF-8, like the file names of the tree.
 */
export async function readElf(src: ByteSource): Promise<ElfInfo | undefined> {
  const ident = await src.read(0, 64);
  if (ident.length < 52 || ident.readUInt32BE(0) !== 0x7f454c46) return undefined;
  const elfClass = ident[4] === 1 ? 32 : ident[4] === 2 ? 64 : undefined;
  const littleEndian = ident[5] === 1 ? true : ident[5] === 2 ? false : undefined;
  if (elfClass === undefined || littleEndian === undefined) return undefined;
  if (elfClass === 64 && ident.length < 64) return undefined;
  const u16 = (b: Buffer, o: number): number => (littleEndian ? b.readUInt16LE(o) : b.readUInt16BE(o));
  const u32 = (b: Buffer, o: number): number => (littleEndian ? b.readUInt32LE(o) : b.readUInt32BE(o));
  // Two 32-bit halves (a BigInt per read was most of the time ldconfig spent here): exact up to
  // 2^53 - 1, and larger values (no real offset or size) capped there.
  const u64 = (b: Buffer, o: number): number => {
    const hi = littleEndian ? b.readUInt32LE(o + 4) : b.readUInt32BE(o);
    const lo = littleEndian ? b.readUInt32LE(o) : b.readUInt32BE(o + 4);
    return hi >= 0x200000 ? Number.MAX_SAFE_INTEGER : hi * 0x100000000 + lo;
  };
  const word = elfClass === 64 ? u64 : u32;
  const type = u16(ident, 16);
  const machine = u16(ident, 18);
  const flags = u32(ident, elfClass === 64 ? 48 : 36);
  const phoff = elfClass === 64 ? u64(ident, 32) : u32(ident, 28);
  const phnum = u16(ident, elfClass === 64 ? 56 : 44);
  // ldconfig steps through program headers by sizeof(ElfW(Phdr)), not e_phentsize.
  const phsize = elfClass === 64 ? 56 : 32;
  const info: ElfInfo = { elfClass, littleEndian, type, machine, flags, dynamic: false, stringTable: false, names: [] };
  if (phnum === 0) return info;
  if (phoff + phnum * phsize > src.size) return undefined;
  const ph = await src.read(phoff, phnum * phsize);
  const segments: Segment[] = [];
  for (let i = 0; i < phnum; i++) {
    const o = i * phsize;
    segments.push(
      elfClass === 64
        ? { type: u32(ph, o), offset: u64(ph, o + 8), vaddr: u64(ph, o + 16), filesz: u64(ph, o + 32) }
        : { type: u32(ph, o), offset: u32(ph, o + 4), vaddr: u32(ph, o + 8), filesz: u32(ph, o + 16) },
    );
  }
  let dynOff = 0;
  let dynSize = 0;
  for (const s of segments) {
    if (s.type === PT_DYNAMIC) {
      dynOff = s.offset;
      dynSize = s.filesz;
    } else if (s.type === PT_INTERP) {
      if (s.offset >= src.size) return undefined;
      const interp = cString(await src.read(s.offset, Math.min(s.filesz || 4096, 4096)), 0);
      if (interp !== undefined) info.interpreter = interp;
    }
  }
  if (dynSize === 0) return info;
  info.dynamic = true;
  if (dynOff >= src.size) return undefined;
  // glibc walks the dynamic array up to DT_NULL, bounded only by the file.
  const entSize = elfClass === 64 ? 16 : 8;
  const dyn = await src.read(dynOff, Math.max(dynSize, entSize));
  const entries: Array<{ tag: number; val: number }> = [];
  for (let o = 0; o + entSize <= dyn.length; o += entSize) {
    const tag = elfClass === 64 ? Number(littleEndian ? dyn.readBigInt64LE(o) : dyn.readBigInt64BE(o)) : littleEndian ? dyn.readInt32LE(o) : dyn.readInt32BE(o);
    if (tag === DT_NULL) break;
    entries.push({ tag, val: word(dyn, o + entSize / 2) });
  }
  const strtab = entries.find((e) => e.tag === DT_STRTAB);
  if (!strtab) return info;
  info.stringTable = true;
  const load = segments.find((s) => s.type === PT_LOAD && strtab.val >= s.vaddr && strtab.val - s.vaddr < s.filesz);
  const strOff = strtab.val - (load ? load.vaddr - load.offset : 0);
  if (strOff < 0 || strOff >= src.size) return undefined;
  const wanted = entries.filter((e) => e.tag === DT_NEEDED || e.tag === DT_SONAME);
  if (wanted.length === 0) return info;
  const strsz = entries.find((e) => e.tag === DT_STRSZ)?.val;
  const maxName = Math.max(...wanted.map((e) => e.val));
  // Read the string table once: up to DT_STRSZ, or far enough to cover every name we need.
  const span = strsz !== undefined && strsz > maxName ? strsz : maxName + 4096;
  const strings = await src.read(strOff, Math.min(span, src.size - strOff));
  for (const e of wanted) {
    const value = cString(strings, e.val);
    if (value === undefined) return undefined;
    info.names.push({ tag: e.tag === DT_SONAME ? "soname" : "needed", value });
  }
  return info;
}
