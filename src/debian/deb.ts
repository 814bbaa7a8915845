/**
 * The `.deb` reader: an `ar` archive holding `debian-binary` (`2.0\n`), `control.tar[.gz|.xz|.zst]`
 * and `data.tar[.gz|.xz|.zst|.bz2]` (deb(5)). The control member is small and read whole; the
 * data member is only ever streamed, from its byte range in the file, through a decompressor,
 * into tar entries.
 */
import { createReadStream } from "node:fs";
import { open, type FileHandle } from "node:fs/promises";
import { Readable } from "node:stream";
import { createRequire } from "node:module";
import type tarStream from "tar-stream";
import { KilnError } from "../domain/errors.js";
import { sha256File } from "../domain/file-hash.js";
import { lazy } from "../domain/lazy.js";
import { ArFormatError, readArMembers, type ArMember } from "./deb-ar.js";
import { parseParagraph } from "./control.js";
import { compressionOf, createDecoder, decodeBounded, TooLargeError, type DebCompression, type XzDecoder } from "./deb-decompress.js";
import { xzUncompressedSize, type XzLanes } from "./deb-xz-lanes.js";
import type { Paragraph } from "./types.js";

/** tar-stream, loaded for the first data member read (a warm build reads none). */
const tar = lazy(() => createRequire(import.meta.url)("tar-stream") as typeof tarStream);

export type { DebCompression, XzDecoder } from "./deb-decompress.js";
export { XzLanes } from "./deb-xz-lanes.js";

/** Control archives are a few KiB (packed or not); anything past this is not a package but an attack. */
const MAX_CONTROL_BYTES = 16 << 20;

/** A member of the `.deb` that holds a tar archive. */
export interface DebTarMember {
  /** `control.tar.xz`, `data.tar.zst`, ... */
  name: string;
  compression: DebCompression;
  /** Byte range of the (compressed) member in the `.deb`. */
  offset: number;
  size: number;
  /** Decoded size, when the member is a single xz stream (read from its index, nothing decoded). */
  uncompressedSize?: number;
}

/** The kinds of tar entries a data member may hold (anything else is refused). */
export type DebEntryType = "file" | "dir" | "symlink" | "hardlink" | "char" | "block" | "fifo";

/** One entry of the data member, as the tar header says (names are not normalised here). */
export interface DebDataEntry {
  /** Name as archived (`./usr/bin/awk`, `./usr/` ...). */
  name: string;
  type: DebEntryType;
  /** Permission bits including setuid/setgid/sticky, without file-type bits. */
  mode: number;
  uid: number;
  gid: number;
  uname: string;
  gname: string;
  /** Bytes of a regular file; 0 for everything else. */
  size: number;
  /** Seconds since the epoch. */
  mtime: number;
  /** Symlink target (verbatim) or hard link target (as archived). */
  linkname?: string;
  devmajor?: number;
  devminor?: number;
  /**
   * A regular file's bytes. Read it to its end within the loop, or not at all (an unread body is
   * skipped when the iteration moves on); leaving it half-read abandons the whole archive.
   */
  body: AsyncIterable<Buffer>;
}

/** Options for streaming the data member. */
export interface DataStreamOptions {
  xz?: XzDecoder;
  /** Long-lived xz processes to decode with instead of starting one (see {@link XzLanes}). */
  lanes?: XzLanes;
}

/** An opened `.deb`: its control information read, its data member ready to stream. */
export interface DebPackage {
  /** The file this came from (for messages). */
  readonly path: string;
  /** Size of the `.deb` in bytes. */
  readonly size: number;
  /** Contents of `debian-binary` without the newline (`2.0`). */
  readonly formatVersion: string;
  /** The `control` file. */
  readonly control: Paragraph;
  /** Every other member of control.tar (`md5sums`, `conffiles`, `postinst`, `triggers`, `shlibs`, ...), by name. */
  readonly controlFiles: ReadonlyMap<string, Buffer>;
  /**
   * When the package was built: the ar mtime of `debian-binary` (dpkg-deb stamps every member
   * with `SOURCE_DATE_EPOCH` or the build time), falling back to `control.tar`'s. A cheap
   * "package date" for the build clock, known without decompressing anything.
   */
  readonly date: Date;
  readonly controlMember: DebTarMember;
  readonly dataMember: DebTarMember;
  /** The decompressed data.tar as a byte stream. */
  openDataTar(options?: DataStreamOptions): Readable;
  /** The entries of data.tar, in archive order, streamed. */
  dataEntries(options?: DataStreamOptions): AsyncIterable<DebDataEntry>;
  /** sha256 (hex) of the whole `.deb`, streamed from disk. */
  sha256(): Promise<string>;
}

function malformed(file: string, why: string, cause?: unknown): KilnError {
  return new KilnError("badRequest", `${file}: not a valid Debian package: ${why}`, cause === undefined ? undefined : { cause });
}

const TAR_TYPES: Record<string, DebEntryType | undefined> = {
  file: "file",
  "contiguous-file": "file",
  directory: "dir",
  symlink: "symlink",
  link: "hardlink",
  "character-device": "char",
  "block-device": "block",
  fifo: "fifo",
};

function memberStream(file: string, member: DebTarMember, chunk: number): Readable {
  // createReadStream's `end` is inclusive, and an empty range must still be an (empty) stream.
  if (member.size === 0) return Readable.from([]);
  return createReadStream(file, { start: member.offset, end: member.offset + member.size - 1, highWaterMark: chunk });
}

/** The member's decompressed bytes; errors are `KilnError`s naming the file and member. */
function decompressedStream(file: string, member: DebTarMember, options: DataStreamOptions): Readable {
  const xz = options.xz ?? "auto";
  if (member.compression === "xz" && member.uncompressedSize !== undefined && options.lanes && xz !== "native") {
    const fromLane = options.lanes.decode(file, member.offset, member.size, member.uncompressedSize);
    if (fromLane) return fromLane;
  }
  let decoder;
  try {
    decoder = createDecoder(member.compression, xz);
  } catch (err) {
    throw malformed(file, `cannot decompress ${member.name}: ${(err as Error).message}`, err);
  }
  const dec = decoder.stream;
  const src = memberStream(file, member, decoder.inputChunk);
  src.on("error", (err: Error) => {
    if (!dec.destroyed) dec.destroy(err);
  });
  dec.on("error", () => src.destroy());
  dec.once("close", () => src.destroy());
  src.pipe(dec);
  return dec as unknown as Readable;
}

/**
 * Iterates the tar entries of a decompressed member. Errors of the decompressor or the tar
 * parser surface from the iteration as a `KilnError` naming the file.
 */
async function* tarEntries(file: string, member: DebTarMember, source: Readable): AsyncGenerator<DebDataEntry> {
  const extract = tar().extract();
  let failure: Error | undefined;
  source.on("error", (err: Error) => {
    failure = err;
    extract.destroy(err);
  });
  // The parser's own failure (a tar cut short) reaches a body reader only as "destroyed".
  extract.on("error", (err: Error) => {
    failure ??= err;
  });
  source.pipe(extract);
  const explain = (err: unknown): KilnError => {
    const e = failure ?? (err as Error);
    return e instanceof KilnError ? e : malformed(file, `${member.name} is corrupt: ${e.message}`, e);
  };
  // A failure while a body is being read reaches the reader through the body, not the loop.
  async function* body(entry: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
    try {
      for await (const chunk of entry) yield chunk;
    } catch (err) {
      throw explain(err);
    }
  }
  try {
    for await (const entry of extract) {
      const h = entry.header;
      const type = TAR_TYPES[h.type ?? "file"];
      if (type === undefined) throw malformed(file, `${member.name} holds "${h.name}" of unsupported type ${h.type}`);
      const item: DebDataEntry = {
        name: h.name,
        type,
        mode: (h.mode ?? 0) & 0o7777,
        uid: h.uid ?? 0,
        gid: h.gid ?? 0,
        uname: h.uname ?? "",
        gname: h.gname ?? "",
        size: type === "file" ? (h.size ?? 0) : 0,
        mtime: h.mtime ? Math.floor(h.mtime.getTime() / 1000) : 0,
        body: body(entry as unknown as AsyncIterable<Buffer>),
      };
      if (h.linkname) item.linkname = h.linkname;
      if (type === "char" || type === "block") {
        item.devmajor = h.devmajor ?? 0;
        item.devminor = h.devminor ?? 0;
      }
      yield item;
      // An unread body would stall the parser; skipping it is what "leave it" means above.
      entry.resume();
    }
  } catch (err) {
    throw explain(err);
  } finally {
    source.destroy();
    extract.destroy();
  }
}

async function readControl(file: string, fh: FileHandle, member: DebTarMember): Promise<{ control: Paragraph; files: Map<string, Buffer> }> {
  if (member.size > MAX_CONTROL_BYTES) throw malformed(file, `${member.name} is ${member.size} bytes, more than a control archive ever holds`);
  if (member.compression === "bzip2") throw malformed(file, `unsupported compression for member ${member.name}`);
  const packed = Buffer.alloc(member.size);
  await fh.read(packed, 0, member.size, member.offset);
  let tarBytes: Buffer;
  try {
    tarBytes = await decodeBounded(member.compression, packed, MAX_CONTROL_BYTES);
  } catch (err) {
    if (err instanceof TooLargeError) throw malformed(file, `${member.name} unpacks to ${err.message}`, err);
    throw malformed(file, `${member.name} is corrupt: ${(err as Error).message}`, err);
  }
  const files = new Map<string, Buffer>();
  for await (const entry of tarEntries(file, member, Readable.from([tarBytes]))) {
    const name = entry.name.replace(/^(\.\/)+/, "").replace(/\/+$/, "");
    if (entry.type === "dir" && (name === "" || name === ".")) continue;
    if (name === "" || name.includes("/") || name === "." || name === ".." || name.includes("\0")) {
      throw malformed(file, `${member.name} holds an unexpected entry "${entry.name}"`);
    }
    if (entry.type !== "file") throw malformed(file, `${member.name} holds "${entry.name}" which is not a regular file`);
    const chunks: Buffer[] = [];
    for await (const chunk of entry.body) chunks.push(chunk);
    files.set(name, Buffer.concat(chunks));
  }
  const controlBytes = files.get("control");
  if (!controlBytes) throw malformed(file, `${member.name} has no control file`);
  files.delete("control");
  let control: Paragraph;
  try {
    control = parseParagraph(controlBytes.toString("utf8"), { comments: true });
  } catch (err) {
    throw malformed(file, `bad control file: ${(err as Error).message}`, err);
  }
  return { control, files };
}

function tarMember(file: string, m: ArMember, base: "control.tar" | "data.tar"): DebTarMember {
  const compression = compressionOf(m.name, base);
  if (compression === undefined) throw malformed(file, `unsupported compression for member ${m.name}`);
  return { name: m.name, compression, offset: m.offset, size: m.size };
}

/**
 * Opens a `.deb`: checks the ar structure and the format version, reads control.tar whole, and
 * locates data.tar for streaming. Members whose names start with `_` (signatures) are skipped
 * as dpkg does; any other unknown member before data.tar makes the file malformed.
 *
 * @throws KilnError `badRequest` naming the file when it is not a valid package.
 */
export async function openDeb(file: string): Promise<DebPackage> {
  const fh = await open(file, "r").catch((err: NodeJS.ErrnoException) => {
    throw new KilnError(err.code === "ENOENT" ? "notFound" : "internal", `${file}: cannot open package: ${err.code ?? err.message}`, { cause: err });
  });
  try {
    return await readDeb(file, fh);
  } finally {
    await fh.close();
  }
}

/**
 * The package's build date (the ar mtime of `debian-binary`, else of `control.tar`) from the
 * archive headers alone: what the build clock needs before anything is unpacked.
 */
export async function readDebDate(file: string): Promise<Date> {
  const fh = await open(file, "r");
  try {
    let members: ArMember[];
    try {
      members = await readArMembers(fh, (await fh.stat()).size);
    } catch (err) {
      if (err instanceof ArFormatError) throw malformed(file, err.message, err);
      throw err;
    }
    const stamp = members[0]?.mtime || members[1]?.mtime || 0;
    return new Date(stamp * 1000);
  } finally {
    await fh.close();
  }
}

async function readDeb(file: string, fh: FileHandle): Promise<DebPackage> {
  const size = (await fh.stat()).size;
  let members: ArMember[];
  try {
    members = await readArMembers(fh, size);
  } catch (err) {
    if (err instanceof ArFormatError) throw malformed(file, err.message, err);
    throw err;
  }
  const first = members[0];
  if (!first || first.name !== "debian-binary") throw malformed(file, `the first member is ${first ? `"${first.name}"` : "missing"}, not debian-binary`);
  if (first.size > 64) throw malformed(file, "debian-binary is too long");
  const buf = Buffer.alloc(first.size);
  await fh.read(buf, 0, first.size, first.offset);
  const versionText = buf.toString("latin1").replace(/\n$/, "");
  if (!/^2\.\d+$/.test(versionText)) throw malformed(file, `unsupported format version "${versionText.slice(0, 16)}" (expected 2.x)`);

  let controlAr: ArMember | undefined;
  let dataAr: ArMember | undefined;
  for (const m of members.slice(1)) {
    if (m.name.startsWith("_")) continue;
    if (!controlAr) {
      if (!m.name.startsWith("control.tar")) throw malformed(file, `expected control.tar after debian-binary, found "${m.name}"`);
      controlAr = m;
    } else if (!dataAr) {
      if (!m.name.startsWith("data.tar")) throw malformed(file, `expected data.tar after ${controlAr.name}, found "${m.name}"`);
      dataAr = m;
    } else break;
  }
  if (!controlAr) throw malformed(file, "no control.tar member");
  if (!dataAr) throw malformed(file, "no data.tar member");
  const controlMember = tarMember(file, controlAr, "control.tar");
  const dataMember = tarMember(file, dataAr, "data.tar");
  if (dataMember.compression === "xz") {
    const n = await xzUncompressedSize(fh, dataMember.offset, dataMember.size);
    if (n !== undefined) dataMember.uncompressedSize = n;
  }
  const { control, files } = await readControl(file, fh, controlMember);
  const stamp = first.mtime || controlAr.mtime;

  return {
    path: file,
    size,
    formatVersion: versionText,
    control,
    controlFiles: files,
    date: new Date(stamp * 1000),
    controlMember,
    dataMember,
    openDataTar: (options = {}) => decompressedStream(file, dataMember, options),
    dataEntries: (options = {}) => tarEntries(file, dataMember, decompressedStream(file, dataMember, options)),
    sha256: () => sha256File(file),
  };
}

/** sha256 (hex) of a file, streamed. */
