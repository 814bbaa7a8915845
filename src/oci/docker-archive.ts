/**
 * `docker save` format ("docker-archive"), as `docker load` and `skopeo copy docker-archive:...`
 * read it:
 *
 *   <config hex>.json     the image config blob, byte for byte
 *   <diffId hex>.tar      each layer, *uncompressed* (the gzip blob inflated on the fly, its
 *                         sha256 checked against the diffId at the end of the stream) — or, with
 *                         `layers: "gzip"`, <digest hex>.tar.gz: the layer blob as stored (both
 *                         `docker load` and skopeo inflate compressed layer files themselves)
 *   manifest.json         [{"Config": "<config hex>.json", "RepoTags": [...], "Layers": [...]}]
 *
 * Entries are written by the deterministic tar writer (sorted names, which also puts
 * `manifest.json` last as `docker save` does, fixed mtime = the image's `created`, uid/gid 0,
 * mode 0644), so the same image and tags give the same archive bytes. The legacy per-layer
 * `<id>/json`, `<id>/VERSION` and `repositories` files are not written: Docker ≥ 1.10 and skopeo
 * only read `manifest.json`.
 */
import { Readable, type Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { createGunzip } from "node:zlib";
import { VerifyingStream, type BlobStore } from "../blobs/blob-store.js";
import { KilnError, fail } from "../domain/errors.js";
import type { FsEntry } from "../rootfs/types.js";
import { canonicalBytes } from "./canonical-json.js";
import { DEFAULT_GZIP_PARALLELISM, checkGzipLevel, gzipMembers } from "./gzip.js";
import { DEFAULT_GZIP_LEVEL } from "./layer.js";
import { tarChunks } from "./tar.js";
import { MediaTypes, type BuiltImage, type Layer } from "./types.js";

/** Options of {@link writeDockerArchive}. */
export interface DockerArchiveOptions {
  /** `name:tag` references `docker load` tags the image with; a name without a tag gets `:latest`. */
  repoTags?: string[];
  /**
   * `tar` (default): layers as uncompressed tars, as `docker save` writes them. `gzip`: layers as
   * the compressed blobs already in the store — no inflating and recompressing, which is what
   * makes a regenerated image file quick to write.
   */
  layers?: "tar" | "gzip";
  signal?: AbortSignal;
}

/** Options of {@link writeDockerArchiveGzip}. */
export interface DockerArchiveGzipOptions extends DockerArchiveOptions {
  /**
   * 1..9, default {@link DEFAULT_GZIP_LEVEL}; 0 stores (deflate "stored" blocks), for archives
   * whose layers are already compressed, where recompressing gains nothing and costs seconds.
   */
  gzipLevel?: number;
  /**
   * How many gzip members are compressed at once on the thread pool (default 4, libuv's pool
   * size); the bytes are the same for any value.
   */
  parallelism?: number;
}

export { GZIP_MEMBER_SIZE } from "./gzip.js";

// Docker reference grammar (distribution/reference), lower-case name components, optional host
// and port, optional tag; digests are not allowed in RepoTags.
const COMPONENT = "[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*";
const HOST = "(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*(?::[0-9]+)?/)?";
const REPO_TAG = new RegExp(`^${HOST}${COMPONENT}(?:/${COMPONENT})*(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?$`);

/** Checks a `docker load` tag and gives it the `:latest` Docker would assume. */
export function normaliseRepoTag(ref: string): string {
  if (ref.length > 255 || !REPO_TAG.test(ref)) fail("invalidField", `"${ref}" is not a valid image name:tag`);
  const lastSlash = ref.lastIndexOf("/");
  return ref.indexOf(":", lastSlash + 1) >= 0 ? ref : `${ref}:latest`;
}

function inflatedLayer(blobs: BlobStore, layer: Layer): Readable {
  // The inflated tar must be exactly the layer's diffId: checked at the end of the stream.
  const check = new VerifyingStream(layer.diffId, layer.uncompressedSize, `layer ${layer.digest} (inflated)`);
  const source = blobs.openVerified(layer.digest, layer.size);
  const gunzip = createGunzip({ chunkSize: 256 << 10 });
  void pipeline(source, gunzip, check).catch((err: unknown) => {
    check.destroy(err instanceof KilnError ? err : new KilnError("integrityFailed", `layer ${layer.digest} cannot be decompressed`, { cause: err }));
  });
  return check;
}

/** The archive's members, for the tar writer. */
function archiveEntries(image: BuiltImage, blobs: BlobStore, repoTags: string[], compressed: boolean): FsEntry[] {
  // `docker load` before Docker 23 reads gzip (and uncompressed) layers only, and the inflating
  // writer here is gzip's: an image of zstd layers goes to an OCI layout or a registry instead.
  const other = image.layers.find((l) => l.mediaType !== MediaTypes.ociLayerGzip);
  if (other) fail("unsupportedMediaType", `a docker-archive is written from gzip layers only; layer ${other.digest} is ${other.mediaType}`);
  const file = (path: string, size: number, open: () => Readable): FsEntry => ({ path, type: "file", mode: 0o644, uid: 0, gid: 0, content: { size, open } });
  const configName = `${image.configDigest.slice(7)}.json`;
  const layerName = (l: Layer): string => (compressed ? `${l.digest.slice(7)}.tar.gz` : `${l.diffId.slice(7)}.tar`);
  const layerNames = image.layers.map(layerName);
  const manifest = canonicalBytes([{ Config: configName, Layers: layerNames, RepoTags: repoTags }]);
  const entries: FsEntry[] = [
    file(configName, image.config.length, () => Readable.from([image.config])),
    file("manifest.json", manifest.length, () => Readable.from([manifest])),
  ];
  // The same diffId twice (two identical layers) is one file listed twice, as docker save does.
  const seen = new Set<string>();
  for (const l of image.layers) {
    const name = layerName(l);
    if (seen.has(name)) continue;
    seen.add(name);
    entries.push(compressed ? file(name, l.size, () => blobs.openVerified(l.digest, l.size)) : file(name, l.uncompressedSize, () => inflatedLayer(blobs, l)));
  }
  return entries;
}

function archiveClock(image: BuiltImage): Date {
  try {
    const created = (JSON.parse(image.config.toString("utf8")) as { created?: unknown }).created;
    const d = typeof created === "string" ? new Date(created) : undefined;
    if (d && Number.isFinite(d.getTime()) && d.getTime() >= 0) return d;
  } catch {
    // An unreadable config still gets a deterministic archive, dated at the epoch.
  }
  return new Date(0);
}

/** The archive's tar stream, in fixed-size chunks. */
function archiveChunks(image: BuiltImage, blobs: BlobStore, options: DockerArchiveOptions): AsyncGenerator<Buffer, void, undefined> {
  const repoTags = (options.repoTags ?? []).map(normaliseRepoTag);
  return tarChunks(archiveEntries(image, blobs, repoTags, options.layers === "gzip"), { clock: archiveClock(image), signal: options.signal });
}

/**
 * Streams `image` as an uncompressed docker-archive into `out`, then ends it. On error (a missing
 * or corrupt blob, a cancellation) `out` is destroyed and the promise rejects.
 */
export async function writeDockerArchive(out: Writable, image: BuiltImage, blobs: BlobStore, options: DockerArchiveOptions = {}): Promise<void> {
  await pipeline(Readable.from(archiveChunks(image, blobs, options), { objectMode: false }), out, options.signal ? { signal: options.signal } : {});
}

/**
 * Streams `image` as a gzip-compressed docker-archive (`.tar.gz`) into `out`, then ends it: gzip
 * members compressed in parallel by the one gzip writer of layers (`gzip.ts`; one zlib stream was
 * the bottleneck of this path on two cores, `bench/oci-results.md`).
 *
 * Readers: `gzip -d`, Python's gzip module and Go's compress/gzip read every member (tested for
 * the first two; Go is what `docker load` uses to inflate a compressed archive — not tested
 * here, there is no Docker). skopeo 1.9.3 does *not* read a compressed docker-archive at all,
 * single- or multi-member: it parses the file as a plain tar ("invalid tar header"); gunzip it
 * first. (`test/oci/docker-archive.test.ts` pins that behaviour.)
 */
export async function writeDockerArchiveGzip(out: Writable, image: BuiltImage, blobs: BlobStore, options: DockerArchiveGzipOptions = {}): Promise<void> {
  const level = checkGzipLevel(options.gzipLevel ?? DEFAULT_GZIP_LEVEL, 0);
  const parallelism = options.parallelism ?? DEFAULT_GZIP_PARALLELISM;
  const members = gzipMembers(archiveChunks(image, blobs, options), { level, parallelism });
  await pipeline(Readable.from(members, { objectMode: false }), out, options.signal ? { signal: options.signal } : {});
}
