/**
 * Builds small but well-formed ELF shared objects in code (no compiler needed): an ELF header,
 * program headers (PT_LOAD over the whole file at a chosen virtual address, PT_DYNAMIC,
 * optionally PT_INTERP), a dynamic string table and a dynamic section, in that file order — so
 * the string table precedes the dynamic section, as in real libraries.
 */

export interface ElfSpec {
  elfClass?: 32 | 64;
  littleEndian?: boolean;
  /** e_type; 3 (ET_DYN) by default. */
  type?: number;
  /** e_machine; 62 (x86-64) by default. */
  machine?: number;
  soname?: string;
  needed?: string[];
  interpreter?: string;
  /** Virtual address of file offset 0 (the DT_STRTAB value is a virtual address). */
  loadAddress?: number;
  /** Leave out the dynamic section entirely. */
  noDynamic?: boolean;
  /** Pad the file to at least this many bytes (content after the tables). */
  minSize?: number;
}

export function buildElf(spec: ElfSpec): Buffer {
  const is64 = (spec.elfClass ?? 64) === 64;
  const le = spec.littleEndian ?? true;
  const ehsize = is64 ? 64 : 52;
  const phentsize = is64 ? 56 : 32;
  const dynentsize = is64 ? 16 : 8;
  const base = spec.loadAddress ?? 0x400000;
  const strings: string[] = ["", ...(spec.needed ?? []), ...(spec.soname !== undefined ? [spec.soname] : [])];
  const strtab = Buffer.from(`${strings.join("\0")}\0`, "utf8");
  const offsetOf = (s: string): number => Buffer.from(`${strings.slice(0, strings.indexOf(s)).join("\0")}\0`, "utf8").length;
  const phnum = 1 + (spec.noDynamic ? 0 : 1) + (spec.interpreter !== undefined ? 1 : 0);
  const phoff = ehsize;
  const interpOff = phoff + phnum * phentsize;
  const interp = spec.interpreter !== undefined ? Buffer.from(`${spec.interpreter}\0`) : Buffer.alloc(0);
  const strOff = interpOff + interp.length;
  const dynOff = Math.ceil((strOff + strtab.length) / 8) * 8;
  const dyn: Array<[number, number]> = [];
  for (const n of spec.needed ?? []) dyn.push([1, offsetOf(n)]);
  if (spec.soname !== undefined) dyn.push([14, offsetOf(spec.soname)]);
  dyn.push([5, base + strOff], [10, strtab.length], [0, 0]);
  const dynSize = spec.noDynamic ? 0 : dyn.length * dynentsize;
  const size = Math.max(dynOff + dynSize, spec.minSize ?? 0);
  const b = Buffer.alloc(size);
  const u16 = (v: number, o: number): number => (le ? b.writeUInt16LE(v, o) : b.writeUInt16BE(v, o));
  const u32 = (v: number, o: number): number => (le ? b.writeUInt32LE(v, o) : b.writeUInt32BE(v, o));
  const word = (v: number, o: number): number => (is64 ? (le ? b.writeBigUInt64LE(BigInt(v), o) : b.writeBigUInt64BE(BigInt(v), o)) : u32(v, o));
  const sword = (v: number, o: number): number => (is64 ? (le ? b.writeBigInt64LE(BigInt(v), o) : b.writeBigInt64BE(BigInt(v), o)) : le ? b.writeInt32LE(v, o) : b.writeInt32BE(v, o));
  b.writeUInt32BE(0x7f454c46, 0);
  b[4] = is64 ? 2 : 1;
  b[5] = le ? 1 : 2;
  b[6] = 1;
  u16(spec.type ?? 3, 16);
  u16(spec.machine ?? 62, 18);
  u32(1, 20);
  if (is64) {
    word(phoff, 32);
    u16(ehsize, 52);
    u16(phentsize, 54);
    u16(phnum, 56);
    u16(64, 58);
  } else {
    u32(phoff, 28);
    u16(ehsize, 40);
    u16(phentsize, 42);
    u16(phnum, 44);
    u16(40, 46);
  }
  const phdr = (i: number, type: number, offset: number, filesz: number, flags: number, align: number): void => {
    const o = phoff + i * phentsize;
    u32(type, o);
    if (is64) {
      u32(flags, o + 4);
      word(offset, o + 8);
      word(base + offset, o + 16);
      word(base + offset, o + 24);
      word(filesz, o + 32);
      word(filesz, o + 40);
      word(align, o + 48);
    } else {
      u32(offset, o + 4);
      u32(base + offset, o + 8);
      u32(base + offset, o + 12);
      u32(filesz, o + 16);
      u32(filesz, o + 20);
      u32(flags, o + 24);
      u32(align, o + 28);
    }
  };
  let i = 0;
  phdr(i++, 1, 0, size, 5, 0x1000);
  if (spec.interpreter !== undefined) phdr(i++, 3, interpOff, interp.length, 4, 1);
  if (!spec.noDynamic) phdr(i++, 2, dynOff, dynSize, 6, 8);
  interp.copy(b, interpOff);
  strtab.copy(b, strOff);
  if (!spec.noDynamic) {
    dyn.forEach(([tag, val], k) => {
      const o = dynOff + k * dynentsize;
      sword(tag, o);
      word(val, o + dynentsize / 2);
    });
  }
  return b;
}
