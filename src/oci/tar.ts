/**
 * Deterministic tar writing of {@link FsEntry} lists: the byte stream depends only on the set of
 * entries, their contents and the clock — never on input order, the host, the user or the time.
 *
 * Why our own ustar encoder rather than tar-stream's `pack`: on the minbase tree both write the
 * 118 MB tar in about the same time (`bench/oci-layer.ts`, figures in `bench/oci-results.md`;
 * the cost is sha256, not headers), so speed does not decide. Control does: tar-stream 3.x
 * clamps a uid/gid above 2097151 to 2097151 without a word (no PAX `uid`/`gid` records), decides
 * PAX use on its own, and cannot cut its output into fixed-size chunks. Owning the ~150 lines of
 * format gives exactly this:
 *
 * - entries sorted by path, compared component by component in byte order (so a directory always
 *   precedes its contents, and `a/b` sorts before `a-b`);
 * - ustar headers with mtime = the clock for every entry, empty uname/gname, uid/gid/mode as
 *   given, devmajor/devminor only for devices, no atime/ctime;
 * - a PAX extended header (typeflag `x`) only when ustar cannot hold a value: a name that does not
 *   fit `prefix/name` or is not ASCII, a link target over 100 bytes or not ASCII, a size of 8 GiB
 *   or more, a uid/gid over 2097151, or extended attributes (`SCHILY.xattr.<name>`, the
 *   convention of GNU tar, Go's archive/tar and the OCI layer spec; a file capability is
 *   `SCHILY.xattr.security.capability`). Its records are sorted by key, its header fixed;
 * - directories named with a trailing `/`, as Go's archive/tar and `docker save` write them;
 * - hard links normalised: the members of a link group are interchangeable (one inode), so the
 *   first path in sort order carries the content and every other member becomes a `Link` to it,
 *   whichever member the caller declared as the original;
 * - the archive ends with two zero blocks (no padding to a 10 KiB record, as Go writes it).
 *
 * Parent directories: every entry's parent must be a directory entry of the same list. A missing
 * parent is asked for from `options.ancestors` (the builder passes its full tree's `lstat`, so a
 * layer that adds files under `usr/lib` carries `usr/lib`'s real mode and owner, and never a
 * made-up 0755 root:root that would overwrite the lower layer's metadata when layers are
 * stacked); without a resolver, a missing parent is an error. Parents are never synthesised.
 */
import type { Readable } from "node:stream";
import { fail, KilnError } from "../domain/errors.js";
import type { FsEntry, NodeType } from "../rootfs/types.js";

const BLOCK = 512;
/** Largest value of an 11-digit octal field (size, mtime): 8 GiB - 1. */
const MAX_OCTAL_11 = 0o77777777777;
/** Largest value of a 7-digit octal field (uid, gid, devmajor, devminor). */
const MAX_OCTAL_7 = 0o7777777;
/**
 * Size of the buffers the tar stream is cut into. A fixed cut makes the downstream chunking (and
 * thus the number of gzip calls into the thread pool) independent of how content streams happen
 * to deliver their bytes, and big chunks keep those calls few.
 */
export const TAR_CHUNK_SIZE = 1 << 20;

const TYPEFLAG: Record<NodeType, string> = {
  file: "0",
  hardlink: "1",
  symlink: "2",
  char: "3",
  block: "4",
  dir: "5",
  fifo: "6",
};

/** Options of {@link tarChunks} and {@link planTar}. */
export interface TarOptions {
  /** The one clock: every entry's mtime (whole seconds since the epoch; milliseconds are dropped). */
  clock: Date;
  /**
   * Looks up a parent directory that the list lacks (normally the full tree's `lstat`). Without
   * it a missing parent is an error; with it, the returned entry (which must be a directory at
   * that path) is written too, and its own parents are resolved the same way.
   */
  ancestors?: (path: string) => FsEntry | undefined;
  /** Stops the writing: the current content stream is destroyed and the generator throws. */
  signal?: AbortSignal;
}

/** One entry of a planned archive: validated, in archive order, hard links normalised. */
export interface TarEntry {
  readonly entry: FsEntry;
  /** The path written (without the trailing `/` of directories). */
  readonly path: string;
  readonly type: NodeType;
  /** For `hardlink`: the path of the member carrying the content. */
  readonly linkname: string | undefined;
}

/** Sort key: the path's UTF-8 bytes with `/` mapped to 0x00, so components compare in byte order. */
function sortKey(path: string): Buffer {
  const b = Buffer.from(path, "utf8");
  for (let i = 0; i < b.length; i++) if (b[i] === 0x2f) b[i] = 0;
  return b;
}

/** Orders two normalised paths the way archives are written: component by component, bytewise. */
export function compareTarPaths(a: string, b: string): number {
  return Buffer.compare(sortKey(a), sortKey(b));
}

/** Refuses a path that is not relative and normalised (`..`, absolute, `.`, empty components, NUL). */
export function assertEntryPath(path: string, what = "entry path"): void {
  if (typeof path !== "string" || path.length === 0) fail("unsafeArchive", `empty ${what}`);
  if (path.includes("\0")) fail("unsafeArchive", `${what} ${JSON.stringify(path)} contains a NUL byte`);
  if (path.startsWith("/")) fail("unsafeArchive", `${what} ${JSON.stringify(path)} is absolute`);
  for (const part of path.split("/")) {
    if (part === "..") fail("unsafeArchive", `${what} ${JSON.stringify(path)} contains ".."`);
    if (part === "" || part === ".") fail("unsafeArchive", `${what} ${JSON.stringify(path)} is not normalised`);
  }
}

function checkNumbers(e: FsEntry): void {
  const bad = (what: string): never => fail("buildFailed", `entry ${JSON.stringify(e.path)} has an invalid ${what}`);
  if (!Number.isInteger(e.mode) || e.mode < 0 || e.mode > 0o7777) bad(`mode ${e.mode}`);
  if (!Number.isSafeInteger(e.uid) || e.uid < 0) bad(`uid ${e.uid}`);
  if (!Number.isSafeInteger(e.gid) || e.gid < 0) bad(`gid ${e.gid}`);
  if (!(e.type in TYPEFLAG)) bad(`type ${String(e.type)}`);
  if (e.type === "file") {
    if (!e.content) bad("content (a regular file needs one)");
    if (!Number.isSafeInteger(e.content!.size) || e.content!.size < 0) bad(`size ${e.content!.size}`);
  }
  if (e.type === "symlink" && (typeof e.linkname !== "string" || e.linkname === "" || e.linkname.includes("\0"))) bad("symlink target");
  if (e.type === "char" || e.type === "block") {
    for (const n of [e.devmajor ?? 0, e.devminor ?? 0]) if (!Number.isInteger(n) || n < 0 || n > MAX_OCTAL_7) bad("device number");
  }
  // An xattr name becomes part of a PAX key: no "=", blank or control character may end it early.
  for (const k of Object.keys(e.xattrs ?? {})) if (!/^[a-z]+\.[\x21-\x3c\x3e-\x7e]+$/.test(k)) bad(`extended attribute name ${JSON.stringify(k)}`);
}

/**
 * Validates and orders entries for writing: sorts them, refuses duplicates, unsafe paths, missing
 * or non-directory parents (after asking `ancestors`), hard links to absent or directory targets,
 * and rewrites hard-link groups so that the first member in archive order holds the content.
 */
export function planTar(entries: readonly FsEntry[], options: Pick<TarOptions, "ancestors"> = {}): TarEntry[] {
  const byPath = new Map<string, FsEntry>();
  for (const e of entries) {
    assertEntryPath(e.path);
    checkNumbers(e);
    if (byPath.has(e.path)) fail("buildFailed", `duplicate entry ${JSON.stringify(e.path)} in a layer`);
    byPath.set(e.path, e);
  }
  // Parents: resolve missing ones (breadth of the tree is small; each is looked up once).
  for (const e of [...byPath.values()]) {
    let child = e.path;
    for (;;) {
      const slash = child.lastIndexOf("/");
      if (slash < 0) break;
      const parent = child.slice(0, slash);
      let p = byPath.get(parent);
      if (!p) {
        const found = options.ancestors?.(parent);
        if (!found) fail("buildFailed", `the parent directory of ${JSON.stringify(child)} is missing from the layer`);
        if (found.path !== parent) fail("buildFailed", `the ancestor lookup of ${JSON.stringify(parent)} returned ${JSON.stringify(found.path)}`);
        checkNumbers(found);
        byPath.set(parent, found);
        p = found;
      }
      if (p.type !== "dir") fail("unsafeArchive", `${JSON.stringify(child)} is inside ${JSON.stringify(parent)}, which is a ${p.type}, not a directory`);
      child = parent;
    }
  }

  // Hard-link groups: find each link's root (the non-link member), refusing cycles and dangling links.
  const rootOf = (start: FsEntry): FsEntry => {
    let cur = start;
    const seen = new Set<string>();
    while (cur.type === "hardlink") {
      if (seen.has(cur.path)) fail("buildFailed", `hard link cycle through ${JSON.stringify(start.path)}`);
      seen.add(cur.path);
      const target = cur.linkname;
      if (typeof target !== "string") fail("buildFailed", `hard link ${JSON.stringify(cur.path)} has no target`);
      assertEntryPath(target, `hard link target of ${JSON.stringify(cur.path)}`);
      const t = byPath.get(target);
      if (!t) fail("buildFailed", `hard link ${JSON.stringify(cur.path)} points to ${JSON.stringify(target)}, which is not in the layer`);
      cur = t;
    }
    if (cur.type === "dir") fail("unsafeArchive", `hard link ${JSON.stringify(start.path)} points to a directory`);
    return cur;
  };

  const keyed = [...byPath.values()].map((e) => ({ e, key: sortKey(e.path) }));
  keyed.sort((a, b) => Buffer.compare(a.key, b.key));

  const firstOfGroup = new Map<FsEntry, string>();
  const groupRoot = new Map<string, FsEntry>();
  for (const { e } of keyed) {
    if (e.type === "hardlink") groupRoot.set(e.path, rootOf(e));
  }
  const linkedRoots = new Set(groupRoot.values());
  const out: TarEntry[] = [];
  for (const { e } of keyed) {
    const root = e.type === "hardlink" ? groupRoot.get(e.path)! : linkedRoots.has(e) ? e : undefined;
    if (!root) {
      out.push({ entry: e, path: e.path, type: e.type, linkname: e.type === "symlink" ? e.linkname : undefined });
      continue;
    }
    const first = firstOfGroup.get(root);
    if (first === undefined) {
      // The first member in archive order carries the inode: the root's type, metadata and content.
      firstOfGroup.set(root, e.path);
      out.push({ entry: root, path: e.path, type: root.type, linkname: root.type === "symlink" ? root.linkname : undefined });
    } else {
      out.push({ entry: root, path: e.path, type: "hardlink", linkname: first });
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Header encoding

function isAscii(s: string): boolean {
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) > 0x7e || s.charCodeAt(i) < 0x20) return false;
  return true;
}

function writeOctal(block: Buffer, offset: number, width: number, value: number): void {
  // width - 1 digits, zero padded, then NUL (the ustar convention).
  const s = value.toString(8).padStart(width - 1, "0");
  block.write(s, offset, width - 1, "ascii");
  block[offset + width - 1] = 0;
}

/** Splits a long ASCII name into ustar `prefix` (≤155) and `name` (≤100) at a `/`, if possible. */
function splitUstarName(name: string): [prefix: string, name: string] | undefined {
  if (name.length <= 100) return ["", name];
  // The longest prefix that fits, so the same name always splits at the same slash.
  for (let i = Math.min(155, name.length - 2); i > 0; i--) {
    if (name[i] === "/" && name.length - i - 1 <= 100 && name.length - i - 1 > 0) return [name.slice(0, i), name.slice(i + 1)];
  }
  return undefined;
}

/** One PAX record, `<length> <key>=<value>\n`; the value is bytes (an xattr may be binary). */
function paxRecord(key: string, value: string | Buffer): Buffer {
  const head = Buffer.from(` ${key}=`, "utf8");
  const val = typeof value === "string" ? Buffer.from(value, "utf8") : value;
  const bodyLen = head.length + val.length + 1;
  let len = bodyLen + String(bodyLen).length;
  if (String(len).length !== String(len - bodyLen).length) len = bodyLen + String(len).length;
  return Buffer.concat([Buffer.from(String(len), "ascii"), head, val, Buffer.from("\n")]);
}

interface HeaderFields {
  name: string;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtime: number;
  typeflag: string;
  linkname: string;
  devmajor: number;
  devminor: number;
  isDevice: boolean;
}

function ustarBlock(f: HeaderFields, prefix: string): Buffer {
  const b = Buffer.alloc(BLOCK);
  b.write(f.name, 0, 100, "utf8");
  writeOctal(b, 100, 8, f.mode);
  writeOctal(b, 108, 8, f.uid);
  writeOctal(b, 116, 8, f.gid);
  writeOctal(b, 124, 12, f.size);
  writeOctal(b, 136, 12, f.mtime);
  b.fill(0x20, 148, 156);
  b.write(f.typeflag, 156, 1, "ascii");
  b.write(f.linkname, 157, 100, "utf8");
  b.write("ustar\u000000", 257, 8, "ascii");
  // uname/gname stay empty: ownership is numeric, and a name would tie the layer to the host.
  if (f.isDevice) {
    writeOctal(b, 329, 8, f.devmajor);
    writeOctal(b, 337, 8, f.devminor);
  }
  b.write(prefix, 345, 155, "utf8");
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += b[i]!;
  writeOctal(b, 148, 7, sum);
  b[155] = 0x20;
  return b;
}

/** A name truncated to at most `max` bytes without cutting a UTF-8 sequence. */
function truncateUtf8(s: string, max: number): string {
  const b = Buffer.from(s, "utf8");
  if (b.length <= max) return s;
  let end = max;
  while (end > 0 && (b[end]! & 0xc0) === 0x80) end--;
  return b.subarray(0, end).toString("utf8");
}

/**
 * The header block(s) of one entry: a PAX extended header first when ustar cannot hold a value.
 * `size` is the content size for regular files, 0 otherwise.
 */
export function encodeHeader(t: TarEntry, mtime: number): Buffer {
  const e = t.entry;
  const name = t.type === "dir" ? `${t.path}/` : t.path;
  const linkname = t.linkname ?? "";
  const size = t.type === "file" ? e.content!.size : 0;
  const pax: Array<[string, string | Buffer]> = [];
  // Hard links share their inode's attributes: only the member carrying the content has them.
  if (e.xattrs && t.type !== "hardlink") for (const [k, v] of Object.entries(e.xattrs)) pax.push([`SCHILY.xattr.${k}`, v]);

  let ustarName = name;
  let prefix = "";
  const split = isAscii(name) ? splitUstarName(name) : undefined;
  if (split) [prefix, ustarName] = split;
  else {
    pax.push(["path", name]);
    ustarName = truncateUtf8(name, 100);
  }
  let ustarLink = linkname;
  if (!isAscii(linkname) || linkname.length > 100) {
    pax.push(["linkpath", linkname]);
    ustarLink = truncateUtf8(linkname, 100);
  }
  let ustarSize = size;
  if (size > MAX_OCTAL_11) {
    pax.push(["size", String(size)]);
    ustarSize = 0;
  }
  let uid = e.uid;
  if (uid > MAX_OCTAL_7) {
    pax.push(["uid", String(uid)]);
    uid = 0;
  }
  let gid = e.gid;
  if (gid > MAX_OCTAL_7) {
    pax.push(["gid", String(gid)]);
    gid = 0;
  }
  const isDevice = t.type === "char" || t.type === "block";
  const header = ustarBlock(
    {
      name: ustarName,
      mode: e.mode,
      uid,
      gid,
      size: ustarSize,
      mtime,
      typeflag: TYPEFLAG[t.type],
      linkname: ustarLink,
      devmajor: isDevice ? (e.devmajor ?? 0) : 0,
      devminor: isDevice ? (e.devminor ?? 0) : 0,
      isDevice,
    },
    prefix,
  );
  if (pax.length === 0) return header;

  pax.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  const records = Buffer.concat(pax.map(([k, v]) => paxRecord(k, v)));
  // The extended header's own name only matters to readers that ignore PAX; keep it fixed and ASCII.
  const base = t.path.slice(t.path.lastIndexOf("/") + 1).replace(/[^\x20-\x7e]/g, "_");
  const paxHeader = ustarBlock(
    {
      name: `PaxHeaders.0/${base}`.slice(0, 100),
      mode: 0o644,
      uid: 0,
      gid: 0,
      size: records.length,
      mtime,
      typeflag: "x",
      linkname: "",
      devmajor: 0,
      devminor: 0,
      isDevice: false,
    },
    "",
  );
  const padded = Buffer.alloc(Math.ceil(records.length / BLOCK) * BLOCK);
  records.copy(padded);
  return Buffer.concat([paxHeader, padded, header]);
}

/** Whole seconds of the clock, checked to fit a tar header. */
export function tarMtime(clock: Date): number {
  const t = clock.getTime();
  if (!Number.isFinite(t)) fail("buildFailed", "the build clock is not a valid date");
  const s = Math.floor(t / 1000);
  if (s < 0 || s > MAX_OCTAL_11) fail("buildFailed", `the build clock ${clock.toISOString()} cannot be written in a tar header`);
  return s;
}

// ---------------------------------------------------------------------------------------------
// Streaming

/** Accumulates bytes into fixed-size chunks; every chunk handed out is a fresh buffer. */
class Chunker {
  private buf: Buffer = Buffer.allocUnsafeSlow(TAR_CHUNK_SIZE);
  private pos = 0;
  readonly full: Buffer[] = [];

  write(data: Buffer): void {
    let off = 0;
    while (off < data.length) {
      const n = Math.min(TAR_CHUNK_SIZE - this.pos, data.length - off);
      data.copy(this.buf, this.pos, off, off + n);
      this.pos += n;
      off += n;
      if (this.pos === TAR_CHUNK_SIZE) this.rotate();
    }
  }

  zeros(n: number): void {
    while (n > 0) {
      const k = Math.min(TAR_CHUNK_SIZE - this.pos, n);
      this.buf.fill(0, this.pos, this.pos + k);
      this.pos += k;
      n -= k;
      if (this.pos === TAR_CHUNK_SIZE) this.rotate();
    }
  }

  private rotate(): void {
    this.full.push(this.buf);
    this.buf = Buffer.allocUnsafeSlow(TAR_CHUNK_SIZE);
    this.pos = 0;
  }

  /** The last, partial chunk. */
  rest(): Buffer | undefined {
    return this.pos > 0 ? this.buf.subarray(0, this.pos) : undefined;
  }
}

function abortError(signal: AbortSignal): KilnError {
  return new KilnError("cancelled", "the layer write was cancelled", { cause: signal.reason });
}

/** Files up to this size are read in one piece when their content allows it. */
const SMALL_FILE = 256 * 1024;

/**
 * The archive as a sequence of {@link TAR_CHUNK_SIZE} buffers (the last one shorter). Content
 * streams are opened one at a time, in archive order, and must deliver exactly their declared
 * size; a stream that errs, or delivers more or fewer bytes, fails the archive naming the path.
 * Memory use is a few chunks, whatever the size of the archive.
 */
export async function* tarChunks(entries: readonly FsEntry[], options: TarOptions): AsyncGenerator<Buffer, void, undefined> {
  const mtime = tarMtime(options.clock);
  const plan = planTar(entries, options);
  const signal = options.signal;
  const out = new Chunker();
  const at = { i: 0 };
  for (;;) {
    if (signal?.aborted) throw abortError(signal);
    const stop = packWithoutWaiting(plan, at, out, mtime);
    if (stop === "full") {
      while (out.full.length > 0) yield out.full.shift()!;
      continue;
    }
    if (stop === "end") break;
    if (stop === "pause") {
      // Reads of files not in the page cache took their time: let the event loop breathe.
      await new Promise<void>((resolve) => setImmediate(resolve));
      continue;
    }
    // The next entry is a file whose bytes must be waited for.
    const t = plan[at.i++]!;
    out.write(encodeHeader(t, mtime));
    while (out.full.length > 0) yield out.full.shift()!;
    const content = t.entry.content!;
    const declared = content.size;
    if (content.read && declared <= SMALL_FILE) {
      // Small files in one read: no stream per file (most files of a system are small).
      let buf: Buffer;
      try {
        buf = await content.read();
      } catch (err) {
        throw new KilnError("buildFailed", `cannot read the content of ${JSON.stringify(t.path)}`, { cause: err });
      }
      writeContent(out, t, buf);
      continue;
    }
    // Opened even when empty: the ref must still prove it holds what it declared.
    let stream: Readable;
    try {
      stream = content.open();
    } catch (err) {
      throw new KilnError("buildFailed", `cannot open the content of ${JSON.stringify(t.path)}`, { cause: err });
    }
    const got = yield* copyContent(stream, t.path, declared, out, signal);
    if (got !== declared) fail("buildFailed", `the content of ${JSON.stringify(t.path)} has ${got} bytes, but ${declared} were declared`);
    const pad = (BLOCK - (declared % BLOCK)) % BLOCK;
    if (pad) out.zeros(pad);
  }
  out.zeros(2 * BLOCK);
  while (out.full.length > 0) yield out.full.shift()!;
  const rest = out.rest();
  if (rest) yield rest;
}

/** Longest run of {@link packWithoutWaiting}, in milliseconds, before the event loop gets a turn. */
const PACK_BUDGET_MS = 10;

/**
 * Writes entries from `plan[at.i]` on for as long as none needs waiting (everything but files,
 * and files whose content can be read at once), no chunk is full and the time budget lasts;
 * advances `at.i` and says why it stopped. Most of a system's entries go through here, many per
 * turn of the generator.
 */
function packWithoutWaiting(plan: readonly TarEntry[], at: { i: number }, out: Chunker, mtime: number): "full" | "wait" | "pause" | "end" {
  const deadline = performance.now() + PACK_BUDGET_MS;
  for (let n = 1; ; n++) {
    if (out.full.length > 0) return "full";
    if (at.i >= plan.length) return "end";
    if (n % 16 === 0 && performance.now() > deadline) return "pause";
    const t = plan[at.i]!;
    let buf: Buffer | undefined;
    if (t.type === "file") {
      const content = t.entry.content!;
      if (!content.readSync || content.size > SMALL_FILE) return "wait";
      try {
        buf = content.readSync();
      } catch (err) {
        throw new KilnError("buildFailed", `cannot read the content of ${JSON.stringify(t.path)}`, { cause: err });
      }
      if (buf === undefined) return "wait";
    }
    out.write(encodeHeader(t, mtime));
    if (buf) writeContent(out, t, buf);
    at.i++;
  }
}

/** A small file's bytes and padding, checked against the size its header declared. */
function writeContent(out: Chunker, t: TarEntry, buf: Buffer): void {
  const declared = t.entry.content!.size;
  if (buf.length !== declared) fail("buildFailed", `the content of ${JSON.stringify(t.path)} has ${buf.length} bytes, but ${declared} were declared`);
  out.write(buf);
  const pad = (BLOCK - (declared % BLOCK)) % BLOCK;
  if (pad) out.zeros(pad);
}

async function* copyContent(stream: Readable, path: string, declared: number, out: Chunker, signal: AbortSignal | undefined): AsyncGenerator<Buffer, number, undefined> {
  let got = 0;
  const onAbort = (): void => void stream.destroy(abortError(signal!));
  signal?.addEventListener("abort", onAbort, { once: true });
  try {
    for await (const chunk of stream as AsyncIterable<Uint8Array | string>) {
      const buf = Buffer.isBuffer(chunk) ? chunk : typeof chunk === "string" ? Buffer.from(chunk) : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
      got += buf.length;
      if (got > declared) fail("buildFailed", `the content of ${JSON.stringify(path)} is longer than its declared ${declared} bytes`);
      out.write(buf);
      while (out.full.length > 0) yield out.full.shift()!;
    }
  } catch (err) {
    if (signal?.aborted) throw abortError(signal);
    if (err instanceof KilnError) throw err;
    throw new KilnError("buildFailed", `cannot read the content of ${JSON.stringify(path)}`, { cause: err });
  } finally {
    signal?.removeEventListener("abort", onAbort);
    if (!stream.destroyed) stream.destroy();
  }
  return got;
}
