/**
 * What a registry blob store would not delete, deleted later. Deleting an object deletes its rows
 * first, then its blobs (store/blob-gc.ts) and its image's registry tag ({@link untagImage}); a
 * registry that refuses (deletion disabled, an account without the right) or cannot be reached
 * then leaves them, and they are recorded as leftovers (LeftoverRepo). The {@link LeftoverSweeper}
 * of each process that runs jobs tries them again with backoff (registry/retry.ts's retryDelay,
 * from a minute up to an hour, without end: a registry whose deletion an operator enables a week
 * later is cleaned then), and drops each record once its blob or tag is gone.
 *
 * Several processes sweep one database: a record is claimed before it is tried (LeftoverRepo), and
 * a blob is deleted exactly as collectBlobs does it — in a transaction, under the digest's lock,
 * after checking that nothing references it; a blob referenced again meanwhile is kept, and its
 * record dropped. A tag is deleted only while no image is tagged with the same reference: a
 * template's revisions restart after its last image is deleted, so a reference can be given again.
 */
import { isDigest, type BlobStore } from "../blobs/blob-store.js";
import { OciDriver } from "../blobs/oci-driver.js";
import { registryTarget } from "../domain/image-names.js";
import { collectBlob } from "../store/blob-gc.js";
import { DEFAULT_RETRY_POLICY, retryDelay, type RetryPolicy } from "../registry/retry.js";
import type { LeftoverRow, Store } from "../store/types.js";

/** Where leftovers are reported (a logger). */
export interface LeftoverLog {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

/** The waits between tries of one leftover: 1 min, doubling, at most 1 h (the attempts and elapsed bounds do not apply: it is tried until it goes). */
export const LEFTOVER_RETRY: RetryPolicy = { ...DEFAULT_RETRY_POLICY, baseDelayMs: 60_000, maxDelayMs: 3_600_000 };

/** How long one registry call of the sweeper or of {@link untagImage} may take. */
const REGISTRY_TIMEOUT_MS = 15_000;

/**
 * Deletes the tag a registry blob store gave an image (its `registeringName`), once the image is
 * gone from Kiln or will never record it: whatever the registry answers, the caller goes on. A
 * registry that refuses (deletion disabled, an account without the right) or cannot be reached
 * keeps the tag; a warning says so and the tag is recorded as a leftover, tried again later. Not
 * recorded: a reference that is not one of this blob store's repositories (the store moved since;
 * nothing here can delete it), and a tag whose image other tags name too (`shared`): a registry
 * that deletes only by digest would take those with it, so trying again cannot succeed while they
 * stay.
 */
export async function untagImage(deps: { store: Store; blobs: BlobStore }, reference: string, log: Pick<LeftoverLog, "info" | "warn">, fields: object): Promise<void> {
  const driver = deps.blobs.driver;
  let failure: string | undefined;
  try {
    const outcome = driver instanceof OciDriver ? await driver.untagImage(reference, AbortSignal.timeout(REGISTRY_TIMEOUT_MS)) : undefined;
    if (!outcome) log.warn({ ...fields, reference }, "the image's registry tag stays: the blob store is no longer the registry that tagged it");
    else if (outcome.deleted || outcome.reason === "absent") log.info({ ...fields, reference, outcome: outcome.deleted ? outcome.method : outcome.reason }, "registry tag deletion");
    else {
      log.warn({ ...fields, reference, outcome: outcome.reason, err: outcome.message }, "the image's registry tag stays: the registry did not delete it");
      if (outcome.reason !== "shared") failure = outcome.message;
    }
  } catch (err) {
    failure = (err as Error).message;
    log.warn({ ...fields, reference, err: failure }, "the image's registry tag stays: could not delete it from the registry");
  }
  if (failure === undefined) return;
  // Due at once: the sweeper's next round tries it (its interval is the first wait).
  await deps.store.leftovers.record("tag", reference, failure, 0).catch((err: unknown) => {
    log.warn({ ...fields, reference, err: (err as Error).message }, "cannot record the registry tag left behind: nothing will try to delete it again");
  });
}

export interface LeftoverSweeperOptions {
  store: Store;
  blobs: BlobStore;
  log: LeftoverLog;
  /** Between two rounds (default 60 s). */
  intervalMs?: number;
  /** The waits between tries of one leftover (default {@link LEFTOVER_RETRY}). */
  retry?: RetryPolicy;
  /** How long a claim on a record holds (default 5 min): a sweeper that died mid-try lets another take the record then. */
  claimMs?: number;
  /** Records claimed at once (default 20). */
  batch?: number;
}

/** What one round did. */
export interface SweepResult {
  /** Deleted (or found gone). */
  removed: number;
  /** Dropped without deleting: referenced again, or no longer this store's to delete. */
  dropped: number;
  /** Tried and failed again: retried later. */
  failed: number;
}

type Attempt = { done: true; removed: boolean } | { done: false; error: string };

/**
 * Tries the due leftovers again, every interval, in a process that runs jobs. Its rounds never
 * overlap, never reject (a failure is logged, the next round tries again), and stop() waits for
 * the one in progress, whose registry calls it cuts short (their records are retried later).
 */
export class LeftoverSweeper {
  private timer: NodeJS.Timeout | undefined;
  private round: Promise<SweepResult> = Promise.resolve({ removed: 0, dropped: 0, failed: 0 });
  private stopping = new AbortController();

  constructor(private readonly options: LeftoverSweeperOptions) {}

  start(): void {
    if (this.timer) return;
    this.stopping = new AbortController();
    this.timer = setInterval(() => {
      this.sweep().catch((err: unknown) => this.options.log.error({ err }, "cannot sweep the leftovers of the blob store"));
    }, this.options.intervalMs ?? 60_000);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.stopping.abort();
    await this.round.catch(() => undefined);
  }

  /** One round, after the one in progress: every due record claimed and tried once. */
  sweep(): Promise<SweepResult> {
    const next = this.round.catch(() => undefined).then(() => this.sweepDue());
    this.round = next;
    return next;
  }

  private async sweepDue(): Promise<SweepResult> {
    const { store, log } = this.options;
    const result: SweepResult = { removed: 0, dropped: 0, failed: 0 };
    // Batch after batch while they go through (another sweeper may have claimed part of one: what
    // it took is no longer due). A failure ends the round: the registry is still refusing, and
    // with no wait configured a failed record would be due again at once.
    for (let more = true; more && result.failed === 0; ) {
      if (this.stopping.signal.aborted) return result;
      const claimed = await store.leftovers.claimDue(this.options.batch ?? 20, this.options.claimMs ?? 300_000);
      more = claimed.length > 0;
      for (const claim of claimed) {
        const at = { kind: claim.kind, name: claim.name, attempt: claim.attempts + 1 };
        log.info(at, "trying again to delete what the blob store left behind");
        const attempt = await this.attempt(claim).catch((err: unknown): Attempt => ({ done: false, error: (err as Error).message }));
        if (attempt.done) {
          await store.leftovers.forget(claim);
          if (attempt.removed) result.removed++;
          else result.dropped++;
          continue;
        }
        result.failed++;
        const delayMs = retryDelay(this.options.retry ?? LEFTOVER_RETRY, claim.attempts);
        await store.leftovers.retryLater(claim, attempt.error, delayMs);
        log.warn({ ...at, err: attempt.error, nextAttempt: new Date(Date.now() + delayMs).toISOString() }, "the blob store still did not delete what it left behind; trying again later");
      }
    }
    return result;
  }

  private async attempt(claim: LeftoverRow): Promise<Attempt> {
    const { store, blobs, log } = this.options;
    const at = { kind: claim.kind, name: claim.name, attempt: claim.attempts + 1 };
    if (claim.kind === "blob") {
      if (!isDigest(claim.name)) return { done: true, removed: false };
      const outcome = await collectBlob(store, blobs, claim.name);
      if (outcome === "referenced") log.info(at, "a blob left in the blob store is referenced again: it stays, and is no longer to delete");
      else log.info(at, "deleted a blob the blob store had left behind");
      return { done: true, removed: outcome === "deleted" };
    }
    const driver = blobs.driver;
    if (await this.tagInUse(claim.name)) {
      log.info(at, "an image is tagged with this reference again: the tag stays, and is no longer to delete");
      return { done: true, removed: false };
    }
    const outcome = driver instanceof OciDriver ? await driver.untagImage(claim.name, AbortSignal.any([this.stopping.signal, AbortSignal.timeout(REGISTRY_TIMEOUT_MS)])) : undefined;
    if (!outcome) {
      log.warn(at, "a registry tag left behind is not in this blob store's registry: it is no longer to delete here");
      return { done: true, removed: false };
    }
    if (outcome.deleted || outcome.reason === "absent") {
      log.info({ ...at, outcome: outcome.deleted ? outcome.method : outcome.reason }, "deleted a registry tag the registry had left behind");
      return { done: true, removed: true };
    }
    if (outcome.reason === "shared") {
      log.warn({ ...at, err: outcome.message }, "a registry tag left behind names the same image as another tag: it stays, and is no longer to delete");
      return { done: true, removed: false };
    }
    return { done: false, error: outcome.message };
  }

  /**
   * Whether an image has (or, its generation still going, may get) the tag `reference`: a
   * template's revisions restart after its last image is deleted, so a new image may be tagged
   * with the reference an old one left. (A generation that starts tagging between this check and
   * the deletion, within one registry call, is not seen: it would need its whole build to fit there.)
   */
  private async tagInUse(reference: string): Promise<boolean> {
    const { store, blobs } = this.options;
    if (await store.images.referencesTag(reference)) return true;
    const driver = blobs.driver;
    if (!(driver instanceof OciDriver)) return false;
    for (const img of await store.images.listGenerating()) {
      const owner = await store.users.get(img.userId);
      if (!owner) continue;
      const target = registryTarget(owner.login, img);
      if (driver.referenceOf(target.repository, target.tag) === reference) return true;
    }
    return false;
  }
}
