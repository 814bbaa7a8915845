/**
 * OCI shapes shared by the image writer, the builder and the registry client. A layer is a small
 * interface over a stream (go-containerregistry's v1.Layer): nothing hands a whole layer around.
 */
import type { Readable } from "node:stream";
import type { Digest } from "../blobs/blob-store.js";

export const MediaTypes = {
  ociManifest: "application/vnd.oci.image.manifest.v1+json",
  ociIndex: "application/vnd.oci.image.index.v1+json",
  ociConfig: "application/vnd.oci.image.config.v1+json",
  ociLayerGzip: "application/vnd.oci.image.layer.v1.tar+gzip",
  ociLayerZstd: "application/vnd.oci.image.layer.v1.tar+zstd",
  dockerManifest: "application/vnd.docker.distribution.manifest.v2+json",
  dockerManifestList: "application/vnd.docker.distribution.manifest.list.v2+json",
  dockerConfig: "application/vnd.docker.container.image.v1+json",
  dockerLayerGzip: "application/vnd.docker.image.rootfs.diff.tar.gzip",
} as const;

/** A compressed layer stored in the blob store. */
export interface Layer {
  /** The OCI layer media type: `application/vnd.oci.image.layer.v1.tar+gzip` or `+zstd`. */
  mediaType: string;
  /** sha256 of the compressed stream (what manifests reference). */
  digest: Digest;
  /** sha256 of the uncompressed tar (what the image config's rootfs lists). */
  diffId: Digest;
  /** Size of the compressed blob in bytes. */
  size: number;
  /** Size of the uncompressed tar in bytes. */
  uncompressedSize: number;
  /** A one-line description for the image history (`packages: libc6, ...`). */
  createdBy: string;
  /** The compressed bytes. */
  open(): Readable;
}

/** The runtime part of an image config (OCI image-spec `config`). */
export interface ContainerConfig {
  Entrypoint?: string[];
  Cmd?: string[];
  Env?: string[];
  WorkingDir?: string;
  User?: string;
  Labels?: Record<string, string>;
}

/** A complete image whose blobs are all in the blob store. */
export interface BuiltImage {
  /** Digest of the OCI manifest. */
  manifestDigest: Digest;
  manifest: Buffer;
  /**
   * Digest of the Docker v2 schema 2 manifest (same config and layers; what `docker pull` expects).
   * Absent when the layers have no Docker media type (zstd): the OCI manifest is then the only one.
   */
  dockerManifestDigest?: Digest;
  dockerManifest?: Buffer;
  configDigest: Digest;
  config: Buffer;
  layers: Layer[];
  /** OCI architecture (`amd64`). */
  architecture: string;
  /** OCI architecture variant (`v7`, `v8`) when the image has one. */
  variant?: string;
  os: string;
}

/** A multi-architecture image: one complete image per platform, under one index. */
export interface BuiltIndex {
  /** Digest of the OCI image index (its manifests are the images' OCI manifests). */
  indexDigest: Digest;
  index: Buffer;
  /**
   * Digest of the Docker manifest list over the images' Docker manifests (what registries get);
   * absent when an image has none (zstd layers): the OCI index is then what is pushed.
   */
  dockerListDigest?: Digest;
  dockerList?: Buffer;
  /** The images, in the index's order. */
  images: BuiltImage[];
}
