/**
 * Publishing a built image to a registry: the config and layers (several at a time; those the
 * repository has are skipped, those the account pushed elsewhere are mounted), then the Docker v2
 * schema 2 manifest under the tag — the type `docker pull` of every version expects. A
 * multi-architecture image pushes every image's blobs, each image's manifest by digest, then the
 * Docker manifest list over them under the tag. An image of zstd layers has no Docker manifest
 * (schema 2 knows gzip layers only): its OCI manifest (or OCI index) is pushed instead.
 *
 * Names are checked before anything is sent. Cancellation stops every request in flight; the
 * promise settles only once no upload of this push is still running.
 */
import { Readable } from "node:stream";
import type { BlobStore, Digest } from "../blobs/blob-store.js";
import { KilnError, fail } from "../domain/errors.js";
import { MediaTypes, type BuiltImage, type BuiltIndex } from "../oci/types.js";
import type { Credentials } from "./auth.js";
import { RegistryClient, type BlobOpener, type RegistryClientOptions, type UploadSession } from "./client.js";
import { assertTag, cloudId, normaliseRepository, parseRegistryEndpoint, registeringName } from "./names.js";
import { cancelledError } from "./retry.js";

/** Where an image goes. */
export interface PushTarget {
  /** The registry endpoint as the user wrote it (`registry.example.com`, `http://127.0.0.1:5000`, `docker.io`). */
  registry: string;
  /** `namespace/repository` (for OpenShift, the namespace is the project). */
  repository: string;
  tag: string;
}

/** Progress of a push; `bytesLoaded` never goes down. */
export interface PushProgress {
  phase: "blobs" | "manifest" | "done";
  bytesLoaded: number;
  /** The sum of the sizes of the image's distinct blobs (config and layers). */
  bytesTotal: number;
}

/** Options of {@link pushImage}. */
export interface PushOptions {
  signal?: AbortSignal;
  /** Called at most ten times a second, and at each change of phase. */
  onProgress?: (p: PushProgress) => void;
  /** Blobs uploaded at the same time (default 3). */
  concurrency?: number;
  /** Repositories of the same registry the account pushed to before: blobs found there are mounted, not uploaded. */
  mountFrom?: string[];
  /** Settings of the client made for this push (retries, thresholds, timeouts, CA). */
  clientOptions?: Omit<RegistryClientOptions, "credentials">;
}

/** What a push did. */
export interface PushResult {
  /** Digest of the manifest the tag now names (the Docker v2 schema 2 manifest, or manifest list; OCI for zstd layers). */
  manifestDigest: Digest;
  /** `host/namespace/repository@sha256:…` */
  cloudId: string;
  /** `host/namespace/repository:tag` */
  registeringName: string;
  /** Blob bytes sent over the network (every try counts). */
  bytesUploaded: number;
  blobsUploaded: number;
  /** Blobs the repository already had. */
  blobsSkipped: number;
  /** Blobs linked from another repository of the account. */
  blobsMounted: number;
}

/** The default number of blobs in flight. */
export const DEFAULT_PUSH_CONCURRENCY = 3;

/** What OpenShift's integrated registry expects: any user name, the account's token as the password. */
export function openShiftCredentials(token: string): Credentials {
  if (token === "") fail("invalidField", "the OpenShift token is empty");
  return { username: "kiln", password: token };
}

interface PushBlob {
  digest: Digest;
  size: number;
  open: BlobOpener;
}

/**
 * Pushes `image` (all of whose blobs are in `blobs`) to `target`: the `/v2/` probe, then the blobs,
 * then the manifest.
 */
export async function pushImage(image: BuiltImage | BuiltIndex, blobs: BlobStore, target: PushTarget, credentials: Credentials, options: PushOptions = {}): Promise<PushResult> {
  const endpoint = parseRegistryEndpoint(target.registry);
  const repository = normaliseRepository(endpoint, target.repository);
  const tag = assertTag(target.tag);
  const mountFrom = [...new Set((options.mountFrom ?? []).map((r) => normaliseRepository(endpoint, r)))].filter((r) => r !== repository);
  const concurrency = Math.max(1, Math.min(16, Math.floor(options.concurrency ?? DEFAULT_PUSH_CONCURRENCY)));
  const { signal } = options;
  if (signal?.aborted) throw cancelledError(signal, "the push");

  const images = "indexDigest" in image ? image.images : [image];
  const list = await imageBlobs(images, blobs);
  const bytesTotal = list.reduce((n, b) => n + b.size, 0);
  const progress = new ProgressMeter(bytesTotal, options.onProgress);
  const client = new RegistryClient(endpoint, { ...options.clientOptions, credentials });

  // One controller for this push: the caller's cancel, or the first failing blob, stops the rest.
  const inner = new AbortController();
  const onAbort = (): void => inner.abort(signal?.reason);
  signal?.addEventListener("abort", onAbort, { once: true });
  let bytesUploaded = 0;
  const counts = { uploaded: 0, skipped: 0, mounted: 0 };
  try {
    progress.emit("blobs", true);
    await client.ping(inner.signal);

    const pushBlob = async (b: PushBlob): Promise<void> => {
      const s = inner.signal;
      if (await client.hasBlob(repository, b.digest, s)) {
        counts.skipped++;
        progress.done(b);
        return;
      }
      let session: UploadSession | undefined;
      for (const from of mountFrom) {
        const r = await client.mountBlob(repository, b.digest, from, s);
        if (r.mounted) {
          if (session) await client.cancelUpload(session, s);
          counts.mounted++;
          progress.done(b);
          return;
        }
        if (r.session) {
          if (session) await client.cancelUpload(session, s);
          session = r.session;
        }
      }
      await client.uploadBlob(repository, b.digest, b.size, b.open, {
        signal: s,
        ...(session ? { session } : {}),
        onBytes: (n) => (bytesUploaded += n),
        onProgress: (position) => progress.at(b, position),
      });
      counts.uploaded++;
      progress.done(b);
    };

    const queue = [...list];
    let firstError: unknown;
    const worker = async (): Promise<void> => {
      for (let b = queue.shift(); b && !inner.signal.aborted; b = queue.shift()) {
        try {
          await pushBlob(b);
        } catch (err) {
          firstError ??= err;
          inner.abort(err);
        }
      }
    };
    // Every worker settles before we go on or fail: nothing of this push runs after it returns.
    await Promise.all(Array.from({ length: Math.min(concurrency, list.length) }, worker));
    if (signal?.aborted) throw cancelledError(signal, "the push");
    if (firstError !== undefined) throw firstError;

    progress.emit("manifest", true);
    const put = async (reference: string, mediaType: string, bytes: Buffer, expected: string): Promise<Digest> => {
      const digest = await client.putManifest(repository, reference, mediaType, bytes, inner.signal);
      if (digest !== expected) throw new KilnError("integrityFailed", `the image's ${mediaType} hashes to ${digest}, not ${expected}`);
      return digest;
    };
    let digest: Digest;
    if ("indexDigest" in image) {
      // A manifest list may only name manifests the repository has.
      if (image.dockerList && image.dockerListDigest) {
        for (const i of image.images) await put(i.dockerManifestDigest!, MediaTypes.dockerManifest, i.dockerManifest!, i.dockerManifestDigest!);
        digest = await put(tag, MediaTypes.dockerManifestList, image.dockerList, image.dockerListDigest);
      } else {
        for (const i of image.images) await put(i.manifestDigest, MediaTypes.ociManifest, i.manifest, i.manifestDigest);
        digest = await put(tag, MediaTypes.ociIndex, image.index, image.indexDigest);
      }
    } else if (image.dockerManifest && image.dockerManifestDigest) digest = await put(tag, MediaTypes.dockerManifest, image.dockerManifest, image.dockerManifestDigest);
    else digest = await put(tag, MediaTypes.ociManifest, image.manifest, image.manifestDigest);
    progress.emit("done", true);
    return {
      manifestDigest: digest,
      cloudId: cloudId(endpoint, repository, digest),
      registeringName: registeringName(endpoint, repository, tag),
      bytesUploaded,
      blobsUploaded: counts.uploaded,
      blobsSkipped: counts.skipped,
      blobsMounted: counts.mounted,
    };
  } catch (err) {
    if (signal?.aborted) throw cancelledError(signal, "the push");
    throw err;
  } finally {
    signal?.removeEventListener("abort", onAbort);
    client.close();
  }
}

/** The configs and the distinct layers, each checked to be in the store with its declared size. */
async function imageBlobs(images: readonly BuiltImage[], blobs: BlobStore): Promise<PushBlob[]> {
  const out: PushBlob[] = [];
  const seen = new Set<string>();
  for (const image of images) {
    const config = image.config;
    if (!seen.has(image.configDigest)) {
      seen.add(image.configDigest);
      out.push({ digest: image.configDigest, size: config.length, open: (start, end) => Readable.from([config.subarray(start, end + 1)], { objectMode: false }) });
    }
    for (const layer of image.layers) {
      if (seen.has(layer.digest)) continue;
      seen.add(layer.digest);
      const st = await blobs.stat(layer.digest);
      if (!st) fail("notFound", `layer ${layer.digest} of the image is not in the blob store`);
      if (st.size !== layer.size) fail("integrityFailed", `layer ${layer.digest} has ${st.size} bytes in the blob store, the image says ${layer.size}`);
      const digest = layer.digest;
      out.push({ digest, size: layer.size, open: (start, end) => blobs.open(digest, { start, end }) });
    }
  }
  return out;
}

/** Sums per-blob high-water marks, so a restarted upload never makes the total go down. */
class ProgressMeter {
  private loaded = 0;
  private readonly marks = new Map<string, number>();
  private phase: PushProgress["phase"] = "blobs";
  private lastEmit = 0;

  constructor(
    private readonly total: number,
    private readonly listener: ((p: PushProgress) => void) | undefined,
  ) {}

  at(b: PushBlob, position: number): void {
    const mark = this.marks.get(b.digest) ?? 0;
    const p = Math.min(position, b.size);
    if (p <= mark) return;
    this.marks.set(b.digest, p);
    this.loaded += p - mark;
    this.emit(this.phase, false);
  }

  done(b: PushBlob): void {
    this.at(b, b.size);
  }

  emit(phase: PushProgress["phase"], force: boolean): void {
    if (!this.listener) return;
    const now = Date.now();
    if (!force && phase === this.phase && now - this.lastEmit < 100) return;
    this.phase = phase;
    this.lastEmit = now;
    this.listener({ phase, bytesLoaded: this.loaded, bytesTotal: this.total });
  }
}
