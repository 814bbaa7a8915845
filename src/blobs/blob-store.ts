/**
 * Content-addressed blobs over a {@link StorageDriver}: bytes are hashed (sha256 and md5) while
 * they stream into a temporary object, and published under their digest only once complete and
 * verified. An interrupted or cancelled write leaves nothing behind.
 */
import { createHash, type Hash } from "node:crypto";
import { Transform, Writable, type Readable, type TransformCallback } from "node:stream";
import { pipeline } from "node:stream/promises";
import { KilnError, storageError } from "../domain/errors.js";
import type { ByteRange, ByteReader, LocalCopy, StorageDriver } from "./driver.js";
import { FsDriver } from "./driver.js";

/** `sha256:<64 hex>` */
export type Digest = `sha256:${string}`;

export interface BlobInfo {
  digest: Digest;
  size: number;
}

export interface IngestedBlob extends BlobInfo {
  /** md5 (hex) of the bytes; empty when the writer was opened with `md5: false`. */
  md5: string;
}

export interface BlobExpectation {
  digest?: string;
  size?: number;
}

const DIGEST_RE = /^sha256:[0-9a-f]{64}$/;

export function isDigest(s: string): s is Digest {
  return DIGEST_RE.test(s);
}

export function assertDigest(s: string): Digest {
  if (!isDigest(s)) throw new KilnError("badRequest", `"${s}" is not a sha256 digest`);
  return s;
}

function keyOf(digest: Digest): string {
  const hex = digest.slice(7);
  return `sha256/${hex.slice(0, 2)}/${hex}`;
}

/**
 * A writer for one blob. Write bytes into it (it is a Writable), then `commit()` to publish, or
 * `cancel()` to drop; `cancel()` is safe to call twice and after `commit()` (use it in `finally`).
 */
export class BlobWriter extends Writable {
  private readonly sha256: Hash = createHash("sha256");
  private readonly md5: Hash | undefined;
  private written = 0;
  private state: "open" | "sealed" | "committed" | "cancelled" = "open";
  private staged = false;
  private sealed: IngestedBlob | undefined;
  private cancelling: Promise<void> | undefined;
  private target: import("node:fs").WriteStream | undefined;
  private tempKey: string | undefined;
  private readonly ready: Promise<void>;
  /** The temp file's failure (a full disk), as the user sees it; every later write fails with it. */
  private targetError: Error | undefined;
  /** The write waiting for `drain`: a failed file never drains, so its error must end the wait. */
  private waiting: ((err?: Error) => void) | undefined;

  private readonly driver: StorageDriver;

  constructor(
    /** The store the bytes go to. */
    readonly store: BlobStore,
    private readonly maxSize: number | undefined,
    withMd5 = true,
  ) {
    // Not destroyed on finish: the bytes must stay until commit() or cancel() decides.
    super({ highWaterMark: 1 << 20, autoDestroy: false });
    this.driver = store.driver;
    this.md5 = withMd5 ? createHash("md5") : undefined;
    this.ready = this.driver.temp().then((t) => {
      this.target = t.stream;
      this.tempKey = t.tempKey;
      t.stream.on("error", (err) => {
        this.targetError ??= storageError(err);
        const waiting = this.waiting;
        this.waiting = undefined;
        waiting?.(this.targetError);
      });
      if (this.state === "cancelled") void this.dropTemp();
    });
    // A temp file that cannot even be created (a full disk) fails the first write with its cause.
    this.ready.catch(() => undefined);
  }

  /** Bytes accepted so far. */
  get bytesWritten(): number {
    return this.written;
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.ready.then(
      () => {
        // A write that races a cancel is dropped: the blob is being discarded anyway.
        if (this.state !== "open") return cb();
        if (this.targetError) return cb(this.targetError);
        this.written += chunk.length;
        if (this.maxSize !== undefined && this.written > this.maxSize) {
          return cb(new KilnError("tooLarge", `the upload exceeds the limit of ${this.maxSize} bytes`));
        }
        this.sha256.update(chunk);
        this.md5?.update(chunk);
        if (this.target!.write(chunk)) return cb();
        const target = this.target!;
        const onDrain = (): void => done();
        const done = (err?: Error): void => {
          target.off("drain", onDrain);
          this.waiting = undefined;
          cb(err);
        };
        this.waiting = done;
        target.once("drain", onDrain);
      },
      (err) => cb(storageError(err)),
    );
  }

  override _final(cb: (err?: Error | null) => void): void {
    this.ready.then(
      () => {
        if (this.targetError) return cb(this.targetError);
        this.target!.end((err?: Error | null) => cb(err ? storageError(err) : (this.targetError ?? null)));
      },
      (err) => cb(storageError(err)),
    );
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    if (this.state === "open") {
      this.cancel().then(() => cb(err), () => cb(err));
    } else cb(err);
  }

  /** Publishes the blob under its digest once every byte is on disk; checks the expectation. */
  async commit(expect: BlobExpectation = {}): Promise<IngestedBlob> {
    await this.seal(expect);
    return this.publish();
  }

  /**
   * Waits for every byte, checks the expectation and learns the digest, without publishing yet:
   * a caller that must reference the blob atomically with its publication (store/blob-gc.ts)
   * takes its lock in between. A failed check drops the bytes. Sealing again answers the same.
   */
  async seal(expect: BlobExpectation = {}): Promise<IngestedBlob> {
    if (this.state === "sealed" && this.sealed !== undefined) return this.sealed;
    if (this.state !== "open") throw new Error(`blob writer already ${this.state}`);
    if (!this.writableFinished) {
      await new Promise<void>((resolve, reject) => {
        this.once("finish", resolve);
        this.once("error", reject);
        if (!this.writableEnded) this.end();
      });
    }
    await this.ready;
    await new Promise<void>((resolve, reject) => {
      if (this.target!.closed) return resolve();
      this.target!.once("close", resolve);
      this.target!.once("error", reject);
    });
    if (this.targetError) {
      await this.cancel();
      throw this.targetError;
    }
    const digest = `sha256:${this.sha256.digest("hex")}` as Digest;
    const md5 = this.md5?.digest("hex") ?? "";
    try {
      if (expect.size !== undefined && expect.size !== this.written) {
        throw new KilnError("integrityFailed", `size mismatch: expected ${expect.size} bytes, got ${this.written}`);
      }
      if (expect.digest !== undefined && expect.digest !== digest) {
        throw new KilnError("integrityFailed", `digest mismatch: expected ${expect.digest}, got ${digest}`);
      }
    } catch (err) {
      await this.cancel();
      throw err;
    }
    this.state = "sealed";
    this.sealed = { digest, size: this.written, md5 };
    return this.sealed;
  }

  /**
   * Uploads the sealed bytes to a remote store ahead of {@link publish}, which then only checks
   * they are there (see StorageDriver.stage); nothing on a local store. A failure drops the bytes.
   */
  async stage(signal?: AbortSignal): Promise<void> {
    if (this.state !== "sealed" || this.sealed === undefined) throw new Error(`blob writer is ${this.state}, not sealed`);
    if (!this.driver.stage) return;
    // Set first: an upload that failed (or was cancelled) may have reached the store anyway.
    this.staged = true;
    try {
      await this.driver.stage(this.tempKey!, keyOf(this.sealed.digest), signal);
    } catch (err) {
      await this.cancel();
      throw err;
    }
  }

  /**
   * Whether {@link stage} may have put the bytes in the store (it ran, even if it failed) before
   * their publication: if that does not happen, they may be there unreferenced, for the caller to
   * collect (store/blob-gc.ts).
   */
  get wasStaged(): boolean {
    return this.staged && this.state !== "committed";
  }

  /** Moves the sealed bytes to their digest's place (an existing copy, the same bytes, stays). */
  async publish(): Promise<IngestedBlob> {
    if (this.state !== "sealed" || this.sealed === undefined) throw new Error(`blob writer is ${this.state}, not sealed`);
    try {
      await this.driver.move(this.tempKey!, keyOf(this.sealed.digest));
    } catch (err) {
      await this.cancel();
      throw err;
    }
    this.state = "committed";
    return this.sealed;
  }

  /** Drops the temporary object. Safe to call more than once, and after commit (no-op). */
  cancel(): Promise<void> {
    if (this.state === "committed") return Promise.resolve();
    if (this.state === "open" || this.state === "sealed") {
      this.state = "cancelled";
      // Every caller waits for the same removal, so "cancelled" means "gone from disk".
      this.cancelling = this.ready.then(
        () => this.dropTemp(),
        () => undefined,
      );
    }
    return this.cancelling ?? Promise.resolve();
  }

  private async dropTemp(): Promise<void> {
    const t = this.target;
    if (t && !t.closed) await new Promise<void>((resolve) => t.destroy() && t.once("close", () => resolve()));
    if (this.tempKey) await this.driver.delete(this.tempKey).catch(() => undefined);
  }
}

/** Checks a stream's bytes against a digest and size as they pass; fails at the end on mismatch. */
export class VerifyingStream extends Transform {
  private readonly hash = createHash("sha256");
  private seen = 0;
  constructor(
    private readonly expectDigest: string,
    private readonly expectSize: number | undefined,
    /** How messages name the bytes (`blob sha256:…` by default). */
    private readonly what = `blob ${expectDigest}`,
  ) {
    super({ highWaterMark: 1 << 20 });
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.hash.update(chunk);
    this.seen += chunk.length;
    cb(null, chunk);
  }
  override _flush(cb: TransformCallback): void {
    const got = `sha256:${this.hash.digest("hex")}`;
    if (got !== this.expectDigest) return cb(new KilnError("integrityFailed", `${this.what} is corrupt: its bytes hash to ${got}, not ${this.expectDigest}`));
    if (this.expectSize !== undefined && this.seen !== this.expectSize) {
      return cb(new KilnError("integrityFailed", `${this.what} has ${this.seen} bytes, expected ${this.expectSize}`));
    }
    cb();
  }
}

export class BlobStore {
  constructor(readonly driver: StorageDriver) {}

  /** A blob store on the local filesystem under `root`. */
  static open(root: string): BlobStore {
    return new BlobStore(new FsDriver(root));
  }

  /**
   * Starts a streaming write. `maxSize` turns larger inputs into a `413` error; `md5: false`
   * skips the md5 that uploads report (content addressing needs only sha256).
   */
  ingest(options: { maxSize?: number; md5?: boolean } = {}): BlobWriter {
    return new BlobWriter(this, options.maxSize, options.md5 ?? true);
  }

  /** Streams `source` into the store and commits it. */
  async put(source: Readable | Buffer | string, expect: BlobExpectation = {}, options: { maxSize?: number } = {}): Promise<IngestedBlob> {
    const w = this.ingest(options);
    try {
      if (typeof source === "string" || Buffer.isBuffer(source)) {
        w.end(source);
      } else {
        await pipeline(source, w);
      }
      return await w.commit(expect);
    } finally {
      await w.cancel();
    }
  }

  async stat(digest: string): Promise<BlobInfo | undefined> {
    if (!isDigest(digest)) return undefined;
    const s = await this.driver.stat(keyOf(digest));
    return s ? { digest, size: s.size } : undefined;
  }

  async has(digest: string): Promise<boolean> {
    return (await this.stat(digest)) !== undefined;
  }

  /** The blob's bytes (or a range of them). */
  open(digest: Digest, range?: ByteRange): Readable {
    return this.driver.reader(keyOf(digest), range);
  }

  /** The blob's bytes (or a range), once the store has answered: a remote store's stream as it comes. */
  openStream(digest: Digest, range?: ByteRange): Promise<Readable> {
    const key = keyOf(digest);
    return this.driver.open ? this.driver.open(key, range) : Promise.resolve(this.driver.reader(key, range));
  }

  /** The blob's bytes, checked against its digest at the end of the stream. */
  openVerified(digest: Digest, size?: number): Readable {
    const v = new VerifyingStream(digest, size);
    const r = this.open(digest);
    r.on("error", (err) => v.destroy(err));
    return r.pipe(v);
  }

  /**
   * Where the blob is (or would be) as a local file, without fetching it: for messages, and for
   * reading a blob of a local store. Use {@link localCopy} to read it whatever the driver.
   */
  path(digest: Digest): string {
    return this.driver.localPath(keyOf(digest));
  }

  /**
   * The blob as a local file (read-only), for hard links and archives: fetched first from a remote
   * store, and kept there until released (a remote store's cached copy is not evicted in use).
   */
  localCopy(digest: Digest): Promise<LocalCopy> {
    return this.driver.localCopy(keyOf(digest));
  }

  /**
   * Bytes `range` of a blob of `size` bytes, for a download: a local file when there is one (the
   * store's own, or a remote store's cached copy; release it once sent), a reader of the copy a
   * remote store is fetching into its cache (close it once sent), else the remote's stream.
   */
  async openDownload(digest: Digest, size: number, range: ByteRange): Promise<LocalCopy | ByteReader | Readable> {
    const key = keyOf(digest);
    if (this.driver.local || !this.driver.openDownload) return this.driver.localCopy(key);
    return this.driver.openDownload(key, size, range);
  }

  async delete(digest: Digest): Promise<void> {
    await this.driver.delete(keyOf(digest));
  }

  /** Resolves when the store can be written to; else rejects with `unavailable`. */
  async ping(): Promise<void> {
    try {
      await this.driver.ping();
    } catch (err) {
      throw new KilnError("unavailable", "the blob store cannot be reached", { cause: err });
    }
  }

  /** Removes what writers of ended processes left in temporary space; answers how many. */
  sweepTemp(): Promise<number> {
    return this.driver.sweepTemp?.() ?? Promise.resolve(0);
  }

  /** Every stored digest (for garbage collection). */
  async list(): Promise<Digest[]> {
    const keys = await this.driver.list("sha256");
    return keys.map((k) => `sha256:${k.split("/").pop()}` as Digest).filter(isDigest);
  }
}
