/**
 * Streaming decompressors for the members of a `.deb`, chosen by the member's file extension.
 *
 * xz dominates unpacking time (nearly every Debian package uses it). lzma-native bundles
 * liblzma 5.2 and decodes about 1.5× slower per core than the `xz` program of the host
 * (liblzma 5.4, measured on bookworm's minbase: 1.9 s against 1.4 s for all 88 data members two
 * at a time; larger lzma-native buffers or its threaded decoder do not help). It also ignores
 * backpressure: one write is decoded and pushed whole, so a few KiB of xz could fill memory with
 * gigabytes of zeros. Data members therefore go through `xz -dc` (the host's xz-utils, Priority:
 * required in Debian), and lzma-native only decodes control members, in awaited 512-byte steps
 * under a size limit, and data members on hosts without the program.
 */
import { spawn, type ChildProcessByStdio } from "node:child_process";
import { accessSync, constants as fsConstants } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { Duplex, PassThrough, type Readable, type Writable } from "node:stream";
import { createGunzip, gunzipSync } from "node:zlib";
import type bz2Type from "unbzip2-stream";
import type * as ZstdBinding from "zstd-napi/binding.js";
import { lazy } from "../domain/lazy.js";

// The decoders are loaded when first used (lazy): a warm build needs none of them.
const require = createRequire(import.meta.url);
/** lzma-native (it ships no type declarations; this is the one function Kiln uses). */
export const lzma = lazy(() => require("lzma-native") as { createDecompressor(options?: { synchronous?: boolean }): Duplex });
// zstd-napi's low-level binding is a native module re-exported from CommonJS: Node's ESM loader
// sees no named exports in it, so it is required (its declarations still type it).
const zstd = lazy(() => require("zstd-napi/binding") as typeof ZstdBinding);
const bz2 = lazy(() => require("unbzip2-stream") as typeof bz2Type);

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

const programs = new Map<string, string | null>();

/** The absolute path of a program on `PATH`, looked up once; null when there is none. */
export function findProgram(name: string): string | null {
  const known = programs.get(name);
  if (known !== undefined) return known;
  let found: string | null = null;
  for (const dir of (process.env.PATH ?? "").split(path.delimiter)) {
    if (!dir) continue;
    const candidate = path.join(dir, name);
    try {
      accessSync(candidate, fsConstants.X_OK);
      found = candidate;
      break;
    } catch {
      // not here
    }
  }
  programs.set(name, found);
  return found;
}

/**
 * A Duplex over a filter program's stdin and stdout that fails with the program's stderr when it
 * exits non-zero, and kills it when destroyed early.
 */
export class ProgramFilter extends Duplex {
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
      this.destroy(new Error(why.replace(/^[^:]*: \(stdin\): /, "")));
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
 * zstd with backpressure. zstd-napi's own DecompressStream pushes everything one input chunk
 * expands to before it returns, and a few KiB of zstd can hold gigabytes of zeros; this one
 * stops producing as soon as the reader is full and resumes when it reads again.
 */
class ZstdDecoder extends Duplex {
  private readonly dctx = new (zstd().DCtx)();
  private input: Buffer | undefined;
  private inputDone: ((err?: Error | null) => void) | undefined;
  /** A write callback held back because the reader is full. */
  private deferred: (() => void) | undefined;
  private inFrame = false;

  constructor() {
    super({ readableHighWaterMark: 1 << 20 });
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.input = chunk;
    this.inputDone = cb;
    this.pump();
  }

  override _read(): void {
    const d = this.deferred;
    this.deferred = undefined;
    if (d) d();
    else this.pump();
  }

  override _final(cb: (err?: Error | null) => void): void {
    if (this.inFrame) return cb(new Error("zstd data ends in the middle of a frame"));
    this.push(null);
    cb();
  }

  private pump(): void {
    while (this.input !== undefined) {
      const out = Buffer.allocUnsafe(zstdOut());
      let ret: number;
      let produced: number;
      let consumed: number;
      try {
        [ret, produced, consumed] = this.dctx.decompressStream(out, this.input);
      } catch (err) {
        const cb = this.inputDone!;
        this.input = this.inputDone = undefined;
        return cb(err as Error);
      }
      this.inFrame = ret !== 0;
      const room = produced > 0 ? this.push(out.subarray(0, produced)) : true;
      const rest = this.input.subarray(consumed);
      if (rest.length === 0 && produced < out.length) {
        // This chunk is done; take the next one only when the reader has room.
        const cb = this.inputDone!;
        this.input = this.inputDone = undefined;
        if (room) cb();
        else this.deferred = () => cb();
        return;
      }
      // More output may be pending even with no input left: keep calling with what remains.
      this.input = rest;
      if (!room) return;
    }
  }
}

const zstdOut = lazy(() => zstd().dStreamOutSize());

/** A decompressor, and how much compressed input to hand it at a time. */
export interface Decoder {
  stream: Duplex;
  /** Bytes of input per write. */
  inputChunk: number;
}

/**
 * A fresh streaming decoder for `compression` (a pass-through for `none`). Every decoder but
 * the fallbacks honours backpressure, so a decompression bomb costs time, not memory: xz and
 * bzip2 go through their programs (a full pipe stops them), zstd through {@link ZstdDecoder},
 * gzip through zlib. lzma-native and unbzip2-stream push all the output of a write at once; they
 * serve only hosts without the `xz` or `bzip2` program.
 */
export function createDecoder(compression: DebCompression, xz: XzDecoder = "auto"): Decoder {
  const big = 1 << 20;
  switch (compression) {
    case "gzip":
      return { stream: createGunzip({ chunkSize: 1 << 16 }), inputChunk: 1 << 16 };
    case "xz": {
      const program = xz === "native" ? null : findProgram("xz");
      if (program) return { stream: new ProgramFilter(program, ["-dc", "-q"]), inputChunk: big };
      if (xz === "program") throw new Error("the xz program is not installed");
      return { stream: lzma().createDecompressor(), inputChunk: 1 << 16 };
    }
    case "zstd":
      return { stream: new ZstdDecoder(), inputChunk: big };
    case "bzip2": {
      const program = findProgram("bzip2");
      if (program) return { stream: new ProgramFilter(program, ["-dc", "-q"]), inputChunk: big };
      return { stream: bz2()() as unknown as Duplex, inputChunk: 1 << 16 };
    }
    case "none":
      return { stream: new PassThrough({ highWaterMark: big }), inputChunk: big };
  }
}

/** Thrown when a member decodes to more than the caller allows. */
export class TooLargeError extends Error {}

/**
 * Decodes a small member held in memory (control.tar) in-process, refusing to produce more
 * than `limit` bytes. lzma-native gets 512-byte writes, each awaited, so it can overshoot the
 * limit by what 512 bytes of LZMA2 expand to (a few MiB), never by gigabytes.
 */
export async function decodeBounded(compression: Exclude<DebCompression, "bzip2">, data: Buffer, limit: number): Promise<Buffer> {
  switch (compression) {
    case "none":
      if (data.length > limit) throw new TooLargeError(`more than ${limit} bytes`);
      return data;
    case "gzip":
      try {
        return gunzipSync(data, { maxOutputLength: limit });
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === "ERR_BUFFER_TOO_LARGE") throw new TooLargeError(`more than ${limit} bytes`);
        throw err;
      }
    case "zstd": {
      const dctx = new (zstd().DCtx)();
      const out: Buffer[] = [];
      let total = 0;
      let input = data;
      for (;;) {
        const buf = Buffer.allocUnsafe(zstdOut());
        const [ret, produced, consumed] = dctx.decompressStream(buf, input);
        total += produced;
        if (total > limit) throw new TooLargeError(`more than ${limit} bytes`);
        out.push(buf.subarray(0, produced));
        input = input.subarray(consumed);
        if (input.length === 0 && produced < buf.length) {
          if (ret !== 0) throw new Error("zstd data ends in the middle of a frame");
          return Buffer.concat(out);
        }
      }
    }
    case "xz": {
      // Synchronous: a control member is a few KiB, less work than handing it to a thread.
      const dec = lzma().createDecompressor({ synchronous: true });
      const out: Buffer[] = [];
      let total = 0;
      let failure: Error | undefined;
      dec.on("data", (chunk: Buffer) => {
        total += chunk.length;
        if (total <= limit) out.push(chunk);
      });
      const ended = new Promise<void>((resolve, reject) => {
        dec.once("end", resolve);
        dec.once("error", (err: Error) => {
          failure = err;
          reject(err);
        });
      });
      ended.catch(() => undefined);
      try {
        for (let i = 0; i < data.length && failure === undefined; i += 512) {
          await new Promise<void>((resolve, reject) => dec.write(data.subarray(i, i + 512), (err?: Error | null) => (err ? reject(err) : resolve())));
          if (total > limit) throw new TooLargeError(`more than ${limit} bytes`);
        }
        if (failure) throw failure;
        dec.end();
        await ended;
        if (total > limit) throw new TooLargeError(`more than ${limit} bytes`);
        return Buffer.concat(out);
      } finally {
        dec.destroy();
      }
    }
  }
}
