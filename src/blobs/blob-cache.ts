/**
 * A size-bounded local cache of a remote store's blobs (the registry driver's): verified copies
 * under `<dir>/sha256/ab/ab12…ef`, filled through the driver's temporary objects (`<dir>/tmp/…`,
 * swept with them), evicted least recently used once their total passes the budget.
 *
 * One mechanism for everything that wants a blob as a local file: builds (a `.deb`, a zip, a layer
 * for an OCI layout) and downloads through the API.
 *
 * - A copy is published only once its bytes were hashed to its digest and counted to its size.
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
import { chmod, mkdir, readdir, rename, stat } from "node:fs/promises";
import path from "node:path";
import { createHash } from "node:crypto";
import { Transform, type Readable, type TransformCallback } from "node:stream";
import { pipeline } from "node:stream/promises";
import { KilnError } from "../domain/errors.js";
import { sha256File } from "../domain/file-hash.js";
import type { FsDriver, LocalCopy, TempObject } from "./driver.js";
import { VerifyingStream, type Digest } from "./blob-store.js";

/** The default budget of the cache (KILN_BLOB_CACHE_SIZE). */
export const DEFAULT_BLOB_CACHE_SIZE = 10 * 1024 ** 3;

/**
 * How far a download's copy may fall behind the client before it is given up: the client sets the
 * pace, and a disk slower than it must not slow it down or make memory grow.
 */
const TEE_LAG_LIMIT = 64 << 20;

const HEX_RE = /^[0-9a-f]{64}$/;

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
  /** Fetches in flight for {@link acquire}: one per blob, whoever asks. */
  private readonly fetching = new Map<string, Promise<void>>();
  /** Copies being published. */
  private readonly committing = new Map<string, Promise<unknown>>();
  /** Downloads copying into the cache: one per blob. */
  private readonly teeing = new Set<string>();
  private loading: Promise<void> | undefined;

  constructor(
    /** The driver's local directory (its `tmp/` holds fills in flight). */
    private readonly files: FsDriver,
    /** Bytes the cache may hold (copies in use may exceed it while they are). */
    readonly budget: number,
    /** The whole blob from the remote store. */
    private readonly fetch: (digest: Digest) => Promise<{ stream: Readable; size: number } | undefined>,
    /** How many bytes a download's copy may lag behind the client before it is given up. */
    private readonly teeLagLimit = TEE_LAG_LIMIT,
  ) {}

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
      const fetching = this.fetching.get(hex);
      if (fetching) {
        await fetching;
        continue;
      }
      const mine = this.fill(digest);
      const shared = mine.then(() => undefined);
      shared.catch(() => undefined);
      this.fetching.set(hex, shared);
      try {
        const made = await mine;
        if (made) return made;
      } finally {
        this.fetching.delete(hex);
      }
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

  /**
   * A stream to put between the remote's whole blob and a download: it passes the bytes on at the
   * client's pace and copies them into the cache, published once they hash to `digest` and count
   * `size`. Nothing when the blob is cached or being fetched already, or larger than the budget.
   * The copy is given up — never published — if the stream ends early (a client gone), if the
   * disk falls too far behind the client, or if the bytes are not the blob's; in the last case the
   * stream fails before its last bytes go out.
   */
  async tee(digest: Digest, size: number): Promise<Transform | undefined> {
    const hex = digest.slice(7);
    await this.load();
    if (size > this.budget || this.entries.has(hex) || this.fetching.has(hex) || this.teeing.has(hex)) return undefined;
    this.teeing.add(hex);
    let temp: TempObject;
    try {
      temp = await this.files.temp();
    } catch (err) {
      this.teeing.delete(hex);
      throw err;
    }
    return new TeeStream(digest, size, temp, this.teeLagLimit, {
      commit: () => this.commit(hex, temp.tempKey, size, false).then(() => undefined),
      drop: () => this.files.delete(temp.tempKey).catch(() => undefined),
      done: () => void this.teeing.delete(hex),
    });
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

  /** Fetches the whole blob into a temporary object, verifies it and publishes it, pinned for the caller. */
  private async fill(digest: Digest): Promise<LocalCopy | undefined> {
    const read = await this.fetch(digest);
    if (!read) throw new KilnError("notFound", `blob ${digest} is not in the blob store`);
    const temp = await this.files.temp().catch((err: unknown) => {
      read.stream.destroy();
      throw err;
    });
    try {
      await pipeline(read.stream, new VerifyingStream(digest, read.size), temp.stream);
      return await this.commit(digest.slice(7), temp.tempKey, read.size, true);
    } finally {
      await this.files.delete(temp.tempKey).catch(() => undefined);
    }
  }

  /**
   * Publishes a verified temporary object as the blob's copy, making room for it first: the copies
   * on disk stay within the budget (but for those in use) at every moment.
   */
  private commit(hex: string, tempKey: string, size: number, keep: true): Promise<LocalCopy | undefined>;
  private commit(hex: string, tempKey: string, size: number, keep: false): Promise<undefined>;
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

/** The copy a download makes on its way to the client (see {@link BlobCache.tee}). */
class TeeStream extends Transform {
  private readonly hash = createHash("sha256");
  private seen = 0;
  /** The latest chunk, held back until the next: the last goes out only once the digest matched. */
  private held: Buffer | undefined;
  private file: TempObject["stream"] | undefined;
  private settled = false;

  constructor(
    private readonly digest: Digest,
    private readonly expectSize: number,
    temp: TempObject,
    private readonly lagLimit: number,
    private readonly cache: { commit(): Promise<void>; drop(): Promise<void>; done(): void },
  ) {
    super({ highWaterMark: 1 << 20 });
    this.file = temp.stream;
    // A full disk gives up the copy, not the download.
    this.file.on("error", () => this.abandon());
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.hash.update(chunk);
    this.seen += chunk.length;
    if (this.file) {
      if (this.file.writableLength > this.lagLimit) this.abandon();
      else this.file.write(chunk);
    }
    const out = this.held;
    this.held = chunk;
    cb(null, out);
  }

  override _flush(cb: TransformCallback): void {
    const got = `sha256:${this.hash.digest("hex")}`;
    if (got !== this.digest || this.seen !== this.expectSize) {
      this.abandon();
      return cb(new KilnError("integrityFailed", `blob ${this.digest} from the registry is corrupt: ${this.seen} bytes hashing to ${got}, expected ${this.expectSize} bytes`));
    }
    const file = this.file;
    this.file = undefined;
    if (file) {
      this.settled = true;
      // The client does not wait for the copy to reach the disk.
      file.end((err?: Error | null) => {
        (err ? this.cache.drop() : this.cache.commit().catch(() => this.cache.drop())).finally(() => this.cache.done());
      });
    }
    cb(null, this.held);
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    this.abandon();
    cb(err);
  }

  /** Gives up the copy (the download goes on): the temporary object is removed. */
  private abandon(): void {
    if (this.settled) return;
    this.settled = true;
    const file = this.file;
    this.file = undefined;
    const finish = (): void => void this.cache.drop().finally(() => this.cache.done());
    if (file && !file.closed) {
      file.once("close", finish);
      file.destroy();
    } else finish();
  }
}
