/**
 * Blob garbage collection without a check-then-act race. Blobs are shared by content: two
 * uploads of the same bytes, or two generations of the same image, name one blob. Deleting a
 * blob once nothing references it races with a new reference to the same bytes being made
 * (the new writer finds the blob already there, the collector deletes it, the new row points at
 * nothing). Both sides therefore work under the digest's lock (BlobLockRepo), in a transaction:
 *
 * - a writer seals its bytes (learns the digest) and stages them (a registry store's upload, so
 *   that the transaction stays short), then in one transaction locks the digest, records the
 *   reference and publishes the bytes — a staged blob a collector deleted in between is uploaded
 *   again there ({@link publishReferenced});
 * - the collector, in one transaction per digest, locks it, checks that nothing references it,
 *   and deletes it ({@link collectBlobs}).
 *
 * Whichever comes second sees the other's outcome: the blob is referenced (kept), or it is gone
 * and the writer's publish puts it back.
 */
import { isDigest, type BlobStore, type BlobWriter, type Digest, type IngestedBlob } from "../blobs/blob-store.js";
import type { Store, StoreRepositories } from "./types.js";

/** Does anything still need this blob? Every repository whose rows name blobs is asked. */
async function referenced(tx: StoreRepositories, digest: string): Promise<boolean> {
  return (await tx.artifacts.referencesBlob(digest)) || (await tx.images.referencesBlob(digest)) || (await tx.bundleFiles.referencesBlob(digest));
}

/**
 * Seals `writer`, then in one transaction locks its digest, runs `reference` (which records the
 * rows that name the blob) and publishes the bytes. If `reference` throws, nothing is recorded
 * and the bytes are dropped.
 */
export async function publishReferenced<T>(store: Store, writer: BlobWriter, reference: (tx: StoreRepositories, blob: IngestedBlob) => Promise<T>, signal?: AbortSignal): Promise<T> {
  return publishAllReferenced(store, [writer], (tx, [blob]) => reference(tx, blob!), signal);
}

/**
 * The same for several blobs at once (an imported archive's files): every digest is locked, in
 * one order so that two such transactions cannot wait on each other, `reference` records all the
 * rows, and every blob is published — or, if anything throws, none is recorded and all dropped.
 */
export async function publishAllReferenced<T>(store: Store, writers: readonly BlobWriter[], reference: (tx: StoreRepositories, blobs: IngestedBlob[]) => Promise<T>, signal?: AbortSignal): Promise<T> {
  const blobs: IngestedBlob[] = [];
  try {
    for (const w of writers) blobs.push(await w.seal());
    // A remote store's upload goes before the transaction, which holds a connection and the
    // digests' locks: inside it, publishing only checks the blob is there.
    // `signal` stops the upload (a cancelled job); nothing is recorded then.
    for (const w of writers) await w.stage(signal);
    signal?.throwIfAborted();
    return await store.transaction(async (tx) => {
      for (const digest of [...new Set(blobs.map((b) => b.digest))].sort()) await tx.blobLocks.lock(digest);
      const result = await reference(tx, blobs);
      for (const w of writers) await w.publish();
      return result;
    });
  } catch (err) {
    // Bytes uploaded ahead of a transaction that did not commit (or an upload cut short that may
    // have reached the store) go again, unless something else references the same bytes; one the
    // store refuses to delete is recorded for the leftover sweeper.
    const staged = writers.map((w, i) => (w.wasStaged ? blobs[i]?.digest : undefined));
    if (staged.some((d) => d !== undefined)) await collectBlobs(store, writers[0]!.store, staged, { warn: () => undefined }).catch(() => undefined);
    throw err;
  } finally {
    for (const w of writers) await w.cancel();
  }
}

/** Where {@link collectBlobs} reports a blob it could not delete, when the caller's work is done anyway. */
export interface CollectLog {
  warn(obj: object, msg: string): void;
}

/**
 * Deletes each of these blobs that nothing references any more (digests may repeat or be null).
 * A deletion the blob store fails (a registry that refuses deletion or cannot be reached) throws
 * — unless `log` is given: the caller's objects are already deleted then, so the blob is only
 * left behind, a warning names it, it is recorded as a leftover (LeftoverRepo) that the sweeper
 * of a process running jobs tries again (jobs/leftovers.ts), and the other blobs are still collected.
 */
export async function collectBlobs(store: Store, blobs: BlobStore, digests: ReadonlyArray<string | null | undefined>, log?: CollectLog): Promise<void> {
  for (const digest of new Set(digests)) {
    if (!digest || !isDigest(digest)) continue;
    try {
      await collectBlob(store, blobs, digest);
    } catch (err) {
      if (!log) throw err;
      const message = (err as Error).message;
      log.warn({ digest, err: message }, "a blob nothing refers to stays in the blob store: it could not be deleted");
      // Due at once: the sweeper's next round tries it (its interval is the first wait).
      await store.leftovers.record("blob", digest, message, 0).catch((recordErr: unknown) => {
        log.warn({ digest, err: (recordErr as Error).message }, "cannot record the blob left in the blob store: nothing will try to delete it again");
      });
    }
  }
}

/**
 * Deletes one blob unless something references it: in one transaction, under the digest's lock,
 * so that a reference made meanwhile either is seen (the blob is kept) or, coming second, puts
 * the bytes back (publishReferenced). What the blob store fails with is thrown, and nothing changes.
 */
export async function collectBlob(store: Store, blobs: BlobStore, digest: Digest): Promise<"deleted" | "referenced"> {
  return store.transaction(async (tx) => {
    await tx.blobLocks.lock(digest);
    if (await referenced(tx, digest)) return "referenced";
    await blobs.delete(digest);
    await tx.blobLocks.forget(digest);
    return "deleted";
  });
}
