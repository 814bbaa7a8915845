/**
 * Kiln's OCI image writer: deterministic tar layers, image config and manifests, OCI layout and
 * docker-archive outputs, a layer cache, and reading stored images back.
 */
export { buildClock } from "./clock.js";
export { canonicalBytes, canonicalJson, type JsonValue } from "./canonical-json.js";
export { GZIP_MEMBER_SIZE, normaliseRepoTag, writeDockerArchive, writeDockerArchiveGzip, type DockerArchiveGzipOptions, type DockerArchiveOptions } from "./docker-archive.js";
export {
  DEFAULT_PATH_ENV,
  assembleImage,
  assembleIndex,
  dockerManifestBytes,
  imageConfigBytes,
  ociManifestBytes,
  rfc3339,
  type AssembleImageOptions,
  type Descriptor,
  type HistoryEntry,
} from "./image.js";
export { LayerCache } from "./layer-cache.js";
export { DEFAULT_GZIP_LEVEL, GZIP_OS_BYTE, layerFormat, layerMediaType, storedLayer, writeLayer, type LayerCompression, type LayerInfo, type WriteLayerOptions } from "./layer.js";
export { REF_NAME_ANNOTATION, writeOciLayout, type OciLayoutOptions } from "./layout.js";
export { loadImage, loadStored, readBlobBytes, readLayer, verifyDiffId, type LoadImageOptions, type ReadLayerOptions } from "./load.js";
export { TAR_CHUNK_SIZE, assertEntryPath, compareTarPaths, planTar, tarChunks, type TarEntry, type TarOptions } from "./tar.js";
export { MediaTypes, type BuiltImage, type BuiltIndex, type ContainerConfig, type Layer } from "./types.js";
