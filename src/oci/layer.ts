/**
 * One pass from filesystem entries to a stored, compressed layer:
 *
 *   content streams → tar chunks → sha256 (diffId) → gzip members (libdeflate, libuv's thread pool) → blob store (sha256 = digest)
 *                                                   or zstd (a `zstd` process, see zstd.ts)
 *
 * Nothing is buffered beyond a few megabytes, whatever the layer's size: the gzip holds at most
 * {@link DEFAULT_GZIP_PARALLELISM} members of 1 MiB in flight (see `gzip.ts`). Those members, and
 * several layers written concurrently, compress in parallel on the thread pool while the main
 * thread feeds them.
 */
import { createHash } from "node:crypto";
import { Readable, Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import type { BlobStore, Digest } from "../blobs/blob-store.js";
import { KilnError } from "../domain/errors.js";
import type { FsEntry } from "../rootfs/types.js";
import { ingestBlob, settle } from "./blob-write.js";
import { DEFAULT_GZIP_PARALLELISM, checkGzipLevel, gzipFormat, gzipMembers } from "./gzip.js";
import { tarChunks } from "./tar.js";
import { MediaTypes, type Layer } from "./types.js";
import { createZstdCompressor, zstdFormat } from "./zstd.js";

export { GZIP_OS_BYTE } from "./gzip.js";

/**
 * Default gzip level (libdeflate's scale), chosen by measurement (`bench/RESULTS.md`, "gzip of
 * layers"): on a 120 MB tar, libdeflate level 2 in 1 MiB members writes 42.6 MB for 1.1 s of CPU
 * where zlib level 4 (the default before) wrote 43.2 MB for 2.0 s; level 1 saves another 0.25 s
 * for layers 4.5% larger, level 4 costs 0.1 s more for 1.6% smaller.
 */
export const DEFAULT_GZIP_LEVEL = 2;

/** Options of {@link writeLayer}. */
export interface WriteLayerOptions {
  /** The one clock: every entry's mtime. */
  clock: Date;
  /** 1..9; defaults to {@link DEFAULT_GZIP_LEVEL}. Part of the layer's identity (see {@link layerFormat}). */
  gzipLevel?: number;
  /** `gzip` (default) or `zstd` (fixed level, see zstd.ts). Part of the layer's identity (see {@link layerFormat}). */
  compression?: LayerCompression;
  /** The history line of this layer (`packages: libc6, ...`). */
  createdBy: string;
  /** Cancels the write: the temporary blob is removed and the promise rejects with `cancelled`. */
  signal?: AbortSignal;
  /** Resolves parent directories missing from `entries` (see `tar.ts`). */
  ancestors?: (path: string) => FsEntry | undefined;
  /** gzip members compressed at once (default {@link DEFAULT_GZIP_PARALLELISM}); the bytes do not depend on it. */
  gzipParallelism?: number;
}

/**
 * How a layer's tar is compressed. gzip is what every consumer reads; zstd (smaller, cheaper to
 * make and to read) needs containerd ≥ 1.5, Docker ≥ 23, podman or skopeo.
 */
export type LayerCompression = "gzip" | "zstd";

/** The OCI media type of a layer compressed with `compression`. */
export function layerMediaType(compression: LayerCompression): string {
  return compression === "zstd" ? MediaTypes.ociLayerZstd : MediaTypes.ociLayerGzip;
}

/**
 * A string naming everything besides the entries and the clock that decides a layer's bytes:
 * the tar format revision, the gzip engine and its version, level and member size (another
 * engine or version may compress the same tar differently) — or, for zstd, its level, mode and
 * the zstd program's version. The builder puts it in the layer cache key so an upgrade cannot
 * serve a layer that this process would not reproduce, and a zstd layer is never served to a
 * gzip build (nor the other way round).
 */
export function layerFormat(gzipLevel: number = DEFAULT_GZIP_LEVEL, compression: LayerCompression = "gzip"): string {
  if (compression === "zstd") return `kiln-tar/1 ${zstdFormat()}`;
  return `kiln-tar/1 ${gzipFormat(checkGzipLevel(gzipLevel))}`;
}

/** What a stored layer is, without its stream. */
export interface LayerInfo {
  /** The OCI layer media type ({@link layerMediaType}). */
  mediaType: string;
  digest: Digest;
  diffId: Digest;
  size: number;
  uncompressedSize: number;
  createdBy: string;
}

/** A {@link Layer} over a blob already in the store. */
export function storedLayer(blobs: BlobStore, info: LayerInfo): Layer {
  return {
    mediaType: info.mediaType,
    digest: info.digest,
    diffId: info.diffId,
    size: info.size,
    uncompressedSize: info.uncompressedSize,
    createdBy: info.createdBy,
    open: () => blobs.open(info.digest),
  };
}

/**
 * Writes `entries` as a deterministic tar, gzips it as fixed-size members (each header: mtime 0,
 * no file name, fixed OS byte; see `gzip.ts`) or compresses it with zstd ({@link WriteLayerOptions.compression})
 * into the blob store, and returns the layer with its digest, diffId and
 * both sizes, all computed in that one pass.
 */
export async function writeLayer(entries: readonly FsEntry[], blobs: BlobStore, options: WriteLayerOptions): Promise<Layer> {
  const { signal } = options;
  if (signal?.aborted) throw new KilnError("cancelled", "the layer write was cancelled", { cause: signal.reason });
  const compression = options.compression ?? "gzip";
  const level = checkGzipLevel(options.gzipLevel ?? DEFAULT_GZIP_LEVEL);
  const parallelism = options.gzipParallelism ?? DEFAULT_GZIP_PARALLELISM;

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
    if (compression === "zstd") await pipeline(tar, measure, createZstdCompressor(), writer, signal ? { signal } : {});
    else {
      const gzip = (source: AsyncIterable<Buffer>): AsyncGenerator<Buffer> => gzipMembers(source, { level, parallelism });
      await pipeline(tar, measure, gzip, writer, signal ? { signal } : {});
    }
    const blob = await writer.commit();
    return storedLayer(blobs, {
      mediaType: layerMediaType(compression),
      digest: blob.digest,
      diffId: `sha256:${diffHash.digest("hex")}`,
      size: blob.size,
      uncompressedSize,
      createdBy: options.createdBy,
    });
  } catch (err) {
    if (signal?.aborted) throw new KilnError("cancelled", "the layer write was cancelled", { cause: signal.reason });
    if (err instanceof KilnError) throw err;
    throw new KilnError("buildFailed", `cannot write the layer${err instanceof Error && compression === "zstd" ? ` (zstd: ${err.message})` : ""}`, { cause: err });
  } finally {
    // Wait until a dropped temp object is gone, so a caller seeing a rejection never sees it.
    await settle(writer);
  }
}
