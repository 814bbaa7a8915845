/**
 * Durable jobs: the store holds every job and its progress; this runner claims queued jobs,
 * runs them with a bounded concurrency per kind, reports progress (throttled, percentage never
 * decreasing, an ETA once one can be estimated), and ends them: complete, error with a message a
 * user can act on and the chain of causes, or cancelled.
 *
 * One Kiln server per database: at start, jobs left running by a previous process are resumed
 * (builds are deterministic and cached, so redoing one is safe) or, after too many attempts,
 * failed with "interrupted by a restart"; their scratch directories are removed first.
 *
 * Nothing a job does can take the process down: a handler's failure becomes the job's error, a
 * store that cannot be reached while a job ends is retried until it answers (the job stays
 * `running` meanwhile, and resumes at the next start if this process stops first), and every
 * promise the runner starts is awaited or has its rejection handled.
 */
import { mkdir, readdir, rm } from "node:fs/promises";
import path from "node:path";
import { causeChain, isKilnError } from "../domain/errors.js";
import { DEFAULT_RETRY_POLICY, retryDelay } from "../registry/retry.js";
import type { JobKind, JobProgress, JobRow, Store } from "../store/types.js";

export interface JobContext {
  /** Aborted when the job is cancelled or the server shuts down. */
  readonly signal: AbortSignal;
  /** Reports progress; `percentage` is 0–100 and never goes down. Cheap to call often. */
  progress(p: JobProgress): void;
  /** A private scratch directory, removed when the job ends, whatever the outcome. */
  tempDir(): Promise<string>;
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
}

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
  /** Aborted by stop(): ends the waits between tries to record a job's end. */
  private stopping = new AbortController();

  constructor(private readonly options: JobRunnerOptions) {}

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
    const { resumed, failed } = await this.options.store.jobs.recoverInterrupted(this.options.maxAttempts ?? 3, INTERRUPTED);
    if (resumed.length || failed.length) this.options.log?.info({ resumed, failed }, "recovered jobs interrupted by a restart");
    this.stopped = false;
    // A safety net: new work is normally signalled by wake(), but a poll catches anything missed.
    this.timer = setInterval(() => this.wake(), 2000);
    this.timer.unref();
    this.wake();
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
        job = await this.options.store.jobs.claimNext(kinds);
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
      writing = writing.then(() => store.jobs.progress(job.id, p)).catch((err: unknown) => this.options.log?.error({ err, job: job.id }, "cannot record progress"));
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
    };

    let outcome: Outcome | "requeue";
    try {
      if (controller.signal.aborted) throw controller.signal.reason;
      const done = await handler(job, ctx);
      if (controller.signal.aborted) throw controller.signal.reason;
      outcome = { state: "complete", ...(done?.message ? { message: done.message } : {}) };
    } catch (err) {
      const reason: unknown = controller.signal.aborted ? controller.signal.reason : undefined;
      if (reason instanceof Shutdown) outcome = "requeue";
      else if (reason instanceof Cancelled) outcome = { state: "cancelled" };
      else {
        const chain = causeChain(err);
        outcome = {
          state: "error",
          errorMessage: isKilnError(err) ? err.message.split("\n")[0]! : `internal error: ${chain[0] ?? "unknown"}`,
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
    if (outcome === "requeue") {
      // Left as running: the next start resumes it (or fails it after too many attempts).
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
        await this.options.store.jobs.finish(job.id, outcome);
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
   * within moments and removes its temporary files). Returns the job as it now stands.
   */
  async cancel(jobId: number): Promise<JobRow | undefined> {
    const row = await this.options.store.jobs.requestCancel(jobId);
    const entry = this.running.get(jobId);
    if (entry && !entry.controller.signal.aborted) {
      entry.controller.abort(new Cancelled());
      await entry.done;
      return this.options.store.jobs.get(jobId);
    }
    return row;
  }

  /** Whether a job is running in this process right now. */
  isRunning(jobId: number): boolean {
    return this.running.has(jobId);
  }

  /** Stops taking work and interrupts running jobs (they resume at the next start). */
  async stop(): Promise<void> {
    this.stopped = true;
    this.stopping.abort();
    if (this.timer) clearInterval(this.timer);
    const all = [...this.running.values()];
    for (const r of all) r.controller.abort(new Shutdown());
    await Promise.all(all.map((r) => r.done));
  }
}
