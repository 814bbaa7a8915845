/**
 * How the OCI writer puts bytes into the blob store.
 *
 * Why this exists: `BlobWriter` (src/blobs/blob-store.ts) is a Writable with Node's default
 * `autoDestroy: true`, so the moment it emits `finish` Node destroys it, and its `_destroy`
 * cancels the still-open write — `commit()` then fails ("blob writer already cancelled") or races
 * the deletion of its own temp file (ENOENT on chmod). `BlobStore.put()` hits the same trap. Until
 * the blob store passes `autoDestroy: false` itself, we switch it off on each writer we create;
 * that changes nothing once the store is fixed.
 */
import type { BlobStore, BlobWriter, IngestedBlob } from "../blobs/blob-store.js";

/** A blob writer that can be ended and then committed. Destroy it (or let a pipeline) when done. */
export function ingestBlob(blobs: BlobStore): BlobWriter {
  const writer = blobs.ingest();
  const state = (writer as unknown as { _writableState?: { autoDestroy?: boolean } })._writableState;
  if (state?.autoDestroy) state.autoDestroy = false;
  return writer;
}

/** Stores a small in-memory blob (a config or a manifest). */
export async function putBytes(blobs: BlobStore, data: Buffer): Promise<IngestedBlob> {
  const writer = ingestBlob(blobs);
  try {
    writer.end(data);
    return await writer.commit();
  } finally {
    await settle(writer);
  }
}

/** Cancels the writer if it was not committed and waits until it has released its temp object. */
export async function settle(writer: BlobWriter): Promise<void> {
  await writer.cancel();
  if (!writer.destroyed) writer.destroy();
  if (!writer.closed) await new Promise((resolve) => writer.once("close", resolve));
}
