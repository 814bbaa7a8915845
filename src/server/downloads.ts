/**
 * File downloads (artifacts now, images later): streamed from the blob store with the headers a
 * download manager expects — length, attachment name, ETag (sha256), Last-Modified, byte ranges —
 * and the one-time download keys that open a download without credentials.
 */
import { open } from "node:fs/promises";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import type { FastifyReply, FastifyRequest } from "fastify";
import { fail, isKilnError } from "../domain/errors.js";
import type { BlobStore } from "../blobs/blob-store.js";
import type { ByteReader, LocalCopy } from "../blobs/driver.js";
import { hashDownloadKey } from "../library/download-keys.js";
import type { StoredFile } from "../library/index.js";
import type { Store, UserRow } from "../store/types.js";
import type { Principal } from "./auth.js";

export interface DownloadableFile {
  /**
   * How to read bytes `start..end` (inclusive), called only when they are to be sent: a local
   * file (released once sent), a reader of a file still arriving (closed once sent), or a stream
   * (a registry store's).
   */
  open: (start: number, end: number) => Promise<LocalCopy | ByteReader | Readable>;
  size: number;
  /** Hex sha256 of the bytes (the ETag). */
  sha256: string;
  fileName: string;
  lastModified: Date;
  contentType?: string;
}

const CHALLENGE = { "WWW-Authenticate": 'Basic realm="kiln", charset="UTF-8"' };
const NO_CREDENTIALS = "authentication required: use credentials or a downloadId";
const BAD_KEY = "the downloadId is unknown, already used or expired: ask for a new one";

function downloadIdOf(req: FastifyRequest): string | undefined {
  const raw = (req.query as Record<string, string | string[] | undefined>).downloadId;
  if (Array.isArray(raw)) fail("invalidQuery", "downloadId is given more than once");
  return raw === undefined || raw === "" ? undefined : raw;
}

/**
 * Runs the lookups of a download (its owner, the object, the file). With credentials, what is
 * missing is a `404` as anywhere else. Without, a stranger must learn nothing — which users,
 * images and artifacts exist — before showing a valid key: no key at all, an unknown user or an
 * unknown object answer exactly the `401` a wrong key gets.
 */
export async function findDownload<T>(req: FastifyRequest, principal: Principal | undefined, find: () => Promise<T>): Promise<T> {
  if (principal) return find();
  if (downloadIdOf(req) === undefined) fail("unauthorized", NO_CREDENTIALS, { headers: CHALLENGE });
  try {
    return await find();
  } catch (err) {
    if (isKilnError(err, "notFound") || isKilnError(err, "invalidId")) fail("unauthorized", BAD_KEY, { headers: CHALLENGE });
    throw err;
  }
}

/**
 * Who may download: the owner (or an administrator) with credentials, or anyone holding a valid
 * one-time `downloadId` for this target whose owner is still active. `consume` uses the key up:
 * {@link sendFile} does it only once the answer is known to send the file (`200`/`206`); a
 * HEAD, a first check, a `304` or a `416` only look at it.
 */
export async function authorizeDownload(
  store: Store,
  req: FastifyRequest,
  principal: Principal | undefined,
  owner: UserRow,
  target: string,
  options: { consume: boolean },
): Promise<void> {
  if (principal) {
    if (principal.user.id !== owner.id && !principal.user.admin) fail("notFound", "no such file");
    return;
  }
  const raw = downloadIdOf(req);
  if (raw === undefined) fail("unauthorized", NO_CREDENTIALS, { headers: CHALLENGE });
  const hash = hashDownloadKey(raw);
  const now = new Date();
  const key = options.consume && req.method !== "HEAD" ? await store.downloadKeys.consume(hash, target, now) : await store.downloadKeys.peek(hash, target, now);
  // A disabled user's keys stop working with them.
  if (!key || key.userId !== owner.id || !owner.active) fail("unauthorized", BAD_KEY, { headers: CHALLENGE });
}

function parseRange(header: string, size: number): { start: number; end: number } | "unsatisfiable" | undefined {
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!m) return undefined; // Not a single range we understand: answer with the whole file (RFC 9110 allows it).
  const [, a, b] = m;
  if (a === "" && b === "") return undefined;
  let start: number;
  let end: number;
  if (a === "") {
    const suffix = Number(b);
    if (suffix === 0) return "unsatisfiable";
    start = Math.max(0, size - suffix);
    end = size - 1;
  } else {
    start = Number(a);
    end = b === "" ? size - 1 : Math.min(Number(b), size - 1);
  }
  if (start >= size || start > end) return "unsatisfiable";
  return { start, end };
}

export function contentDisposition(fileName: string): string {
  const ascii = fileName.replace(/[^\x20-\x7e]|["\\]/g, "_");
  return `attachment; filename="${ascii}"; filename*=UTF-8''${encodeURIComponent(fileName)}`;
}

export interface SendFileOptions {
  /**
   * Called once the answer is known to send the file (`200` or `206` to a GET) and before any
   * of it goes out: where a one-time key is used up. Its error is the answer instead.
   */
  claim?: () => Promise<void>;
}

/** Streams a file with caching, range and HEAD semantics; the bytes are never buffered. */
export async function sendFile(req: FastifyRequest, reply: FastifyReply, file: DownloadableFile, options: SendFileOptions = {}): Promise<FastifyReply> {
  const etag = `"${file.sha256}"`;
  const caching = (): void => {
    reply.header("ETag", etag);
    reply.header("Last-Modified", new Date(Math.floor(file.lastModified.getTime() / 1000) * 1000).toUTCString());
    reply.header("Cache-Control", "private, no-transform");
  };
  const inm = req.headers["if-none-match"];
  if (inm !== undefined && inm.split(",").some((t) => t.trim().replace(/^W\//, "") === etag || t.trim() === "*")) {
    caching();
    return reply.code(304).send();
  }
  let range: { start: number; end: number } | "unsatisfiable" | undefined;
  const rangeHeader = req.headers.range;
  const ifRange = req.headers["if-range"];
  if (rangeHeader !== undefined && (ifRange === undefined || ifRange === etag)) range = parseRange(rangeHeader, file.size);
  if (range === "unsatisfiable") {
    reply.header("Content-Range", `bytes */${file.size}`);
    fail("rangeNotSatisfiable", `the range "${rangeHeader}" is outside the file's ${file.size} bytes`);
  }
  if (req.method !== "HEAD") await options.claim?.();
  caching();
  reply.header("Accept-Ranges", "bytes");
  reply.header("Content-Disposition", contentDisposition(file.fileName));
  reply.type(file.contentType ?? "application/octet-stream");
  const start = range?.start ?? 0;
  const end = range?.end ?? file.size - 1;
  const length = file.size === 0 ? 0 : end - start + 1;
  reply.header("Content-Length", String(length));
  if (range) {
    reply.code(206);
    reply.header("Content-Range", `bytes ${start}-${end}/${file.size}`);
  } else reply.code(200);
  // Fastify's HEAD route keeps our Content-Length only when the payload is a stream.
  if (req.method === "HEAD" || length === 0) return reply.send(Readable.from([]));
  // The bytes bypass Fastify's payload handling: a Readable piped into the socket reaches about
  // 0.6× of what nginx's sendfile does here; big reads handed straight to the socket, a few in
  // flight, keep up with it (bench/generate-api.mjs).
  reply.hijack();
  const res = reply.raw;
  res.writeHead(reply.statusCode, reply.getHeaders() as Record<string, string>);
  const copy = file.open(start, end).then(async (source) => {
    if (source instanceof Readable) return pipeline(source, res);
    if ("read" in source) return copyRange(res, source, start, end);
    try {
      return await copyRange(res, await open(source.path, "r"), start, end);
    } finally {
      source.release();
    }
  });
  void copy.catch((err: unknown) => {
    req.log.warn({ err: (err as Error).message }, "download interrupted");
    res.destroy();
  });
  return reply;
}

/**
 * Streams a file of the blob store (see {@link sendFile}): from its file, or with a registry
 * store from this process's cached copy, else from the registry (copied into the cache on the way).
 */
export function sendStoredFile(req: FastifyRequest, reply: FastifyReply, blobs: BlobStore, file: StoredFile, options: SendFileOptions = {}): Promise<FastifyReply> {
  return sendFile(
    req,
    reply,
    {
      open: (start, end) => blobs.openDownload(file.digest, file.size, { start, end }),
      size: file.size,
      sha256: file.digest.slice("sha256:".length),
      fileName: file.fileName,
      lastModified: file.lastModified,
      contentType: file.contentType,
    },
    options,
  );
}

const IO_BUFFER = 4 << 20;

/**
 * Writes bytes `start..end` of a file to a response in large reads, and closes the file. A buffer
 * is reused once the socket is done with it (its write callback ran); until then a read takes a
 * new one — waiting for `drain` bounds how many exist. Fresh 2 MiB buffers for every read made the
 * garbage collector the bottleneck of a 1 GiB download.
 */
async function copyRange(res: import("node:http").ServerResponse, fh: ByteReader, start: number, end: number): Promise<void> {
  let closed = false;
  const onClose = (): void => {
    closed = true;
  };
  res.once("close", onClose);
  const free: Buffer[] = [];
  try {
    for (let pos = start; pos <= end && !closed; ) {
      const buf = free.pop() ?? Buffer.allocUnsafe(IO_BUFFER);
      const { bytesRead } = await fh.read(buf, 0, Math.min(IO_BUFFER, end - pos + 1), pos);
      if (bytesRead === 0) throw new Error(`the stored file ends at byte ${pos}, before byte ${end}`);
      pos += bytesRead;
      const flushed = (): void => void free.push(buf);
      if (!res.write(bytesRead === IO_BUFFER ? buf : buf.subarray(0, bytesRead), flushed) && !closed) {
        await new Promise<void>((resolve) => {
          const done = (): void => {
            res.off("drain", done);
            res.off("close", done);
            resolve();
          };
          res.on("drain", done);
          res.on("close", done);
        });
      }
    }
    if (!closed) res.end();
  } finally {
    res.off("close", onClose);
    await fh.close();
  }
}
