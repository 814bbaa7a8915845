/**
 * Reading images back from the blob store: a {@link BuiltImage} from a stored manifest, so that
 * the registry client and the download writers can work from a digest recorded in the database.
 */
import { createHash } from "node:crypto";
import { Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { createGunzip } from "node:zlib";
import { isDigest, type BlobStore, type Digest } from "../blobs/blob-store.js";
import { KilnError, fail } from "../domain/errors.js";
import { putBytes } from "./blob-write.js";
import { assembleIndex, dockerManifestBytes, ociManifestBytes, type Descriptor } from "./image.js";
import { storedLayer } from "./layer.js";
import { MediaTypes, type BuiltImage, type BuiltIndex, type Layer } from "./types.js";

/** Manifests and configs are small; anything bigger is not one of ours and is not read into memory. */
const MAX_DOCUMENT_SIZE = 4 << 20;

const GZIP_LAYER_TYPES: ReadonlySet<string> = new Set([MediaTypes.ociLayerGzip, MediaTypes.dockerLayerGzip]);

/** A small blob's bytes, checked against its digest. */
export async function readBlobBytes(blobs: BlobStore, digest: Digest, maxSize: number = MAX_DOCUMENT_SIZE): Promise<Buffer> {
  const st = await blobs.stat(digest);
  if (!st) fail("notFound", `blob ${digest} is not in the store`);
  if (st.size > maxSize) fail("integrityFailed", `blob ${digest} is ${st.size} bytes, more than a manifest or config may be`);
  const chunks: Buffer[] = [];
  await pipeline(
    blobs.openVerified(digest, st.size),
    new Writable({
      write(chunk: Buffer, _enc, cb) {
        chunks.push(chunk);
        cb();
      },
    }),
  );
  return Buffer.concat(chunks);
}

function parseJson(bytes: Buffer, what: string): Record<string, unknown> {
  try {
    const v: unknown = JSON.parse(bytes.toString("utf8"));
    if (typeof v === "object" && v !== null && !Array.isArray(v)) return v as Record<string, unknown>;
  } catch (err) {
    throw new KilnError("integrityFailed", `the ${what} is not valid JSON`, { cause: err });
  }
  fail("integrityFailed", `the ${what} is not a JSON object`);
}

function parseDescriptor(v: unknown, what: string): Descriptor {
  const d = v as Partial<Descriptor> | null;
  if (!d || typeof d !== "object" || typeof d.mediaType !== "string" || typeof d.digest !== "string" || !isDigest(d.digest) || !Number.isSafeInteger(d.size) || d.size! < 0) {
    fail("integrityFailed", `the ${what} descriptor is malformed`);
  }
  return { mediaType: d.mediaType, digest: d.digest, size: d.size! };
}

/** Options of {@link readLayer}. */
export interface ReadLayerOptions {
  /** The layer's diffId, from the image config. */
  diffId: Digest;
  createdBy: string;
  /**
   * Decompress the blob once to learn its exact uncompressed size and check its diffId (default).
   * `false` takes the size from the gzip trailer instead: exact for a single-member gzip under
   * 4 GiB (every layer {@link writeLayer} makes), wrong otherwise — fine when only the compressed
   * blob will be used (a registry push).
   */
  verify?: boolean;
}

/** A {@link Layer} over a stored gzip layer blob named by a manifest descriptor. */
export async function readLayer(blobs: BlobStore, descriptor: Descriptor, options: ReadLayerOptions): Promise<Layer> {
  if (!GZIP_LAYER_TYPES.has(descriptor.mediaType)) fail("unsupportedMediaType", `layer ${descriptor.digest} has media type ${descriptor.mediaType}; only gzip layers are supported`);
  const st = await blobs.stat(descriptor.digest);
  if (!st) fail("notFound", `layer ${descriptor.digest} is not in the blob store`);
  if (st.size !== descriptor.size) fail("integrityFailed", `layer ${descriptor.digest} has ${st.size} bytes, its descriptor says ${descriptor.size}`);
  let uncompressedSize: number;
  if (options.verify === false) {
    if (st.size < 18) fail("integrityFailed", `layer ${descriptor.digest} is too short to be gzip`);
    const tail = await readBlobRange(blobs, descriptor.digest, st.size - 4, st.size - 1);
    uncompressedSize = tail.readUInt32LE(0);
  } else {
    uncompressedSize = await verifyDiffId(blobs, descriptor.digest, options.diffId);
  }
  return storedLayer(blobs, { mediaType: MediaTypes.ociLayerGzip, digest: descriptor.digest, diffId: options.diffId, size: st.size, uncompressedSize, createdBy: options.createdBy });
}

async function readBlobRange(blobs: BlobStore, digest: Digest, start: number, end: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of blobs.open(digest, { start, end })) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/** Decompresses a layer blob, checks the sha256 of the tar against `diffId`, returns the tar's size. */
export async function verifyDiffId(blobs: BlobStore, digest: Digest, diffId: Digest): Promise<number> {
  const hash = createHash("sha256");
  let size = 0;
  try {
    await pipeline(
      blobs.openVerified(digest),
      createGunzip(),
      new Writable({
        highWaterMark: 1 << 20,
        write(chunk: Buffer, _enc, cb) {
          hash.update(chunk);
          size += chunk.length;
          cb();
        },
      }),
    );
  } catch (err) {
    if (err instanceof KilnError) throw err;
    throw new KilnError("integrityFailed", `layer ${digest} cannot be decompressed`, { cause: err });
  }
  const got = `sha256:${hash.digest("hex")}`;
  if (got !== diffId) fail("integrityFailed", `layer ${digest} decompresses to ${got}, the image config says ${diffId}`);
  return size;
}

/** Options of {@link loadImage}. */
export interface LoadImageOptions {
  /** See {@link ReadLayerOptions.verify}; default true (exact sizes, diffIds checked). */
  verifyLayers?: boolean;
}

/**
 * The image whose OCI or Docker v2 manifest is stored under `manifestDigest`. The other manifest
 * is derived (same config and layers) and stored too, so both digests can be served and pushed.
 */
export async function loadImage(blobs: BlobStore, manifestDigest: Digest, options: LoadImageOptions = {}): Promise<BuiltImage> {
  const manifestBytes = await readBlobBytes(blobs, manifestDigest);
  const manifest = parseJson(manifestBytes, "manifest");
  const config = parseDescriptor(manifest.config, "config");
  const kind =
    manifest.mediaType === MediaTypes.ociManifest || (manifest.mediaType === undefined && config.mediaType === MediaTypes.ociConfig)
      ? "oci"
      : manifest.mediaType === MediaTypes.dockerManifest
        ? "docker"
        : fail("unsupportedMediaType", `manifest ${manifestDigest} is a ${String(manifest.mediaType)}, not an image manifest`);
  if (manifest.schemaVersion !== 2) fail("integrityFailed", `manifest ${manifestDigest} is not schema version 2`);
  if (!Array.isArray(manifest.layers)) fail("integrityFailed", `manifest ${manifestDigest} lists no layers`);
  const descriptors = manifest.layers.map((d, i) => parseDescriptor(d, `layer ${i}`));

  const configBytes = await readBlobBytes(blobs, config.digest);
  if (configBytes.length !== config.size) fail("integrityFailed", `config ${config.digest} has ${configBytes.length} bytes, the manifest says ${config.size}`);
  const doc = parseJson(configBytes, "image config");
  const rootfs = doc.rootfs as { diff_ids?: unknown } | undefined;
  const diffIds = rootfs?.diff_ids;
  if (!Array.isArray(diffIds) || !diffIds.every((d): d is Digest => typeof d === "string" && isDigest(d))) fail("integrityFailed", "the image config has no valid rootfs.diff_ids");
  if (diffIds.length !== descriptors.length) fail("integrityFailed", `the manifest has ${descriptors.length} layers, the config ${diffIds.length} diff_ids`);
  const history = Array.isArray(doc.history) ? (doc.history as Array<{ created_by?: unknown; empty_layer?: unknown }>) : [];
  const createdBy = history.filter((h) => h && h.empty_layer !== true).map((h) => (typeof h.created_by === "string" ? h.created_by : ""));
  if (typeof doc.architecture !== "string" || typeof doc.os !== "string") fail("integrityFailed", "the image config lacks architecture or os");

  const layers = await Promise.all(
    descriptors.map((d, i) => readLayer(blobs, d, { diffId: diffIds[i]!, createdBy: createdBy[i] ?? "", verify: options.verifyLayers ?? true })),
  );
  const configRef = { digest: config.digest, size: config.size };
  // readLayer takes gzip layers only, so a Docker manifest can always be derived here.
  const other = (kind === "oci" ? dockerManifestBytes(configRef, layers) : ociManifestBytes(configRef, layers)) ?? fail("unsupportedMediaType", `manifest ${manifestDigest} has layers Docker's manifest cannot name`);
  const otherBlob = await putBytes(blobs, other);
  const [oci, docker] = kind === "oci" ? [{ bytes: manifestBytes, digest: manifestDigest }, { bytes: other, digest: otherBlob.digest }] : [{ bytes: other, digest: otherBlob.digest }, { bytes: manifestBytes, digest: manifestDigest }];
  return {
    manifestDigest: oci.digest,
    manifest: oci.bytes,
    dockerManifestDigest: docker.digest,
    dockerManifest: docker.bytes,
    configDigest: config.digest,
    config: configBytes,
    layers,
    architecture: doc.architecture,
    os: doc.os,
    ...(typeof doc.variant === "string" ? { variant: doc.variant } : {}),
  };
}

/**
 * The image or multi-architecture image stored under `digest`: an OCI image index is loaded
 * image by image (its Docker manifest list derived and stored too), anything else as {@link loadImage}.
 */
export async function loadStored(blobs: BlobStore, digest: Digest, options: LoadImageOptions = {}): Promise<BuiltImage | BuiltIndex> {
  const doc = parseJson(await readBlobBytes(blobs, digest), "manifest");
  if (doc.mediaType !== MediaTypes.ociIndex) return loadImage(blobs, digest, options);
  if (!Array.isArray(doc.manifests)) fail("integrityFailed", `index ${digest} lists no manifests`);
  const images: BuiltImage[] = [];
  for (const [i, m] of doc.manifests.entries()) images.push(await loadImage(blobs, parseDescriptor(m, `manifest ${i}`).digest, options));
  const index = await assembleIndex(images, blobs);
  if (index.indexDigest !== digest) fail("integrityFailed", `index ${digest} is not the index Kiln writes for its images (${index.indexDigest})`);
  return index;
}
