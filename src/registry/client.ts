/**
 * A client of one registry's OCI Distribution API, for one account: the `/v2/` probe, blob
 * existence, cross-repository mounts, blob uploads (monolithic, or chunked `PATCH`es that resume
 * after a failure when the registry still has the session), manifest `PUT` with its digest
 * checked, tag listing and tag deletion.
 *
 *   ping ──► HEAD blob ──► (POST ?mount=) ──► POST ──► PUT ?digest=           (small blob)
 *                                             └──► PATCH … PATCH ──► PUT ?digest=  (large blob)
 *
 * Every request gets the credentials the registry asked for (see auth.ts), is retried on
 * connection errors, 5xx and 429 (see retry.ts), and is cancelled by the caller's signal.
 */
import { createHash } from "node:crypto";
import type { Readable } from "node:stream";
import { isDigest, type Digest } from "../blobs/blob-store.js";
import { MediaTypes } from "../oci/types.js";
import { RegistryAuth, repositoryScope, type Credentials } from "./auth.js";
import type { EgressPolicy } from "./egress.js";
import {
  MAX_ERROR_BODY,
  RegistryError,
  describeRequest,
  formatDetails,
  isRetryableStatus,
  parseErrorBody,
  scrub,
  type RegistryErrorDetail,
} from "./errors.js";
import { HttpTransport, type ExchangeResult, type RequestBody } from "./http.js";
import { parseRegistryEndpoint, type RegistryEndpoint } from "./names.js";
import { DEFAULT_RETRY_POLICY, cancelledError, parseRetryAfter, retryDelay, sleep, withRetry, type RetryEvent, type RetryPolicy } from "./retry.js";

/**
 * Blobs up to this size go in one `PUT`; larger ones in {@link DEFAULT_CHUNK_BYTES} `PATCH`es, so
 * that a failure costs at most one chunk (when the registry keeps the session). Measured against
 * Debian's docker-registry on loopback with a 50.6 MB one-layer minbase image
 * (bench/registry-push.mjs, bench/registry-push-results.md): one whole-blob `PUT` 443–497 ms,
 * 64 MiB chunks 426 ms, 32 MiB 466 ms, 16 MiB 513 ms, 8 MiB 662 ms (medians; skopeo 600–700 ms).
 * Each chunk costs a round trip and a hash-state save on the registry's side, so chunks stay at
 * 32 MiB, where that cost is lost in the noise.
 */
export const DEFAULT_MONOLITHIC_MAX_BYTES = 16 << 20;
/** Chunk size of a chunked upload (raised to the registry's `OCI-Chunk-Min-Length`). */
export const DEFAULT_CHUNK_BYTES = 32 << 20;

/** Every manifest type Kiln may find behind a tag. */
const MANIFEST_ACCEPT = [MediaTypes.dockerManifest, MediaTypes.ociManifest, MediaTypes.ociIndex, MediaTypes.dockerManifestList].join(", ");

/** Opens bytes `start..end` (inclusive) of a blob: called again for each try and each chunk. */
export type BlobOpener = (start: number, end: number) => Readable;

/** Options of a {@link RegistryClient}. */
export interface RegistryClientOptions {
  credentials?: Credentials;
  retry?: Partial<RetryPolicy>;
  /** Told about each retry (reason already redacted), e.g. to log it. */
  onRetry?: (e: RetryEvent) => void;
  /** Blobs up to this size are uploaded in one request; larger ones in chunks. */
  monolithicMaxBytes?: number;
  chunkBytes?: number;
  /** A connection with no traffic for this long is dropped and the request retried. Default 60 s. */
  idleTimeoutMs?: number;
  /** Default 15 s. */
  connectTimeoutMs?: number;
  /** Extra trusted CA certificates (PEM) for a registry with a private CA. */
  ca?: string | Buffer;
  userAgent?: string;
  /** For a registry a user chose: where its connections may go (see egress.ts). */
  egress?: EgressPolicy;
}

/** An upload session the registry opened (`Location` of a `202`). */
export interface UploadSession {
  location: URL;
  /** `OCI-Chunk-Min-Length`: no chunk but the last may be smaller. */
  minChunkBytes: number;
}

/** What a mount attempt gave. */
export type MountResult = { mounted: true } | { mounted: false; session?: UploadSession };

/** Options of {@link RegistryClient.uploadBlob}. */
export interface UploadOptions {
  signal?: AbortSignal;
  /** The offset of the next byte sent (it goes back to 0 if an upload has to start again). */
  onProgress?: (position: number) => void;
  /** Each count of blob bytes sent (every try counts). */
  onBytes?: (n: number) => void;
  /** A session already open (from a declined mount). */
  session?: UploadSession;
}

/** What {@link RegistryClient.deleteTag} did. */
export type DeleteTagOutcome =
  | { deleted: true; method: "tag" | "digest"; digest?: Digest }
  | { deleted: false; reason: "absent" | "unsupported" | "shared" | "denied"; message: string };

/** One call to the registry, as the client builds it. */
interface Call {
  method: string;
  url: URL;
  scopes: readonly string[];
  headers?: Record<string, string>;
  body?: RequestBody;
  maxResponseBytes?: number;
  signal?: AbortSignal;
  onBodyBytes?: (n: number) => void;
  streamResponse?: boolean;
}

/** A blob being read (see {@link RegistryClient.openBlob}). */
export interface BlobRead {
  stream: Readable;
  /** The bytes this answer carries (the range's length for a range). */
  length: number;
}

/** A client for one registry and one set of credentials. Reuse it; `close()` it when done. */
export class RegistryClient {
  readonly endpoint: RegistryEndpoint;
  private readonly transport: HttpTransport;
  private readonly auth: RegistryAuth;
  private readonly policy: RetryPolicy;
  private readonly monolithicMaxBytes: number;
  private readonly chunkBytes: number;
  private readonly origin: string;
  /** Blob bytes sent (every try counts; manifests are not blobs). */
  bytesUploaded = 0;

  constructor(
    registry: string | RegistryEndpoint,
    private readonly options: RegistryClientOptions = {},
  ) {
    this.endpoint = typeof registry === "string" ? parseRegistryEndpoint(registry) : registry;
    this.origin = new URL(this.endpoint.baseUrl).origin;
    this.transport = new HttpTransport({
      registry: this.endpoint.name,
      idleTimeoutMs: options.idleTimeoutMs ?? 60_000,
      connectTimeoutMs: options.connectTimeoutMs ?? 15_000,
      userAgent: options.userAgent ?? "kiln/0.1",
      maxSockets: 16,
      ...(options.ca ? { ca: options.ca } : {}),
      ...(options.egress ? { egress: options.egress } : {}),
    });
    this.auth = new RegistryAuth({ endpoint: this.endpoint, credentials: options.credentials ?? {}, transport: this.transport });
    this.policy = { ...DEFAULT_RETRY_POLICY, ...options.retry };
    this.monolithicMaxBytes = options.monolithicMaxBytes ?? DEFAULT_MONOLITHIC_MAX_BYTES;
    this.chunkBytes = Math.max(1, options.chunkBytes ?? DEFAULT_CHUNK_BYTES);
  }

  /** Requests sent, token requests included (every try counts). */
  get requests(): number {
    return this.transport.requests;
  }

  /** Token requests sent. */
  get tokenRequests(): number {
    return this.auth.tokenRequests;
  }

  /** Drops idle connections. */
  close(): void {
    this.transport.close();
  }

  /**
   * The `/v2/` probe: checks that this is a registry and learns how it wants to be authenticated,
   * and that the credentials (if any) are accepted for Basic registries.
   */
  async ping(signal?: AbortSignal): Promise<void> {
    await this.retrying(signal, async () => {
      const url = this.url("/v2/");
      const res = await this.transport.send({ method: "GET", url, maxResponseBytes: MAX_ERROR_BODY, ...(signal ? { signal } : {}) });
      if (res.status === 200) return;
      if (res.status === 401) {
        this.auth.learn(res.headers["www-authenticate"]);
        return;
      }
      if (res.status === 404) throw new RegistryError(`${this.endpoint.name} does not serve the registry API (GET /v2/ answered 404)`, { registry: this.endpoint.name, retryable: false, httpStatus: 404 });
      this.fail(res, "GET", url);
    });
  }

  /** True when the repository has the blob (a pushed blob need not be sent again). */
  async hasBlob(repository: string, digest: Digest, signal?: AbortSignal): Promise<boolean> {
    return this.retrying(signal, async () => {
      const url = this.url(`/v2/${repository}/blobs/${digest}`);
      const res = await this.call({ method: "HEAD", url, scopes: [pushScope(repository)], ...opt(signal) });
      if (res.status === 200) return true;
      // A redirect to storage means the registry has it.
      if (res.status >= 300 && res.status < 400) return true;
      if (res.status === 404) return false;
      return this.fail(res, "HEAD", url);
    });
  }

  /** The blob's size when the repository has it (`HEAD`), else undefined. */
  async blobSize(repository: string, digest: Digest, signal?: AbortSignal): Promise<number | undefined> {
    return this.retrying(signal, async () => {
      const url = this.url(`/v2/${repository}/blobs/${digest}`);
      const res = await this.call({ method: "HEAD", url, scopes: [repositoryScope(repository, ["pull"])], ...opt(signal) });
      if (res.status === 404) return undefined;
      if (res.status !== 200) return this.fail(res, "HEAD", url);
      const length = Number(first(res.headers["content-length"]));
      if (!Number.isSafeInteger(length) || length < 0) throw new RegistryError(`${this.endpoint.name} gave no size for blob ${digest}`, { registry: this.endpoint.name, retryable: false });
      return length;
    });
  }

  /**
   * Reads a blob, or bytes `range.start..range.end` (inclusive) of it, as a stream; follows a
   * redirect to the registry's storage (without credentials). Undefined when the repository does
   * not have it. The caller consumes or destroys the stream.
   */
  async openBlob(repository: string, digest: Digest, range?: { start: number; end: number }, signal?: AbortSignal): Promise<BlobRead | undefined> {
    const headers: Record<string, string> = range ? { range: `bytes=${range.start}-${range.end}` } : {};
    return this.retrying(signal, async () => {
      let url = this.url(`/v2/${repository}/blobs/${digest}`);
      for (let hop = 0; ; hop++) {
        const res = await this.call({ method: "GET", url, scopes: [repositoryScope(repository, ["pull"])], headers, streamResponse: true, ...opt(signal) });
        const location = first(res.headers.location);
        if (res.status >= 300 && res.status < 400 && location && hop < 3) {
          url = new URL(location, url);
          continue;
        }
        if (res.status === 404) return undefined;
        const wanted = range ? 206 : 200;
        if (res.status !== wanted || !res.stream) {
          res.stream?.destroy();
          if (res.status === 200 && range) throw new RegistryError(`${this.endpoint.name} ignored the range of a blob read`, { registry: this.endpoint.name, retryable: false });
          return this.fail(res, "GET", url);
        }
        const length = Number(first(res.headers["content-length"]));
        return { stream: res.stream, length: Number.isSafeInteger(length) ? length : -1 };
      }
    });
  }

  /**
   * Deletes a blob from a repository (the registry unlinks it; its storage reclaims the bytes at
   * its own garbage collection). True if it was there; a registry with deletes disabled fails.
   */
  async deleteBlob(repository: string, digest: Digest, signal?: AbortSignal): Promise<boolean> {
    return this.retrying(signal, async () => {
      const url = this.url(`/v2/${repository}/blobs/${digest}`);
      const res = await this.call({ method: "DELETE", url, scopes: [repositoryScope(repository, ["delete"])], ...opt(signal) });
      if (res.status === 202 || res.status === 200 || res.status === 204) return true;
      if (res.status === 404) return false;
      return this.fail(res, "DELETE", url);
    });
  }

  /**
   * Asks the registry to link a blob the account already pushed to repository `from`. A registry
   * that declines (it does not have it there, or refuses mounts) usually opens an upload session
   * instead, which is returned for the upload to use.
   */
  async mountBlob(repository: string, digest: Digest, from: string, signal?: AbortSignal): Promise<MountResult> {
    try {
      return await this.retrying(signal, async () => {
        const url = this.url(`/v2/${repository}/blobs/uploads/`);
        url.searchParams.set("mount", digest);
        url.searchParams.set("from", from);
        const res = await this.call({ method: "POST", url, scopes: [pushScope(repository), repositoryScope(from, ["pull"])], ...opt(signal) });
        if (res.status === 201) {
          this.checkDigestHeader(res, digest, "mounted blob");
          return { mounted: true } as const;
        }
        if (res.status === 202) return { mounted: false, session: this.session(res, url) } as const;
        return this.fail(res, "POST", url);
      });
    } catch (err) {
      // A mount is an optimisation: being refused it (no pull right on `from`, no such blob there,
      // an unsupported parameter) only means the blob is uploaded after all.
      if (err instanceof RegistryError && !err.retryable && err.httpStatus !== undefined && err.httpStatus < 500) return { mounted: false };
      throw err;
    }
  }

  /**
   * Uploads a blob: one `PUT` up to the monolithic threshold, else `PATCH` chunks then a closing
   * `PUT`. After a retryable failure it asks the registry how far the session got and goes on
   * from there, or starts a new session if the registry dropped it.
   */
  async uploadBlob(repository: string, digest: Digest, size: number, open: BlobOpener, options: UploadOptions = {}): Promise<void> {
    const { signal } = options;
    // The session as last answered: each PATCH moves it on (distribution signs the offset into
    // the Location), and a resume must ask with the latest one or the registry drops the upload.
    const live: { session: UploadSession | undefined } = { session: options.session };
    let offset = 0;
    let freshStarts = 0;
    const started = Date.now();
    for (let attempt = 1; ; attempt++) {
      if (signal?.aborted) throw cancelledError(signal);
      try {
        live.session ??= await this.startUpload(repository, signal);
        if (offset === 0 && size <= this.monolithicMaxBytes) {
          await this.putWhole(live.session, digest, size, open, options);
        } else {
          await this.putChunks(live, offset, digest, size, open, options);
        }
        return;
      } catch (err) {
        if (signal?.aborted) throw cancelledError(signal);
        if (!(err instanceof RegistryError)) throw err;
        const sessionLost = err.codes.some((c) => c === "BLOB_UPLOAD_UNKNOWN" || c === "BLOB_UPLOAD_INVALID") || err.httpStatus === 416;
        if (sessionLost && freshStarts < 2) {
          // The registry forgot or refused the session (it may have been resumed at the wrong
          // offset): start again from nothing, which is always correct.
          freshStarts++;
          live.session = undefined;
          offset = 0;
          continue;
        }
        if (!err.retryable) throw err;
        const delay = retryDelay(this.policy, attempt, err.retryAfterMs);
        if (attempt >= this.policy.attempts || Date.now() - started + delay > this.policy.maxElapsedMs) {
          throw new RegistryError(`${err.message} (gave up after ${attempt} tries)`, { registry: err.registry, retryable: false, details: [...err.details], ...status(err), cause: err });
        }
        this.options.onRetry?.({ attempt, delayMs: delay, reason: err.message, ...(err.httpStatus !== undefined ? { status: err.httpStatus } : {}) });
        await sleep(delay, signal);
        const resumed = live.session
          ? await this.uploadStatus(live.session, signal).catch((e: unknown) => {
              if (signal?.aborted) throw cancelledError(signal);
              if (e instanceof RegistryError) return undefined;
              throw e;
            })
          : undefined;
        if (resumed && resumed.offset <= size) {
          live.session = resumed.session;
          offset = resumed.offset;
        } else {
          live.session = undefined;
          offset = 0;
        }
      }
    }
  }

  /**
   * Puts a manifest under a tag (or digest) and checks that the registry stored exactly these
   * bytes: the `Docker-Content-Digest` it answers must be their sha256. Returns the digest.
   */
  async putManifest(repository: string, reference: string, mediaType: string, bytes: Buffer, signal?: AbortSignal): Promise<Digest> {
    const digest = `sha256:${createHash("sha256").update(bytes).digest("hex")}` as Digest;
    await this.retrying(signal, async () => {
      const url = this.url(`/v2/${repository}/manifests/${reference}`);
      const res = await this.call({ method: "PUT", url, scopes: [pushScope(repository)], headers: { "content-type": mediaType }, body: bytes, ...opt(signal) });
      if (res.status !== 201 && res.status !== 200 && res.status !== 202) this.fail(res, "PUT", url);
      this.checkDigestHeader(res, digest, "manifest");
    });
    return digest;
  }

  /** Every tag of a repository (following `Link` pagination); empty when the repository does not exist. */
  async tags(repository: string, signal?: AbortSignal): Promise<string[]> {
    const out: string[] = [];
    let url: URL | undefined = this.url(`/v2/${repository}/tags/list`);
    url.searchParams.set("n", "1000");
    for (let page = 0; url && page < 1000; page++) {
      const current: URL = url;
      const res = await this.retrying(signal, async () => {
        const r = await this.call({ method: "GET", url: current, scopes: [repositoryScope(repository, ["pull"])], maxResponseBytes: 8 << 20, ...opt(signal) });
        if (r.status === 404) return undefined;
        if (r.status !== 200) this.fail(r, "GET", current);
        return r;
      });
      if (!res) break;
      let doc: { tags?: unknown };
      try {
        doc = JSON.parse(res.body.toString("utf8")) as { tags?: unknown };
      } catch {
        throw new RegistryError(`${this.endpoint.name} answered a tag list that is not JSON`, { registry: this.endpoint.name, retryable: false });
      }
      if (Array.isArray(doc.tags)) for (const t of doc.tags) if (typeof t === "string") out.push(t);
      url = nextPage(res.headers.link, current);
      if (url && url.origin !== this.origin) url = undefined;
    }
    return out;
  }

  /**
   * Removes a tag. OCI 1.1 registries delete the tag itself; older ones (Debian's docker-registry
   * 2.8) only delete manifests by digest, which untags every tag of that manifest, so that is
   * done only when no other tag points at it. A registry that does not allow deletion is
   * reported in the outcome, not thrown.
   */
  async deleteTag(repository: string, tag: string, signal?: AbortSignal): Promise<DeleteTagOutcome> {
    const scopes = [repositoryScope(repository, ["pull", "delete"])];
    const digest = await this.manifestDigest(repository, tag, scopes, signal);
    if (!digest) return { deleted: false, reason: "absent", message: `${this.endpoint.name}/${repository} has no tag ${tag}` };

    const byTag = await this.deleteManifest(repository, tag, scopes, signal);
    if (byTag === "deleted") return { deleted: true, method: "tag", digest };
    if (byTag === "denied") return { deleted: false, reason: "denied", message: `${this.endpoint.name} does not let this account delete from ${repository}` };

    const others = (await this.tags(repository, signal)).filter((t) => t !== tag);
    for (const other of others) {
      if ((await this.manifestDigest(repository, other, scopes, signal)) === digest) {
        return { deleted: false, reason: "shared", message: `${this.endpoint.name} cannot delete a tag alone, and tag ${other} names the same image ${digest}` };
      }
    }
    const byDigest = await this.deleteManifest(repository, digest, scopes, signal);
    if (byDigest === "deleted") return { deleted: true, method: "digest", digest };
    if (byDigest === "denied") return { deleted: false, reason: "denied", message: `${this.endpoint.name} does not let this account delete from ${repository}` };
    return { deleted: false, reason: "unsupported", message: `${this.endpoint.name} does not allow deleting images` };
  }

  /** Abandons an upload session (best effort: registries also expire them on their own). */
  async cancelUpload(session: UploadSession, signal?: AbortSignal): Promise<void> {
    await this.call({ method: "DELETE", url: session.location, scopes: this.scopesOf(session), ...opt(signal) }).catch(() => undefined);
  }

  // ---------------------------------------------------------------------------------------------

  /** The digest a tag names, or undefined if there is no such tag. */
  private async manifestDigest(repository: string, reference: string, scopes: readonly string[], signal?: AbortSignal): Promise<Digest | undefined> {
    return this.retrying(signal, async () => {
      const url = this.url(`/v2/${repository}/manifests/${reference}`);
      let res = await this.call({ method: "HEAD", url, scopes, headers: { accept: MANIFEST_ACCEPT }, ...opt(signal) });
      if (res.status === 404) return undefined;
      if (res.status !== 200) this.fail(res, "HEAD", url);
      const header = first(res.headers["docker-content-digest"]);
      if (header && isDigest(header)) return header;
      // No digest header (it is optional): hash the manifest itself.
      res = await this.call({ method: "GET", url, scopes, headers: { accept: MANIFEST_ACCEPT }, maxResponseBytes: 4 << 20, ...opt(signal) });
      if (res.status === 404) return undefined;
      if (res.status !== 200 || res.truncated) this.fail(res, "GET", url);
      return `sha256:${createHash("sha256").update(res.body).digest("hex")}` as Digest;
    });
  }

  private async deleteManifest(repository: string, reference: string, scopes: readonly string[], signal?: AbortSignal): Promise<"deleted" | "unsupported" | "denied"> {
    try {
      return await this.retrying(signal, async () => {
        const url = this.url(`/v2/${repository}/manifests/${reference}`);
        const res = await this.call({ method: "DELETE", url, scopes, ...opt(signal) });
        if (res.status === 202 || res.status === 200 || res.status === 204) return "deleted" as const;
        // 405 / UNSUPPORTED: deletion is off; 400 DIGEST_INVALID: "a tag is not a digest" (2.8);
        // 404 for a tag we just saw: the registry only deletes by digest.
        if (res.status === 405 || res.status === 400 || res.status === 404) return "unsupported" as const;
        return this.fail(res, "DELETE", url);
      });
    } catch (err) {
      if (err instanceof RegistryError && err.authentication) return "denied";
      throw err;
    }
  }

  private async startUpload(repository: string, signal?: AbortSignal): Promise<UploadSession> {
    const url = this.url(`/v2/${repository}/blobs/uploads/`);
    const res = await this.call({ method: "POST", url, scopes: [pushScope(repository)], ...opt(signal) });
    if (res.status !== 202) this.fail(res, "POST", url);
    return this.session(res, url);
  }

  private async putWhole(session: UploadSession, digest: Digest, size: number, open: BlobOpener, options: UploadOptions): Promise<void> {
    const url = new URL(session.location);
    url.searchParams.set("digest", digest);
    let position = 0;
    options.onProgress?.(0);
    const res = await this.call({
      method: "PUT",
      url,
      scopes: this.scopesOf(session),
      headers: { "content-type": "application/octet-stream" },
      ...(size > 0 ? { body: { length: size, open: () => open(0, size - 1) } } : {}),
      onBodyBytes: (n) => {
        this.bytesUploaded += n;
        options.onBytes?.(n);
        position += n;
        options.onProgress?.(position);
      },
      ...opt(options.signal),
    });
    if (res.status !== 201) this.fail(res, "PUT", url);
    this.checkDigestHeader(res, digest, "blob");
  }

  private async putChunks(live: { session: UploadSession | undefined }, from: number, digest: Digest, size: number, open: BlobOpener, options: UploadOptions): Promise<void> {
    let current = live.session!;
    const chunk = Math.max(this.chunkBytes, current.minChunkBytes);
    let offset = from;
    let stalls = 0;
    options.onProgress?.(offset);
    while (offset < size) {
      const start = offset;
      const end = Math.min(size, start + chunk) - 1;
      let position = start;
      const res = await this.call({
        method: "PATCH",
        url: current.location,
        scopes: this.scopesOf(current),
        headers: { "content-type": "application/octet-stream", "content-range": `${start}-${end}` },
        body: { length: end - start + 1, open: () => open(start, end) },
        onBodyBytes: (n) => {
          this.bytesUploaded += n;
          options.onBytes?.(n);
          position += n;
          options.onProgress?.(position);
        },
        ...opt(options.signal),
      });
      if (res.status !== 202 && res.status !== 204) this.fail(res, "PATCH", current.location);
      current = this.session(res, current.location, current);
      live.session = current;
      const confirmed = rangeEnd(first(res.headers.range));
      const next = confirmed === undefined ? end + 1 : confirmed + 1;
      if (next > end + 1) throw new RegistryError(`${this.endpoint.name} claims more bytes of ${digest} than were sent`, { registry: this.endpoint.name, retryable: false });
      // A registry that kept fewer bytes than it was sent: go on from where it is, a few times.
      if (next < end + 1 && ++stalls > 3) throw new RegistryError(`${this.endpoint.name} keeps losing bytes of ${digest}`, { registry: this.endpoint.name, retryable: true });
      offset = next;
    }
    const url = new URL(current.location);
    url.searchParams.set("digest", digest);
    const res = await this.call({ method: "PUT", url, scopes: this.scopesOf(current), ...opt(options.signal) });
    if (res.status !== 201) this.fail(res, "PUT", url);
    this.checkDigestHeader(res, digest, "blob");
  }

  /** Where a session stands (`GET` on its location): its confirmed size, or undefined if it is gone. */
  private async uploadStatus(session: UploadSession, signal?: AbortSignal): Promise<{ session: UploadSession; offset: number } | undefined> {
    const res = await this.call({ method: "GET", url: session.location, scopes: this.scopesOf(session), ...opt(signal) });
    if (res.status !== 204 && res.status !== 200) return undefined;
    const end = rangeEnd(first(res.headers.range));
    // "0-0" is ambiguous (nothing, or one byte): taking it as nothing costs at most a restart.
    const offset = end === undefined || end === 0 ? 0 : end + 1;
    return { session: this.session(res, session.location, session), offset };
  }

  /** The push scope for a session's repository (taken from its URL). */
  private scopesOf(session: UploadSession): string[] {
    const m = /^\/v2\/(.+)\/blobs\/uploads\//.exec(session.location.pathname);
    return m ? [pushScope(decodeURIComponent(m[1]!))] : [];
  }

  private session(res: ExchangeResult, requestUrl: URL, previous?: UploadSession): UploadSession {
    const location = first(res.headers.location);
    const min = Number(first(res.headers["oci-chunk-min-length"]));
    const minChunkBytes = Number.isSafeInteger(min) && min > 0 ? min : (previous?.minChunkBytes ?? 0);
    if (!location) {
      if (previous) return { location: previous.location, minChunkBytes };
      throw new RegistryError(`${this.endpoint.name} opened an upload without saying where (no Location)`, { registry: this.endpoint.name, retryable: false });
    }
    let url: URL;
    try {
      url = new URL(location, requestUrl);
    } catch {
      throw new RegistryError(`${this.endpoint.name} gave an upload location that is not a URL`, { registry: this.endpoint.name, retryable: false });
    }
    if (url.protocol !== "https:" && !(url.protocol === "http:" && this.endpoint.insecure)) {
      throw new RegistryError(`${this.endpoint.name} sent the upload to a non-TLS location; refused`, { registry: this.endpoint.name, retryable: false });
    }
    return { location: url, minChunkBytes };
  }

  /**
   * One request with credentials: on a `401`, fresh credentials and one more try; a second `401`
   * (or a `403`) means the account may not do this, which no retry changes.
   */
  private async call(c: Call): Promise<ExchangeResult> {
    // Credentials go only to the registry itself, never to a storage host an upload was sent to.
    const sameOrigin = c.url.origin === this.origin;
    let authorization = sameOrigin ? await this.auth.authorization(c.scopes, c.signal) : undefined;
    for (let round = 0; ; round++) {
      const res = await this.transport.send({
        method: c.method,
        url: c.url,
        headers: { ...c.headers, ...(authorization ? { authorization } : {}) },
        maxResponseBytes: c.maxResponseBytes ?? MAX_ERROR_BODY,
        ...(c.body !== undefined ? { body: c.body } : {}),
        ...(c.onBodyBytes ? { onBodyBytes: c.onBodyBytes } : {}),
        ...(c.streamResponse ? { streamResponse: true } : {}),
        ...opt(c.signal),
      });
      if (res.status === 401 && sameOrigin && round === 0 && (await this.auth.renew(res.headers["www-authenticate"], c.scopes, authorization, c.signal))) {
        authorization = await this.auth.authorization(c.scopes, c.signal);
        continue;
      }
      if (res.status === 401 || res.status === 403) this.authFailed(res);
      return res;
    }
  }

  private authFailed(res: ExchangeResult): never {
    const details = parseErrorBody(res.body);
    const said = details.length ? `: ${scrub(formatDetails(details), this.auth.secrets())}` : "";
    throw new RegistryError(`authentication failed for ${this.endpoint.name}${said}`, {
      registry: this.endpoint.name,
      retryable: false,
      httpStatus: res.status,
      details,
      authentication: true,
    });
  }

  /** Turns an unexpected answer into an error: retryable for 5xx and 429 (with its `Retry-After`). */
  private fail(res: ExchangeResult, method: string, url: URL): never {
    const details: RegistryErrorDetail[] = parseErrorBody(res.body).map((d) => ({ code: d.code, message: scrub(d.message, this.auth.secrets()) }));
    const said = details.length ? `: ${formatDetails(details)}` : "";
    const retryAfter = first(res.headers["retry-after"]);
    const retryAfterMs = parseRetryAfter(retryAfter);
    throw new RegistryError(`${this.endpoint.name} answered ${res.status} to ${describeRequest(method, url, this.endpoint.host)}${said}`, {
      registry: this.endpoint.name,
      retryable: isRetryableStatus(res.status),
      httpStatus: res.status,
      details,
      ...(retryAfterMs !== undefined ? { retryAfterMs } : {}),
    });
  }

  private checkDigestHeader(res: ExchangeResult, digest: Digest, what: string): void {
    const got = first(res.headers["docker-content-digest"]);
    if (got !== undefined && got !== digest) {
      throw new RegistryError(`${this.endpoint.name} stored the ${what} as ${got.slice(0, 80)}, but Kiln sent ${digest}`, { registry: this.endpoint.name, retryable: false });
    }
  }

  private url(path: string): URL {
    return new URL(path, this.endpoint.baseUrl);
  }

  private retrying<T>(signal: AbortSignal | undefined, op: () => Promise<T>): Promise<T> {
    return withRetry(op, this.policy, { ...opt(signal), ...(this.options.onRetry ? { onRetry: this.options.onRetry } : {}) });
  }
}

function pushScope(repository: string): string {
  return repositoryScope(repository, ["pull", "push"]);
}

function opt(signal: AbortSignal | undefined): { signal?: AbortSignal } {
  return signal ? { signal } : {};
}

function status(err: RegistryError): { httpStatus?: number } {
  return err.httpStatus !== undefined ? { httpStatus: err.httpStatus } : {};
}

function first(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

/** The last byte of a `Range: 0-<end>` (or `bytes=0-<end>`) answer. */
function rangeEnd(v: string | undefined): number | undefined {
  const m = v ? /^(?:bytes=)?(\d+)-(\d+)$/.exec(v.trim()) : null;
  return m ? Number(m[2]) : undefined;
}

/** The `rel="next"` target of a `Link` header. */
function nextPage(link: string | string[] | undefined, base: URL): URL | undefined {
  const v = first(link);
  if (!v) return undefined;
  const m = /<([^>]+)>\s*;\s*rel="?next"?/.exec(v);
  if (!m) return undefined;
  try {
    return new URL(m[1]!, base);
  } catch {
    return undefined;
  }
}
