/**
 * Images generated from container templates: generation (a queued job), the image and its
 * status, cancellation, its packages, its downloadable file, the user's image lists, and
 * removal — which stops the image's work, deletes its rows and keys in one transaction, then
 * collects its file.
 */
import type { Digest } from "../blobs/blob-store.js";
import { parseEntrypoint } from "../domain/entrypoint.js";
import { fail } from "../domain/errors.js";
import { formatById, formatByName, type ContainerFormat } from "../domain/formats.js";
import { distributionFacts, distributionLabel, type DistributionConfig } from "../domain/distributions.js";
import { imageFileName, registeringName } from "../domain/image-names.js";
import { evaluateRule, parseRestrictionRule } from "../domain/restriction.js";
import type { ImageRow, JobRow, StoreRepositories, TemplateRow, UserRow } from "../store/types.js";
import type { Image, ImagePkg, OpStatus } from "../wire/index.js";
import { collectBlobs } from "../store/blob-gc.js";
import { untagImage } from "../jobs/leftovers.js";
import type { LibraryDeps, OperationLog } from "./context.js";
import { issueDownloadKey } from "./download-keys.js";
import { optionalBoolean, optionalString } from "./fields.js";
import { loadImage, loadTemplate, type ImageRef, type TemplateRef } from "./load.js";
import { imageFormatWire, statusWire, targetFormatWire, uris } from "./representations.js";

/** A file in the blob store as a download serves it. */
export interface StoredFile {
  digest: Digest;
  size: number;
  fileName: string;
  lastModified: Date;
  contentType: string;
}

const imageUri = (login: string, i: Pick<ImageRow, "bundleId" | "templateId" | "id">): string => uris.image(login, i.bundleId, i.templateId, i.id);

/** An image as UForge shows it; `downloadKey` opens its download once. */
export function imageWire(deps: LibraryDeps, login: string, img: ImageRow, job: JobRow, downloadKey?: string): Image {
  const base = imageUri(login, img);
  const format = formatById(img.formatId)!;
  const dist = deps.catalog.get(img.distributionId);
  const complete = job.state === "complete";
  const downloadable = complete && img.compress && img.fileName !== null;
  return {
    dbId: img.id,
    created: img.created,
    lastModified: job.lastModified > img.lastModified ? job.lastModified : img.lastModified,
    sha256sum: downloadable && img.fileDigest ? img.fileDigest.slice("sha256:".length) : undefined,
    size: downloadable ? (img.fileSize ?? undefined) : undefined,
    // The download is a gzip-compressed docker-archive.
    mimeType: downloadable ? "application/gzip" : undefined,
    status: imageStatus(login, img, job),
    uploaded: downloadable,
    uploadedTime: complete ? (job.finishedAt ?? undefined) : undefined,
    parentUri: uris.template(login, img.bundleId, img.templateId),
    basePublishImagesUri: `${base}/pimages`,
    completeInstalledSize: img.installedSize ?? undefined,
    completeSize: img.fileSize ?? undefined,
    compress: img.compress,
    distributionName: dist ? distributionLabel(dist.config) : undefined,
    downloadKey: downloadable ? downloadKey : undefined,
    downloadUri: downloadable ? `${base}/downloads/${encodeURIComponent(img.fileName!)}${downloadKey ? `?downloadId=${downloadKey}` : ""}` : undefined,
    fileExtension: img.compress ? "tar.gz" : undefined,
    fileName: img.compress ? imageFileName(img) : undefined,
    fileSize: downloadable ? (img.fileSize ?? undefined) : undefined,
    format: imageFormatWire(format),
    targetFormat: targetFormatWire(login, format),
    fullName: registeringName(img),
    imageCreated: complete,
    name: img.name,
    pkgsUri: `${base}/pkgs`,
    revision: img.revision,
    statusUri: `${base}/status`,
    uri: base,
    version: img.version ?? undefined,
    entrypoint: img.entrypoint ?? undefined,
    // Where a registry blob store tagged it (pullable), else the name `docker load` gives it.
    registeringName: img.registryReference ?? registeringName(img),
  };
}

function imageStatus(login: string, img: ImageRow, job: JobRow): OpStatus {
  const base = imageUri(login, img);
  return statusWire(job, `${base}/status`, base);
}

/** The images of a template, as its `images` list shows them. */
export async function templateImages(deps: LibraryDeps, owner: UserRow, t: TemplateRow): Promise<Image[]> {
  const out: Image[] = [];
  for (const img of await deps.store.images.listByTemplate(owner.id, t.id)) {
    const job = await deps.store.jobs.get(img.jobId);
    if (job) out.push(imageWire(deps, owner.login, img, job));
  }
  return out;
}

/**
 * Removes images: their generation and publication jobs are cancelled first (a running one
 * stops), then their rows, publications, jobs and download keys go in one transaction (with
 * whatever `alsoRemove` deletes, e.g. the template they hang from), then the tags a registry blob
 * store gave them are deleted from it, and last their files are collected, unless something else
 * still uses the same bytes.
 */
export async function removeImages(deps: LibraryDeps, images: ImageRow[], log: OperationLog, alsoRemove?: (tx: StoreRepositories) => Promise<void>): Promise<void> {
  for (const img of images) {
    await deps.jobs?.cancel(img.jobId);
    for (const p of await deps.store.publications.listByImage(img.userId, img.id)) await deps.jobs?.cancel(p.jobId);
  }
  await deps.store.transaction(async (tx) => {
    for (const img of images) {
      await tx.images.delete(img.userId, img.id);
      await tx.downloadKeys.deleteForTarget(`image:${img.id}`);
    }
    await alsoRemove?.(tx);
  });
  // The tags a registry refuses to delete (or cannot be reached for) are recorded and tried again later.
  for (const img of images) if (img.registryReference) await untagImage(deps, img.registryReference, log, { image: img.id });
  // The images are gone whatever the blob store answers: a blob it cannot delete is left, and said.
  await collectBlobs(deps.store, deps.blobs, images.flatMap((i) => [i.fileDigest, i.reportDigest, i.sbomDigest]), log);
}

function chosenFormat(value: Image): ContainerFormat {
  const tf = value.targetFormat;
  if (!tf) fail("unknownFormat", "image.targetFormat is required: name a container format (Docker or OpenShift)");
  let format: ContainerFormat | undefined;
  if (typeof tf.name === "string" && tf.name !== "") {
    format = formatByName(tf.name);
    if (!format) fail("unknownFormat", `unknown target format "${tf.name}": Kiln generates Docker and OpenShift images`);
  } else if (tf.dbId !== undefined) {
    format = formatById(tf.dbId);
  } else if (tf.uri !== undefined) {
    const m = /targetformats\/(\d+)\/?$/.exec(tf.uri);
    format = m ? formatById(Number(m[1])) : undefined;
  }
  if (!format) fail("unknownFormat", "image.targetFormat must name a container format (Docker or OpenShift) by name, dbId or uri");
  return format;
}

/** Most architectures one image may hold. */
const MAX_ARCHITECTURES = 8;

/** A generation's `architectures`, checked; undefined for the template's architecture alone. */
function requestedArchitectures(deps: LibraryDeps, dist: DistributionConfig, value: unknown, compress: boolean): string[] | undefined {
  if (value === undefined || value === null) return undefined;
  if (!Array.isArray(value) || value.length === 0 || value.length > MAX_ARCHITECTURES || value.some((a) => typeof a !== "string" || a === "")) {
    fail("invalidField", `image.architectures must be a list of 1 to ${MAX_ARCHITECTURES} architecture names (["x86_64","aarch64"])`);
  }
  const arches = value as string[];
  if (new Set(arches).size !== arches.length) fail("invalidField", `image.architectures names an architecture twice: ${arches.join(", ")}`);
  if (!arches.includes(dist.arch)) fail("invalidField", `image.architectures must include the template's architecture ${dist.arch} (given: ${arches.join(", ")})`);
  for (const a of arches) {
    if (!deps.catalog.find(dist.name, dist.version, a)) {
      const offered = deps.catalog.list().filter((e) => e.config.name === dist.name && e.config.version === dist.version).map((e) => e.config.arch);
      fail("unknownDistribution", `${dist.name} ${dist.version} is not offered for ${a} (offered: ${offered.join(", ")})`);
    }
  }
  if (arches.length === 1) return undefined;
  if (compress) fail("invalidField", "an image of several architectures cannot be compressed: its download, a docker-archive, holds one architecture; generate it with compress=false and publish it (the registry gets the image index)");
  return arches;
}

function requireJobs(deps: LibraryDeps): NonNullable<LibraryDeps["jobs"]> {
  if (!deps.jobs) fail("unavailable", "this server does not run jobs");
  return deps.jobs;
}

export function imageOperations(deps: LibraryDeps) {
  const { store } = deps;

  return {
    /** Queues the generation of an image of the template; the answer is the image (its ticket). */
    /**
     * `extensions.architectures` (a JSON extension of the request): the architectures of a
     * multi-architecture image, the template's among them; each must be offered for the
     * template's distribution name and version.
     */
    async generate(owner: UserRow, ref: TemplateRef, value: Image, extensions: { architectures?: unknown } = {}): Promise<Image> {
      const jobs = requireJobs(deps);
      const { bundle, template, dist } = await loadTemplate(deps, owner, ref);
      const format = chosenFormat(value);
      const compress = optionalBoolean(value, "image", "compress") ?? false;
      const entrypointText = optionalString(value, "image", "entrypoint", 8192);
      const entrypoint = entrypointText === undefined || entrypointText.trim() === "" ? undefined : parseEntrypoint(entrypointText);
      const architectures = requestedArchitectures(deps, dist.config, extensions.architectures, compress);
      const rule = parseRestrictionRule(bundle.restrictionRule ?? "");
      for (const d of architectures ? architectures.map((a) => ({ ...dist.config, arch: a })) : [dist.config]) {
        if (!evaluateRule(rule, { Distribution: distributionFacts(d), TargetFormat: { name: format.name, type: format.type } })) {
          fail("restrictionExcluded", `the restriction rule of software bundle ${bundle.name} ("${bundle.restrictionRule}") excludes ${format.name} images on ${distributionLabel(d)}`);
        }
      }
      const artifacts = await store.artifacts.listAll(bundle.id);
      const missing = artifacts.find((a) => a.kind === "file" && !a.blobDigest);
      if (missing) fail("badRequest", `artifact ${missing.name} of software bundle ${bundle.name} has no uploaded file: upload it (POST .../artifacts/${missing.id}/bin/<fileName>) before generating`);
      const { img, job } = await store.transaction(async (tx) => {
        const job = await tx.jobs.create({ kind: "generate", userId: owner.id });
        const img = await tx.images.create({
          userId: owner.id,
          bundleId: bundle.id,
          templateId: template.id,
          distributionId: dist.id,
          jobId: job.id,
          formatId: format.id,
          compress,
          entrypoint: entrypoint ? JSON.stringify(entrypoint) : null,
          name: bundle.name,
          version: bundle.version,
          architectures: architectures ?? null,
        });
        return { img, job };
      });
      jobs.wake();
      return imageWire(deps, owner.login, img, job);
    },

    /**
     * The image; once its file can be downloaded, with a fresh one-time `downloadKey` when
     * `withDownloadKey` (the key changes at every call: it is left out of the ETag).
     */
    async get(owner: UserRow, ref: ImageRef, options: { withDownloadKey: boolean }): Promise<Image> {
      const { image, job } = await loadImage(deps, owner, ref);
      const key =
        options.withDownloadKey && job.state === "complete" && image.compress && image.fileName
          ? await issueDownloadKey(store, owner.id, `image:${image.id}`, deps.limits.downloadKeyTtlMs)
          : undefined;
      return imageWire(deps, owner.login, image, job, key);
    },

    async delete(owner: UserRow, ref: ImageRef, log: OperationLog): Promise<void> {
      const { image } = await loadImage(deps, owner, ref);
      await removeImages(deps, [image], log);
    },

    async status(owner: UserRow, ref: ImageRef): Promise<OpStatus> {
      const { image, job } = await loadImage(deps, owner, ref);
      return imageStatus(owner.login, image, job);
    },

    async cancel(owner: UserRow, ref: ImageRef): Promise<OpStatus> {
      const { image, job } = await loadImage(deps, owner, ref);
      // The page answers 200 (or 204) and documents no error: a finished generation stays as it
      // is, and its status says so (complete or error, not cancelled).
      if (job.state === "complete" || job.state === "error") return imageStatus(owner.login, image, job);
      const after = (await requireJobs(deps).cancel(job.id)) ?? job;
      return imageStatus(owner.login, image, after);
    },

    async packages(owner: UserRow, ref: ImageRef): Promise<ImagePkg[]> {
      const { image, job } = await loadImage(deps, owner, ref);
      if (job.state !== "complete" || !image.packages) {
        fail("notReady", `image ${image.id} is ${job.state === "running" || job.state === "queued" ? "still generating" : `not complete (${job.state})`}: its package list is known once it completes`);
      }
      return image.packages.map((p) => ({
        level: p.level,
        native_from_distribution: p.origin !== "bundle",
        pkg: { name: p.name, version: p.version, arch: p.arch, type: "deb", ...(p.buildDate ? { pkgBuildDate: new Date(p.buildDate) } : {}) },
      }));
    },

    /**
     * The image's build report or SBOM (JSON blobs its generation kept), known once it completes;
     * `404` for an image generated before Kiln kept them.
     */
    async document(owner: UserRow, ref: ImageRef, which: "report" | "sbom"): Promise<Digest> {
      const { image, job } = await loadImage(deps, owner, ref);
      const digest = which === "report" ? image.reportDigest : image.sbomDigest;
      const what = which === "report" ? "build report" : "SBOM";
      if (job.state === "queued" || job.state === "running") fail("notReady", `image ${image.id} is still generating (${job.percentage}%): its ${what} is known once it completes`);
      if (job.state !== "complete") fail("notReady", `image ${image.id} has no ${what}: its generation ${job.state === "cancelled" ? "was cancelled" : "failed"}`);
      if (!digest) fail("notFound", `image ${image.id} was generated before Kiln kept ${which === "report" ? "build reports" : "SBOMs"}: generate it again to get one`);
      return digest as Digest;
    },

    /** What a one-time download key of this image opens (`404` when there is no such image). */
    async downloadTarget(owner: UserRow, ref: ImageRef): Promise<string> {
      const { image } = await loadImage(deps, owner, ref);
      return `image:${image.id}`;
    },

    /** The image's downloadable file, named `fileName` when given. */
    async file(owner: UserRow, ref: ImageRef, fileName: string | undefined): Promise<StoredFile> {
      const { image, job } = await loadImage(deps, owner, ref);
      if (!image.compress) fail("notCompressed", `image ${image.id} was generated without compress=true: only compressed images can be downloaded (generate again with compress=true, or publish it to a registry)`);
      if (job.state === "queued" || job.state === "running") fail("notReady", `image ${image.id} is still generating (${job.percentage}%): download it once its status is complete`);
      if (job.state !== "complete" || !image.fileDigest || !image.fileName || image.fileSize === null) fail("notReady", `image ${image.id} has no file: its generation ${job.state === "cancelled" ? "was cancelled" : "failed"}`);
      if (fileName !== undefined && fileName !== image.fileName) fail("notFound", `image ${image.id} has no file named ${fileName} (its file is ${image.fileName})`);
      return { digest: image.fileDigest as Digest, size: image.fileSize, fileName: image.fileName, lastModified: job.finishedAt ?? image.lastModified, contentType: "application/gzip" };
    },

    /** Every image of the user. */
    async listAll(owner: UserRow): Promise<Image[]> {
      const out: Image[] = [];
      for (const img of await store.images.listByUser(owner.id)) {
        const job = await store.jobs.get(img.jobId);
        if (job) out.push(imageWire(deps, owner.login, img, job));
      }
      return out;
    },

    /** The status of every image of the user. */
    async statuses(owner: UserRow): Promise<OpStatus[]> {
      const out: OpStatus[] = [];
      for (const img of await store.images.listByUser(owner.id)) {
        const job = await store.jobs.get(img.jobId);
        if (job) out.push(imageStatus(owner.login, img, job));
      }
      return out;
    },
  };
}

export type ImageOperations = ReturnType<typeof imageOperations>;
