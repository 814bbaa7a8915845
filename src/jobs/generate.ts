/**
 * The generation job: a container template's distribution (minbase profile) plus its bundle —
 * `.deb` artifacts installed with their dependencies, everything else in a layer on top — built
 * into an image in the blob store; then, for a compressed image, the gzip-compressed
 * docker-archive users download. The image row learns its file only once the file is complete.
 */
import path from "node:path";
import type { BlobStore, BlobWriter, Digest } from "../blobs/blob-store.js";
import type { LocalCopy } from "../blobs/driver.js";
import { publishReferenced } from "../store/blob-gc.js";
import { buildImage } from "../builder/build.js";
import { planBundle } from "../builder/bundle-layer.js";
import type { BuildProgress, BuildReport, BuildResult } from "../builder/types.js";
import { assembleIndex } from "../oci/image.js";
import { KilnError, isKilnError, rewriteMessages } from "../domain/errors.js";
import { formatById } from "../domain/formats.js";
import { writeDockerArchiveGzip } from "../oci/docker-archive.js";
import type { ContainerConfig } from "../oci/types.js";
import type { DistributionConfig } from "../domain/distributions.js";
import type { Store, StoreRepositories } from "../store/types.js";
import { imageFileName, registeringName, registryTarget } from "../domain/image-names.js";
import { OciDriver } from "../blobs/oci-driver.js";
import { untagImage, type LeftoverLog } from "./leftovers.js";
import type { JobContext, JobHandler } from "./runner.js";
import type { BuiltImage } from "../oci/types.js";
import { Transform } from "node:stream";
import { pipeline } from "node:stream/promises";

export interface GenerationDeps {
  store: Store;
  blobs: BlobStore;
  debs: BlobStore;
  /** The distributions on offer, by id (library/catalog.ts). */
  catalog: { get(id: number): { config: DistributionConfig } | undefined; find(name: string, version: string, arch: string | undefined): { config: DistributionConfig } | undefined };
  dataDir: string;
  /** KILN_MAX_IMAGE_SIZE: the most a generation unpacks from its bundle. */
  maxImageSize?: number;
  /** Where a registry tag the generation could not remove is said (the process's logger). */
  log?: Pick<LeftoverLog, "info" | "warn">;
}

/** The user id OpenShift-style images declare (any non-root id works; OpenShift picks its own). */
export const ARBITRARY_USER = "1001:0";

/** How the overall percentage is shared between building and writing the downloadable file. */
const BUILD_SHARE = 0.85;

/**
 * The downloadable file: a docker-archive whose layers are the stored gzip blobs, in a gzip
 * stream that stores rather than deflates (the layers inside are compressed already; deflating
 * them again costs seconds and gains nothing). Streamed into a blob writer with its sha256; the
 * writer comes back sealed, to be published together with the image row that references it.
 */
async function writeImageFile(blobs: BlobStore, image: BuiltImage, tag: string, ctx: JobContext): Promise<BlobWriter> {
  const total = image.layers.reduce((n, l) => n + l.size, 0) || 1;
  let written = 0;
  const counting = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      written += chunk.length;
      ctx.progress({ percentage: (BUILD_SHARE + (1 - BUILD_SHARE) * Math.min(1, written / total)) * 100 });
      cb(null, chunk);
    },
  });
  const writer = blobs.ingest({ md5: false });
  try {
    // Both ends settle before anything else happens: when one fails, the other stops too (the
    // pipelines destroy the stream between them), and its rejection is awaited, never left loose.
    const [archive, store] = await Promise.allSettled([
      writeDockerArchiveGzip(counting, image, blobs, { repoTags: [tag], layers: "gzip", gzipLevel: 0, signal: ctx.signal }),
      pipeline(counting, writer),
    ]);
    // The store's failure (a full disk) says more than the archive's "premature close" it causes.
    if (store.status === "rejected" && (archive.status === "fulfilled" || isKilnError(store.reason))) throw store.reason;
    if (archive.status === "rejected") throw archive.reason;
    if (store.status === "rejected") throw store.reason;
    await writer.seal();
    return writer;
  } catch (err) {
    await writer.cancel();
    throw err;
  }
}

export function generationHandler(deps: GenerationDeps): JobHandler {
  const generate = generation(deps);
  return async (job, ctx) => {
    try {
      return await generate(job, ctx);
    } catch (err) {
      throw await withoutHostPaths(err, deps, job.id);
    }
  };
}

/**
 * An error as the image's status shows it: a file of Kiln's store is named by the artifact it
 * holds (`artifact app.deb: not a valid Debian package`), and no other path under the data
 * directory is shown at all.
 */
async function withoutHostPaths(err: unknown, deps: GenerationDeps, jobId: number): Promise<unknown> {
  const names = new Map<string, string>();
  try {
    const img = await deps.store.images.getByJob(jobId);
    const bundle = img && (await deps.store.bundles.get(img.userId, img.bundleId));
    for (const a of bundle ? await deps.store.artifacts.listAll(bundle.id) : []) {
      if (a.blobDigest) names.set(deps.blobs.path(a.blobDigest as Digest), `artifact ${a.origName ?? a.name}`);
    }
  } catch {
    // Without the names (the database is away), paths are still hidden below.
  }
  const dataDir = path.resolve(deps.dataDir).replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  const inDataDir = new RegExp(`${dataDir}(?:/[^\\s'",:;)]*)?`, "g");
  return rewriteMessages(err, (message) => {
    let out = message;
    for (const [file, name] of names) out = out.split(file).join(name);
    return out.replace(inDataDir, "(a file in Kiln's data directory)");
  });
}

function generation(deps: GenerationDeps): JobHandler {
  return async (job, ctx) => {
    const { store } = deps;
    const img = await store.images.getByJob(job.id);
    if (!img) throw new KilnError("notFound", "the image of this job was deleted");
    const bundle = await store.bundles.get(img.userId, img.bundleId);
    const template = bundle ? await store.templates.get(img.userId, bundle.id, img.templateId) : undefined;
    if (!bundle || !template) throw new KilnError("notFound", "the template or bundle of this image was deleted");
    const dist = deps.catalog.get(img.distributionId);
    if (!dist) throw new KilnError("unknownDistribution", `distribution ${img.distributionId} is no longer offered by this server`);
    const format = formatById(img.formatId)!;
    ctx.progress({ percentage: 0, message: "preparing the bundle" });

    const workDir = await ctx.tempDir();
    const plan = planBundle({ bundle, artifacts: await store.artifacts.listAll(bundle.id), blobs: deps.blobs, workDir, groupWritable: format.arbitraryUser, ...(deps.maxImageSize === undefined ? {} : { maxContentSize: deps.maxImageSize }) });
    const config: ContainerConfig = {
      Labels: {
        "org.opencontainers.image.title": bundle.name,
        ...(bundle.version ? { "org.opencontainers.image.version": bundle.version } : {}),
        ...(bundle.description ? { "org.opencontainers.image.description": bundle.description } : {}),
      },
    };
    if (img.entrypoint) config.Entrypoint = JSON.parse(img.entrypoint) as string[];
    else config.Cmd = ["/bin/bash"];
    if (format.arbitraryUser) config.User = ARBITRARY_USER;

    // A multi-architecture image: one build per architecture (the template's first: its packages,
    // report and SBOM describe the image), then the index over them.
    const arches = img.architectures ? [dist.config.arch, ...img.architectures.filter((a) => a !== dist.config.arch)] : [dist.config.arch];
    const dists = arches.map((a) => {
      const d = a === dist.config.arch ? dist : deps.catalog.find(dist.config.name, dist.config.version, a);
      if (!d) throw new KilnError("unknownDistribution", `${dist.config.name} ${dist.config.version} is no longer offered for ${a} by this server`);
      return d.config;
    });
    // The bundle's .deb files as local files, kept (pinned in a registry store's cache) until every build has read them.
    const copies = await Promise.allSettled(plan.debs.map((d) => deps.blobs.localCopy(d.digest)));
    const results: BuildResult[] = [];
    try {
      const failed = copies.find((c): c is PromiseRejectedResult => c.status === "rejected");
      if (failed) throw failed.reason;
      const localDebs = copies.map((c) => (c as PromiseFulfilledResult<LocalCopy>).value.path);
      for (const [i, d] of dists.entries()) {
        plan.budget.reset();
        const onProgress = (p: BuildProgress): void =>
          ctx.progress({ percentage: ((i + p.fraction) / dists.length) * BUILD_SHARE * 100, message: dists.length > 1 ? `${d.arch}: ${p.message}` : p.message });
        results.push(
          await buildImage(
            { distribution: d, profile: "minbase", localDebs, chargeLocalDeb: (k, bytes) => plan.budget.charge(bytes, plan.debs[k]!.name), extraLayers: plan.layer ? [plan.layer] : [], config, imageName: registeringName(img), signal: ctx.signal, onProgress },
            { dataDir: deps.dataDir, blobs: deps.blobs, debs: deps.debs },
          ),
        );
      }
    } finally {
      for (const c of copies) if (c.status === "fulfilled") c.value.release();
    }
    const result = results[0]!;
    const index = results.length > 1 ? await assembleIndex(results.map((r) => r.image), deps.blobs) : undefined;
    // A package without an index Filename came from the bundle's own .deb files.
    const manual = new Set(result.manual);
    const packages = result.packages.map((p) => ({
      name: p.name,
      version: p.version,
      arch: p.architecture,
      origin: p.filename === undefined ? ("bundle" as const) : ("distribution" as const),
      level: manual.has(p.name) ? (0 as const) : (1 as const),
      // A .deb with no ar mtime (0) has no known build date.
      buildDate: result.buildDates.get(p.name)?.getTime() ? result.buildDates.get(p.name)!.toISOString() : undefined,
    }));
    const installedSize = result.image.layers.reduce((n, l) => n + l.uncompressedSize, 0);

    // The report and the SBOM are blobs the image row names: published with the row, so that
    // deleting another image with the same document cannot collect it in between (blob-gc.ts).
    const documents = await sealDocuments(deps, [result.report, result.sbom]);
    // With a registry blob store the image is also tagged there, before it completes: its
    // registeringName is then a reference anyone with the registry's credentials can pull (a
    // multi-architecture image's: the manifest list of its images).
    let registryReference: string | undefined;
    // Tagged (or perhaps tagged), and the results not recorded: the tag is nobody's — unless the
    // job runs again elsewhere. Its reference (registryTarget: owner, name, version and the
    // image's revision) is the same at every attempt, so the next attempt tags it again, or
    // already has (a worker fenced out after a pause): removing it then would take the tag from
    // under the new owner.
    const untagUnrecorded = async (reference: string, err: unknown): Promise<void> => {
      if (!(await ctx.resumesElsewhere(err))) await untagImage(deps, reference, deps.log ?? SILENT, { job: job.id, image: img.id });
    };
    if (deps.blobs.driver instanceof OciDriver) {
      const driver = deps.blobs.driver;
      let target: { repository: string; tag: string } | undefined;
      try {
        ctx.progress({ message: "tagging the image in the registry" });
        const owner = await store.users.get(img.userId);
        if (!owner) throw new KilnError("notFound", "the owner of this image was deleted");
        target = registryTarget(owner.login, img);
        registryReference = await driver.tagImage(index ?? result.image, deps.blobs, target.repository, target.tag, ctx.signal);
      } catch (err) {
        await documents.cancel();
        // A push cut short (cancelled, or the registry failing) may have stored its manifest all
        // the same, its answer lost: the tag is deleted if it is there ("absent" otherwise).
        if (target) await untagUnrecorded(driver.referenceOf(target.repository, target.tag), err);
        throw err;
      }
    }
    const recordResults = async (): Promise<{ message: string }> => {
      const record = {
        manifestDigest: index ? index.indexDigest : result.image.manifestDigest,
        installedSize,
        packages,
        reportDigest: documents.digests[0]!,
        sbomDigest: documents.digests[1]!,
        ...(registryReference ? { registryReference } : {}),
      };
      const message = completionMessage(result.report);
      if (!img.compress) {
        if (ctx.signal.aborted) {
          throw ctx.signal.reason;
        }
        await store.transaction(async (tx) => {
          await ctx.fence(tx);
          await documents.publish(tx);
          await tx.images.update(img.id, record);
        });
        return { message };
      }
      ctx.progress({ percentage: BUILD_SHARE * 100, message: "writing the image file" });
      const file = await writeImageFile(deps.blobs, result.image, registeringName(img), ctx);
      if (ctx.signal.aborted) {
        await file.cancel();
        throw ctx.signal.reason;
      }
      // The file is published with the row that references it, so that removing another image
      // with the same file cannot collect it in between (store/blob-gc.ts).
      await publishReferenced(store, file, async (tx, blob) => {
        await ctx.fence(tx);
        await documents.publish(tx);
        const updated = await tx.images.update(img.id, { ...record, fileName: imageFileName(img), fileSize: blob.size, fileDigest: blob.digest });
        if (!updated) throw new KilnError("notFound", "the image was deleted while it was being generated");
      }, ctx.signal);
      return { message };
    };
    // Whatever ends the job (done, cancelled, failed), unpublished documents leave nothing behind.
    try {
      return await recordResults();
    } catch (err) {
      if (registryReference) await untagUnrecorded(registryReference, err);
      throw err;
    } finally {
      await documents.cancel();
    }
  };
}

/** For a generation given no logger. */
const SILENT = { info: () => undefined, warn: () => undefined };

/**
 * JSON documents written as sealed (not yet published) blobs; `publish` locks their digests and
 * publishes them inside the transaction that records the row naming them (blob-gc.ts).
 */
async function sealDocuments(deps: GenerationDeps, docs: unknown[]): Promise<{ digests: string[]; publish(tx: StoreRepositories): Promise<void>; cancel(): Promise<void> }> {
  const writers: BlobWriter[] = [];
  const digests: string[] = [];
  try {
    for (const doc of docs) {
      const w = deps.blobs.ingest();
      writers.push(w);
      w.end(`${JSON.stringify(doc, null, 2)}\n`);
      digests.push((await w.seal()).digest);
    }
  } catch (err) {
    await Promise.all(writers.map((w) => w.cancel()));
    throw err;
  }
  return {
    digests,
    async publish(tx) {
      for (const [i, w] of writers.entries()) {
        await tx.blobLocks.lock(digests[i]!);
        await w.publish();
      }
    },
    async cancel() {
      await Promise.all(writers.map((w) => w.cancel()));
    },
  };
}

/**
 * "complete", or — when package scripts had effects Kiln did not reproduce — a message that
 * says so and where the details are (the image's report).
 */
export function completionMessage(report: BuildReport): string {
  const unreproduced = report.scripts.filter((e) => e.outcome === "unreproduced");
  if (unreproduced.length === 0) return "complete";
  const packages = [...new Set(unreproduced.map((e) => e.package))];
  const shown = packages.slice(0, 5).join(", ") + (packages.length > 5 ? ` and ${packages.length - 5} more` : "");
  return `complete; ${unreproduced.length} package script effect${unreproduced.length === 1 ? " was" : "s were"} not reproduced (${shown}): see the image's report`;
}
