/**
 * A plain storage driver: keys and bytes, nothing more. Content addressing lives above it
 * (blob-store.ts). Two drivers: the local filesystem (here) and an OCI registry (oci-driver.ts).
 * The filesystem's layout under the root is
 *
 *   <root>/
 *   ├── sha256/
 *   │   └── ab/
 *   │       └── ab12…ef          a committed blob, named by its digest (read-only, mode 0444)
 *   └── tmp/
 *       └── <pid>-<host>-<random>  an upload in flight; renamed into sha256/ only when complete
 */
import { constants, createReadStream, createWriteStream, type WriteStream } from "node:fs";
import { access, link, mkdir, open, rename, rm, stat, unlink, copyFile, chmod, readdir, type FileHandle } from "node:fs/promises";
import path from "node:path";
import { createHash, randomBytes } from "node:crypto";
import { hostname } from "node:os";
import { processRunning } from "../domain/processes.js";
import type { Readable } from "node:stream";

export interface StoredObject {
  size: number;
  mtime: Date;
}

export interface ByteRange {
  /** First byte, inclusive. */
  start: number;
  /** Last byte, inclusive. */
  end: number;
}

export interface TempObject {
  readonly stream: WriteStream;
  readonly tempKey: string;
}

/**
 * Positional reads of an object's bytes, for a download (a FileHandle is one): a read may wait for
 * bytes still on their way, and answers 0 bytes only past the end.
 */
export interface ByteReader {
  read(buffer: Buffer, offset: number, length: number, position: number): Promise<{ bytesRead: number }>;
  close(): Promise<void>;
}

/** An object's bytes as a local file, kept there (a remote store's copy is pinned in its cache) until {@link release}. */
export interface LocalCopy {
  readonly path: string;
  /** Lets the file go (a cached copy may be evicted from then on). Safe to call twice. */
  release(): void;
}

export interface StorageDriver {
  stat(key: string): Promise<StoredObject | undefined>;
  reader(key: string, range?: ByteRange): Readable;
  /** The same bytes once the store has answered (a remote store's own stream, without a relay in between). */
  open?(key: string, range?: ByteRange): Promise<Readable>;
  /** A new temporary object to write into; it becomes visible only through {@link move}. */
  temp(): Promise<TempObject>;
  /** Atomically publishes a temporary object under `key`, replacing nothing that exists. */
  move(tempKey: string, key: string): Promise<void>;
  /**
   * Does ahead of {@link move} the slow part of publishing a complete temporary object under
   * `key` (a remote store's upload), which stays a temporary object: `move` then only checks. For
   * callers that publish inside a transaction, which must stay short.
   */
  stage?(tempKey: string, key: string, signal?: AbortSignal): Promise<void>;
  delete(key: string): Promise<void>;
  /**
   * Where the key's bytes are (or would be) as a local file — the store's own file, or a local
   * copy of a remote one — for messages; {@link localCopy} makes sure it is there.
   */
  localPath(key: string): string;
  /**
   * The key's bytes as a local file (read-only), for zero-copy serving, hard links and archives;
   * the file stays until released (a remote store's copy is not evicted while in use).
   */
  localCopy(key: string): Promise<LocalCopy>;
  /**
   * Bytes `range` of an object of `size` bytes from a remote store, for a download: its local
   * copy when there is one (release it once sent), else the copy being fetched into the local
   * cache, read as its bytes arrive (close it once sent), else the remote's stream.
   */
  openDownload?(key: string, size: number, range: ByteRange): Promise<LocalCopy | ByteReader | Readable>;
  /** Whether {@link localPath} is the stored object itself (no copy to fetch first). */
  readonly local: boolean;
  /** Keys under a prefix (used by garbage collection and tests). */
  list(prefix: string): Promise<string[]>;
  /** Resolves when the storage can be written to; rejects when it cannot (health). */
  ping(): Promise<void>;
  /** Removes the temporary objects of processes that have ended (a local driver); answers how many. */
  sweepTemp?(): Promise<number>;
}

/**
 * Who writes a temporary object: this process's id and a short hash of the machine's name (a
 * directory shared by several machines holds objects of processes a pid says nothing about).
 */
const WRITER = `${process.pid}-${createHash("sha256").update(hostname()).digest("hex").slice(0, 8)}`;
const WRITER_RE = /^(\d+)-([0-9a-f]{8})-/;


export class FsDriver implements StorageDriver {
  readonly local = true;
  constructor(readonly root: string) {}

  localCopy(key: string): Promise<LocalCopy> {
    return Promise.resolve({ path: this.localPath(key), release: () => undefined });
  }

  localPath(key: string): string {
    if (key.includes("..") || path.isAbsolute(key)) throw new Error(`invalid storage key ${key}`);
    return path.join(this.root, key);
  }

  async ping(): Promise<void> {
    await mkdir(this.root, { recursive: true });
    await access(this.root, constants.W_OK);
  }

  async stat(key: string): Promise<StoredObject | undefined> {
    try {
      const s = await stat(this.localPath(key));
      return { size: s.size, mtime: s.mtime };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
      throw err;
    }
  }

  reader(key: string, range?: ByteRange): Readable {
    return createReadStream(this.localPath(key), range ? { start: range.start, end: range.end, highWaterMark: 1 << 20 } : { highWaterMark: 1 << 20 });
  }

  async temp(): Promise<TempObject> {
    const tempKey = await this.newTempKey();
    const stream = createWriteStream(this.localPath(tempKey), { flags: "wx", mode: 0o600 });
    await new Promise<void>((resolve, reject) => {
      stream.once("open", () => resolve());
      stream.once("error", reject);
    });
    return { stream, tempKey };
  }

  /**
   * A temporary object as a file handle open for positional reads and writes (the blob cache's
   * fills: written in batches, read by downloads as it grows). Swept like {@link temp}'s.
   */
  async tempFile(): Promise<{ file: FileHandle; tempKey: string }> {
    const tempKey = await this.newTempKey();
    return { file: await open(this.localPath(tempKey), "wx+", 0o600), tempKey };
  }

  private async newTempKey(): Promise<string> {
    await mkdir(path.join(this.root, "tmp"), { recursive: true });
    // The writer's pid in the name: a sweep at start knows whose the object is (sweepTemp).
    return `tmp/${WRITER}-${Date.now().toString(36)}-${randomBytes(8).toString("hex")}`;
  }

  async move(tempKey: string, key: string): Promise<void> {
    const dest = this.localPath(key);
    await mkdir(path.dirname(dest), { recursive: true });
    const src = this.localPath(tempKey);
    await chmod(src, 0o444);
    // link() fails if the destination exists, so a blob is never replaced under a reader.
    try {
      await link(src, dest);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") {
        if ((err as NodeJS.ErrnoException).code === "EPERM" || (err as NodeJS.ErrnoException).code === "EXDEV") {
          await rename(src, dest);
          return;
        }
        throw err;
      }
    }
    await unlink(src).catch(() => undefined);
  }

  async delete(key: string): Promise<void> {
    await rm(this.localPath(key), { force: true });
  }

  async list(prefix: string): Promise<string[]> {
    const out: string[] = [];
    const walk = async (rel: string): Promise<void> => {
      let entries;
      try {
        entries = await readdir(this.localPath(rel), { withFileTypes: true });
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === "ENOENT") return;
        throw err;
      }
      for (const e of entries) {
        const child = rel ? `${rel}/${e.name}` : e.name;
        if (e.isDirectory()) await walk(child);
        else out.push(child);
      }
    };
    await walk(prefix.replace(/\/+$/, ""));
    return out.sort();
  }

  /**
   * A process killed during an upload or a build (SIGKILL, a power cut) leaves its temporary
   * objects for ever: removes those whose writer, a process of this machine, has ended. An object
   * of a process still running — this one, or another sharing the directory, such as
   * `kiln build` — or of another machine is left alone: its write may be live.
   */
  async sweepTemp(): Promise<number> {
    let names: string[];
    try {
      names = await readdir(this.localPath("tmp"));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return 0;
      throw err;
    }
    const host = WRITER.split("-")[1];
    const ended = names.filter((n) => {
      const owner = WRITER_RE.exec(n);
      return owner !== null && owner[2] === host && !processRunning(Number(owner[1]));
    });
    await Promise.all(ended.map((n) => rm(this.localPath(`tmp/${n}`), { force: true })));
    return ended.length;
  }

  /** Copies or hard-links a stored object to a path outside the store. */
  async export(key: string, dest: string): Promise<void> {
    await mkdir(path.dirname(dest), { recursive: true });
    await rm(dest, { force: true });
    try {
      await link(this.localPath(key), dest);
    } catch {
      await copyFile(this.localPath(key), dest);
    }
  }
}
