/**
 * An api process fetches each image file a worker generates into its blob cache as soon as the
 * job completes (a `complete:<job>` notice, PostgreSQL's LISTEN/NOTIFY): the download that usually
 * follows at once — by its one-time key — is then served from a local, verified copy at the speed
 * of a file store's download, instead of crossing the registry and being hashed on its way
 * (bench/cluster.mjs). A download that comes while the copy is still arriving follows it
 * (blob-cache.ts). One fetch at a time; a burst of completions keeps the newest few.
 *
 * Every api process behind a load balancer keeps its own copy: the registry serves each image file
 * once per api process, and each process's cache (KILN_BLOB_CACHE_SIZE) holds the newest images.
 * A process that wrote the file itself (role `all`) has it already. KILN_PREFETCH_IMAGES=false turns
 * this off (a balancer that sends each image's downloads to one api process).
 */
import { isDigest, type BlobStore } from "../blobs/blob-store.js";
import { OciDriver } from "../blobs/oci-driver.js";
import type { OperationLog } from "../library/context.js";
import type { Store } from "../store/types.js";

/** Completed jobs waiting for their fetch, at most: past it the oldest are dropped. */
const MAX_WAITING = 16;

export interface Prefetcher {
  /** Stops listening; a fetch in flight finishes on its own (what it leaves is swept at the next start). */
  close(): Promise<void>;
}

export async function prefetchGeneratedImages(store: Store, blobs: BlobStore, log: OperationLog): Promise<Prefetcher> {
  const driver = blobs.driver;
  if (!(driver instanceof OciDriver)) return { close: async () => undefined };
  const waiting: number[] = [];
  let draining = false;
  let closed = false;
  const drain = async (): Promise<void> => {
    for (let job = waiting.shift(); job !== undefined && !closed; job = waiting.shift()) {
      try {
        const image = await store.images.getByJob(job);
        const digest = image?.fileDigest;
        if (!image || !digest || !isDigest(digest) || image.fileSize === null) continue;
        if (await driver.cache.prefetch(digest, image.fileSize)) log.info({ image: image.id, digest }, "fetched a generated image's file into this process's blob cache for its download");
      } catch (err) {
        log.warn({ job, err: (err as Error).message }, "could not fetch a generated image's file ahead of its download");
      }
    }
  };
  const listener = await store.listen((event) => {
    const m = /^complete:(\d+)$/.exec(event);
    if (!m || closed) return;
    if (waiting.length >= MAX_WAITING) waiting.shift();
    waiting.push(Number(m[1]));
    if (draining) return;
    draining = true;
    void drain().finally(() => (draining = false));
  });
  return {
    async close() {
      closed = true;
      await listener.close();
    },
  };
}
