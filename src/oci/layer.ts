/**
 * One pass from filesystem entries to a stored, compressed layer:
 *
 *   content streams → tar chunks → sha256 (diffId) → gzip (libuv thread pool) → blob store (sha256 = digest)
 *
 * Nothing is buffered beyond a few megabytes, whatever the layer's size; several layers written
 * concurrently compress in parallel on the thread pool while the main thread feeds them.
 */
import { createHash } from "node:crypto";
import { Readable, Transform, type TransformCallback } from "node:stream";
import { pipeline } from "node:stream/promises";
import { constants as zc, createGzip } from "node:zlib";
import type { BlobStore, Digest } from "../blobs/blob-store.js";
import { KilnError, fail } from "../domain/errors.js";
import type { FsEntry } from "../rootfs/types.js";
import { ingestBlob, settle } from "./blob-write.js";
import { tarChunks } from "./tar.js";
import type { Layer } from "./types.js";

/**
 * Default gzip level, chosen by measurement on the bookworm minbase tree (118 MB of tar, one
 * layer, `bench/oci-layer.ts`, figures in `bench/oci-results.md`; CPU of the whole writeLayer,
 * hashing included): level 1 gives 52.6 MB for 2.07 s, level 4 49.9 MB for 2.26 s, level 6
 * (zlib's default) 49.0 MB for 3.19 s, level 9 48.9 MB for 8.95 s. Level 4 gets 70% of what
 * level 9 saves over level 1 for 9% more CPU than level 1; level 6 would add 40% CPU for 2%
 * smaller layers, in a build whose whole budget is 4 s on two cores.
 */
export const DEFAULT_GZIP_LEVEL = 4;

/**
 * The gzip header's OS byte. zlib writes the value of the platform it was compiled for (3 on
 * Linux, 19 on macOS, 10 on Windows), which would make the same layer differ between hosts; 255
 * ("unknown") is what Go's compress/gzip writes, so our layers look like the ecosystem's.
 */
export const GZIP_OS_BYTE = 0xff;

/** Options of {@link writeLayer}. */
export interface WriteLayerOptions {
  /** The one clock: every entry's mtime. */
  clock: Date;
  /** 1..9; defaults to {@link DEFAULT_GZIP_LEVEL}. Part of the layer's identity (see {@link layerFormat}). */
  gzipLevel?: number;
  /** The history line of this layer (`packages: libc6, ...`). */
  createdBy: string;
  /** Cancels the write: the temporary blob is removed and the promise rejects with `cancelled`. */
  signal?: AbortSignal;
  /** Resolves parent directories missing from `entries` (see `tar.ts`). */
  ancestors?: (path: string) => FsEntry | undefined;
}

/**
 * A string naming everything besides the entries and the clock that decides a layer's bytes:
 * the tar format revision, the gzip level and the zlib build (another zlib may compress the same
 * tar differently). The builder puts it in the layer cache key so a Node upgrade cannot serve a
 * layer that this process would not reproduce.
 */
export function layerFormat(gzipLevel: number = DEFAULT_GZIP_LEVEL): string {
  return `kiln-tar/1 gzip/${gzipLevel} zlib/${process.versions.zlib}`;
}

/** Sets the gzip header's OS byte (offset 9 of the stream) to {@link GZIP_OS_BYTE}. */
export class GzipOsByte extends Transform {
  private seen = 0;
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    if (this.seen <= 9 && this.seen + chunk.length > 9) {
      chunk = Buffer.from(chunk);
      chunk[9 - this.seen] = GZIP_OS_BYTE;
    }
    this.seen += chunk.length;
    cb(null, chunk);
  }
}

/** The fixed gzip settings every layer (and gzip output of Kiln) uses. */
export function gzipOptions(level: number): import("node:zlib").ZlibOptions {
  if (!Number.isInteger(level) || level < 1 || level > 9) fail("badRequest", `gzip level ${level} is not between 1 and 9`);
  // windowBits/memLevel/strategy are zlib's defaults, written out because they shape the output.
  // A big output chunk means fewer round trips to the thread pool per input chunk.
  return { level, windowBits: 15, memLevel: 8, strategy: zc.Z_DEFAULT_STRATEGY, chunkSize: 256 << 10 };
}

/** What a stored layer is, without its stream. */
export interface LayerInfo {
  digest: Digest;
  diffId: Digest;
  size: number;
  uncompressedSize: number;
  createdBy: string;
}

/** A {@link Layer} over a blob already in the store. */
export function storedLayer(blobs: BlobStore, info: LayerInfo): Layer {
  return {
    digest: info.digest,
    diffId: info.diffId,
    size: info.size,
    uncompressedSize: info.uncompressedSize,
    createdBy: info.createdBy,
    open: () => blobs.open(info.digest),
  };
}

/**
 * Writes `entries` as a deterministic tar, gzips it with fixed settings (header mtime 0, no file
 * name, fixed OS byte) into the blob store, and returns the layer with its digest, diffId and
 * both sizes, all computed in that one pass.
 */
export async function writeLayer(entries: readonly FsEntry[], blobs: BlobStore, options: WriteLayerOptions): Promise<Layer> {
  const { signal } = options;
  if (signal?.aborted) throw new KilnError("cancelled", "the layer write was cancelled", { cause: signal.reason });
  const gzip = createGzip(gzipOptions(options.gzipLevel ?? DEFAULT_GZIP_LEVEL));

  const diffHash = createHash("sha256");
  let uncompressedSize = 0;
  const measure = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      diffHash.update(chunk);
      uncompressedSize += chunk.length;
      cb(null, chunk);
    },
  });
  const tar = Readable.from(tarChunks(entries, { clock: options.clock, signal, ancestors: options.ancestors }), { objectMode: false });
  const writer = ingestBlob(blobs);
  try {
    await pipeline(tar, measure, gzip, new GzipOsByte(), writer, signal ? { signal } : {});
    const blob = await writer.commit();
    return storedLayer(blobs, {
      digest: blob.digest,
      diffId: `sha256:${diffHash.digest("hex")}`,
      size: blob.size,
      uncompressedSize,
      createdBy: options.createdBy,
    });
  } catch (err) {
    if (signal?.aborted) throw new KilnError("cancelled", "the layer write was cancelled", { cause: signal.reason });
    if (err instanceof KilnError) throw err;
    throw new KilnError("buildFailed", "cannot write the layer", { cause: err });
  } finally {
    // Wait until a dropped temp object is gone, so a caller seeing a rejection never sees it.
    await settle(writer);
  }
}
