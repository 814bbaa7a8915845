/**
 * Moving file bytes: uploads streamed from a file or any stream, downloads streamed to a file
 * that can be resumed with a `Range` request, both with progress. Nothing is held in memory
 * beyond a chunk; a download is hashed as it is written and checked against the checksum the
 * server announced before it is given its final name.
 */
import { createHash, type Hash } from "node:crypto";
import { createReadStream, createWriteStream } from "node:fs";
import { rename, rm, stat } from "node:fs/promises";
import type { IncomingMessage } from "node:http";
import { Readable, Transform, type TransformCallback } from "node:stream";
import { pipeline } from "node:stream/promises";
import { KilnApiError, KilnIntegrityError } from "./errors.js";
import { discard, type Transport } from "./transport.js";
import type { ProgressCallback } from "./types.js";

/** Counts bytes through a stream and reports them (and feeds an optional hash). */
function meter(start: number, total: number | undefined, onProgress: ProgressCallback | undefined, hash?: Hash): Transform {
  let loaded = start;
  return new Transform({
    transform(chunk: Buffer, _enc, cb: TransformCallback) {
      loaded += chunk.length;
      hash?.update(chunk);
      onProgress?.({ loaded, total });
      cb(null, chunk);
    },
  });
}

export interface UploadOptions {
  /** Bytes the stream will give (known for files); sent as `Content-Length`. */
  size?: number;
  contentType?: string;
  onProgress?: ProgressCallback;
  signal?: AbortSignal;
  operationId?: string;
}

/**
 * POSTs a file's bytes (a path, or a stream) to `url` and answers the JSON the server returns.
 * A path is opened here and its size declared, so a server that refuses the size answers before
 * any byte is sent.
 */
export async function uploadBytes<T>(transport: Transport, url: URL, source: string | Readable, options: UploadOptions = {}): Promise<T> {
  let size = options.size;
  let stream: Readable;
  if (typeof source === "string") {
    const st = await stat(source);
    if (!st.isFile()) throw new TypeError(`${source} is not a regular file`);
    size ??= st.size;
    stream = createReadStream(source, { highWaterMark: 1 << 20 });
  } else {
    stream = source;
  }
  const body = stream.pipe(meter(0, size, options.onProgress));
  stream.once("error", (err) => body.destroy(err));
  options.onProgress?.({ loaded: 0, total: size });
  const res = await transport.send("POST", url, {
    headers: { accept: "application/json", "content-type": options.contentType ?? "application/octet-stream" },
    body,
    ...(size !== undefined ? { contentLength: size } : {}),
    ...(options.signal ? { signal: options.signal } : {}),
    ...(options.operationId ? { operationId: options.operationId } : {}),
  }).catch((err: unknown) => {
    stream.destroy();
    throw err;
  });
  if ((res.statusCode ?? 0) >= 400) {
    // The server refused before reading everything: stop sending.
    stream.destroy();
    body.destroy();
    return transport.throwApiError("POST", url, res);
  }
  const chunks: Buffer[] = [];
  for await (const c of res) chunks.push(c as Buffer);
  const text = Buffer.concat(chunks).toString("utf8");
  return (text ? JSON.parse(text) : undefined) as T;
}

export interface DownloadOptions {
  /**
   * Continue a download interrupted earlier: the bytes already in `<file>.part` are kept and the
   * rest is asked for with `Range` (default true).
   */
  resume?: boolean;
  /**
   * The file's hex sha256 when known (an image's `sha256sum`): sent as `If-Range` so that a
   * partial file of other bytes is never continued, and checked once the file is complete.
   */
  sha256?: string;
  onProgress?: ProgressCallback;
  signal?: AbortSignal;
  operationId?: string;
}

/** What a download did. */
export interface DownloadResult {
  /** The complete file. */
  file: string;
  /** Its size in bytes. */
  size: number;
  /** Bytes that were already on disk and not downloaded again (0 for a fresh download). */
  resumedFrom: number;
  /** Hex sha256 of the whole file. */
  sha256: string;
}

/** `bytes 100-199/1000` → `{ start: 100, total: 1000 }`. */
function parseContentRange(value: string | undefined): { start: number; total: number | undefined } | undefined {
  const m = /^bytes\s+(\d+)-(\d+)\/(\d+|\*)$/.exec(value?.trim() ?? "");
  if (!m) return undefined;
  return { start: Number(m[1]), total: m[3] === "*" ? undefined : Number(m[3]) };
}

async function hashFile(file: string, hash: Hash): Promise<void> {
  for await (const chunk of createReadStream(file, { highWaterMark: 1 << 20 })) hash.update(chunk as Buffer);
}

/**
 * Downloads `url` into `file`: the bytes go to `<file>.part`, which is renamed to `file` once
 * complete (and checked, when `sha256` is given). An interrupted download leaves the `.part`
 * file; the next call continues it from where it stopped.
 */
export async function downloadToFile(transport: Transport, url: URL, file: string, options: DownloadOptions = {}): Promise<DownloadResult> {
  const part = `${file}.part`;
  let offset = 0;
  if (options.resume !== false) {
    offset = await stat(part).then(
      (s) => (s.isFile() ? s.size : 0),
      () => 0,
    );
  }
  const expected = options.sha256?.toLowerCase();
  const request = (from: number): Promise<IncomingMessage> => {
    const headers: Record<string, string> = { accept: "*/*" };
    if (from > 0) {
      headers.range = `bytes=${from}-`;
      // Without a known checksum the server cannot tell whether the part is of the same bytes.
      if (expected) headers["if-range"] = `"${expected}"`;
    }
    return transport.send("GET", url, { headers, ...(options.signal ? { signal: options.signal } : {}), ...(options.operationId ? { operationId: options.operationId } : {}) });
  };

  let res = await request(offset);
  if (res.statusCode === 416) {
    // The part is already whole (or longer than the file, which means it is not this file).
    const total = /\/(\d+)\s*$/.exec(String(res.headers["content-range"] ?? ""))?.[1];
    await discard(res);
    if (total !== undefined && Number(total) === offset) return finish(part, file, offset, offset, expected, createHash("sha256"), true);
    offset = 0;
    res = await request(0);
  }
  const status = res.statusCode ?? 0;
  if (status >= 400) return transport.throwApiError("GET", url, res);
  let total: number | undefined;
  if (status === 206) {
    const range = parseContentRange(res.headers["content-range"]);
    if (!range || range.start !== offset) {
      await discard(res);
      throw new KilnApiError({ status, method: "GET", url: url.href, text: `the server answered the range from byte ${range?.start ?? "?"} instead of ${offset}` });
    }
    total = range.total;
  } else if (status === 200) {
    offset = 0;
    const length = Number(res.headers["content-length"]);
    total = Number.isFinite(length) ? length : undefined;
  } else {
    await discard(res);
    throw new KilnApiError({ status, method: "GET", url: url.href, text: `unexpected answer ${status} to a download` });
  }

  const hash = createHash("sha256");
  if (offset > 0) await hashFile(part, hash);
  options.onProgress?.({ loaded: offset, total });
  const out = createWriteStream(part, { flags: offset > 0 ? "a" : "w" });
  await pipeline(res, meter(offset, total, options.onProgress, hash), out);
  const size = (await stat(part)).size;
  if (total !== undefined && size !== total) {
    throw new KilnIntegrityError(`the download of ${file} stopped at ${size} of ${total} bytes: run it again to continue`);
  }
  return finish(part, file, size, offset, expected, hash, false);
}

async function finish(part: string, file: string, size: number, resumedFrom: number, expected: string | undefined, hash: Hash, hashWhole: boolean): Promise<DownloadResult> {
  if (hashWhole) await hashFile(part, hash);
  const sha256 = hash.digest("hex");
  if (expected && sha256 !== expected) {
    // A part of other bytes cannot be completed: start afresh next time.
    await rm(part, { force: true });
    throw new KilnIntegrityError(`the downloaded ${file} has sha256 ${sha256}, the server announced ${expected}: the partial file was removed, download it again`);
  }
  await rename(part, file);
  return { file, size, resumedFrom, sha256 };
}

/** A readable body of a download, for callers that stream it elsewhere (stdout, a hash...). */
export async function openDownload(transport: Transport, url: URL, options: { signal?: AbortSignal; operationId?: string } = {}): Promise<{ stream: Readable; size: number | undefined }> {
  const res = await transport.send("GET", url, { headers: { accept: "*/*" }, ...(options.signal ? { signal: options.signal } : {}), ...(options.operationId ? { operationId: options.operationId } : {}) });
  if ((res.statusCode ?? 0) >= 400) return transport.throwApiError("GET", url, res);
  const length = Number(res.headers["content-length"]);
  return { stream: res, size: Number.isFinite(length) ? length : undefined };
}
