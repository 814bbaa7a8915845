/**
 * A storage driver over an OCI registry (KILN_BLOB_STORE=oci+http(s)://host:port/prefix): every
 * blob is a blob of the repository `<prefix>/blobs`, written and read with Kiln's own registry
 * client — HEAD to skip a blob the registry has, chunked uploads, Range reads. The registry (CNCF
 * distribution, which itself stores on S3, GCS, Azure or a filesystem) is then the one place every
 * Kiln process reads and writes blobs.
 *
 * What the registry cannot do is kept in this process's data directory: an upload in flight is a
 * local temporary file until it is complete and verified (the registry sees only whole blobs, under
 * their digest); the blobs this process wrote, those a build needs as files (a `.deb`, a zip), the
 * image files an api process fetches for their downloads and those a download reads whole are
 * copied into a local cache bounded in size (blob-cache.ts), checked against their digest, and
 * read from there while they are in it.
 */
import { createReadStream } from "node:fs";
import { stat } from "node:fs/promises";
import { PassThrough, type Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { KilnError } from "../domain/errors.js";
import { RegistryClient, type DeleteTagOutcome } from "../registry/client.js";
import { pushImage } from "../registry/push.js";
import type { BuiltImage, BuiltIndex } from "../oci/types.js";
import type { Credentials } from "../registry/auth.js";
import { FsDriver, type ByteRange, type ByteReader, type LocalCopy, type StorageDriver, type StoredObject, type TempObject } from "./driver.js";
import type { BlobStore, Digest } from "./blob-store.js";
import { BlobCache, DEFAULT_BLOB_CACHE_SIZE } from "./blob-cache.js";

const KEY_RE = /^sha256\/[0-9a-f]{2}\/([0-9a-f]{64})$/;
const keyOfDigest = (digest: Digest): string => `sha256/${digest.slice(7, 9)}/${digest.slice(7)}`;

export interface OciDriverOptions {
  /** `http(s)://host:port` */
  registry: string;
  /** Repositories live under it: blobs in `<prefix>/blobs`. */
  prefix: string;
  credentials?: Credentials;
  /** This process's own directory for uploads in flight and the local cache. */
  localDir: string;
  /** Bytes the local cache may hold (KILN_BLOB_CACHE_SIZE; 10 GiB by default). */
  cacheSize?: number;
}

export class OciDriver implements StorageDriver {
  readonly local = false;
  readonly client: RegistryClient;
  /** The repository every blob belongs to. */
  readonly repository: string;
  /** Uploads in flight (`tmp/…`) and the cache of blobs needed as files (`sha256/…`). */
  private readonly files: FsDriver;
  /** Local copies of blobs, for builds and downloads. */
  readonly cache: BlobCache;

  /** For health checks: one try, a short connect timeout (a load balancer waits on the answer). */
  private readonly probe: RegistryClient;

  constructor(readonly options: OciDriverOptions) {
    const credentials = options.credentials ? { credentials: options.credentials } : {};
    this.client = new RegistryClient(options.registry, { ...credentials, userAgent: "kiln/0.1 (blob store)" });
    this.probe = new RegistryClient(options.registry, { ...credentials, userAgent: "kiln/0.1 (blob store)", retry: { attempts: 1 }, connectTimeoutMs: 3000, idleTimeoutMs: 5000 });
    this.repository = `${options.prefix}/blobs`;
    this.files = new FsDriver(options.localDir);
    this.cache = new BlobCache(this.files, options.cacheSize ?? DEFAULT_BLOB_CACHE_SIZE, async (digest) => {
      const read = await this.client.openBlob(this.repository, digest);
      if (!read) return undefined;
      if (read.length >= 0) return { stream: read.stream, size: read.length };
      const size = await this.client.blobSize(this.repository, digest).catch((err: unknown) => {
        read.stream.destroy();
        throw err;
      });
      return size === undefined ? (read.stream.destroy(), undefined) : { stream: read.stream, size };
    }, { openRange: (digest, range) => this.open(keyOfDigest(digest), range) });
  }

  /** The registry URL without credentials, for messages. */
  get where(): string {
    return `${this.client.endpoint.name}/${this.repository}`;
  }

  private digestOf(key: string): Digest | undefined {
    const m = KEY_RE.exec(key);
    return m ? (`sha256:${m[1]}` as Digest) : undefined;
  }

  async ping(): Promise<void> {
    await this.probe.ping(AbortSignal.timeout(5000));
    // The credentials must also open the repository (a 401 or 403 fails here).
    await this.probe.blobSize(this.repository, `sha256:${"0".repeat(64)}`, AbortSignal.timeout(5000));
  }

  async stat(key: string): Promise<StoredObject | undefined> {
    const digest = this.digestOf(key);
    if (!digest) return this.files.stat(key);
    const size = await this.client.blobSize(this.repository, digest);
    // A blob never changes: its time is not the registry's to tell (and it does not).
    return size === undefined ? undefined : { size, mtime: new Date(0) };
  }

  /** The key's bytes: from this process's verified copy when it has one, else from the registry. */
  reader(key: string, range?: ByteRange): Readable {
    const digest = this.digestOf(key);
    if (!digest) return this.files.reader(key, range);
    const out = new PassThrough({ highWaterMark: 1 << 20 });
    const controller = new AbortController();
    out.once("close", () => controller.abort());
    const source = async (): Promise<Readable | undefined> => {
      const copy = await this.cache.peek(digest);
      if (copy) {
        const local = createReadStream(copy.path, range ? { start: range.start, end: range.end } : {});
        local.once("close", () => copy.release());
        return local;
      }
      const read = await this.client.openBlob(this.repository, digest, range, controller.signal);
      return read?.stream;
    };
    source().then(
      (stream) => {
        if (!stream) return out.destroy(Object.assign(new Error(`blob ${digest} is not in the registry blob store`), { code: "ENOENT" }));
        if (out.destroyed) return void stream.destroy();
        pipeline(stream, out).catch((err: unknown) => out.destroy(err as Error));
      },
      (err: unknown) => out.destroy(err as Error),
    );
    return out;
  }

  async open(key: string, range?: ByteRange): Promise<Readable> {
    const digest = this.digestOf(key);
    if (!digest) return this.files.reader(key, range);
    const read = await this.client.openBlob(this.repository, digest, range);
    if (!read) throw Object.assign(new Error(`blob ${digest} is not in the registry blob store`), { code: "ENOENT" });
    return read.stream;
  }

  temp(): Promise<TempObject> {
    return this.files.temp();
  }

  /** Uploads in flight are local files: those of ended processes go as the filesystem's do. */
  sweepTemp(): Promise<number> {
    return this.files.sweepTemp();
  }

  /**
   * Uploads a complete temporary object under its digest — nothing when the registry has it
   * already (HEAD) — then keeps it as this process's cached copy (what a process wrote, it is
   * likely to read next: a build's layers for its image file, a generated image's download in a
   * single process). The registry checks the digest of what it got.
   */
  async move(tempKey: string, key: string): Promise<void> {
    const digest = this.digestOf(key);
    if (!digest) throw new Error(`invalid blob key ${key}`);
    let size: number;
    try {
      size = await this.upload(tempKey, digest);
    } catch (err) {
      await this.files.delete(tempKey);
      throw err;
    }
    // The copy is a cache's: losing it (a full disk) loses nothing.
    await this.cache.adopt(digest, tempKey, size).catch(() => this.files.delete(tempKey));
  }

  /**
   * Uploads before the transaction that publishes (blob-gc.ts): {@link move} inside it finds the
   * blob with a HEAD — or uploads it again if a collector deleted it in between, under the lock.
   */
  async stage(tempKey: string, key: string, signal?: AbortSignal): Promise<void> {
    const digest = this.digestOf(key);
    if (!digest) throw new Error(`invalid blob key ${key}`);
    await this.upload(tempKey, digest, signal);
  }

  /** Uploads the temporary object unless the registry has the blob; answers its size. */
  private async upload(tempKey: string, digest: Digest, signal?: AbortSignal): Promise<number> {
    const { size } = await stat(this.files.localPath(tempKey));
    if ((await this.client.blobSize(this.repository, digest, signal)) === undefined) {
      await this.client.uploadBlob(this.repository, digest, size, (start, end) => this.files.reader(tempKey, { start, end }), signal ? { signal } : {});
    }
    return size;
  }

  async delete(key: string): Promise<void> {
    const digest = this.digestOf(key);
    if (!digest) return this.files.delete(key);
    await this.client.deleteBlob(this.repository, digest);
    await this.cache.remove(digest);
  }

  /** Where the local copy of a blob lives (made by {@link localCopy}). */
  localPath(key: string): string {
    return this.files.localPath(key);
  }

  /** The blob as a local file: the cached copy, fetched and checked against the digest first if need be. */
  async localCopy(key: string): Promise<LocalCopy> {
    const digest = this.digestOf(key);
    if (!digest) return this.files.localCopy(key);
    return this.cache.acquire(digest);
  }

  async openDownload(key: string, size: number, range: ByteRange): Promise<LocalCopy | ByteReader | Readable> {
    const digest = this.digestOf(key);
    if (!digest) return this.files.localCopy(key);
    return (await this.cache.openDownload(digest, size, range)) ?? this.open(key, range);
  }

  /**
   * Tags an image whose blobs are in this store under `<prefix>/<repository>:<tag>` in the same
   * registry — its blobs mounted from the store's repository, not copied — and returns the
   * reference (`registry.example.com/kiln/alice/hello:1.0-7`), pullable with the registry's
   * credentials.
   */
  async tagImage(image: BuiltImage | BuiltIndex, blobs: BlobStore, repository: string, tag: string, signal?: AbortSignal): Promise<string> {
    const result = await pushImage(image, blobs, { registry: this.options.registry, repository: `${this.options.prefix}/${repository}`, tag }, this.options.credentials ?? {}, {
      mountFrom: [this.repository],
      ...(signal ? { signal } : {}),
    });
    return result.registeringName;
  }

  /** The reference {@link tagImage} answers for `<repository>:<tag>` (what {@link untagImage} takes). */
  referenceOf(repository: string, tag: string): string {
    return `${this.client.endpoint.name}/${this.options.prefix}/${repository}:${tag}`;
  }

  /**
   * Deletes a tag {@link tagImage} made, given its reference (a manifest list's too: the tag is
   * the index's). Undefined when the reference does not name one of this store's repositories (the
   * store moved since). What the registry refused is in the outcome, not thrown.
   */
  async untagImage(reference: string, signal?: AbortSignal): Promise<DeleteTagOutcome | undefined> {
    const head = `${this.client.endpoint.name}/${this.options.prefix}/`;
    const colon = reference.lastIndexOf(":");
    if (!reference.startsWith(head) || colon < head.length) return undefined;
    return this.client.deleteTag(reference.slice(this.client.endpoint.name.length + 1, colon), reference.slice(colon + 1), signal);
  }

  list(): Promise<string[]> {
    return Promise.reject(new KilnError("badRequest", "a registry blob store cannot list its blobs"));
  }
}
