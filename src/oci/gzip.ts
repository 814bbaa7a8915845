/**
 * Kiln's one gzip writer, for layers and gzip-compressed image files: the stream is cut at fixed
 * offsets into {@link GZIP_MEMBER_SIZE} slices, each compressed by libdeflate (a native addon,
 * `native/deflate.c`, statically linked with Debian's `libdeflate-dev`) on libuv's thread pool as
 * an independent gzip member, several at once, and the members are emitted in order.
 *
 * Concatenated members are one valid gzip file (RFC 1952 §2.2): `gzip -d`, Go's compress/gzip
 * (containerd, Docker, umoci, skopeo), Python's gzip module and Node's zlib read them all. The
 * cut points are offsets of the uncompressed stream, never of how its producer chunked it, so the
 * bytes depend only on the input, the level, the member size and libdeflate's version — the same
 * for any parallelism — which {@link gzipFormat} names for cache keys. Every member's header has
 * mtime 0, no file name and OS byte 255 ({@link GZIP_OS_BYTE}).
 *
 * Why libdeflate and members (see `bench/RESULTS.md`): on the bookworm minbase tar libdeflate at
 * level 2 writes smaller layers than zlib at level 4 for about half the CPU, and independent
 * members let the two cores compress one large layer together. Memory stays bounded: at most
 * `parallelism` members (input and output) are in flight per stream.
 */
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { KilnError, fail } from "../domain/errors.js";
import { lazy } from "../domain/lazy.js";

/** Size of the uncompressed slice each gzip member holds (the tar writer's chunk size). */
export const GZIP_MEMBER_SIZE = 1 << 20;

/** How many members of one stream are compressed at once (libuv's default pool size). */
export const DEFAULT_GZIP_PARALLELISM = 4;

/**
 * The gzip header's OS byte. zlib writes the value of the platform it was compiled for (3 on
 * Linux, 19 on macOS, 10 on Windows), which would make the same layer differ between hosts; 255
 * ("unknown") is what Go's compress/gzip and libdeflate write, so our layers look like the
 * ecosystem's.
 */
export const GZIP_OS_BYTE = 0xff;

interface DeflateAddon {
  /** One gzip member of `data` at `level` (0..12), compressed on libuv's thread pool. */
  gzipMember(data: Buffer, level: number): Promise<Buffer>;
  /** libdeflate's version the addon was built against (statically linked). */
  version: string;
}

const ADDON = "build/Release/kiln_deflate.node";

const deflate = lazy((): DeflateAddon => {
  try {
    // The package root's build/: two levels up from src/oci (tests) and dist/oci (the built CLI and
    // server), further from a compiled copy elsewhere in the tree (the benchmarks' .cache/bench-js).
    let dir = path.dirname(fileURLToPath(import.meta.url));
    while (!existsSync(path.join(dir, ADDON)) && path.dirname(dir) !== dir) dir = path.dirname(dir);
    return createRequire(import.meta.url)(path.join(dir, ADDON)) as DeflateAddon;
  } catch (err) {
    throw new KilnError("internal", "Kiln's native gzip (libdeflate) is not built: install Debian's libdeflate-dev, then run `npm run build`", { cause: err });
  }
});

/** Checks a gzip level: 0 (stored blocks, no compression) to 9. */
export function checkGzipLevel(level: number, min = 1): number {
  if (!Number.isInteger(level) || level < min || level > 9) fail("badRequest", `gzip level ${level} is not between ${min} and 9`);
  return level;
}

/**
 * Everything besides the input that decides the bytes of {@link gzipMembers}' output: engine and
 * its version, level, member size. Part of the layer cache key (see `layerFormat`), so a cache
 * never serves bytes another engine, version or setting would not reproduce.
 */
export function gzipFormat(level: number): string {
  return `gzip/${checkGzipLevel(level, 0)} libdeflate/${deflate().version} members/${GZIP_MEMBER_SIZE}`;
}

/** One gzip member of `data` (header: mtime 0, no name, OS byte 255). */
export function gzipMember(data: Buffer, level: number): Promise<Buffer> {
  checkGzipLevel(level, 0);
  return deflate().gzipMember(data, level);
}

/** Options of {@link gzipMembers}. */
export interface GzipMembersOptions {
  /** 0 (stored) to 9. */
  level: number;
  /** Members compressed at once, at least 1; default {@link DEFAULT_GZIP_PARALLELISM}. Does not change the bytes. */
  parallelism?: number;
}

/**
 * Compresses `source` as gzip members of {@link GZIP_MEMBER_SIZE} uncompressed bytes each (the
 * last one shorter; an empty source gives one empty member, so the output is always a gzip file),
 * up to `parallelism` at once, yielding them in order. When the consumer stops early (an error,
 * a cancellation), members still compressing finish on the pool and are dropped.
 */
export async function* gzipMembers(source: AsyncIterable<Buffer>, options: GzipMembersOptions): AsyncGenerator<Buffer, void, undefined> {
  const { level } = options;
  const parallelism = options.parallelism ?? DEFAULT_GZIP_PARALLELISM;
  checkGzipLevel(level, 0);
  if (!Number.isInteger(parallelism) || parallelism < 1) fail("badRequest", `gzip parallelism ${parallelism} is not a positive count`);
  const engine = deflate();
  const pending: Promise<Buffer>[] = [];
  const parts: Buffer[] = [];
  let size = 0;
  let members = 0;
  const start = (data: Buffer): void => {
    const member = engine.gzipMember(data, level);
    // Handled here so a member failing while an earlier one is awaited, or still compressing when
    // the consumer stops (it finishes on the pool and is dropped), is not an unhandled rejection;
    // awaiting it in turn still throws.
    member.catch(() => undefined);
    pending.push(member);
    members++;
  };
  for await (const chunk of source) {
    if (chunk.length === 0) continue;
    parts.push(chunk);
    size += chunk.length;
    while (size >= GZIP_MEMBER_SIZE) {
      // The slice of exactly GZIP_MEMBER_SIZE bytes: the first part itself when it is exactly
      // that (the tar writer's chunks are), else a copy of the first bytes of `parts`.
      let member: Buffer;
      if (parts[0]!.length === GZIP_MEMBER_SIZE) {
        member = parts.shift()!;
      } else {
        member = Buffer.concat(parts, GZIP_MEMBER_SIZE);
        let skip = GZIP_MEMBER_SIZE;
        while (skip > 0 && skip >= parts[0]!.length) skip -= parts.shift()!.length;
        if (skip > 0) parts[0] = parts[0]!.subarray(skip);
      }
      size -= GZIP_MEMBER_SIZE;
      start(member);
      if (pending.length >= parallelism) yield await pending.shift()!;
    }
  }
  if (size > 0 || members === 0) start(parts.length === 1 ? parts[0]! : Buffer.concat(parts, size));
  while (pending.length > 0) yield await pending.shift()!;
}
