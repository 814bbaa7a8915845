/**
 * The `ar` container of a `.deb`: `!<arch>\n`, then members with 60-byte headers, data padded to
 * an even offset. Only the member table is read here (a few reads at known offsets); member data
 * is streamed by the caller from the offsets this returns.
 */
import type { FileHandle } from "node:fs/promises";

/** One member of an ar archive. */
export interface ArMember {
  /** Name with GNU (`name/`) and BSD (`#1/<len>`) spellings undone. */
  name: string;
  /** Offset of the member's data in the file (after the header and any BSD long name). */
  offset: number;
  /** Size of the member's data in bytes. */
  size: number;
  /** Modification time, seconds since the epoch. */
  mtime: number;
  uid: number;
  gid: number;
  mode: number;
}

const AR_MAGIC = "!<arch>\n";
const HEADER_SIZE = 60;

/** Thrown for a malformed archive; the caller adds the file name. */
export class ArFormatError extends Error {}

function field(buf: Buffer, start: number, len: number): string {
  return buf.toString("latin1", start, start + len).trimEnd();
}

function decimal(buf: Buffer, start: number, len: number, what: string, at: number): number {
  const s = field(buf, start, len);
  if (s === "") return 0;
  if (!/^\d+$/.test(s)) throw new ArFormatError(`member header at offset ${at} has a bad ${what} field "${s}"`);
  return Number(s);
}

/**
 * Reads every member header of the ar archive open in `fh` (`fileSize` bytes long). GNU long
 * names (`//` table, `/<offset>` references) and BSD long names (`#1/<len>`) are resolved; the
 * GNU symbol table (`/`) is skipped.
 */
export async function readArMembers(fh: FileHandle, fileSize: number): Promise<ArMember[]> {
  const magic = Buffer.alloc(8);
  const { bytesRead } = await fh.read(magic, 0, 8, 0);
  if (bytesRead < 8 || magic.toString("latin1") !== AR_MAGIC) throw new ArFormatError("not an ar archive (bad magic)");
  const members: ArMember[] = [];
  const header = Buffer.alloc(HEADER_SIZE);
  let gnuNames: Buffer | undefined;
  let pos = 8;
  while (pos < fileSize) {
    // A lone padding byte (or trailing newline) after the last member is tolerated, as GNU ar does.
    if (fileSize - pos < HEADER_SIZE) {
      const rest = Buffer.alloc(fileSize - pos);
      await fh.read(rest, 0, rest.length, pos);
      if (rest.every((b) => b === 0x0a)) break;
      throw new ArFormatError(`truncated member header at offset ${pos}`);
    }
    await fh.read(header, 0, HEADER_SIZE, pos);
    if (header[58] !== 0x60 || header[59] !== 0x0a) throw new ArFormatError(`member header at offset ${pos} lacks the "\`\\n" terminator`);
    let name = field(header, 0, 16);
    const mtime = decimal(header, 16, 12, "mtime", pos);
    const uid = decimal(header, 28, 6, "uid", pos);
    const gid = decimal(header, 34, 6, "gid", pos);
    const modeText = field(header, 40, 8);
    if (modeText !== "" && !/^[0-7]+$/.test(modeText)) throw new ArFormatError(`member header at offset ${pos} has a bad mode field "${modeText}"`);
    const mode = modeText === "" ? 0 : parseInt(modeText, 8);
    let size = decimal(header, 48, 10, "size", pos);
    let offset = pos + HEADER_SIZE;
    if (offset + size > fileSize) throw new ArFormatError(`member "${name}" at offset ${pos} claims ${size} bytes but the file ends first`);
    const next = offset + size + (size & 1);

    if (name.startsWith("#1/")) {
      const len = Number(name.slice(3));
      if (!Number.isInteger(len) || len <= 0 || len > size) throw new ArFormatError(`member at offset ${pos} has a bad BSD long name "${name}"`);
      const nameBuf = Buffer.alloc(len);
      await fh.read(nameBuf, 0, len, offset);
      name = nameBuf.toString("utf8").replace(/\0+$/, "");
      offset += len;
      size -= len;
    } else if (name === "//") {
      gnuNames = Buffer.alloc(size);
      await fh.read(gnuNames, 0, size, offset);
      pos = next;
      continue;
    } else if (name === "/" || name === "/SYM64/") {
      pos = next;
      continue;
    } else if (/^\/\d+$/.test(name)) {
      if (!gnuNames) throw new ArFormatError(`member at offset ${pos} refers to a long name but the archive has no "//" table`);
      const start = Number(name.slice(1));
      const end = gnuNames.indexOf("/\n", start, "latin1");
      if (start >= gnuNames.length || end < 0) throw new ArFormatError(`member at offset ${pos} has a long name offset out of range`);
      name = gnuNames.toString("utf8", start, end);
    } else if (name.endsWith("/")) {
      name = name.slice(0, -1);
    }
    members.push({ name, offset, size, mtime, uid, gid, mode });
    pos = next;
  }
  return members;
}

/** Bytes of a `.deb` that hold its first member header: the magic and one 60-byte header. */
export const FIRST_HEADER_END = AR_MAGIC.length + HEADER_SIZE;

/**
 * The mtime (seconds since the epoch) of a `.deb`'s first member, `debian-binary`, from the
 * first {@link FIRST_HEADER_END} bytes alone: dpkg-deb stamps it with the build time
 * (`SOURCE_DATE_EPOCH`, the changelog date, for reproducible packages), so a package's build
 * date is known without its other bytes — a range request of 68 bytes to a mirror.
 * @returns undefined when the member carries no date (mtime 0).
 * @throws ArFormatError when the bytes are not the start of a `.deb`.
 */
export function firstMemberMtime(head: Buffer): number | undefined {
  if (head.length < FIRST_HEADER_END || head.toString("latin1", 0, 8) !== AR_MAGIC) throw new ArFormatError("not an ar archive (bad magic, or fewer than 68 bytes)");
  const header = head.subarray(8, FIRST_HEADER_END);
  if (header[58] !== 0x60 || header[59] !== 0x0a) throw new ArFormatError('member header at offset 8 lacks the "`\\n" terminator');
  const name = field(header, 0, 16).replace(/\/$/, "");
  if (name !== "debian-binary") throw new ArFormatError(`the first member is "${name}", not debian-binary`);
  return decimal(header, 16, 12, "mtime", 8) || undefined;
}
