/**
 * Streaming decompressors for the members of a `.deb`, chosen by the member's file extension.
 *
 * xz dominates unpacking time (nearly every Debian package uses it). lzma-native bundles
 * liblzma 5.2 and decodes about 1.5× slower per core than the `xz` program of the host
 * (liblzma 5.4, measured on bookworm's minbase: 1.9 s against 1.4 s for all 88 data members two
 * at a time; larger lzma-native buffers or its threaded decoder do not help), so by default a
 * data member of some size is piped through `xz -dc` when the program exists, and lzma-native
 * decodes the rest (and everything on a host without `xz`).
 */
import { spawn, type ChildProcessByStdio } from "node:child_process";
import { accessSync, constants as fsConstants } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { Duplex, PassThrough, type Readable, type Writable } from "node:stream";
import { createGunzip } from "node:zlib";
import bz2 from "unbzip2-stream";
import { DecompressStream } from "zstd-napi";

const require = createRequire(import.meta.url);
// lzma-native ships no type declarations; this is the one function Kiln uses.
const lzma = require("lzma-native") as { createDecompressor(options?: { synchronous?: boolean }): Duplex };

/** How a member of a `.deb` is compressed. */
export type DebCompression = "gzip" | "xz" | "zstd" | "bzip2" | "none";

/** Which xz decoder to use: the `xz` program when found (`auto`), always lzma-native, or always the program. */
export type XzDecoder = "auto" | "native" | "program";

/** The compression a member name (`data.tar.xz`) announces, or undefined for an unknown suffix. */
export function compressionOf(memberName: string, base: "control.tar" | "data.tar"): DebCompression | undefined {
  if (memberName === base) return "none";
  const suffix = memberName.slice(base.length);
  switch (suffix) {
    case ".gz":
      return "gzip";
    case ".xz":
      return "xz";
    case ".zst":
      return "zstd";
    case ".bz2":
      return base === "data.tar" ? "bzip2" : undefined;
    default:
      return undefined;
  }
}

/**
 * Below this compressed size `auto` decodes xz in-process: starting a program costs a few
 * milliseconds of a blocked event loop (more as the process grows), which half of Debian's
 * packages do not repay.
 */
const SPAWN_THRESHOLD = 256 << 10;

let xzProgram: string | null | undefined;

/** The absolute path of the `xz` program on `PATH`, looked up once; null when there is none. */
function findXzProgram(): string | null {
  if (xzProgram !== undefined) return xzProgram;
  xzProgram = null;
  for (const dir of (process.env.PATH ?? "").split(path.delimiter)) {
    if (!dir) continue;
    const candidate = path.join(dir, "xz");
    try {
      accessSync(candidate, fsConstants.X_OK);
      xzProgram = candidate;
      break;
    } catch {
      // not here
    }
  }
  return xzProgram;
}

/**
 * A Duplex over a filter program's stdin and stdout that fails with the program's stderr when it
 * exits non-zero, and kills it when destroyed early.
 */
class ProgramFilter extends Duplex {
  private readonly child: ChildProcessByStdio<Writable, Readable, Readable>;
  private stderr = "";
  private exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  private stdoutEnded = false;

  constructor(program: string, args: string[]) {
    super({ readableHighWaterMark: 1 << 20, writableHighWaterMark: 1 << 20 });
    this.child = spawn(program, args, { stdio: ["pipe", "pipe", "pipe"] });
    this.child.stdout.on("data", (chunk: Buffer) => {
      if (!this.push(chunk)) this.child.stdout.pause();
    });
    this.child.stdout.on("end", () => {
      this.stdoutEnded = true;
      this.settle();
    });
    this.child.stderr.on("data", (chunk: Buffer) => {
      if (this.stderr.length < 4096) this.stderr += chunk.toString("utf8");
    });
    // A program that dies on bad input closes its stdin under us; the exit status tells why.
    this.child.stdin.on("error", () => undefined);
    this.child.on("error", (err) => this.destroy(err));
    this.child.on("close", (code, signal) => {
      this.exit = { code, signal };
      this.settle();
    });
  }

  private settle(): void {
    if (!this.stdoutEnded || this.exit === undefined || this.destroyed) return;
    if (this.exit.code === 0) this.push(null);
    else {
      const why = this.stderr.trim().split("\n").pop() || `exit ${this.exit.code ?? this.exit.signal}`;
      this.destroy(new Error(why.replace(/^[^:]*xz: \(stdin\): /, "")));
    }
  }

  override _read(): void {
    this.child.stdout.resume();
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    if (this.child.stdin.write(chunk)) cb();
    else this.child.stdin.once("drain", () => cb());
  }

  override _final(cb: (err?: Error | null) => void): void {
    this.child.stdin.end(() => cb());
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    if (this.exit === undefined) this.child.kill("SIGKILL");
    this.child.stdout.destroy();
    this.child.stdin.destroy();
    cb(err);
  }
}

/**
 * A fresh decompressing Duplex for `compression` (a pass-through for `none`). `compressedSize`
 * lets `auto` keep small xz members in-process.
 */
export function createDecompressor(compression: DebCompression, xz: XzDecoder = "auto", compressedSize = Infinity): Duplex {
  switch (compression) {
    case "gzip":
      return createGunzip({ chunkSize: 1 << 16 });
    case "xz": {
      const program = xz === "native" || (xz === "auto" && compressedSize < SPAWN_THRESHOLD) ? null : findXzProgram();
      if (program) return new ProgramFilter(program, ["-dc", "-q"]);
      if (xz === "program") throw new Error("the xz program is not installed");
      return lzma.createDecompressor();
    }
    case "zstd":
      return new DecompressStream();
    case "bzip2":
      // unbzip2-stream is a classic `through` stream: it pipes and emits errors like a Duplex.
      return bz2() as unknown as Duplex;
    case "none":
      return new PassThrough({ highWaterMark: 1 << 20 });
  }
}
