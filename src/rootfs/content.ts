/**
 * Where unpacked file bytes live: one sequential content file per package on disk, each file a
 * byte range of it. Opening a range does not open the file again: thousands of small files are
 * read through one descriptor per package, closed again after a short idle time.
 */
import { close, open, read, readSync } from "node:fs";
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
  private fd: Promise<number> | undefined;
  private users = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(readonly path: string) {}

  /** A {@link ContentRef} for `size` bytes at `offset`. */
  range(offset: number, size: number, md5?: string): RangeContent {
    return new RangeContent(this, offset, size, md5);
  }

  /** @internal Hands out the shared descriptor, opening it if needed; pair with {@link release}. */
  acquire(): Promise<number> {
    this.users++;
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    if (!this.fd) {
      this.fd = new Promise((resolve, reject) => open(this.path, "r", (err, fd) => (err ? reject(err) : resolve(fd))));
      // A failed open is reported to the reader that asked; the next one tries again.
      this.fd.catch(() => (this.fd = undefined));
    }
    return this.fd;
  }

  /** @internal */
  release(): void {
    if (--this.users > 0 || !this.fd) return;
    this.timer = setTimeout(() => this.closeNow(), IDLE_CLOSE_MS);
    this.timer.unref();
  }

  private closeNow(): void {
    const fd = this.fd;
    this.fd = undefined;
    this.timer = undefined;
    fd?.then((n) => close(n, () => undefined), () => undefined);
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

  /** `length` bytes from `offset` within this file's range (fewer at its end). */
  async readAt(offset: number, length: number): Promise<Buffer> {
    const want = Math.max(0, Math.min(length, this.size - offset));
    const buf = Buffer.allocUnsafe(want);
    if (want === 0) return buf;
    const fd = await this.file.acquire();
    try {
      let done = 0;
      if (want <= SYNC_READ) {
        // Small ranges were written moments ago and sit in the page cache: a direct read costs a
        // few microseconds, where a trip through libuv's pool queues behind the layers' gzip work.
        while (done < want) {
          const n = readSync(fd, buf, done, want - done, this.offset + offset + done);
          if (n === 0) throw new Error(`${this.file.path}: content ends ${want - done} bytes early`);
          done += n;
        }
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
