/**
 * A `Packages` index (`.xz`, `.gz` or plain) turned into {@link BinaryPackage}s, checked against
 * the SHA256 the signed Release gives, in one pass over the file.
 *
 * Debian's full index is 9 MB of xz that takes a second to inflate and a third of one to parse,
 * so two caches sit in front, both keyed by that signed SHA256:
 *
 *   <cacheDir>/text/<sha256>.txt   the inflated text of an index verified earlier
 *   (memory)                        the parsed packages of the last few indices
 */
import { createHash, randomBytes } from "node:crypto";
import { createReadStream } from "node:fs";
import { mkdir, readFile, readdir, rename, rm, stat, writeFile } from "node:fs/promises";
import path from "node:path";
import { PassThrough, Transform, Writable, type Duplex, type TransformCallback } from "node:stream";
import { pipeline } from "node:stream/promises";
import { createGunzip } from "node:zlib";
import { KilnError, isKilnError } from "../domain/errors.js";
import { parseParagraphs } from "./control.js";
import { lzma } from "./deb-decompress.js";
import { checkExpected, errorReason, type Expected } from "./mirror.js";
import { packageFromParagraph } from "./package.js";
import type { BinaryPackage } from "./types.js";

/** How an index file is compressed (from its name: `.xz`, `.gz`, or neither). */
export type Compression = "xz" | "gz" | "none";


/** JavaScript strings stop a little above 500 M characters; an index is ~50 MB. */
const MAX_TEXT_BYTES = 512 * 1024 * 1024;
/** Parsed indices kept in memory, and how many characters of index text they may hold in all. */
const MEMO_ENTRIES = 8;
const MEMO_CHARS = 160_000_000;

const memo = new Map<string, { packages: BinaryPackage[]; chars: number }>();

function remember(sha256: string, packages: BinaryPackage[], chars: number): void {
  memo.delete(sha256);
  memo.set(sha256, { packages, chars });
  let total = 0;
  for (const e of memo.values()) total += e.chars;
  for (const [key, e] of memo) {
    if (memo.size <= 1 || (memo.size <= MEMO_ENTRIES && total <= MEMO_CHARS)) break;
    memo.delete(key);
    total -= e.chars;
  }
}

/** Forgets every parsed index kept in memory (tests; a server under memory pressure). */
export function clearIndexMemo(): void {
  memo.clear();
}

/** The compression of an index from its file name. */
export function compressionOf(name: string): Compression {
  return name.endsWith(".xz") ? "xz" : name.endsWith(".gz") ? "gz" : "none";
}

class Hasher extends Transform {
  readonly hash = createHash("sha256");
  bytes = 0;
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.hash.update(chunk);
    this.bytes += chunk.length;
    cb(null, chunk);
  }
}

/** Collects the inflated bytes, refusing more than a string can hold. */
class Collector extends Writable {
  readonly chunks: Buffer[] = [];
  bytes = 0;
  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.bytes += chunk.length;
    if (this.bytes > MAX_TEXT_BYTES) return cb(new Error(`it inflates to more than ${MAX_TEXT_BYTES} bytes`));
    this.chunks.push(chunk);
    cb();
  }
}

function inflater(compression: Compression): Duplex {
  if (compression === "xz") return lzma().createDecompressor();
  if (compression === "gz") return createGunzip();
  return new PassThrough();
}

async function hashFile(file: string): Promise<{ sha256: string; size: number }> {
  const h = new Hasher();
  await pipeline(createReadStream(file), h, new Writable({ write: (_c, _e, cb) => cb() }));
  return { sha256: h.hash.digest("hex"), size: h.bytes };
}

/** Reads, verifies and inflates an index file. */
async function inflate(file: string, compression: Compression, expect: Expected, what: string, signal: AbortSignal | undefined): Promise<string> {
  const hasher = new Hasher();
  const collector = new Collector();
  try {
    await pipeline(createReadStream(file, { highWaterMark: 1 << 20 }), hasher, inflater(compression), collector, ...(signal ? [{ signal }] : []));
  } catch (err) {
    if (signal?.aborted) throw new KilnError("cancelled", `reading ${what} was cancelled`, { cause: err });
    // A hash mismatch explains a broken stream better than the decompressor's complaint.
    const whole = await hashFile(file);
    checkExpected(expect, whole.sha256, whole.size, what);
    throw new KilnError("repositoryFailed", `${what} cannot be read: ${errorReason(err)}`, { cause: err });
  }
  checkExpected(expect, hasher.hash.digest("hex"), hasher.bytes, what);
  return Buffer.concat(collector.chunks, collector.bytes).toString("utf8");
}

async function readTextCache(cacheDir: string, sha256: string): Promise<string | undefined> {
  try {
    return await readFile(path.join(cacheDir, "text", `${sha256}.txt`), "utf8");
  } catch {
    return undefined;
  }
}

async function writeTextCache(cacheDir: string, sha256: string, text: string): Promise<void> {
  const dir = path.join(cacheDir, "text");
  const tmp = path.join(dir, `.${sha256}.${randomBytes(6).toString("hex")}.tmp`);
  try {
    await mkdir(dir, { recursive: true });
    await writeFile(tmp, text);
    await rename(tmp, path.join(dir, `${sha256}.txt`));
  } catch {
    // The cache is an optimisation: a full disk must not fail the build.
    await rm(tmp, { force: true }).catch(() => undefined);
  }
}

/**
 * Drops inflated texts not read for `maxAgeMs` (a superseded index is never read again).
 * The builder may call this now and then; nothing else removes them.
 */
export async function pruneTextCache(cacheDir: string, maxAgeMs: number): Promise<number> {
  const dir = path.join(cacheDir, "text");
  let removed = 0;
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return 0;
  }
  for (const name of names) {
    const file = path.join(dir, name);
    const st = await stat(file).catch(() => undefined);
    if (st && Date.now() - Math.max(st.atimeMs, st.mtimeMs) > maxAgeMs) {
      await rm(file, { force: true });
      removed++;
    }
  }
  return removed;
}

function parseIndex(text: string, what: string): BinaryPackage[] {
  try {
    return parseParagraphs(text).map((p) => packageFromParagraph(p));
  } catch (err) {
    if (isKilnError(err)) throw new KilnError("repositoryFailed", `${what}: ${err.message}`, { cause: err });
    throw err;
  }
}

/** Where an index comes from: a way to get it on disk, once we know we need its bytes. */
export interface IndexSource {
  expect: Expected;
  compression: Compression;
  /** For messages: `main/binary-amd64/Packages.xz of bookworm at http://...`. */
  what: string;
  /** Makes the (compressed) file available locally; called only on a cache miss. */
  fetch(): Promise<{ path: string; fromCache: boolean; retry?: () => Promise<{ path: string; fromCache: boolean }> }>;
}

/**
 * The packages of an index, from memory, from the inflated-text cache, or from the file itself
 * (verified against `expect` while it is inflated). A cached file that fails verification is
 * fetched again once before the error is reported.
 */
export async function loadPackagesIndex(
  source: IndexSource,
  options: { cacheDir: string; signal?: AbortSignal },
): Promise<{ packages: BinaryPackage[]; cached: boolean }> {
  const sha = source.expect.sha256;
  const hit = memo.get(sha);
  if (hit) {
    remember(sha, hit.packages, hit.chars);
    return { packages: hit.packages, cached: true };
  }
  let text = await readTextCache(options.cacheDir, sha);
  let cached = text !== undefined;
  if (text === undefined) {
    const local = await source.fetch();
    try {
      text = await inflate(local.path, source.compression, source.expect, source.what, options.signal);
    } catch (err) {
      if (!(local.fromCache && local.retry && isKilnError(err, "integrityFailed"))) throw err;
      const again = await local.retry();
      text = await inflate(again.path, source.compression, source.expect, source.what, options.signal);
    }
    cached = local.fromCache;
    await writeTextCache(options.cacheDir, sha, text);
  }
  const packages = parseIndex(text, source.what);
  remember(sha, packages, text.length);
  return { packages, cached };
}
