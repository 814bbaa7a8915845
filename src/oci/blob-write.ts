/**
 * How the OCI writer puts bytes into the blob store: without the md5 uploads need (images are
 * addressed by sha256 only, and md5 over every layer is measurable CPU).
 */
import type { BlobStore, BlobWriter, IngestedBlob } from "../blobs/blob-store.js";

/** A blob writer that can be ended and then committed. Destroy it (or let a pipeline) when done. */
export function ingestBlob(blobs: BlobStore): BlobWriter {
  return blobs.ingest({ md5: false });
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
