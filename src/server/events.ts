/**
 * Live progress for the console: `GET /api/users/{uid}/events` is a Server-Sent Events stream of
 * the status changes of the user's generations and publications.
 *
 * One {@link EventHub} per server does the work, whatever the number of watchers: while anyone is
 * watching, it asks the store a few times a second for the jobs changed since its last look (one
 * indexed query, skipped while the store has seen no write at all), turns each change into one
 * serialised event, and writes that same text to the streams of the job's owner. A watcher costs
 * a socket and a set entry; nothing is computed per watcher per tick. Reading changes from the
 * store rather than from in-process calls also sees changes made by other processes on the same
 * database.
 *
 * Each event is `event: status` with JSON data: the job's state, percentage, phase message, error
 * message, ETA and byte counts, and the URI (under /api) of the image or publication it is about.
 */
import type { FastifyReply, FastifyRequest } from "fastify";
import { fail } from "../domain/errors.js";
import type { JobRow, Store, UserRow } from "../store/types.js";
import type { ApiContext, HandlerMap } from "./app.js";

/** One status change, as the console reads it. */
export interface StatusEvent {
  job: number;
  kind: "generate" | "publish";
  /** `users/<login>/mysoftware/<msid>/templates/<tid>/images/<id>` or `.../pimages/<id>`. */
  uri: string;
  /** The image a publication is of (the image itself for a generation). */
  imageUri: string;
  state: JobRow["state"];
  percentage: number;
  message: string | null;
  errorMessage: string | null;
  eta: string | null;
  bytesLoaded: number | null;
  bytesTotal: number | null;
  lastModified: string;
}

interface Watcher {
  reply: FastifyReply;
  userId: number;
}

export interface EventHubOptions {
  /** How often the store is asked for changes while someone watches (ms). */
  intervalMs?: number;
  /** How often an idle stream gets a comment line, so proxies keep it open (ms). */
  heartbeatMs?: number;
  /** At most this many streams per user (a page that leaks streams is stopped here). */
  maxPerUser?: number;
}

/**
 * Changes are read back to this far before the newest change seen, and deduplicated: writers on
 * other machines may stamp `lastModified` with a clock slightly behind ours.
 */
const CLOCK_SLACK_MS = 2000;
/** Even without a local write, the store is asked this often (changes from other processes). */
const REMOTE_EVERY_MS = 2000;
/** A watcher whose socket holds this much unsent data is too slow: it is disconnected. */
const MAX_BACKLOG = 1 << 20;
const BATCH = 500;
const SUBJECTS_KEPT = 10_000;

export class EventHub {
  private readonly byUser = new Map<number, Set<Watcher>>();
  private watchers = 0;
  private timer: NodeJS.Timeout | undefined;
  private heartbeat: NodeJS.Timeout | undefined;
  private polling = false;
  private closed = false;
  /** Newest `lastModified` seen (ms), and what was last sent per job in the slack window. */
  private cursor = 0;
  private readonly sent = new Map<number, { at: number; text: string }>();
  private lastGeneration = -1;
  private lastQuery = 0;
  /** Which image or publication a job is about (immutable, so kept). */
  private readonly subjects = new Map<number, { userLogin: string; uri: string; imageUri: string } | null>();
  private readonly intervalMs: number;
  private readonly heartbeatMs: number;
  private readonly maxPerUser: number;

  constructor(
    private readonly store: Store,
    private readonly now: () => Date = () => new Date(),
    options: EventHubOptions = {},
  ) {
    this.intervalMs = options.intervalMs ?? 250;
    this.heartbeatMs = options.heartbeatMs ?? 20_000;
    this.maxPerUser = options.maxPerUser ?? 64;
  }

  /** Streams currently open. */
  get size(): number {
    return this.watchers;
  }

  /** Turns the request into an event stream for `user`'s jobs; returns once the stream is set up. */
  watch(req: FastifyRequest, reply: FastifyReply, user: UserRow): void {
    if (this.closed) fail("unavailable", "the server is shutting down");
    const mine = this.byUser.get(user.id) ?? new Set<Watcher>();
    if (mine.size >= this.maxPerUser) fail("badRequest", `user ${user.login} already has ${mine.size} event streams open: close some (each browser tab opens one)`);
    if (this.watchers === 0) this.startTicking();
    const w: Watcher = { reply, userId: user.id };
    mine.add(w);
    this.byUser.set(user.id, mine);
    this.watchers++;
    reply.hijack();
    reply.raw.writeHead(200, {
      "Content-Type": "text/event-stream; charset=utf-8",
      "Cache-Control": "no-store, no-transform",
      Connection: "keep-alive",
      "X-Accel-Buffering": "no",
      "X-Request-Id": String(req.id),
    });
    // The browser retries after 3 s if the stream breaks; the console refetches what it shows.
    reply.raw.write("retry: 3000\n: watching\n\n");
    reply.raw.once("close", () => this.drop(w));
  }

  private drop(w: Watcher): void {
    const mine = this.byUser.get(w.userId);
    if (!mine?.delete(w)) return;
    if (mine.size === 0) this.byUser.delete(w.userId);
    this.watchers--;
    if (this.watchers === 0) this.stopTicking();
  }

  private startTicking(): void {
    // Only changes from now on: what happened before, the page has just read through the API.
    this.cursor = Math.max(this.cursor, this.now().getTime());
    this.lastGeneration = -1;
    this.timer = setInterval(() => void this.tick(), this.intervalMs);
    this.heartbeat = setInterval(() => this.beat(), this.heartbeatMs);
    this.timer.unref();
    this.heartbeat.unref();
  }

  private stopTicking(): void {
    clearInterval(this.timer);
    clearInterval(this.heartbeat);
    this.timer = undefined;
    this.heartbeat = undefined;
    this.sent.clear();
  }

  private beat(): void {
    for (const set of this.byUser.values()) for (const w of set) this.write(w, ": keep-alive\n\n");
  }

  private write(w: Watcher, text: string): void {
    const raw = w.reply.raw;
    if (raw.destroyed) return;
    if (raw.writableLength > MAX_BACKLOG) {
      raw.destroy();
      return;
    }
    raw.write(text);
  }

  /** One look at the store; at most one runs at a time. */
  async tick(): Promise<void> {
    if (this.polling || this.watchers === 0) return;
    const generation = this.store.generation;
    const nowMs = this.now().getTime();
    if (generation === this.lastGeneration && nowMs - this.lastQuery < REMOTE_EVERY_MS) return;
    this.polling = true;
    try {
      this.lastGeneration = generation;
      this.lastQuery = nowMs;
      for (;;) {
        const jobs = await this.store.jobs.listChangedSince(new Date(this.cursor - CLOCK_SLACK_MS), BATCH);
        let fresh = 0;
        for (const job of jobs) if (await this.publish(job)) fresh++;
        // A full batch of already-sent rows cannot move the cursor: stop rather than loop.
        if (jobs.length < BATCH || fresh === 0) break;
      }
      for (const [id, s] of this.sent) if (s.at < this.cursor - CLOCK_SLACK_MS) this.sent.delete(id);
    } catch {
      // The store is unreachable for a moment: the next tick tries again; streams stay open.
    } finally {
      this.polling = false;
    }
  }

  /** Sends one job's change to its owner's streams, unless that exact state was already sent. */
  private async publish(job: JobRow): Promise<boolean> {
    const at = job.lastModified.getTime();
    if (at > this.cursor) this.cursor = at;
    const subject = await this.subjectOf(job);
    if (!subject) return false;
    const event: StatusEvent = {
      job: job.id,
      kind: job.kind,
      uri: subject.uri,
      imageUri: subject.imageUri,
      state: job.state,
      percentage: job.percentage,
      message: job.message,
      errorMessage: job.state === "error" ? job.errorMessage : null,
      eta: job.state === "running" && job.eta ? job.eta.toISOString() : null,
      bytesLoaded: job.bytesLoaded,
      bytesTotal: job.bytesTotal,
      lastModified: job.lastModified.toISOString(),
    };
    const text = `event: status\ndata: ${JSON.stringify(event)}\n\n`;
    const before = this.sent.get(job.id);
    if (before?.text === text) return false;
    this.sent.set(job.id, { at, text });
    const watchers = this.byUser.get(job.userId);
    if (watchers) for (const w of watchers) this.write(w, text);
    return true;
  }

  private async subjectOf(job: JobRow): Promise<{ uri: string; imageUri: string } | null> {
    if (this.subjects.has(job.id)) return this.subjects.get(job.id)!;
    let subject: { userLogin: string; uri: string; imageUri: string } | null = null;
    const user = await this.store.users.get(job.userId);
    if (user) {
      const imagePath = (img: { bundleId: number; templateId: number; id: number }): string =>
        `users/${user.login}/mysoftware/${img.bundleId}/templates/${img.templateId}/images/${img.id}`;
      if (job.kind === "generate") {
        const img = await this.store.images.getByJob(job.id);
        if (img) subject = { userLogin: user.login, uri: imagePath(img), imageUri: imagePath(img) };
      } else {
        const pub = await this.store.publications.getByJob(job.id);
        const img = pub && (await this.store.images.getById(pub.imageId));
        if (pub && img) subject = { userLogin: user.login, uri: `${imagePath(img)}/pimages/${pub.id}`, imageUri: imagePath(img) };
      }
    }
    // A job whose image is not written yet (same transaction, another connection) is looked up again.
    if (subject) {
      if (this.subjects.size >= SUBJECTS_KEPT) this.subjects.delete(this.subjects.keys().next().value!);
      this.subjects.set(job.id, subject);
    }
    return subject;
  }

  /** Ends every stream (the server is closing: open streams would hold it up). */
  close(): void {
    this.closed = true;
    for (const set of this.byUser.values()) for (const w of set) w.reply.raw.end();
    this.byUser.clear();
    this.watchers = 0;
    this.stopTicking();
  }
}

/** The stream's endpoint, routed with the others (authentication and the `{uid}` scope included). */
export function eventHandlers(ctx: ApiContext & { events: EventHub }): HandlerMap {
  return {
    user: {
      async userEvents_get(req, reply, { owner }) {
        ctx.events.watch(req, reply, owner);
        return reply;
      },
    },
  };
}
