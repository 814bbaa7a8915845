/**
 * A Debian repository as a distribution of kiln.yaml describes it: its Release verified with
 * the configured keyring, its `Packages` indices verified against the Release, and its `.deb`
 * files downloaded — in parallel, each verified against the index — into the content-addressed
 * blob store. The chain of trust is the signature → SHA256 of each index → SHA256 of each `.deb`;
 * `keyring: none` removes the first link and is only honoured when the config says so.
 */
import { readFile } from "node:fs/promises";
import type { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import type { BlobStore, Digest } from "../blobs/blob-store.js";
import { KilnError, isKilnError } from "../domain/errors.js";
import { debianArch, type DistributionConfig } from "../domain/distributions.js";
import { buildDates, type BuildDates } from "./build-dates.js";
import { Mirror, errorReason, isTransient, type LocalCopy } from "./mirror.js";
import { compressionOf, loadPackagesIndex } from "./packages-index.js";
import { packageLabel, unsafeFilenameReason } from "./package.js";
import { parseRelease, type ParsedRelease, type ReleaseInfo } from "./release.js";
import { loadKeyring, unverifiedCleartext, verifyClearsigned, verifyDetached, type Keyring } from "./signature.js";
import type { BinaryPackage } from "./types.js";

export type { ReleaseInfo } from "./release.js";

/** A step of {@link openRepository}, for progress reports. */
export interface RepositoryProgress {
  step: "release" | "index";
  /** `InRelease`, `main/binary-amd64/Packages.xz`... */
  file: string;
  /** Nothing was downloaded for this step (cache, `304`, or a `file://` mirror). */
  fromCache: boolean;
}

/** Options of {@link openRepository}. */
export interface OpenRepositoryOptions {
  /** Directory for index caches (under `KILN_DATA_DIR`); shared by every distribution. */
  cacheDir: string;
  /** Where `.deb` files go, named by their SHA256. */
  debs: BlobStore;
  /** Cancels the opening (not the later {@link Repository.fetchDebs}, which takes its own). */
  signal?: AbortSignal;
  onProgress?: (event: RepositoryProgress) => void;
  /** The clock `Valid-Until` is checked against; now by default. */
  now?: Date;
}

/** Options of {@link Repository.fetchDebs}. */
export interface FetchDebsOptions {
  /** Downloads running at once; 4 by default. */
  concurrency?: number;
  signal?: AbortSignal;
  /** Called as each package is available (downloaded, or already in the store). */
  onProgress?: (done: number, total: number, pkg: BinaryPackage) => void;
}

/** An opened repository: its verified Release and the packages of all its components. */
export interface Repository {
  readonly dist: DistributionConfig;
  /** Debian architecture (`amd64`) of the indices read. */
  readonly arch: string;
  readonly release: ReleaseInfo;
  /** Every package of every configured component, in component then index order. */
  readonly packages: BinaryPackage[];
  /**
   * Makes the `.deb` of each package available in the blob store: already stored ones are not
   * downloaded again; the others are streamed in, `concurrency` at a time, and each checked
   * against its index `SHA256` and `Size` before it is published. Transient network errors are
   * retried twice. The first failure cancels the rest and is thrown, naming the package.
   * @returns the digest of each package's `.deb`.
   */
  fetchDebs(pkgs: readonly BinaryPackage[], opts?: FetchDebsOptions): Promise<Map<BinaryPackage, Digest>>;
  /** The packages' build dates (the index has none), learnt from their `.deb` headers and kept with this index. */
  readonly buildDates: BuildDates;
}

const ATTEMPTS = 3;

function assertPathPart(value: string, what: string): void {
  if (value === "" || value.startsWith("/") || value.split("/").some((s) => s === ".." || s === "." || s === "") || /[\\\s]/.test(value)) {
    throw new KilnError("badRequest", `${what} "${value}" is not a valid repository path`);
  }
}

async function loadRelease(
  dist: DistributionConfig,
  mirror: Mirror,
  keyring: Keyring | undefined,
  options: OpenRepositoryOptions,
): Promise<{ text: string; signedBy: string | undefined }> {
  const where = `${dist.suite} at ${mirror.label}`;
  const dir = `dists/${dist.suite}`;
  const signal = options.signal;
  let usedCache = false;
  const get = async (file: string): Promise<LocalCopy | undefined> => {
    const copy = await mirror.get(`${dir}/${file}`, { what: `${file} of ${where}`, ...(signal ? { signal } : {}) });
    if (copy) {
      usedCache ||= copy.fromCache;
      options.onProgress?.({ step: "release", file, fromCache: copy.fromCache });
    }
    return copy;
  };
  const attempt = async (): Promise<{ text: string; signedBy: string | undefined }> => {
    const inRelease = await get("InRelease");
    if (inRelease) {
      const doc = await readFile(inRelease.path, "utf8");
      if (!keyring) return { text: await unverifiedCleartext(doc), signedBy: undefined };
      const v = await verifyClearsigned(doc, keyring, `InRelease of ${where}`);
      return { text: v.text, signedBy: v.fingerprint };
    }
    const release = await get("Release");
    if (!release) {
      throw new KilnError("repositoryFailed", `${mirror.label} has no InRelease or Release for suite "${dist.suite}" (looked in ${mirror.url(dir)}/)`);
    }
    const bytes = await readFile(release.path);
    if (!keyring) return { text: bytes.toString("utf8"), signedBy: undefined };
    const sig = await get("Release.gpg");
    if (!sig) {
      throw new KilnError(
        "integrityFailed",
        `the Release of ${where} is not signed (no InRelease, no Release.gpg) but keyring ${dist.keyring} is configured; ` +
          `only a distribution configured with "keyring: none" may use an unsigned mirror`,
      );
    }
    const fingerprint = await verifyDetached(bytes, await readFile(sig.path), keyring, `Release of ${where} (with Release.gpg)`);
    return { text: bytes.toString("utf8"), signedBy: fingerprint };
  };
  try {
    return await attempt();
  } catch (err) {
    // A cached copy that no longer verifies (a damaged cache, or a 304 from a mirror that changed
    // the file under the same validator) gets one fresh download before we give up.
    if (mirror.kind !== "http" || !usedCache || !isKilnError(err, "integrityFailed")) throw err;
    for (const f of ["InRelease", "Release", "Release.gpg"]) await mirror.forget(`${dir}/${f}`);
    return attempt();
  }
}

function checkRelease(dist: DistributionConfig, parsed: ParsedRelease, where: string, now: Date): void {
  const { suite, codename, validUntil } = parsed.info;
  // A validly signed Release of another suite (say, an old one) must not pass for this one.
  if ((suite !== undefined || codename !== undefined) && dist.suite !== suite && dist.suite !== codename) {
    throw new KilnError("integrityFailed", `the Release of ${where} is for suite "${suite ?? "?"}" (codename "${codename ?? "?"}"), not "${dist.suite}"`);
  }
  if (validUntil && now.getTime() > validUntil.getTime()) {
    throw new KilnError("integrityFailed", `the Release of ${where} expired on ${validUntil.toISOString()} (Valid-Until): the mirror is stale or replays an old Release`);
  }
}

/**
 * Opens a distribution's repository: fetches and verifies its Release (`InRelease`, else
 * `Release` + `Release.gpg`; signatures are skipped only with `keyring: "none"`), then loads the
 * `Packages` index of each component for the distribution's architecture, preferring `.xz`,
 * then `.gz`, then the plain file, each checked against the Release's SHA256 and size.
 * @throws KilnError `repositoryFailed` (unreachable, missing or malformed files),
 *   `integrityFailed` (signature, hash or size mismatch, expired or foreign Release),
 *   `cancelled`.
 */
export async function openRepository(dist: DistributionConfig, options: OpenRepositoryOptions): Promise<Repository> {
  const arch = debianArch(dist.arch);
  assertPathPart(dist.suite, "suite");
  for (const c of dist.components) assertPathPart(c, "component");
  const mirror = new Mirror(dist.mirror, { cacheDir: options.cacheDir });
  const where = `${dist.suite} at ${mirror.label}`;
  const keyring = dist.keyring === "none" ? undefined : await loadKeyring(dist.keyring);
  const { text, signedBy } = await loadRelease(dist, mirror, keyring, options);
  const parsed = parseRelease(text, `the Release of ${where}`);
  checkRelease(dist, parsed, where, options.now ?? new Date());
  const signal = options.signal;

  const perComponent = await Promise.all(
    dist.components.map(async (component) => {
      const base = `${component}/binary-${arch}/Packages`;
      const listed = [`${base}.xz`, `${base}.gz`, base].filter((f) => parsed.files.has(f));
      if (listed.length === 0) {
        throw new KilnError(
          "repositoryFailed",
          `the Release of ${where} lists no ${base} index (architectures: ${parsed.info.architectures.join(" ") || "?"}; components: ${parsed.info.components.join(" ") || "?"})`,
        );
      }
      // Debian lists the uncompressed Packages in its Release without publishing it: a listed
      // file missing on the mirror sends us to the next one.
      for (let i = 0; ; i++) {
        const file = listed[i]!;
        const rel = `dists/${dist.suite}/${file}`;
        const what = `${file} of ${where}`;
        const expect = parsed.files.get(file)!;
        let missing = false;
        const get = async (): Promise<LocalCopy> => {
          const copy = await mirror.get(rel, { expect, what, ...(signal ? { signal } : {}) });
          if (!copy) {
            missing = true;
            throw new KilnError("repositoryFailed", `${what} is listed in the Release but missing on the mirror`);
          }
          return copy;
        };
        try {
          const { packages, cached } = await loadPackagesIndex(
            {
              expect,
              compression: compressionOf(file),
              what,
              fetch: async () => {
                const copy = await get();
                if (mirror.kind !== "http" || !copy.fromCache) return copy;
                const retry = async () => {
                  await mirror.forget(rel);
                  return get();
                };
                return { ...copy, retry };
              },
            },
            { cacheDir: options.cacheDir, ...(signal ? { signal } : {}) },
          );
          options.onProgress?.({ step: "index", file, fromCache: cached });
          return packages;
        } catch (err) {
          if (!missing || i === listed.length - 1) throw err;
        }
      }
    }),
  );
  const packages = perComponent.length === 1 ? perComponent[0]! : perComponent.flat();
  return {
    dist,
    arch,
    release: { ...parsed.info, signedBy },
    packages,
    fetchDebs: (pkgs, opts) => fetchDebs(mirror, options.debs, pkgs, opts ?? {}),
    buildDates: buildDates(mirror, options.debs),
  };
}

function debError(kind: "integrityFailed" | "repositoryFailed", pkg: BinaryPackage, mirror: Mirror, reason: string, cause?: unknown): KilnError {
  return new KilnError(kind, `package ${packageLabel(pkg)} (${pkg.filename ?? "no Filename"} from ${mirror.label}): ${reason}`, cause === undefined ? undefined : { cause });
}

/**
 * Streams a `.deb` into the store, published only if it has the expected digest and size (a
 * longer download is cut off at the announced size).
 */
async function storeVerified(debs: BlobStore, source: Readable, digest: Digest, size: number | undefined): Promise<void> {
  const writer = debs.ingest({ md5: false, ...(size !== undefined ? { maxSize: size } : {}) });
  try {
    await pipeline(source, writer);
    await writer.commit({ digest, ...(size !== undefined ? { size } : {}) });
  } finally {
    await writer.cancel();
    if (!writer.destroyed) writer.destroy();
  }
}

/** Downloads one `.deb` into the store, verified on the way in; retries a transfer cut short. */
async function fetchDeb(mirror: Mirror, debs: BlobStore, pkg: BinaryPackage, digest: Digest, signal: AbortSignal): Promise<void> {
  if (await debs.has(digest)) return;
  for (let attempt = 1; ; attempt++) {
    if (signal.aborted) throw new KilnError("cancelled", "the download was cancelled", { cause: signal.reason });
    try {
      const stream = await mirror.open(pkg.filename!, signal);
      // maxSize stops a body longer than the index says as soon as it overflows.
      await storeVerified(debs, stream, digest, pkg.size);
      return;
    } catch (err) {
      if (signal.aborted) throw new KilnError("cancelled", "the download was cancelled", { cause: err });
      if (isKilnError(err, "integrityFailed")) throw debError("integrityFailed", pkg, mirror, err.message, err);
      if (isKilnError(err, "tooLarge")) throw debError("integrityFailed", pkg, mirror, `size mismatch, the download exceeds the ${pkg.size} bytes of the index`, err);
      if (attempt < ATTEMPTS && isTransient(err)) continue;
      if (isKilnError(err)) throw debError("repositoryFailed", pkg, mirror, err.message, err);
      throw debError("repositoryFailed", pkg, mirror, `download failed: ${errorReason(err)}`, err);
    }
  }
}

async function fetchDebs(mirror: Mirror, debs: BlobStore, pkgs: readonly BinaryPackage[], opts: FetchDebsOptions): Promise<Map<BinaryPackage, Digest>> {
  const concurrency = Math.max(1, Math.floor(opts.concurrency ?? 4));
  const digests = new Map<BinaryPackage, Digest>();
  // One download per distinct .deb, even if two package objects describe it.
  const byDigest = new Map<Digest, BinaryPackage[]>();
  for (const pkg of pkgs) {
    if (digests.has(pkg)) continue;
    if (pkg.filename === undefined) throw debError("repositoryFailed", pkg, mirror, "it is not from a repository index (no Filename)");
    const unsafe = unsafeFilenameReason(pkg.filename);
    if (unsafe !== undefined) throw debError("integrityFailed", pkg, mirror, `refusing Filename: ${unsafe}`);
    if (pkg.sha256 === undefined || !/^[0-9a-f]{64}$/.test(pkg.sha256)) {
      throw debError("integrityFailed", pkg, mirror, "the index gives no SHA256 to verify it against");
    }
    const digest = `sha256:${pkg.sha256}` as Digest;
    digests.set(pkg, digest);
    const same = byDigest.get(digest);
    if (same) same.push(pkg);
    else byDigest.set(digest, [pkg]);
  }
  const jobs = [...byDigest.entries()];
  const total = digests.size;
  let done = 0;
  let next = 0;
  let failure: unknown;
  const stop = new AbortController();
  const signal = opts.signal ? AbortSignal.any([opts.signal, stop.signal]) : stop.signal;
  const worker = async () => {
    while (failure === undefined && next < jobs.length) {
      const [digest, group] = jobs[next++]!;
      try {
        await fetchDeb(mirror, debs, group[0]!, digest, signal);
      } catch (err) {
        if (failure === undefined) {
          failure = err;
          stop.abort();
        }
        return;
      }
      for (const pkg of group) opts.onProgress?.(++done, total, pkg);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, jobs.length) }, worker));
  if (failure !== undefined) {
    if (opts.signal?.aborted) throw new KilnError("cancelled", "the download was cancelled", { cause: opts.signal.reason });
    throw failure;
  }
  return digests;
}
