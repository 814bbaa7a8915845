/**
 * Image assembly: the image config (OCI image-spec `config.md`), an OCI manifest and a Docker v2
 * schema 2 manifest over the same config blob and layer blobs, all serialised canonically and
 * stored in the blob store. Same layers, config and clock give the same digests.
 */
import type { BlobStore, Digest } from "../blobs/blob-store.js";
import { fail } from "../domain/errors.js";
import { putBytes } from "./blob-write.js";
import { canonicalBytes, type JsonValue } from "./canonical-json.js";
import { MediaTypes, type BuiltImage, type BuiltIndex, type ContainerConfig, type Layer } from "./types.js";

/** The PATH an image gets unless its config sets one (Docker's and Debian's default). */
export const DEFAULT_PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/** One line of the image history. */
export interface HistoryEntry {
  createdBy?: string;
  comment?: string;
  author?: string;
  /** True for a step that made no layer (an `ENV`-like change); it does not consume a layer. */
  emptyLayer?: boolean;
}

/** Options of {@link assembleImage}. */
export interface AssembleImageOptions {
  /** OCI architecture (`amd64`, `arm64`, `arm`, `386`, ...). */
  architecture: string;
  /** OCI architecture variant (`v7` for armhf, `v8` for arm64), when it matters. */
  variant?: string;
  os?: "linux";
  config: ContainerConfig;
  /** `created` of the image and of every history entry. */
  clock: Date;
  /** Defaults to one entry per layer with the layer's `createdBy`. Non-empty entries must match the layers one to one. */
  history?: HistoryEntry[];
  blobs: BlobStore;
}

/** A content descriptor (OCI image-spec `descriptor.md`). */
export interface Descriptor {
  mediaType: string;
  digest: Digest;
  size: number;
  annotations?: Record<string, string>;
  platform?: { architecture: string; os: string; variant?: string };
}

/** RFC 3339 in UTC with whole seconds, as Go writes it: tar mtimes have no finer resolution either. */
export function rfc3339(clock: Date): string {
  const t = clock.getTime();
  if (!Number.isFinite(t)) fail("buildFailed", "the build clock is not a valid date");
  return new Date(Math.floor(t / 1000) * 1000).toISOString().replace(".000Z", "Z");
}

function checkStrings(what: string, v: unknown): string[] | undefined {
  if (v === undefined) return undefined;
  if (!Array.isArray(v) || v.some((s) => typeof s !== "string")) fail("invalidField", `${what} must be a list of strings`);
  return v as string[];
}

/** The runtime config as it is written: PATH defaulted, fields validated, nothing else added. */
export function runtimeConfig(config: ContainerConfig): { [key: string]: JsonValue | undefined } {
  const env = checkStrings("Env", config.Env) ?? [];
  for (const kv of env) if (!kv.includes("=") || kv.startsWith("=")) fail("invalidField", `environment entry ${JSON.stringify(kv)} is not NAME=value`);
  const withPath = env.some((kv) => kv.startsWith("PATH=")) ? env : [DEFAULT_PATH_ENV, ...env];
  const labels = config.Labels;
  if (labels !== undefined && (typeof labels !== "object" || labels === null || Object.values(labels).some((v) => typeof v !== "string"))) {
    fail("invalidField", "Labels must map names to strings");
  }
  return {
    Cmd: checkStrings("Cmd", config.Cmd),
    Entrypoint: checkStrings("Entrypoint", config.Entrypoint),
    Env: withPath,
    Labels: labels && Object.keys(labels).length > 0 ? { ...labels } : undefined,
    User: config.User || undefined,
    WorkingDir: config.WorkingDir || undefined,
  };
}

/** The image config document (OCI image-spec `config.md`), canonically serialised. */
export function imageConfigBytes(layers: readonly Layer[], options: Omit<AssembleImageOptions, "blobs">): Buffer {
  if (!/^[a-z0-9]+$/.test(options.architecture)) fail("invalidField", `"${options.architecture}" is not an OCI architecture`);
  if (options.variant !== undefined && !/^[a-z0-9]+$/.test(options.variant)) fail("invalidField", `"${options.variant}" is not an architecture variant`);
  const created = rfc3339(options.clock);
  const history: readonly HistoryEntry[] = options.history ?? layers.map((l) => ({ createdBy: l.createdBy }));
  const nonEmpty = history.filter((h) => !h.emptyLayer).length;
  if (nonEmpty !== layers.length) fail("buildFailed", `the history lists ${nonEmpty} layers, the image has ${layers.length}`);
  return canonicalBytes({
    architecture: options.architecture,
    config: runtimeConfig(options.config),
    created,
    history: history.map((h) => ({
      author: h.author,
      comment: h.comment,
      created,
      created_by: h.createdBy,
      empty_layer: h.emptyLayer ? true : undefined,
    })),
    os: options.os ?? "linux",
    rootfs: { diff_ids: layers.map((l) => l.diffId), type: "layers" },
    variant: options.variant,
  });
}

function descriptorJson(d: Descriptor): JsonValue {
  return { mediaType: d.mediaType, digest: d.digest, size: d.size, annotations: d.annotations, platform: d.platform };
}

/** The OCI image manifest over a config and layers. */
export function ociManifestBytes(config: { digest: Digest; size: number }, layers: readonly Pick<Layer, "mediaType" | "digest" | "size">[]): Buffer {
  return canonicalBytes({
    config: descriptorJson({ mediaType: MediaTypes.ociConfig, ...config }),
    layers: layers.map((l) => descriptorJson({ mediaType: l.mediaType, digest: l.digest, size: l.size })),
    mediaType: MediaTypes.ociManifest,
    schemaVersion: 2,
  });
}

/**
 * The Docker v2 schema 2 manifest over the same blobs (Docker media types; what registries and
 * `docker pull` expect), or undefined when a layer has no Docker media type: Docker's schema 2
 * knows gzip layers only, so an image of zstd layers has only its OCI manifest.
 */
export function dockerManifestBytes(config: { digest: Digest; size: number }, layers: readonly Pick<Layer, "mediaType" | "digest" | "size">[]): Buffer | undefined {
  if (layers.some((l) => l.mediaType !== MediaTypes.ociLayerGzip)) return undefined;
  return canonicalBytes({
    config: descriptorJson({ mediaType: MediaTypes.dockerConfig, ...config }),
    layers: layers.map((l) => descriptorJson({ mediaType: MediaTypes.dockerLayerGzip, digest: l.digest, size: l.size })),
    mediaType: MediaTypes.dockerManifest,
    schemaVersion: 2,
  });
}

/**
 * Writes the image config and both manifests for `layers` (already in the store) and returns the
 * image. The layers' blobs are checked to be present with their declared sizes, so a built image
 * never refers to a missing blob.
 */
export async function assembleImage(layers: readonly Layer[], options: AssembleImageOptions): Promise<BuiltImage> {
  const { blobs } = options;
  for (const l of layers) {
    const st = await blobs.stat(l.digest);
    if (!st || st.size !== l.size) fail("buildFailed", `layer ${l.digest} is not in the blob store with ${l.size} bytes`);
  }
  const config = imageConfigBytes(layers, options);
  const configBlob = await putBytes(blobs, config);
  const configRef = { digest: configBlob.digest, size: configBlob.size };
  const manifest = ociManifestBytes(configRef, layers);
  const dockerManifest = dockerManifestBytes(configRef, layers);
  const m = await putBytes(blobs, manifest);
  const d = dockerManifest ? await putBytes(blobs, dockerManifest) : undefined;
  return {
    manifestDigest: m.digest,
    manifest,
    ...(d ? { dockerManifestDigest: d.digest, dockerManifest } : {}),
    configDigest: configBlob.digest,
    config,
    layers: [...layers],
    architecture: options.architecture,
    os: options.os ?? "linux",
    ...(options.variant ? { variant: options.variant } : {}),
  };
}

/** An image's platform, as an index lists it. */
function platformOf(image: BuiltImage): NonNullable<Descriptor["platform"]> {
  return { architecture: image.architecture, os: image.os, ...(image.variant ? { variant: image.variant } : {}) };
}

/**
 * The index of a multi-architecture image over complete images (already in the store): an OCI
 * image index of their OCI manifests and a Docker manifest list of their Docker manifests (none
 * when an image has no Docker manifest: zstd layers), both stored. Two images of one platform are refused: a client could not choose between them.
 */
export async function assembleIndex(images: readonly BuiltImage[], blobs: BlobStore): Promise<BuiltIndex> {
  if (images.length === 0) fail("buildFailed", "an image index needs at least one image");
  const seen = new Set<string>();
  for (const i of images) {
    const p = platformOf(i);
    const key = `${p.os}/${p.architecture}${p.variant ? `/${p.variant}` : ""}`;
    if (seen.has(key)) fail("invalidField", `two images for the platform ${key}`);
    seen.add(key);
  }
  const list = (mediaType: string, manifestType: string, pick: (i: BuiltImage) => { digest: Digest; bytes: Buffer | undefined }): Buffer =>
    canonicalBytes({
      manifests: images.map((i) => descriptorJson({ mediaType: manifestType, digest: pick(i).digest, size: pick(i).bytes!.length, platform: platformOf(i) })),
      mediaType,
      schemaVersion: 2,
    });
  const index = list(MediaTypes.ociIndex, MediaTypes.ociManifest, (i) => ({ digest: i.manifestDigest, bytes: i.manifest }));
  const dockerList = images.every((i) => i.dockerManifest)
    ? list(MediaTypes.dockerManifestList, MediaTypes.dockerManifest, (i) => ({ digest: i.dockerManifestDigest!, bytes: i.dockerManifest }))
    : undefined;
  const x = await putBytes(blobs, index);
  const d = dockerList ? await putBytes(blobs, dockerList) : undefined;
  return { indexDigest: x.digest, index, ...(d ? { dockerListDigest: d.digest, dockerList } : {}), images: [...images] };
}
