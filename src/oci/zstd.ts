/**
 * zstd layers (`application/vnd.oci.image.layer.v1.tar+zstd`), compressed by the host's `zstd`
 * program (Debian's `zstd` package, the reference implementation) fed through a pipe.
 *
 * Why the program and not an npm binding: Node 20's zlib has no zstd, and the binding Kiln
 * already has (zstd-napi, for `.deb` members) compresses synchronously on the main thread — the
 * thread that already limits a build (tarring, hashing, unpacking). A `zstd` process compresses
 * beside it on another core, as gzip does on libuv's thread pool; the pipe costs the main thread
 * a write per 64 KiB chunk. Memory is bounded on both sides: the program's window and buffers are
 * fixed by the level, and {@link ProgramFilter} stops reading the program's output when the blob
 * writer is full (so the program blocks on its stdout, and we stop writing its stdin).
 *
 * Reproducibility: the output depends on the level, the worker mode and the zstd version, so all
 * three are named in {@link zstdFormat} (part of the layer cache key through `layerFormat`).
 */
import { execFileSync } from "node:child_process";
import type { Duplex } from "node:stream";
import { ProgramFilter, findProgram } from "../debian/deb-decompress.js";
import { KilnError, fail } from "../domain/errors.js";
import { lazy } from "../domain/lazy.js";

/**
 * The zstd level of every zstd layer, chosen by measurement on the six bookworm minbase layers
 * (120 MB of tar; `zstd -T1`, CPU of the program, median of 3; bench/RESULTS.md): level 1 gives
 * 47.3 MB for 0.54 s, level 2 42.2 MB for 0.54 s, level 3 39.3 MB for 0.63 s, level 4 38.9 MB
 * for 0.80 s, level 6 37.1 MB for 1.5 s, level 9 35.6 MB for 2.2 s, level 19 32.2 MB for 45 s.
 * Level 3 (zstd's own default) is the knee: 17% smaller than level 1 for 17% more CPU, while
 * level 4 costs 27% more CPU for 1% less. Kiln's gzip layers of the same tree are 49.2 MB.
 */
export const ZSTD_LEVEL = 3;

/**
 * The fixed command-line arguments. `-T1` is one compression worker beside the I/O thread. The
 * multi-threaded format it selects gives the same bytes for any number of workers (checked with
 * zstd 1.5.4: -T1, -T2 and -T0 agree), while `--single-thread` makes different frames, so the
 * mode is fixed here rather than left to a build option. `--check` writes the content checksum
 * explicitly (the CLI's default). No file name or time goes into a zstd frame.
 */
const ZSTD_ARGS = ["-q", "-c", `-${ZSTD_LEVEL}`, "-T1", "--check", "--no-progress"];

/** The `zstd` program's path, or a clear error saying how to get it. */
function zstdProgram(): string {
  const program = findProgram("zstd");
  if (!program) fail("buildFailed", "zstd layers need the zstd program, which is not installed (Debian package zstd)");
  return program;
}

/** The version of the host's zstd (`1.5.4`), asked once. */
export const zstdVersion = lazy((): string => {
  const program = zstdProgram();
  let out: string;
  try {
    out = execFileSync(program, ["--version"], { encoding: "utf8", timeout: 10_000 });
  } catch (err) {
    throw new KilnError("buildFailed", "the zstd program does not run (zstd --version failed)", { cause: err });
  }
  const m = /v(\d+\.\d+\.\d+)/.exec(out);
  if (!m) fail("buildFailed", `cannot tell the zstd program's version from ${JSON.stringify(out.trim().slice(0, 80))}`);
  return m[1]!;
});

/** What decides a zstd layer's bytes besides the tar: level, worker mode and the program's version. */
export function zstdFormat(): string {
  return `zstd/${ZSTD_LEVEL} T1 zstd-cli/${zstdVersion()}`;
}

/**
 * A fresh compressor: tar in, one zstd frame out. Destroying it (cancellation, a failed
 * pipeline) kills the program; a program that fails ends the stream with its message.
 */
export function createZstdCompressor(): Duplex {
  zstdVersion();
  return new ProgramFilter(zstdProgram(), ZSTD_ARGS);
}
