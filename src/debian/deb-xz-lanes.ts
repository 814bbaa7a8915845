/**
 * Long-lived `xz -dc` processes that decode one data member after another, so unpacking a
 * hundred packages starts two programs instead of a hundred. Starting a program forks the whole
 * Node process (a few milliseconds of blocked event loop each, more as the heap grows), which
 * was a tenth of the CPU of a cold minbase unpack.
 *
 * `xz -dc` decodes concatenated streams into one output. Two things make that output splittable:
 * - each member's uncompressed size, read from its own xz index (the footer says where it is);
 * - a "flusher" after each member (see {@link flusherStream}), so the end of a member comes out
 *   without waiting for the next one.
 * The zeros are checked on the way: any other byte means the sizes and the data disagree, and
 * the lane is dropped. A member whose index lies is caught by xz itself (it checks the index
 * against the blocks at the end of each stream), before any byte of the flusher: the job that
 * fails is the one that lied.
 */
import { execFileSync, spawn, type ChildProcessByStdio } from "node:child_process";
import { createReadStream } from "node:fs";
import type { FileHandle } from "node:fs/promises";
import { Readable, type Writable } from "node:stream";
import { findProgram } from "./deb-decompress.js";

const FLUSH_BYTES = 64 << 10;
let flusher: Buffer | undefined;

/**
 * What follows each member on a lane's input: an xz stream of {@link FLUSH_BYTES} zeros (made
 * once by the xz program itself), then as many zeros of stream padding, which the format allows
 * between streams. xz reads its input in whole 8 KiB blocks and writes its output in whole 8 KiB
 * blocks; the padding pushes the last bytes of the member and the flusher into the decoder, and
 * the flusher's output pushes the member's last bytes out.
 */
function flusherStream(program: string): Buffer {
  flusher ??= Buffer.concat([execFileSync(program, ["-c", "-0"], { input: Buffer.alloc(FLUSH_BYTES) }), Buffer.alloc(FLUSH_BYTES)]);
  return flusher;
}

function readVli(buf: Buffer, pos: number): [value: number, next: number] | undefined {
  let value = 0;
  for (let i = 0; i < 9; i++) {
    if (pos + i >= buf.length) return undefined;
    const b = buf[pos + i]!;
    value += (b & 0x7f) * 2 ** (7 * i);
    if ((b & 0x80) === 0) return value > Number.MAX_SAFE_INTEGER ? undefined : [value, pos + i + 1];
  }
  return undefined;
}

/**
 * The uncompressed size of a member that is exactly one xz stream (what dpkg-deb writes), from
 * its index; undefined for anything else (several streams, padding, a damaged footer), which is
 * then decoded by a program of its own.
 */
export async function xzUncompressedSize(fh: FileHandle, offset: number, size: number): Promise<number | undefined> {
  if (size < 32) return undefined;
  const footer = Buffer.alloc(12);
  await fh.read(footer, 0, 12, offset + size - 12);
  if (footer[10] !== 0x59 || footer[11] !== 0x5a) return undefined;
  const indexSize = (footer.readUInt32LE(4) + 1) * 4;
  if (indexSize + 24 > size) return undefined;
  const index = Buffer.alloc(indexSize);
  await fh.read(index, 0, indexSize, offset + size - 12 - indexSize);
  if (index[0] !== 0) return undefined;
  let at = 1;
  const count = readVli(index, at);
  if (!count) return undefined;
  at = count[1];
  let blocks = 0;
  let total = 0;
  for (let i = 0; i < count[0]; i++) {
    const unpadded = readVli(index, at);
    if (!unpadded) return undefined;
    const uncompressed = readVli(index, unpadded[1]);
    if (!uncompressed) return undefined;
    at = uncompressed[1];
    blocks += Math.ceil(unpadded[0] / 4) * 4;
    total += uncompressed[0];
  }
  // Header, blocks, index, footer: nothing else may be in the member.
  return 12 + blocks + indexSize + 12 === size ? total : undefined;
}

interface Job {
  /** Bytes of this member's output still to deliver. */
  remaining: number;
  /** Flusher bytes still to check and drop after it. */
  flush: number;
  out: JobOutput;
}

/** One member's decoded bytes, read from a lane. */
class JobOutput extends Readable {
  constructor(
    private readonly onRead: () => void,
    private readonly onDestroy: () => void,
  ) {
    super({ highWaterMark: 1 << 20 });
  }
  override _read(): void {
    this.onRead();
  }
  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    this.onDestroy();
    cb(err);
  }
}

/**
 * One long-lived xz process. Jobs queue on it: each job's input follows the previous one's, and
 * its output is routed to it once the previous job's bytes and flusher have gone by. A lane takes
 * a new job as soon as every queued job has had all its bytes (only flushers left to pass).
 */
class Lane {
  private readonly child: ChildProcessByStdio<Writable, Readable, Readable>;
  private readonly jobs: Job[] = [];
  /** The input of the queued jobs, one after the other. */
  private feeding: Promise<void> = Promise.resolve();
  private src: Readable | undefined;
  private stderr = "";
  dead = false;

  constructor(program: string) {
    this.child = spawn(program, ["-dc", "-q"], { stdio: ["pipe", "pipe", "pipe"] });
    this.child.stdin.on("error", () => undefined);
    this.child.stderr.on("data", (c: Buffer) => {
      if (this.stderr.length < 4096) this.stderr += c.toString("utf8");
    });
    this.child.stdout.on("data", (chunk: Buffer) => this.route(chunk));
    this.child.on("error", (err) => this.die(err));
    this.child.on("close", (code, signal) => {
      const why = this.stderr.trim().split("\n").pop()?.replace(/^[^:]*: \(stdin\): /, "");
      this.die(new Error(why || `xz exited with ${code ?? signal}`));
    });
  }

  /** Whether some queued job still waits for its own bytes. */
  get busy(): boolean {
    return this.jobs.some((j) => j.remaining > 0);
  }

  /** Queues one member (and the flusher) and returns its decoded bytes. */
  decode(file: string, offset: number, size: number, uncompressed: number, flush: Buffer): Readable {
    const out = new JobOutput(
      () => this.child.stdout.resume(),
      () => {
        // A reader that gives up before its last byte leaves the lane out of step: drop the lane.
        if (!this.dead && job.remaining > 0) this.die(new Error("abandoned"));
      },
    );
    const job: Job = { remaining: uncompressed, flush: FLUSH_BYTES, out };
    this.jobs.push(job);
    if (uncompressed === 0) out.push(null);
    this.feeding = this.feeding.then(
      () =>
        new Promise<void>((resolve) => {
          if (this.dead) return resolve();
          const src = createReadStream(file, { start: offset, end: offset + size - 1, highWaterMark: 1 << 20 });
          this.src = src;
          src.on("error", (err) => {
            this.die(err);
            resolve();
          });
          src.on("end", () => {
            this.src = undefined;
            if (!this.dead) this.child.stdin.write(flush);
            resolve();
          });
          src.pipe(this.child.stdin, { end: false });
        }),
    );
    return out;
  }

  private route(chunk: Buffer): void {
    let pos = 0;
    while (pos < chunk.length) {
      const job = this.jobs[0];
      if (!job) return this.die(new Error("xz produced bytes nobody asked for"));
      if (job.remaining > 0) {
        const n = Math.min(job.remaining, chunk.length - pos);
        job.remaining -= n;
        const room = job.out.push(chunk.subarray(pos, pos + n));
        pos += n;
        if (job.remaining === 0) job.out.push(null);
        else if (!room) this.child.stdout.pause();
        continue;
      }
      const n = Math.min(job.flush, chunk.length - pos);
      for (let i = pos; i < pos + n; i++) {
        if (chunk[i] !== 0) return this.die(new Error("xz output does not match the sizes in its index"));
      }
      job.flush -= n;
      pos += n;
      if (job.flush === 0) this.jobs.shift();
    }
  }

  /** Fails every job that has not had all its bytes, and ends the process. */
  die(err: Error): void {
    if (this.dead) return;
    this.dead = true;
    this.src?.destroy();
    for (const job of this.jobs.splice(0)) {
      if (!job.out.destroyed && !job.out.readableEnded && job.remaining > 0) job.out.destroy(err);
    }
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill("SIGKILL");
  }

  /** Lets the process end once its queued input is in. */
  close(): void {
    if (this.dead) return;
    this.dead = true;
    void this.feeding.then(() => this.child.stdin.end());
  }
}

/**
 * A few xz lanes shared by the unpacks of one build. {@link decode} takes an idle lane, or
 * returns undefined when all are busy (the caller then starts a program of its own).
 */
export class XzLanes {
  private readonly lanes: Lane[] = [];
  private closed = false;

  private constructor(
    private readonly program: string,
    private readonly max: number,
  ) {}

  /** Up to `max` lanes, or undefined on a host without the xz program. */
  static create(max: number): XzLanes | undefined {
    const program = findProgram("xz");
    return program ? new XzLanes(program, max) : undefined;
  }

  /** The decoded bytes of a single-stream xz member, or undefined when no lane is free. */
  decode(file: string, offset: number, size: number, uncompressed: number): Readable | undefined {
    if (this.closed) return undefined;
    for (let i = this.lanes.length - 1; i >= 0; i--) if (this.lanes[i]!.dead) this.lanes.splice(i, 1);
    let lane = this.lanes.find((l) => !l.busy);
    if (!lane) {
      if (this.lanes.length >= this.max) return undefined;
      lane = new Lane(this.program);
      this.lanes.push(lane);
    }
    return lane.decode(file, offset, size, uncompressed, flusherStream(this.program));
  }

  /** Ends every lane (idle ones exit; a busy one is killed). Safe to call twice. */
  close(): void {
    this.closed = true;
    for (const lane of this.lanes) {
      if (lane.busy) lane.die(new Error("the xz lanes were closed"));
      else lane.close();
    }
    this.lanes.length = 0;
  }
}
