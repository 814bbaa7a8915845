/**
 * hammr's bundle archive, read and written as streams: a gzip-compressed tar with the bundle
 * description (`bundle.yml` or `bundle.json`) at its root and the files where the description's
 * `source` fields say (`bundles/<name>/<version>/...`, the license and logo at
 * `bundles/<name>/...`). Reading streams every file into the blob store as it arrives (the
 * description comes last in hammr's archives), so memory does not grow with the archive; entries
 * that would escape (absolute, `..`), links and special files are refused.
 */
import { createHash, type Hash } from "node:crypto";
import { PassThrough, Transform, type Readable, type TransformCallback } from "node:stream";
import { pipeline } from "node:stream/promises";
import { createGunzip, createGzip } from "node:zlib";
import tar from "tar-stream";
import type { BlobStore, BlobWriter, Digest } from "../blobs/blob-store.js";
import { DESCRIPTION_FILES } from "../domain/bundle-description.js";
import { fail, KilnError } from "../domain/errors.js";
import { normaliseArchivePath, UnsafePathError } from "../rootfs/paths.js";

/** A description larger than this is not one (hammr's are a few kilobytes). */
const MAX_DESCRIPTION = 4 << 20;
/** Entries an archive may hold: each file is held (sealed, unpublished) until the description comes. */
export const MAX_ENTRIES = 100_000;

/** What an archive held: its description's text and every file, in the blob store (unpublished). */
export interface ReadArchive {
  description: { text: string; json: boolean } | undefined;
  /** Files by normalised path; a path met twice (hammr writes a folder's files twice) keeps the last. */
  files: Map<string, BlobWriter>;
  directories: Set<string>;
  /** The archive as uploaded: its size and digests. */
  size: number;
  sha256: string;
  md5: string;
}

/** Counts and hashes the raw archive as it passes; refuses it past `max` bytes. */
class Measure extends Transform {
  readonly sha256: Hash = createHash("sha256");
  readonly md5: Hash = createHash("md5");
  size = 0;
  constructor(private readonly max: number) {
    super();
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.size += chunk.length;
    if (this.size > this.max) return cb(new KilnError("tooLarge", `the archive exceeds the limit of ${this.max} bytes (KILN_MAX_UPLOAD)`));
    this.sha256.update(chunk);
    this.md5.update(chunk);
    cb(null, chunk);
  }
}

function entryPath(name: string): string {
  try {
    return normaliseArchivePath(name);
  } catch (err) {
    if (err instanceof UnsafePathError) fail("unsafeArchive", `the archive's entry ${JSON.stringify(name)} ${err.message}: refused`);
    throw err;
  }
}

async function readText(stream: Readable, name: string): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_DESCRIPTION) fail("invalidField", `the archive's ${name} is larger than ${MAX_DESCRIPTION} bytes`);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString("utf8");
}

/**
 * Reads an uploaded archive (`body`, gzip-compressed tar). The archive and its files together
 * may not exceed `maxSize` each. On any failure every file read so far is dropped.
 */
export async function readBundleArchive(blobs: BlobStore, body: Readable, maxSize: number, maxEntries = MAX_ENTRIES): Promise<ReadArchive> {
  const measure = new Measure(maxSize);
  const gunzip = createGunzip();
  const extract = tar.extract();
  const out: ReadArchive = { description: undefined, files: new Map(), directories: new Set(), size: 0, sha256: "", md5: "" };
  const feeding = pipeline(body, measure, gunzip, extract);
  feeding.catch(() => undefined);
  let total = 0;
  let entries = 0;
  try {
    for await (const entry of extract) {
      const h = entry.header;
      if (++entries > maxEntries) fail("tooLarge", `the archive has more than ${maxEntries} entries`);
      const p = entryPath(h.name);
      if (h.type === "directory") {
        if (p !== "") out.directories.add(p);
        entry.resume();
      } else if (h.type === "file" || h.type === "contiguous-file") {
        if (p === DESCRIPTION_FILES.yaml || p === DESCRIPTION_FILES.json) {
          out.description = { text: await readText(entry as unknown as Readable, p), json: p === DESCRIPTION_FILES.json };
          continue;
        }
        total += h.size ?? 0;
        if (total > maxSize) fail("tooLarge", `the archive's files exceed the limit of ${maxSize} bytes (KILN_MAX_UPLOAD)`);
        const writer = blobs.ingest({ maxSize });
        const before = out.files.get(p);
        out.files.set(p, writer);
        if (before) await before.cancel();
        await pipeline(entry as unknown as Readable, writer);
        await writer.seal();
      } else {
        fail("unsafeArchive", `the archive's entry ${JSON.stringify(h.name)} is a ${h.type}: a bundle archive holds files and directories only`);
      }
    }
    await feeding;
  } catch (err) {
    extract.destroy();
    await feeding.catch(() => undefined);
    for (const w of out.files.values()) await w.cancel();
    if (err instanceof KilnError) throw err;
    const zlib = (err as { code?: string }).code?.startsWith("Z_");
    throw new KilnError("badRequest", zlib ? "the archive is not gzip-compressed (a bundle archive is a .tar.gz)" : `the archive cannot be read: ${(err as Error).message}`, { cause: err });
  }
  out.size = measure.size;
  out.sha256 = measure.sha256.digest("hex");
  out.md5 = measure.md5.digest("hex");
  return out;
}

/** One member of an archive being written: a directory, a file from the blob store, or text. */
export type ArchiveMember =
  | { kind: "directory"; path: string; mtime: Date }
  | { kind: "blob"; path: string; digest: Digest; size: number; mtime: Date }
  | { kind: "text"; path: string; text: string; mtime: Date };

/**
 * Writes members as a gzip-compressed tar, streaming each file from the blob store: the stream
 * it returns is the archive. Modes are 0755 for directories and 0644 for files (the artifacts'
 * own rights travel in the description), owned by root.
 */
export function writeBundleArchive(blobs: BlobStore, members: ArchiveMember[]): Readable {
  const pack = tar.pack();
  const out = new PassThrough();
  const gzip = createGzip();
  void pipeline(pack, gzip, out).catch((err: Error) => out.destroy(err));
  void (async () => {
    for (const m of members) {
      const header = { name: m.path, mtime: m.mtime, uid: 0, gid: 0, uname: "root", gname: "root" };
      if (m.kind === "directory") {
        pack.entry({ ...header, type: "directory", mode: 0o755 });
      } else if (m.kind === "text") {
        pack.entry({ ...header, type: "file", mode: 0o644 }, m.text);
      } else {
        const entry = pack.entry({ ...header, type: "file", mode: 0o644, size: m.size });
        await pipeline(blobs.openVerified(m.digest, m.size), entry);
      }
    }
    pack.finalize();
  })().catch((err: Error) => pack.destroy(err));
  return out;
}
