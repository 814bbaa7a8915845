/**
 * A size-bounded local cache of a remote store's blobs (the registry driver's): verified copies
 * under `<dir>/sha256/ab/ab12…ef`, filled through the driver's temporary objects (`<dir>/tmp/…`,
 * swept with them), evicted least recently used once their total passes the budget.
 *
 * One mechanism for everything that wants a blob as a local file: builds (a `.deb`, a zip, a layer
 * for an OCI layout), downloads through the API, and the blobs this process wrote itself.
 *
 * - A copy is published only once its bytes were hashed to its digest and counted to its size.
 * - A blob is fetched once, whoever asks (a build, a download, a prefetch): a fill in flight is
 *   shared. A download does not wait for it: it follows the fill, reading the bytes already on
 *   disk as they arrive, and its last byte goes out only once the whole blob hashed to its
 *   digest. If the fill stops short for a local reason (a full disk) or stalls, its followers
 *   read the rest from the remote store; bytes that are not the blob's fail them.
 * - A copy in use is pinned ({@link LocalCopy.release} unpins it): a path handed out stays there
 *   until released, so eviction never pulls a file from under a build or a download. Pinned copies
 *   may hold the cache above its budget for as long as they are in use.
 * - A copy altered on disk after it was verified is not served: the kernel's inode change time
 *   (ctime, which nobody can set back) and the inode are recorded when the copy is verified, and
 *   checked each time the copy is handed out; a changed copy is dropped and fetched again. What
 *   this cannot see — bytes altered while a copy is being read, or under the filesystem (bit rot) —
 *   is the storage's to prevent.
 * - At start the cache is rebuilt from disk (sizes, access times for the order): those copies are
 *   hashed again before their first use, since nothing recorded their verification.
 *
 * The cache belongs to one process: two processes must not share a data directory's cache (each
 * evicts from its own account of it).
 */
import { chmod, mkdir, readdir, rename, stat, type FileHandle } from "node:fs/promises";
import path from "node:path";
import { Writable, type Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { isKilnError, KilnError } from "../domain/errors.js";
import { sha256File } from "../domain/file-hash.js";
import type { ByteRange, ByteReader, FsDriver, LocalCopy } from "./driver.js";
import { VerifyingStream, type Digest } from "./blob-store.js";

/** The default budget of the cache (KILN_BLOB_CACHE_SIZE). */
export const DEFAULT_BLOB_CACHE_SIZE = 10 * 1024 ** 3;

/**
 * How long a download following a fill waits for more bytes before it reads the rest from the
 * remote store instead: a disk that stalls must not stall the client.
 */
const FOLLOW_STALL_MS = 10_000;

const HEX_RE = /^[0-9a-f]{64}$/;

export interface BlobCacheOptions {
  /** Bytes `range` of the blob from the remote store: what a follower reads when the fill fails it. */
  openRange?: (digest: Digest, range: ByteRange) => Promise<Readable>;
  /** See {@link FOLLOW_STALL_MS}. */
  followStallMs?: number;
}

interface Entry {
  size: number;
  pins: number;
  /** Set once this process hashed the copy (or made it): what the file was then. */
  verified?: { ino: number; ctimeNs: bigint };
  /** Hashing a copy found on disk at start, once for all who ask. */
  verifying?: Promise<boolean>;
  /** Deleted from the store while pinned: removed from disk at the last release. */
  doomed?: boolean;
  /** Being published: counted in the budget, not yet there to read. */
  pending?: boolean;
}

const keyOf = (hex: string): string => `sha256/${hex.slice(0, 2)}/${hex}`;

export class BlobCache {
  /** Every copy on disk, least recently used first (a Map keeps insertion order). */
  private readonly entries = new Map<string, Entry>();
  private bytes = 0;
  /** Fetches in flight: one per blob, whoever asks. */
  private readonly fills = new Map<string, Fill>();
  /** Copies being published. */
  private readonly committing = new Map<string, Promise<unknown>>();
  private loading: Promise<void> | undefined;
  private readonly followStallMs: number;

  constructor(
    /** The driver's local directory (its `tmp/` holds fills in flight). */
    private readonly files: FsDriver,
    /** Bytes the cache may hold (copies in use may exceed it while they are). */
    readonly budget: number,
    /** The whole blob from the remote store. */
    private readonly fetch: (digest: Digest) => Promise<{ stream: Readable; size: number } | undefined>,
    private readonly options: BlobCacheOptions = {},
  ) {
    this.followStallMs = options.followStallMs ?? FOLLOW_STALL_MS;
  }

  /** Bytes the cache holds now. */
  get size(): number {
    return this.bytes;
  }

  /** The blob as a local file, fetched and verified first if need be; pinned until released. */
  async acquire(digest: Digest): Promise<LocalCopy> {
    const hex = digest.slice(7);
    // A copy evicted between another caller's fetch and this caller's pin (a budget smaller than
    // the blob) is fetched again; a few rounds, not for ever.
    for (let attempt = 0; attempt < 3; attempt++) {
      const copy = await this.lookup(hex);
      if (copy) return copy;
      const other = this.fills.get(hex);
      if (other) {
        await other.result.catch(() => undefined);
        continue;
      }
      const made = await this.begin(digest, true).result;
      if (made) return made;
    }
    throw new KilnError("unavailable", `blob ${digest} could not be kept in the local cache (KILN_BLOB_CACHE_SIZE is ${this.budget} bytes)`);
  }

  /** Whether the cache holds a published copy of the blob (not one being published). */
  has(digest: Digest): boolean {
    const e = this.entries.get(digest.slice(7));
    return e !== undefined && !e.pending && !e.doomed;
  }

  /** The verified local copy if the cache has one now (nothing is fetched); pinned until released. */
  peek(digest: Digest): Promise<LocalCopy | undefined> {
    return this.lookup(digest.slice(7));
  }

  /** Whether the blob is being fetched into the cache now. */
  filling(digest: Digest): boolean {
    return this.fills.has(digest.slice(7));
  }

  /**
   * Bytes `range` of a blob of `size` bytes for a download: the verified copy (pinned until
   * released); else a reader of the copy being fetched — the fill in flight, or one this starts
   * for a whole-blob download of a blob that fits the budget — that reads the bytes as they reach
   * the disk (close it once done); else nothing (the caller reads the remote).
   */
  async openDownload(digest: Digest, size: number, range: ByteRange): Promise<LocalCopy | ByteReader | undefined> {
    const hex = digest.slice(7);
    for (let attempt = 0; attempt < 3; attempt++) {
      const copy = await this.lookup(hex);
      if (copy) return copy;
      let fill = this.fills.get(hex);
      if (!fill) {
        const whole = range.start === 0 && range.end === size - 1;
        if (!whole || size > this.budget || this.entries.has(hex)) return undefined;
        fill = this.begin(digest, false);
      }
      await fill.ready;
      const reader = fill.follow(digest, range.end, this.followStallMs, this.options.openRange);
      // A fill that ended in between has closed its file: its copy is published (or not) by now.
      if (reader) return reader;
    }
    return undefined;
  }

  /**
   * Fetches a blob of `size` bytes into the cache in the background (a download is expected):
   * nothing when it is there, being fetched, or larger than the budget. Settles once the copy is
   * published, true if this fetched it; a failure is the caller's to report (nothing else waits
   * for it).
   */
  async prefetch(digest: Digest, size: number): Promise<boolean> {
    await this.load();
    const hex = digest.slice(7);
    if (size > this.budget || this.entries.has(hex) || this.fills.has(hex)) return false;
    await this.begin(digest, false).result;
    return true;
  }

  /**
   * Keeps a blob this process has just written — a complete temporary object whose bytes were
   * hashed to `digest` as they were written — as its cached copy, instead of fetching it back
   * later. The temporary object is consumed (moved, or removed when the cache does not want it).
   */
  async adopt(digest: Digest, tempKey: string, size: number): Promise<void> {
    await this.load();
    const hex = digest.slice(7);
    if (size > this.budget || this.entries.has(hex) || this.fills.has(hex)) {
      await this.files.delete(tempKey);
      return;
    }
    await this.commit(hex, tempKey, size, false);
  }

  /** Forgets a blob deleted from the store (its file goes once nobody uses it). */
  async remove(digest: Digest): Promise<void> {
    const hex = digest.slice(7);
    await this.load();
    const e = this.entries.get(hex);
    if (e && e.pins > 0) {
      e.doomed = true;
      return;
    }
    if (e) this.forget(hex, e);
    await this.files.delete(keyOf(hex));
  }

  /** Reads the copies left on disk by an earlier run, once, before the first use. */
  load(): Promise<void> {
    this.loading ??= this.scan();
    return this.loading;
  }

  private async scan(): Promise<void> {
    const found: { hex: string; size: number; atimeMs: number }[] = [];
    let dirs: string[];
    try {
      dirs = await readdir(this.files.localPath("sha256"));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return;
      throw err;
    }
    for (const d of dirs) {
      for (const name of await readdir(this.files.localPath(`sha256/${d}`)).catch(() => [] as string[])) {
        const key = `sha256/${d}/${name}`;
        // Anything else is a leftover of an interrupted fill by an earlier version (`<hex>.<rand>.part`).
        if (!HEX_RE.test(name) || name.slice(0, 2) !== d) {
          await this.files.delete(key);
          continue;
        }
        const s = await stat(this.files.localPath(key)).catch(() => undefined);
        if (s?.isFile()) found.push({ hex: name, size: s.size, atimeMs: s.atimeMs });
      }
    }
    found.sort((a, b) => a.atimeMs - b.atimeMs);
    for (const f of found) {
      if (this.entries.has(f.hex)) continue;
      this.entries.set(f.hex, { size: f.size, pins: 0 });
      this.bytes += f.size;
    }
    // A budget lowered since the last run applies at once.
    await this.evict();
  }

  /** Pins and checks the copy; a copy that is gone or was altered is forgotten. */
  private async lookup(hex: string): Promise<LocalCopy | undefined> {
    await this.load();
    // A copy being published is there in a moment.
    await this.committing.get(hex)?.catch(() => undefined);
    const e = this.entries.get(hex);
    if (!e || e.doomed || e.pending) return undefined;
    e.pins++;
    let ok = false;
    try {
      ok = await this.check(hex, e);
    } finally {
      if (!ok) e.pins--;
    }
    if (!ok) {
      if (this.entries.get(hex) === e) {
        this.forget(hex, e);
        await this.files.delete(keyOf(hex)).catch(() => undefined);
      }
      return undefined;
    }
    return this.pinned(hex, e);
  }

  /** A copy handed out, already pinned once for it; made most recently used. */
  private pinned(hex: string, e: Entry): LocalCopy {
    this.entries.delete(hex);
    this.entries.set(hex, e);
    let released = false;
    return {
      path: this.files.localPath(keyOf(hex)),
      release: () => {
        if (released) return;
        released = true;
        e.pins--;
        if (e.pins === 0) void this.evict();
      },
    };
  }

  private async check(hex: string, e: Entry): Promise<boolean> {
    const file = this.files.localPath(keyOf(hex));
    const s = await stat(file, { bigint: true }).catch(() => undefined);
    if (!s || Number(s.size) !== e.size) return false;
    if (e.verified) return e.verified.ino === Number(s.ino) && e.verified.ctimeNs === s.ctimeNs;
    e.verifying ??= sha256File(file).then(
      (got) => {
        const ok = got === hex;
        if (ok) e.verified = { ino: Number(s.ino), ctimeNs: s.ctimeNs };
        return ok;
      },
      () => false,
    ).finally(() => (e.verifying = undefined));
    return e.verifying;
  }

  /** Starts fetching the whole blob into the cache (the caller made sure none is in flight). */
  private begin(digest: Digest, keep: boolean): Fill {
    const hex = digest.slice(7);
    const fill = new Fill();
    this.fills.set(hex, fill);
    fill.result = this.run(digest, fill, keep);
    fill.result.then(
      () => this.ended(hex, fill),
      (err: unknown) => this.ended(hex, fill, err as Error),
    );
    return fill;
  }

  private ended(hex: string, fill: Fill, err?: Error): void {
    if (this.fills.get(hex) === fill) this.fills.delete(hex);
    fill.end(err);
  }

  /**
   * Fetches the whole blob into a temporary object, verifies it and publishes it — pinned for the
   * caller when `keep` — telling `fill`'s followers how far the bytes on disk go.
   */
  private async run(digest: Digest, fill: Fill, keep: boolean): Promise<LocalCopy | undefined> {
    await this.load();
    const read = await this.fetch(digest);
    if (!read) throw new KilnError("notFound", `blob ${digest} is not in the blob store`);
    let tempKey: string | undefined;
    try {
      // One handle: the fill writes through it in large batches (FillSink), followers read it;
      // the fill closes it once it has ended and nobody reads.
      const temp = await this.files.tempFile();
      tempKey = temp.tempKey;
      fill.opened(read.size, temp.file);
      await pipeline(read.stream, new VerifyingStream(digest, read.size), new FillSink(temp.file, (n) => fill.progress(n)));
      fill.verify();
      return await this.commit(digest.slice(7), tempKey, read.size, keep);
    } finally {
      read.stream.destroy();
      if (tempKey) await this.files.delete(tempKey).catch(() => undefined);
    }
  }

  /**
   * Publishes a verified temporary object as the blob's copy, making room for it first: the copies
   * on disk stay within the budget (but for those in use) at every moment.
   */
  private commit(hex: string, tempKey: string, size: number, keep: true): Promise<LocalCopy | undefined>;
  private commit(hex: string, tempKey: string, size: number, keep: false): Promise<undefined>;
  private commit(hex: string, tempKey: string, size: number, keep: boolean): Promise<LocalCopy | undefined>;
  private async commit(hex: string, tempKey: string, size: number, keep: boolean): Promise<LocalCopy | undefined> {
    if (this.entries.has(hex)) {
      // Another fill got there first: its copy stays (it may be in use).
      await this.files.delete(tempKey);
      return undefined;
    }
    const e: Entry = { size, pins: 1, pending: true };
    this.entries.set(hex, e);
    this.bytes += size;
    const publishing = (async (): Promise<void> => {
      await this.evict();
      // rename(), not the driver's no-replace move: a file already at that path is none of this
      // cache's (a copy that could not be removed) and must not pass for the verified bytes.
      const dest = this.files.localPath(keyOf(hex));
      const src = this.files.localPath(tempKey);
      await mkdir(path.dirname(dest), { recursive: true });
      await chmod(src, 0o444);
      await rename(src, dest);
      const s = await stat(dest, { bigint: true });
      e.verified = { ino: Number(s.ino), ctimeNs: s.ctimeNs };
      delete e.pending;
    })();
    this.committing.set(hex, publishing);
    try {
      await publishing;
    } catch (err) {
      e.pins--;
      this.forget(hex, e);
      throw err;
    } finally {
      this.committing.delete(hex);
    }
    if (keep) return this.pinned(hex, e);
    e.pins--;
    await this.evict();
    return undefined;
  }

  private forget(hex: string, e: Entry): void {
    if (this.entries.get(hex) !== e) return;
    this.entries.delete(hex);
    this.bytes -= e.size;
  }

  /** Removes the least recently used copies nobody uses until the cache is within its budget. */
  private async evict(): Promise<void> {
    const victims: string[] = [];
    for (const [hex, e] of this.entries) {
      if (e.pins > 0 || (!e.doomed && this.bytes <= this.budget)) continue;
      this.forget(hex, e);
      victims.push(hex);
    }
    // A copy that cannot be removed (a read-only disk) is only no longer served; a scan at the
    // next start counts it again. Eviction runs after a release too, where nobody awaits it.
    await Promise.all(victims.map((hex) => this.files.delete(keyOf(hex)).catch(() => undefined)));
  }
}

/** A fetch of a whole blob into the cache, in flight: how far its bytes on disk go, for followers. */
class Fill {
  /** Settles with the fill (its copy, pinned, when it was begun to keep one). */
  result!: Promise<LocalCopy | undefined>;
  /** Resolves once the blob's size is known and its file can be read; rejects if the fetch fails first. */
  readonly ready: Promise<void>;
  size = 0;
  /** Bytes on disk. */
  written = 0;
  /** Every byte is on disk and the whole hashed to the digest: the last byte may go out. */
  verified = false;
  /** Why the fill stopped short. */
  failed: Error | undefined;
  private file: FileHandle | undefined;
  private readers = 0;
  private done = false;
  private closed = false;
  private wake = signal();
  private readonly settleReady: { resolve: () => void; reject: (err: Error) => void };

  constructor() {
    let settle!: { resolve: () => void; reject: (err: Error) => void };
    this.ready = new Promise<void>((resolve, reject) => (settle = { resolve, reject }));
    // Awaited by followers only; a fill nobody follows reports through its result.
    this.ready.catch(() => undefined);
    this.settleReady = settle;
  }

  opened(size: number, file: FileHandle): void {
    this.size = size;
    this.file = file;
    this.settleReady.resolve();
  }

  progress(written: number): void {
    this.written = written;
    this.changed();
  }

  verify(): void {
    this.verified = true;
    this.changed();
  }

  end(err?: Error): void {
    this.done = true;
    if (!this.file) this.settleReady.reject(err ?? new Error("the fill ended before it began"));
    if (!this.verified) this.failed ??= err ?? new Error("the fill ended short");
    this.changed();
    this.closeIfUnused();
  }

  /** A reader of bytes `..last` as they arrive; undefined once the fill's file is closed. */
  follow(digest: Digest, last: number, stallMs: number, openRange: BlobCacheOptions["openRange"]): ByteReader | undefined {
    if (!this.file || this.closed) return undefined;
    this.readers++;
    return new FillFollower(this, digest, last, stallMs, openRange);
  }

  read(buffer: Buffer, offset: number, length: number, position: number): Promise<{ bytesRead: number }> {
    return this.file!.read(buffer, offset, length, position);
  }

  /** Resolves true at the next change of state (at once when the fill has ended), false after `ms` without one. */
  waitForChange(ms: number): Promise<boolean> {
    if (this.done) return Promise.resolve(true);
    return new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(false), ms);
      timer.unref();
      void this.wake.promise.then(() => {
        clearTimeout(timer);
        resolve(true);
      });
    });
  }

  unfollow(): void {
    this.readers--;
    this.closeIfUnused();
  }

  private changed(): void {
    const w = this.wake;
    this.wake = signal();
    w.fire();
  }

  private closeIfUnused(): void {
    if (!this.done || this.readers > 0 || !this.file || this.closed) return;
    this.closed = true;
    void this.file.close().catch(() => undefined);
  }
}

function signal(): { promise: Promise<void>; fire: () => void } {
  let fire!: () => void;
  const promise = new Promise<void>((resolve) => (fire = resolve));
  return { promise, fire };
}

/** A download's reader of a fill (see {@link BlobCache.openDownload}). */
class FillFollower implements ByteReader {
  /** The rest of the range from the remote store, once the fill failed or stalled. */
  private remote: StreamReader | undefined;
  private closed = false;

  constructor(
    private readonly fill: Fill,
    private readonly digest: Digest,
    /** The last byte wanted. */
    private readonly last: number,
    private readonly stallMs: number,
    private readonly openRange: BlobCacheOptions["openRange"],
  ) {}

  async read(buffer: Buffer, offset: number, length: number, position: number): Promise<{ bytesRead: number }> {
    for (;;) {
      if (this.remote) return this.remote.read(buffer, offset, length, position);
      const f = this.fill;
      if (position > this.last || position >= f.size) return { bytesRead: 0 };
      if (f.failed) {
        // Bytes that are not the blob's fail the download; anything else is the cache's problem.
        if (isKilnError(f.failed, "integrityFailed") || !this.openRange) throw f.failed;
        await this.fromRemote(position);
        continue;
      }
      const limit = f.verified ? f.size : Math.min(f.written, f.size - 1);
      if (position < limit) return f.read(buffer, offset, Math.min(length, limit - position, this.last + 1 - position), position);
      if (!(await f.waitForChange(this.stallMs)) && this.openRange) await this.fromRemote(position);
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.remote?.close();
    this.fill.unfollow();
  }

  private async fromRemote(position: number): Promise<void> {
    this.remote = new StreamReader(await this.openRange!(this.digest, { start: position, end: this.last }), position);
  }
}

/** Positional reads, in order, of a stream that starts at `position`. */
class StreamReader implements ByteReader {
  constructor(
    private readonly stream: Readable,
    private position: number,
  ) {
    // Its failure is read through `errored` by the next read.
    stream.on("error", () => undefined);
  }

  async read(buffer: Buffer, offset: number, length: number, position: number): Promise<{ bytesRead: number }> {
    if (position !== this.position) throw new Error(`a stream is read in order: asked for byte ${position}, at ${this.position}`);
    for (;;) {
      const chunk = this.stream.read() as Buffer | null;
      if (chunk) {
        const n = Math.min(length, chunk.length);
        chunk.copy(buffer, offset, 0, n);
        if (n < chunk.length) this.stream.unshift(chunk.subarray(n));
        this.position += n;
        return { bytesRead: n };
      }
      if (this.stream.readableEnded) return { bytesRead: 0 };
      if (this.stream.errored) throw this.stream.errored;
      if (this.stream.destroyed) throw new Error("the remote store's stream closed early");
      await new Promise<void>((resolve) => {
        const events = ["readable", "end", "error", "close"] as const;
        const done = (): void => {
          for (const e of events) this.stream.off(e, done);
          resolve();
        };
        for (const e of events) this.stream.on(e, done);
      });
    }
  }

  async close(): Promise<void> {
    this.stream.destroy();
  }
}

/**
 * The fill's file: written in large batches (one writev of whatever arrived while the last was on
 * its way: about twice the rate of a WriteStream's 64 KiB writes here), saying how many bytes are
 * on disk each time a write lands. The handle is the fill's to close (its followers read it).
 */
class FillSink extends Writable {
  private written = 0;

  constructor(
    private readonly file: FileHandle,
    private readonly onDisk: (bytes: number) => void,
  ) {
    super({ highWaterMark: 8 << 20 });
  }

  override _writev(chunks: Array<{ chunk: Buffer }>, cb: (err?: Error | null) => void): void {
    this.writeAll(chunks.map((c) => c.chunk)).then(() => cb(), cb);
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.writeAll([chunk]).then(() => cb(), cb);
  }

  private async writeAll(list: Buffer[]): Promise<void> {
    // A short write (rare: a nearly full disk) goes on from where it stopped.
    while (list.length > 0) {
      const { bytesWritten } = await this.file.writev(list, this.written);
      this.written += bytesWritten;
      this.onDisk(this.written);
      list = skip(list, bytesWritten);
    }
  }
}

/** The buffers after their first `n` bytes. */
function skip(list: Buffer[], n: number): Buffer[] {
  const out: Buffer[] = [];
  for (const b of list) {
    if (n >= b.length) n -= b.length;
    else {
      out.push(n > 0 ? b.subarray(n) : b);
      n = 0;
    }
  }
  return out;
}
