/**
 * Durable jobs: the store holds every job and its progress; this runner claims queued jobs,
 * runs them with a bounded concurrency per kind, reports progress (throttled, percentage never
 * decreasing, an ETA once one can be estimated), and ends them: complete, error with a message a
 * user can act on and the chain of causes, or cancelled.
 *
 * Several runners (worker processes, on several machines) may share one database: each claims
 * a job with a lease (store/repos/jobs.ts) and renews it while the job runs. A runner that dies
 * stops renewing; once its lease lapses another runner resumes the job (builds are deterministic
 * and cached, so redoing one is safe) or, after too many attempts, fails it with "interrupted by
 * a restart". A runner that stops cleanly gives its jobs back at once. Every write for a job —
 * progress, results ({@link JobContext.fence}), its end — presents the claim's fencing token, so
 * a runner whose lease was taken over (it was paused, or cut off from the database) writes
 * nothing, and stops the job at its next renewal. Cancellation reaches the runner holding the job
 * through the database: a notice (LISTEN/NOTIFY on PostgreSQL), else the next renewal.
 *
 * Nothing a job does can take the process down: a handler's failure becomes the job's error, a
 * store that cannot be reached while a job ends is retried until it answers (the job stays
 * `running` meanwhile, and resumes at the next start if this process stops first), and every
 * promise the runner starts is awaited or has its rejection handled.
 */
import { mkdir, readdir, rm } from "node:fs/promises";
import path from "node:path";
import { causeChain, isKilnError, storageError } from "../domain/errors.js";
import { DEFAULT_RETRY_POLICY, retryDelay } from "../registry/retry.js";
import { hostname } from "node:os";
import { randomBytes } from "node:crypto";
import type { JobKind, JobProgress, JobRow, Store, StoreRepositories } from "../store/types.js";

export interface JobContext {
  /** Aborted when the job is cancelled or the server shuts down. */
  readonly signal: AbortSignal;
  /** Reports progress; `percentage` is 0–100 and never goes down. Cheap to call often. */
  progress(p: JobProgress): void;
  /** A private scratch directory, removed when the job ends, whatever the outcome. */
  tempDir(): Promise<string>;
  /**
   * Call first in the transaction that records the job's results: it fails (and so rolls the
   * results back) unless this runner still holds the job, and keeps it held until the commit.
   */
  fence(tx: StoreRepositories): Promise<void>;
  /**
   * Asked as the handler ends without its results (`err` is what ends it): whether the job will
   * run again under another claim — this process is shutting down and gives it back, or another
   * worker took it over (the fence or a renewal found the claim gone, and the job is still to
   * run, or ran). What the handler made under a name every attempt of the job shares is then the
   * next attempt's, not to be removed. False when it was cancelled, failed, or was deleted.
   */
  resumesElsewhere(err: unknown): Promise<boolean>;
}

/**
 * Runs one job; it may return the message its completed status should show instead of
 * "complete" (a generation that completed with something to say).
 */
export type JobHandler = (job: JobRow, ctx: JobContext) => Promise<void | { message?: string }>;

export interface JobRunnerOptions {
  store: Store;
  dataDir: string;
  handlers: Partial<Record<JobKind, JobHandler>>;
  /** Jobs of each kind that may run at once. */
  concurrency: Partial<Record<JobKind, number>>;
  /** A job started this many times and interrupted each time fails instead of resuming. */
  maxAttempts?: number;
  log?: { info(obj: object, msg: string): void; warn(obj: object, msg: string): void; error(obj: object, msg: string): void };
  /** How often progress reaches the store at most (ms). */
  progressIntervalMs?: number;
  /** How long a claim holds without renewal (KILN_JOB_LEASE; default 30 s); renewed every third of it. */
  leaseMs?: number;
  /**
   * Whether this runner is the only one on its database (the single process on SQLite): then the
   * jobs a previous process left running are resumed at start, without waiting for their leases.
   */
  exclusive?: boolean;
}

/** The default KILN_JOB_LEASE. */
export const DEFAULT_JOB_LEASE_MS = 30_000;

const INTERRUPTED = "interrupted by a restart";

/** Waits between tries to record a job's end while the store is unreachable: 0.25 s doubling to 5 s. */
const RECORD_RETRY = { ...DEFAULT_RETRY_POLICY, baseDelayMs: 250, maxDelayMs: 5000 };

type Outcome = { state: "complete" | "error" | "cancelled"; message?: string; errorMessage?: string; detailedError?: string };

/** Why an abort happened, so the runner knows how to end the job. */
class Shutdown extends Error {
  constructor() {
    super("the server is shutting down");
  }
}
class Cancelled extends Error {
  constructor() {
    super("cancelled");
  }
}
class LeaseLost extends Error {
  constructor() {
    super("another worker took the job over");
  }
}

interface Running {
  job: JobRow;
  controller: AbortController;
  done: Promise<void>;
}

export class JobRunner {
  private readonly running = new Map<number, Running>();
  private readonly active: Partial<Record<JobKind, number>> = {};
  private stopped = true;
  private pumping = false;
  private pumpAgain = false;
  private timer: NodeJS.Timeout | undefined;
  private renewTimer: NodeJS.Timeout | undefined;
  private renewing = false;
  private listener: { close(): Promise<void> } | undefined;
  /** Aborted by stop(): ends the waits between tries to record a job's end. */
  private stopping = new AbortController();
  /** Who this runner is in the jobs' lease_owner column: host, process and a random part. */
  readonly owner = `${hostname()}:${process.pid}:${randomBytes(3).toString("hex")}`;

  constructor(private readonly options: JobRunnerOptions) {}

  private get leaseMs(): number {
    return this.options.leaseMs ?? DEFAULT_JOB_LEASE_MS;
  }

  /** Where each job's scratch directory lives (`<data>/tmp/jobs/<id>`). */
  private get scratchRoot(): string {
    return path.join(this.options.dataDir, "tmp", "jobs");
  }

  /**
   * Removes the previous process's job scratch directories, recovers the jobs it left running,
   * then starts taking work. Before anything runs, so a resumed job starts from a clean slate
   * and a job that will not run again leaves nothing behind.
   */
  async start(): Promise<void> {
    await this.sweepScratch();
    this.stopping = new AbortController();
    if (this.options.exclusive) {
      const lapsed = await this.options.store.jobs.expireLeases();
      if (lapsed > 0) this.options.log?.info({ jobs: lapsed }, "resuming the jobs an earlier process left running");
    }
    this.listener = await this.options.store.listen((event) => this.heard(event));
    this.stopped = false;
    // A safety net: new work is normally signalled by wake() or a notice, but a poll catches
    // anything missed, and the jobs of a worker that died become claimable without any notice.
    this.timer = setInterval(() => this.wake(), 2000);
    this.timer.unref();
    this.renewTimer = setInterval(() => void this.renew(), Math.max(100, Math.floor(this.leaseMs / 3)));
    this.renewTimer.unref();
    this.wake();
  }

  /** A notice from another process (store.listen). */
  private heard(event: string): void {
    if (event === "queued") return this.wake();
    if (event === "reconnected") {
      void this.renew();
      return this.wake();
    }
    const m = /^cancel:(\d+)$/.exec(event);
    const entry = m ? this.running.get(Number(m[1])) : undefined;
    if (entry && !entry.controller.signal.aborted) entry.controller.abort(new Cancelled());
  }

  /**
   * Extends the leases of the jobs running here; stops those another runner took over (this one
   * was paused or cut off past its lease) and those cancelled meanwhile.
   */
  private async renew(): Promise<void> {
    if (this.renewing) return;
    this.renewing = true;
    try {
      for (const entry of [...this.running.values()]) {
        if (entry.controller.signal.aborted) continue;
        let held: { cancelRequested: boolean } | undefined;
        try {
          held = await this.options.store.jobs.renew(entry.job.id, entry.job.leaseToken, this.leaseMs);
        } catch (err) {
          // The database is away: keep working; the fence stops the results if the lease lapses.
          this.options.log?.warn({ err, job: entry.job.id }, "cannot renew the lease of a job");
          continue;
        }
        if (!held) {
          this.options.log?.warn({ job: entry.job.id }, "another worker took the job over; stopping it here");
          entry.controller.abort(new LeaseLost());
        } else if (held.cancelRequested) entry.controller.abort(new Cancelled());
      }
    } finally {
      this.renewing = false;
    }
  }

  /** Looks for queued work now (call after enqueuing). */
  wake(): void {
    if (this.stopped) return;
    if (this.pumping) {
      this.pumpAgain = true;
      return;
    }
    this.pumping = true;
    void this.pump()
      .catch((err: unknown) => this.options.log?.error({ err }, "cannot look for queued jobs"))
      .finally(() => {
        this.pumping = false;
        if (this.pumpAgain) {
          this.pumpAgain = false;
          this.wake();
        }
      });
  }

  private async pump(): Promise<void> {
    for (;;) {
      const kinds = (Object.keys(this.options.handlers) as JobKind[]).filter((k) => (this.active[k] ?? 0) < (this.options.concurrency[k] ?? 1));
      if (this.stopped || kinds.length === 0) return;
      let job: JobRow | undefined;
      try {
        job = await this.options.store.jobs.claimNext(kinds, {
          owner: this.owner,
          ms: this.leaseMs,
          maxAttempts: this.options.maxAttempts ?? 3,
          interruptedMessage: INTERRUPTED,
        });
      } catch (err) {
        this.options.log?.error({ err }, "cannot claim a job");
        return;
      }
      if (!job) return;
      this.launch(job);
    }
  }

  private async sweepScratch(): Promise<void> {
    let names: string[];
    try {
      names = await readdir(this.scratchRoot);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return;
      throw err;
    }
    await Promise.all(names.map((n) => rm(path.join(this.scratchRoot, n), { recursive: true, force: true })));
    if (names.length > 0) this.options.log?.info({ removed: names.length }, "removed the scratch directories of an earlier process");
  }

  private launch(job: JobRow): void {
    const handler = this.options.handlers[job.kind]!;
    const controller = new AbortController();
    this.active[job.kind] = (this.active[job.kind] ?? 0) + 1;
    const entry: Running = { job, controller, done: Promise.resolve() };
    this.running.set(job.id, entry);
    // execute() handles its own failures; this catch is the last guard, so that `done` (awaited
    // by cancel() and stop()) never rejects and a bug here is logged rather than fatal.
    entry.done = this.execute(job, handler, controller)
      .catch((err: unknown) => this.options.log?.error({ err, job: job.id }, "the job runner failed to end a job"))
      .finally(() => {
        this.running.delete(job.id);
        this.active[job.kind] = (this.active[job.kind] ?? 1) - 1;
        this.wake();
      });
  }

  private async execute(job: JobRow, handler: JobHandler, controller: AbortController): Promise<void> {
    const store = this.options.store;
    const interval = this.options.progressIntervalMs ?? 250;
    const started = Date.now();
    let pending: JobProgress | undefined;
    let lastWrite = 0;
    let writing: Promise<void> = Promise.resolve();
    let flushTimer: NodeJS.Timeout | undefined;
    let best = job.percentage;
    const flush = (): void => {
      if (!pending) return;
      const p = pending;
      pending = undefined;
      lastWrite = Date.now();
      writing = writing.then(() => store.jobs.progress(job.id, p, job.leaseToken)).catch((err: unknown) => this.options.log?.error({ err, job: job.id }, "cannot record progress"));
    };
    let scratch: string | undefined;
    const ctx: JobContext = {
      signal: controller.signal,
      progress: (p) => {
        const next: JobProgress = { ...pending, ...p };
        if (p.percentage !== undefined) {
          best = Math.max(best, Math.min(100, p.percentage));
          next.percentage = best;
          const elapsed = Date.now() - started;
          // An estimate is only worth showing once there is something to extrapolate from.
          if (best >= 5 && best < 100 && elapsed >= 1000) next.eta = new Date(Date.now() + (elapsed * (100 - best)) / best);
        }
        pending = next;
        const changedPhase = p.message !== undefined;
        if (changedPhase || Date.now() - lastWrite >= interval) flush();
        else if (!flushTimer) {
          flushTimer = setTimeout(() => {
            flushTimer = undefined;
            flush();
          }, interval);
        }
      },
      tempDir: async () => {
        scratch ??= path.join(this.scratchRoot, String(job.id));
        await mkdir(scratch, { recursive: true });
        return scratch;
      },
      fence: (tx) => tx.jobs.fence(job.id, job.leaseToken),
      resumesElsewhere: async () => {
        const reason: unknown = controller.signal.aborted ? controller.signal.reason : undefined;
        if (reason instanceof Shutdown || reason instanceof LeaseLost) return true;
        if (reason instanceof Cancelled) return false;
        // Failed here, or fenced out: the row says whether another claim has the job.
        try {
          const now = await store.jobs.get(job.id);
          if (!now) return false;
          return now.state === "queued" || now.state === "complete" || (now.state === "running" && now.leaseToken !== job.leaseToken);
        } catch {
          // Not knowing, leave what the next attempt may use: a leftover is better than a lost tag.
          return true;
        }
      },
    };
    // A job cancelled before this runner took it (a notice that came first) stops at once.
    if (job.cancelRequested) controller.abort(new Cancelled());

    let outcome: Outcome | "requeue" | "lost";
    try {
      if (controller.signal.aborted) throw controller.signal.reason;
      const done = await handler(job, ctx);
      if (controller.signal.aborted) throw controller.signal.reason;
      outcome = { state: "complete", ...(done?.message ? { message: done.message } : {}) };
    } catch (err) {
      const reason: unknown = controller.signal.aborted ? controller.signal.reason : undefined;
      if (reason instanceof Shutdown) outcome = "requeue";
      else if (reason instanceof LeaseLost) outcome = "lost";
      else if (reason instanceof Cancelled) outcome = { state: "cancelled" };
      else {
        // A full disk met anywhere (a temp file, a cache) is said as such: the user can free space.
        const failure = isKilnError(err) ? err : storageError(err);
        const chain = causeChain(failure);
        outcome = {
          state: "error",
          errorMessage: isKilnError(failure) ? failure.message.split("\n")[0]! : `internal error: ${chain[0] ?? "unknown"}`,
          detailedError: chain.join("\ncaused by: "),
        };
        this.options.log?.error({ err, job: job.id, kind: job.kind }, "job failed");
      }
    } finally {
      if (flushTimer) clearTimeout(flushTimer);
      flush();
      await writing;
      if (scratch) await rm(scratch, { recursive: true, force: true }).catch(() => undefined);
    }
    if (outcome === "lost") return;
    if (outcome === "requeue") {
      // Given back to the queue for another runner (or the next start); if the database cannot
      // be reached now, the lease lapses and the job is resumed all the same.
      await this.options.store.jobs.release(job.id, job.leaseToken).catch((err: unknown) => this.options.log?.warn({ err, job: job.id }, "cannot give the job back; it resumes once its lease lapses"));
      return;
    }
    await this.record(job, outcome);
  }

  /**
   * Records a job's end, trying again while the store cannot be reached (a database restart):
   * the outcome is known and must not be lost, nor may the failure escape. If this process stops
   * first, the job stays `running` and the next start resumes it.
   */
  private async record(job: JobRow, outcome: Outcome): Promise<void> {
    const stopping = this.stopping.signal;
    for (let attempt = 1; ; attempt++) {
      try {
        const ended = await this.options.store.jobs.finish(job.id, outcome, job.leaseToken);
        if (!ended) this.options.log?.warn({ job: job.id, outcome: outcome.state }, "the job was taken over (or ended) elsewhere; this outcome is dropped");
        if (attempt > 1) this.options.log?.info({ job: job.id, attempts: attempt }, "recorded the end of the job once the store answered again");
        return;
      } catch (err) {
        if (stopping.aborted) {
          this.options.log?.error({ err, job: job.id }, "cannot record the end of the job before shutting down; the next start resumes it");
          return;
        }
        const delay = retryDelay(RECORD_RETRY, Math.min(attempt, 8));
        this.options.log?.warn({ err, job: job.id, attempt, delayMs: delay }, "cannot record the end of the job; trying again");
        await new Promise<void>((resolve) => {
          const t = setTimeout(done, delay);
          function done(): void {
            clearTimeout(t);
            stopping.removeEventListener("abort", done);
            resolve();
          }
          stopping.addEventListener("abort", done, { once: true });
        });
      }
    }
  }

  /**
   * Cancels a job: a queued one at once, a running one by aborting its handler (which stops
   * within moments and removes its temporary files). Returns the job as it now stands. A job
   * running in another process is flagged, and its runner told (`cancelling` until it stops).
   */
  async cancel(jobId: number): Promise<JobRow | undefined> {
    const row = await this.options.store.jobs.requestCancel(jobId);
    const entry = this.running.get(jobId);
    if (entry) {
      // Already stopping (a renewal or a notice saw the request first): wait for it all the same.
      if (!entry.controller.signal.aborted) entry.controller.abort(new Cancelled());
      await entry.done;
      return this.options.store.jobs.get(jobId);
    }
    return row;
  }

  /** Whether a job is running in this process right now. */
  isRunning(jobId: number): boolean {
    return this.running.has(jobId);
  }

  /** Stops taking work and interrupts running jobs (given back to the queue, to resume elsewhere or at the next start). */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    if (this.renewTimer) clearInterval(this.renewTimer);
    const all = [...this.running.values()];
    for (const r of all) r.controller.abort(new Shutdown());
    // Jobs that already ended still try to record their end until now.
    this.stopping.abort();
    await Promise.all(all.map((r) => r.done));
    await this.listener?.close();
    this.listener = undefined;
  }
}
