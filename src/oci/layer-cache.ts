/**
 * A cache of written layers keyed by the builder's input key (which packages, which files, which
 * clock, which {@link layerFormat}): a layer built once is reused instead of re-tarred and
 * re-compressed. Each entry is a small JSON record under `dir`, named by the sha256 of the key:
 *
 *   <dir>/<sha256(key) hex>.json   {"createdBy":..,"diffId":..,"digest":..,"key":..,"mediaType":..,"size":..,"uncompressedSize":..,"note":..}
 *
 * `note` is what the builder learnt while making the layer and needs again when it reuses it
 * (the fix-up layer's report of package scripts): JSON, kept with the layer it describes.
 *
 * Records are published by rename, so a reader sees a whole record or none. The blob is the
 * truth: a record whose blob has left the store (garbage collection) is a miss.
 */
import { createHash, randomBytes } from "node:crypto";
import { mkdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { isDigest, type BlobStore } from "../blobs/blob-store.js";
import { storedLayer, type LayerInfo } from "./layer.js";
import { MediaTypes, type Layer } from "./types.js";

/** Cached layers by input key, backed by a directory of JSON records and the blob store. */
export class LayerCache {
  constructor(
    /** Where the records live (created on first put). */
    readonly dir: string,
    private readonly blobs: BlobStore,
  ) {}

  private file(key: string): string {
    return path.join(this.dir, `${createHash("sha256").update(key, "utf8").digest("hex")}.json`);
  }

  /** The layer cached under `key`, if its record is intact and its blob still in the store with its size. */
  async get(key: string): Promise<Layer | undefined> {
    let raw: string;
    try {
      raw = await readFile(this.file(key), "utf8");
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
      throw err;
    }
    const info = parseRecord(raw, key);
    if (!info) return undefined;
    const st = await this.blobs.stat(info.digest);
    if (!st || st.size !== info.size) return undefined;
    return storedLayer(this.blobs, info);
  }

  /** The note recorded with the layer cached under `key` (undefined without one, or without the layer). */
  async note(key: string): Promise<unknown> {
    if (!(await this.get(key))) return undefined;
    try {
      return (JSON.parse(await readFile(this.file(key), "utf8")) as { note?: unknown }).note;
    } catch {
      return undefined;
    }
  }

  /** Records `layer` (whose blob must be in the store) under `key`, with an optional JSON note, replacing any older record. */
  async put(key: string, layer: Layer, note?: unknown): Promise<void> {
    const record: LayerInfo & { key: string; note?: unknown } = {
      createdBy: layer.createdBy,
      diffId: layer.diffId,
      digest: layer.digest,
      key,
      mediaType: layer.mediaType,
      size: layer.size,
      uncompressedSize: layer.uncompressedSize,
      ...(note === undefined ? {} : { note }),
    };
    await mkdir(this.dir, { recursive: true });
    const file = this.file(key);
    const tmp = `${file}.${randomBytes(6).toString("hex")}.tmp`;
    try {
      await writeFile(tmp, JSON.stringify(record), { flag: "wx", mode: 0o644 });
      await rename(tmp, file);
    } finally {
      await rm(tmp, { force: true });
    }
  }

  /** Forgets the layer cached under `key`. */
  async delete(key: string): Promise<void> {
    await rm(this.file(key), { force: true });
  }
}

/** A record's layer info, or undefined if it is damaged or belongs to another key (a hash collision is not assumed away). */
function parseRecord(raw: string, key: string): LayerInfo | undefined {
  let r: Partial<LayerInfo & { key: string }>;
  try {
    r = JSON.parse(raw) as Partial<LayerInfo & { key: string }>;
  } catch {
    return undefined;
  }
  if (!r || r.key !== key) return undefined;
  if (typeof r.digest !== "string" || !isDigest(r.digest) || typeof r.diffId !== "string" || !isDigest(r.diffId)) return undefined;
  if (!Number.isSafeInteger(r.size) || !Number.isSafeInteger(r.uncompressedSize) || typeof r.createdBy !== "string") return undefined;
  // Records written before zstd layers existed have no mediaType: they are all gzip layers.
  const mediaType = r.mediaType ?? MediaTypes.ociLayerGzip;
  if (mediaType !== MediaTypes.ociLayerGzip && mediaType !== MediaTypes.ociLayerZstd) return undefined;
  return { mediaType, digest: r.digest, diffId: r.diffId, size: r.size!, uncompressedSize: r.uncompressedSize!, createdBy: r.createdBy };
}
