/**
 * OCI image layout writer (image-spec `image-layout.md`):
 *
 *   <dir>/
 *   ├── oci-layout            {"imageLayoutVersion":"1.0.0"}
 *   ├── index.json            an image index; one manifest descriptor per image/tag
 *   └── blobs/sha256/<hex>    layers, config and manifest (hard links into the blob store when
 *                             both are on one filesystem, else copies)
 *
 * Order matters for readers that look while we write, and for writes that die half-way: blobs
 * first, each published by an atomic link or rename; `index.json` last, through a temp file and a
 * rename. An interrupted write therefore leaves at worst unreferenced blobs, never an index that
 * names a missing blob. Writing into an existing layout keeps its other images; a tag that is
 * already there moves to the new image.
 */
import { randomBytes } from "node:crypto";
import { copyFile, link, mkdir, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import path from "node:path";
import type { BlobStore, Digest } from "../blobs/blob-store.js";
import { KilnError, fail } from "../domain/errors.js";
import { canonicalBytes, type JsonValue } from "./canonical-json.js";
import { MediaTypes, type BuiltImage, type BuiltIndex } from "./types.js";

/** The annotation that names an image in a layout (what `skopeo ... oci:DIR:TAG` looks up). */
export const REF_NAME_ANNOTATION = "org.opencontainers.image.ref.name";

/** image-spec `annotations.md`: components of alphanumerics joined by `-._:@+` or `--`, separated by `/`. */
const REF_NAME = /^[A-Za-z0-9]+(?:(?:[-._:@+]|--)[A-Za-z0-9]+)*(?:\/[A-Za-z0-9]+(?:(?:[-._:@+]|--)[A-Za-z0-9]+)*)*$/;

/** Options of {@link writeOciLayout}. */
export interface OciLayoutOptions {
  /** Stored as the manifest's `org.opencontainers.image.ref.name`. */
  tag?: string;
}

/** In-process serialisation of index updates per layout (a read-modify-write of index.json). */
const indexLocks = new Map<string, Promise<unknown>>();

async function withIndexLock<T>(dir: string, fn: () => Promise<T>): Promise<T> {
  const key = path.resolve(dir);
  const prev = indexLocks.get(key) ?? Promise.resolve();
  const run = prev.then(fn, fn);
  const tail = run.catch(() => undefined);
  indexLocks.set(key, tail);
  try {
    return await run;
  } finally {
    if (indexLocks.get(key) === tail) indexLocks.delete(key);
  }
}

function tempName(file: string): string {
  return `${file}.${randomBytes(6).toString("hex")}.tmp`;
}

async function writeAtomically(file: string, data: Buffer): Promise<void> {
  const tmp = tempName(file);
  try {
    await writeFile(tmp, data, { flag: "wx", mode: 0o644 });
    await rename(tmp, file);
  } finally {
    await rm(tmp, { force: true });
  }
}

async function sizeOf(file: string): Promise<number | undefined> {
  try {
    return (await stat(file)).size;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw err;
  }
}

/** Puts one blob into the layout: a hard link to the store's file, or a copy, published atomically. */
async function exportBlob(blobs: BlobStore, digest: Digest, size: number, blobDir: string): Promise<void> {
  const dest = path.join(blobDir, digest.slice(7));
  const have = await sizeOf(dest);
  if (have === size) return;
  const st = await blobs.stat(digest);
  if (!st || st.size !== size) fail("notFound", `blob ${digest} is not in the blob store with ${size} bytes`);
  const copy = await blobs.localCopy(digest);
  const src = copy.path;
  const tmp = tempName(dest);
  try {
    try {
      await link(src, tmp);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== "EXDEV" && code !== "EPERM" && code !== "EMLINK" && code !== "ENOTSUP") throw err;
      await copyFile(src, tmp);
    }
    // rename replaces a blob of the wrong size left by someone else; a correct one is never touched.
    await rename(tmp, dest);
  } finally {
    copy.release();
    await rm(tmp, { force: true });
  }
}

interface IndexDoc {
  [key: string]: JsonValue | undefined;
  manifests: JsonValue[];
}

async function readIndex(file: string): Promise<IndexDoc> {
  let raw: string;
  try {
    raw = await readFile(file, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return { schemaVersion: 2, mediaType: MediaTypes.ociIndex, manifests: [] };
    throw err;
  }
  let doc: unknown;
  try {
    doc = JSON.parse(raw);
  } catch (err) {
    throw new KilnError("conflict", `${file} is not valid JSON; refusing to overwrite it`, { cause: err });
  }
  if (typeof doc !== "object" || doc === null || !Array.isArray((doc as IndexDoc).manifests)) fail("conflict", `${file} is not an image index; refusing to overwrite it`);
  return doc as IndexDoc;
}

async function ensureLayoutFile(file: string): Promise<void> {
  try {
    const doc = JSON.parse(await readFile(file, "utf8")) as { imageLayoutVersion?: unknown };
    if (typeof doc.imageLayoutVersion !== "string" || !doc.imageLayoutVersion.startsWith("1.")) {
      fail("conflict", `${file} declares layout version ${String(doc.imageLayoutVersion)}, not 1.x`);
    }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") {
      if (err instanceof KilnError) throw err;
      throw new KilnError("conflict", `${file} is not a valid oci-layout file`, { cause: err });
    }
    await writeAtomically(file, canonicalBytes({ imageLayoutVersion: "1.0.0" }));
  }
}

/**
 * Writes `image` into the OCI image layout at `dir` (created if needed), optionally tagged; a
 * multi-architecture image is written whole (every image's blobs and manifest, then the index
 * blob) and its index is what the tag names. Other images and tags already in the layout are kept;
 * an existing tag of the same name moves. Concurrent calls on one layout from this process are
 * serialised; separate processes writing the same layout at once are not coordinated.
 */
export async function writeOciLayout(dir: string, image: BuiltImage | BuiltIndex, blobs: BlobStore, options: OciLayoutOptions = {}): Promise<void> {
  const { tag } = options;
  if (tag !== undefined && !REF_NAME.test(tag)) fail("invalidField", `"${tag}" is not a valid image reference name`);
  const blobDir = path.join(dir, "blobs", "sha256");
  await mkdir(blobDir, { recursive: true });
  await ensureLayoutFile(path.join(dir, "oci-layout"));

  const images = "indexDigest" in image ? image.images : [image];
  for (const i of images) {
    for (const l of i.layers) await exportBlob(blobs, l.digest, l.size, blobDir);
    await exportBlob(blobs, i.configDigest, i.config.length, blobDir);
    await exportBlob(blobs, i.manifestDigest, i.manifest.length, blobDir);
  }
  const top =
    "indexDigest" in image
      ? { mediaType: MediaTypes.ociIndex, digest: image.indexDigest, size: image.index.length, platform: undefined }
      : { mediaType: MediaTypes.ociManifest, digest: image.manifestDigest, size: image.manifest.length, platform: { architecture: image.architecture, os: image.os, variant: image.variant } };
  if ("indexDigest" in image) await exportBlob(blobs, image.indexDigest, image.index.length, blobDir);

  await withIndexLock(dir, async () => {
    const file = path.join(dir, "index.json");
    const index = await readIndex(file);
    const refOf = (m: JsonValue): string | undefined => {
      const ann = (m as { annotations?: Record<string, unknown> } | null)?.annotations;
      return typeof ann?.[REF_NAME_ANNOTATION] === "string" ? (ann[REF_NAME_ANNOTATION] as string) : undefined;
    };
    const digestOf = (m: JsonValue): unknown => (m as { digest?: unknown } | null)?.digest;
    const kept = index.manifests.filter((m) => (tag !== undefined ? refOf(m) !== tag : !(refOf(m) === undefined && digestOf(m) === top.digest)));
    const descriptor: JsonValue = { ...top, annotations: tag !== undefined ? { [REF_NAME_ANNOTATION]: tag } : undefined };
    await writeAtomically(file, canonicalBytes({ ...index, schemaVersion: 2, mediaType: MediaTypes.ociIndex, manifests: [...kept, descriptor] }));
  });
}
