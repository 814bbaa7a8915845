/**
 * Where unpacked file bytes live: one sequential content file per package on disk, each file a
 * byte range of it. Opening a range does not open the file again: thousands of small files are
 * read through one descriptor per package, closed again after a short idle time.
 *
 * Small ranges are read synchronously. They were written moments before (the page cache has
 * them), and on a busy machine a trip through libuv's pool costs more than the read: each one
 * wakes a pool thread that competes with the layers' gzip work (a profile of a cold minbase
 * build put 0.9 s of the main thread there). Large files stream through the pool as usual.
 */
import { close, openSync, read, readSync } from "node:fs";
import { Readable } from "node:stream";
import type { ContentRef } from "./types.js";

/** Read granularity for ranges: large files stream in pieces of this size. */
const CHUNK = 1 << 20;
/** A descriptor unused for this long is closed (a later read reopens it). */
const IDLE_CLOSE_MS = 2_000;
/** Ranges up to this size are read synchronously (see {@link RangeContent.readAt}). */
const SYNC_READ = 256 << 10;

/** A package's content file, shared by all the ranges in it. */
export class ContentFile {
  private fd: number | undefined;
  private users = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(readonly path: string) {}

  /** A {@link ContentRef} for `size` bytes at `offset`. */
  range(offset: number, size: number, md5?: string): RangeContent {
    return new RangeContent(this, offset, size, md5);
  }

  /**
   * @internal Hands out the shared descriptor, opening it if needed; pair with {@link release}.
   * Opened synchronously: a local open costs microseconds, less than a trip through the pool.
   */
  acquireSync(): number {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    this.fd ??= openSync(this.path, "r");
    this.users++;
    return this.fd;
  }

  /** @internal {@link acquireSync}, failing as a rejection. */
  acquire(): Promise<number> {
    try {
      return Promise.resolve(this.acquireSync());
    } catch (err) {
      return Promise.reject(err as Error);
    }
  }

  /** @internal */
  release(): void {
    if (--this.users > 0 || this.fd === undefined) return;
    this.timer = setTimeout(() => this.closeNow(), IDLE_CLOSE_MS);
    this.timer.unref();
  }

  private closeNow(): void {
    const fd = this.fd;
    this.fd = undefined;
    this.timer = undefined;
    if (fd !== undefined) close(fd, () => undefined);
  }
}

/** A regular file's bytes: a range of a package's content file. */
export class RangeContent implements ContentRef {
  constructor(
    readonly file: ContentFile,
    readonly offset: number,
    readonly size: number,
    /** md5 (hex) of the bytes, computed when the package was unpacked. */
    readonly md5?: string,
  ) {}

  open(): Readable {
    if (this.size === 0) return Readable.from([], { objectMode: false });
    return new RangeReader(this.file, this.offset, this.size);
  }

  /** The bytes in one read (for small files; large ones should stream). */
  read(): Promise<Buffer> {
    return this.readAt(0, this.size);
  }

  /** The bytes at once when the range is small (see {@link SYNC_READ}); `undefined` otherwise. */
  readSync(): Buffer | undefined {
    if (this.size > SYNC_READ) return undefined;
    const buf = Buffer.allocUnsafe(this.size);
    if (this.size === 0) return buf;
    const fd = this.file.acquireSync();
    try {
      readFully(fd, buf, this.offset, this.file.path);
      return buf;
    } finally {
      this.file.release();
    }
  }

  /** `length` bytes from `offset` within this file's range (fewer at its end). */
  async readAt(offset: number, length: number): Promise<Buffer> {
    const want = Math.max(0, Math.min(length, this.size - offset));
    const buf = Buffer.allocUnsafe(want);
    if (want === 0) return buf;
    const fd = await this.file.acquire();
    try {
      let done = 0;
      if (want <= SYNC_READ) {
        readFully(fd, buf, this.offset + offset, this.file.path);
        return buf;
      }
      while (done < want) {
        const n = await new Promise<number>((resolve, reject) => read(fd, buf, done, want - done, this.offset + offset + done, (err, k) => (err ? reject(err) : resolve(k))));
        if (n === 0) throw new Error(`${this.file.path}: content ends ${want - done} bytes early`);
        done += n;
      }
      return buf;
    } finally {
      this.file.release();
    }
  }
}

class RangeReader extends Readable {
  private fd: number | undefined;
  private pos: number;
  private readonly end: number;
  private released = false;

  constructor(
    private readonly file: ContentFile,
    offset: number,
    size: number,
  ) {
    super({ highWaterMark: Math.min(size, CHUNK) });
    this.pos = offset;
    this.end = offset + size;
  }

  override _construct(cb: (err?: Error | null) => void): void {
    this.file.acquire().then(
      (fd) => {
        this.fd = fd;
        cb();
      },
      (err: Error) => {
        this.releaseOnce();
        cb(err);
      },
    );
  }

  override _read(): void {
    const want = Math.min(CHUNK, this.end - this.pos);
    const buf = Buffer.allocUnsafe(want);
    read(this.fd!, buf, 0, want, this.pos, (err, n) => {
      if (err) return this.destroy(err);
      if (n === 0) return this.destroy(new Error(`${this.file.path}: content ends ${this.end - this.pos} bytes early`));
      this.pos += n;
      this.push(n === want ? buf : buf.subarray(0, n));
      if (this.pos >= this.end) {
        this.releaseOnce();
        this.push(null);
      }
    });
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    this.releaseOnce();
    cb(err);
  }

  private releaseOnce(): void {
    if (this.released) return;
    this.released = true;
    this.file.release();
  }
}

/** Fills `buf` from `position` (small page-cached ranges: a few microseconds each). */
function readFully(fd: number, buf: Buffer, position: number, file: string): void {
  let done = 0;
  while (done < buf.length) {
    const n = readSync(fd, buf, done, buf.length - done, position + done);
    if (n === 0) throw new Error(`${file}: content ends ${buf.length - done} bytes early`);
    done += n;
  }
}
