/**
 * Images generated from container templates: the generation ticket, its status (follow and
 * cancel), the image object, its package list, its download, and deletion.
 */
import type { FastifyReply, FastifyRequest } from "fastify";
import { fail } from "../domain/errors.js";
import { parseEntrypoint } from "../domain/entrypoint.js";
import { formatById, formatByName, type ContainerFormat } from "../domain/formats.js";
import { imageFileName, registeringName } from "../domain/image-names.js";
import { evaluateRule, parseRestrictionRule } from "../domain/restriction.js";
import type { ApiContext, Call, HandlerMap } from "../server/app.js";
import type { CatalogEntry } from "../server/distributions.js";
import { authorizeDownload, findDownload, issueDownloadKey, sendFile } from "../server/downloads.js";
import { criteriaPage, parseId, readObject, sendBody, sendCreated, sendList, sendNoContent, sendObject } from "../server/http.js";
import type { BundleRow, ImageRow, JobRow, TemplateRow, UserRow } from "../store/types.js";
import { loadBundle } from "./library.js";
import { distributionFacts, imageFormatWire, targetFormatWire, uris, type Wire } from "./representations.js";
import { optionalBoolean, optionalString } from "./values.js";

type Params = Record<string, string>;

function ownerOf(call: Call): UserRow {
  if (!call.owner) fail("unauthorized", "authentication required");
  return call.owner;
}

const imageUri = (login: string, i: Pick<ImageRow, "bundleId" | "templateId" | "id">): string => `${uris.template(login, i.bundleId, i.templateId)}/images/${i.id}`;

/** An OpStatus for a job. */
export function statusWire(job: JobRow, uri: string, parentUri: string): Wire {
  return {
    dbId: job.id,
    created: job.created,
    lastModified: job.lastModified,
    bytesLoaded: job.bytesLoaded ?? undefined,
    bytesTotal: job.bytesTotal ?? undefined,
    cancelled: job.state === "cancelled",
    complete: job.state === "complete",
    detailedError: job.state === "error",
    detailedErrorMsg: job.state === "error" ? (job.detailedError ?? undefined) : undefined,
    error: job.state === "error",
    errorMessage: job.state === "error" ? (job.errorMessage ?? undefined) : undefined,
    eta: job.state === "running" ? (job.eta ?? undefined) : undefined,
    message: job.message ?? job.state,
    parentUri,
    percentage: job.percentage,
    uri,
  };
}

export interface ImageView {
  wire: Wire;
  jsonExtra: Record<string, unknown>;
  lastModified: Date;
}

export function imageWire(ctx: ApiContext, login: string, img: ImageRow, job: JobRow, downloadKey?: string): ImageView {
  const base = imageUri(login, img);
  const format = formatById(img.formatId)!;
  const dist = ctx.catalog.get(img.distributionId);
  const complete = job.state === "complete";
  const downloadable = complete && img.compress && img.fileName !== null;
  const name = registeringName(img);
  return {
    wire: {
      dbId: img.id,
      created: img.created,
      lastModified: job.lastModified > img.lastModified ? job.lastModified : img.lastModified,
      sha256sum: downloadable && img.fileDigest ? img.fileDigest.slice("sha256:".length) : undefined,
      size: downloadable ? (img.fileSize ?? undefined) : undefined,
      status: statusWire(job, `${base}/status`, base),
      uploaded: downloadable,
      uploadedTime: complete ? (job.finishedAt ?? undefined) : undefined,
      parentUri: uris.template(login, img.bundleId, img.templateId),
      basePublishImagesUri: `${base}/pimages`,
      completeInstalledSize: img.installedSize ?? undefined,
      completeSize: img.fileSize ?? undefined,
      compress: img.compress,
      distributionName: dist ? `${dist.config.name} ${dist.config.version} ${dist.config.arch}` : undefined,
      downloadKey: downloadable ? downloadKey : undefined,
      downloadUri: downloadable ? `${base}/downloads/${encodeURIComponent(img.fileName!)}${downloadKey ? `?downloadId=${downloadKey}` : ""}` : undefined,
      fileExtension: img.compress ? "tar.gz" : undefined,
      fileName: img.compress ? imageFileName(img) : undefined,
      fileSize: downloadable ? (img.fileSize ?? undefined) : undefined,
      format: imageFormatWire(format),
      targetFormat: targetFormatWire(login, format),
      // uforge.xsd has no `registeringName`: XML carries it as `fullName`, JSON under both names.
      fullName: name,
      imageCreated: complete,
      name: img.name,
      pkgsUri: `${base}/pkgs`,
      revision: img.revision,
      statusUri: `${base}/status`,
      uri: base,
      version: img.version ?? undefined,
      entrypoint: img.entrypoint ?? undefined,
    },
    jsonExtra: { registeringName: name },
    lastModified: job.lastModified > img.lastModified ? job.lastModified : img.lastModified,
  };
}

/** The images of a template, as its `images` list shows them. */
export async function templateImages(ctx: ApiContext, user: UserRow, t: TemplateRow): Promise<Wire[]> {
  const images = await ctx.store.images.listByTemplate(user.id, t.id);
  const out: Wire[] = [];
  for (const img of images) {
    const job = await ctx.store.jobs.get(img.jobId);
    if (job) out.push(imageWire(ctx, user.login, img, job).wire);
  }
  return out;
}

/** Cancels and deletes an image; removes its download file when nothing else uses it. */
export async function deleteImage(ctx: ApiContext, img: ImageRow): Promise<void> {
  await ctx.jobs?.cancel(img.jobId);
  const publications = await ctx.store.publications.listByImage(img.userId, img.id);
  for (const p of publications) await ctx.jobs?.cancel(p.jobId);
  await ctx.store.images.delete(img.userId, img.id);
  await ctx.store.downloadKeys.deleteForTarget(`image:${img.id}`);
  if (img.fileDigest) {
    const still = new Set(await ctx.store.images.referencedBlobs());
    if (!still.has(img.fileDigest)) await ctx.blobs.delete(img.fileDigest as `sha256:${string}`).catch(() => undefined);
  }
}

/** Everything that hangs from templates being deleted: their images go first (cancelled, files removed). */
export async function deleteImagesOf(ctx: ApiContext, user: UserRow, templates: TemplateRow[]): Promise<void> {
  for (const t of templates) {
    for (const img of await ctx.store.images.listByTemplate(user.id, t.id)) await deleteImage(ctx, img);
  }
}

function chosenFormat(value: Wire): ContainerFormat {
  const tf = value.targetFormat as Wire | undefined;
  if (!tf || typeof tf !== "object") fail("unknownFormat", "image.targetFormat is required: name a container format (Docker or OpenShift)");
  let format: ContainerFormat | undefined;
  if (typeof tf.name === "string" && tf.name !== "") {
    format = formatByName(tf.name);
    if (!format) fail("unknownFormat", `unknown target format "${tf.name}": Kiln generates Docker and OpenShift images`);
  } else if (typeof tf.dbId === "number") {
    format = formatById(tf.dbId);
  } else if (typeof tf.uri === "string") {
    const m = /targetformats\/(\d+)\/?$/.exec(tf.uri);
    format = m ? formatById(Number(m[1])) : undefined;
  }
  if (!format) fail("unknownFormat", "image.targetFormat must name a container format (Docker or OpenShift) by name, dbId or uri");
  return format;
}

async function loadTemplate(ctx: ApiContext, user: UserRow, bundle: BundleRow, req: FastifyRequest): Promise<{ t: TemplateRow; dist: CatalogEntry }> {
  const tid = parseId((req.params as Params).tid, "tid");
  const t = await ctx.store.templates.get(user.id, bundle.id, tid);
  if (!t) fail("notFound", `no container template ${tid} in software bundle ${bundle.id}`);
  const dist = ctx.catalog.get(t.distributionId);
  if (!dist) fail("notFound", `the distribution of container template ${tid} is no longer offered`);
  return { t, dist };
}

export async function loadImage(ctx: ApiContext, user: UserRow, req: FastifyRequest, param = "tiid"): Promise<{ bundle: BundleRow; t: TemplateRow; img: ImageRow; job: JobRow }> {
  const bundle = await loadBundle(ctx, user, req);
  const { t } = await loadTemplate(ctx, user, bundle, req);
  const id = parseId((req.params as Params)[param], param);
  const img = await ctx.store.images.get(user.id, t.id, id);
  if (!img || img.bundleId !== bundle.id) fail("notFound", `no image ${id} in container template ${t.id}`);
  const job = await ctx.store.jobs.get(img.jobId);
  if (!job) fail("notFound", `no image ${id} in container template ${t.id}`);
  return { bundle, t, img, job };
}

function requireJobs(ctx: ApiContext): NonNullable<ApiContext["jobs"]> {
  if (!ctx.jobs) fail("unavailable", "this server does not run jobs");
  return ctx.jobs;
}

export function imageHandlers(ctx: ApiContext): HandlerMap {
  const sendImage = async (req: FastifyRequest, reply: FastifyReply, user: UserRow, img: ImageRow, job: JobRow, status = 200): Promise<FastifyReply> => {
    const key =
      status === 200 && job.state === "complete" && img.compress && img.fileName
        ? await issueDownloadKey(ctx.store, user.id, `image:${img.id}`, ctx.config.downloadKeyTtlMs)
        : undefined;
    const view = imageWire(ctx, user.login, img, job, key);
    if (status === 201) return sendCreated(req, reply, "image", view.wire, imageUri(user.login, img));
    return sendObject(req, reply, "image", view.wire, { lastModified: view.lastModified, volatile: ["downloadKey", "downloadUri"], jsonExtra: view.jsonExtra });
  };

  return {
    async containerTemplate_generate(req, reply, call) {
      const u = ownerOf(call);
      const jobs = requireJobs(ctx);
      const bundle = await loadBundle(ctx, u, req);
      const { t, dist } = await loadTemplate(ctx, u, bundle, req);
      const { value } = await readObject(req, "image");
      const format = chosenFormat(value);
      const compress = optionalBoolean(value, "image", "compress") ?? false;
      const entrypointText = optionalString(value, "image", "entrypoint", 8192);
      const entrypoint = entrypointText === undefined || entrypointText.trim() === "" ? undefined : parseEntrypoint(entrypointText);
      const rule = parseRestrictionRule(bundle.restrictionRule ?? "");
      if (!evaluateRule(rule, { Distribution: distributionFacts(dist), TargetFormat: { name: format.name, type: format.type } })) {
        fail("restrictionExcluded", `the restriction rule of software bundle ${bundle.name} ("${bundle.restrictionRule}") excludes ${format.name} images on ${dist.config.name} ${dist.config.version} ${dist.config.arch}`);
      }
      const artifacts = await ctx.store.artifacts.listAll(bundle.id);
      const missing = artifacts.find((a) => a.kind === "file" && !a.blobDigest);
      if (missing) fail("badRequest", `artifact ${missing.name} of software bundle ${bundle.name} has no uploaded file: upload it (POST .../artifacts/${missing.id}/bin/<fileName>) before generating`);
      const { img, job } = await ctx.store.transaction(async (tx) => {
        const job = await tx.jobs.create({ kind: "generate", userId: u.id });
        const img = await tx.images.create({
          userId: u.id,
          bundleId: bundle.id,
          templateId: t.id,
          distributionId: dist.id,
          jobId: job.id,
          formatId: format.id,
          compress,
          entrypoint: entrypoint ? JSON.stringify(entrypoint) : null,
          name: bundle.name,
          version: bundle.version,
        });
        return { img, job };
      });
      jobs.wake();
      return sendImage(req, reply, u, img, job, 201);
    },

    async containerTemplateImage_get(req, reply, call) {
      const u = ownerOf(call);
      const { img, job } = await loadImage(ctx, u, req);
      return sendImage(req, reply, u, img, job);
    },

    async containerTemplateImage_delete(req, reply, call) {
      const u = ownerOf(call);
      const { img } = await loadImage(ctx, u, req);
      await deleteImage(ctx, img);
      return sendNoContent(reply);
    },

    async containerTemplateImageGeneration_get(req, reply, call) {
      const u = ownerOf(call);
      const { img, job } = await loadImage(ctx, u, req);
      const base = imageUri(u.login, img);
      return sendBody(req, reply, 200, "status", statusWire(job, `${base}/status`, base));
    },

    async containerTemplateImageGeneration_cancel(req, reply, call) {
      const u = ownerOf(call);
      const { img, job } = await loadImage(ctx, u, req);
      if (job.state === "complete" || job.state === "error") fail("conflict", `image ${img.id} has already ${job.state === "complete" ? "completed" : "failed"}; there is nothing to cancel`);
      const after = (await requireJobs(ctx).cancel(job.id)) ?? job;
      const base = imageUri(u.login, img);
      return sendBody(req, reply, 200, "status", statusWire(after, `${base}/status`, base));
    },

    async containerTemplateImagePkgs_getAll(req, reply, call) {
      const u = ownerOf(call);
      const { img, job } = await loadImage(ctx, u, req);
      if (job.state !== "complete" || !img.packages) fail("notReady", `image ${img.id} is ${job.state === "running" || job.state === "queued" ? "still generating" : `not complete (${job.state})`}: its package list is known once it completes`);
      const pkgs = img.packages.map((p) => ({
        native_from_distribution: p.origin !== "bundle",
        pkg: { name: p.name, version: p.version, arch: p.arch, type: "deb" },
      }));
      return sendList(req, reply, "imagePkgs", { total: pkgs.length, imagePkgs: pkgs });
    },

    async containerTemplateImage_download(req, reply, call) {
      return downloadImage(ctx, req, reply, call, undefined);
    },

    async containerTemplateImage_downloadFile(req, reply, call) {
      return downloadImage(ctx, req, reply, call, (req.params as Params).fileName ?? "");
    },

    async userMachineImage_getAll(req, reply, call) {
      const u = ownerOf(call);
      const wires: Wire[] = [];
      for (const img of await ctx.store.images.listByUser(u.id)) {
        const job = await ctx.store.jobs.get(img.jobId);
        if (job) wires.push(imageWire(ctx, u.login, img, job).wire);
      }
      const page = criteriaPage(req, wires, IMAGE_SORT, (w) => `${w.name as string} ${w.version as string} ${w.fullName as string}`);
      return sendList(req, reply, "images", { total: page.total, images: page.items });
    },

    async userMachineImageStatus_get(req, reply, call) {
      const u = ownerOf(call);
      const statuses: Wire[] = [];
      for (const img of await ctx.store.images.listByUser(u.id)) {
        const job = await ctx.store.jobs.get(img.jobId);
        const base = imageUri(u.login, img);
        if (job) statuses.push(statusWire(job, `${base}/status`, base));
      }
      const page = criteriaPage(req, statuses, STATUS_SORT, (w) => String(w.message ?? ""));
      return sendList(req, reply, "statuses", { total: page.total, statuses: page.items });
    },
  };
}

/** What image and status lists may be ordered by (fields of their wire objects). */
export const IMAGE_SORT = ["dbId", "name", "version", "revision", "created", "lastModified"] as const;
export const STATUS_SORT = ["dbId", "percentage", "created", "lastModified"] as const;

async function downloadImage(ctx: ApiContext, req: FastifyRequest, reply: FastifyReply, call: Call, fileName: string | undefined): Promise<unknown> {
  const uid = (req.params as Params).uid!;
  // Without credentials the path names the owner; the download key must be theirs.
  const { owner, img, job } = await findDownload(req, call.principal, async () => {
    const owner = call.owner ?? (await ctx.store.users.getByLogin(uid));
    if (!owner) fail("notFound", `no user ${uid}`);
    return { owner, ...(await loadImage(ctx, owner, req, "itid")) };
  });
  const target = `image:${img.id}`;
  await authorizeDownload(ctx.store, req, call.principal, owner, target, { consume: false });
  if (!img.compress) fail("notCompressed", `image ${img.id} was generated without compress=true: only compressed images can be downloaded (generate again with compress=true, or publish it to a registry)`);
  if (job.state === "queued" || job.state === "running") fail("notReady", `image ${img.id} is still generating (${job.percentage}%): download it once its status is complete`);
  if (job.state !== "complete" || !img.fileDigest || !img.fileName || img.fileSize === null) fail("notReady", `image ${img.id} has no file: its generation ${job.state === "cancelled" ? "was cancelled" : "failed"}`);
  if (fileName !== undefined && fileName !== img.fileName) fail("notFound", `image ${img.id} has no file named ${fileName} (its file is ${img.fileName})`);
  // Only an answer that sends the file uses up a one-time key.
  return sendFile(
    req,
    reply,
    {
      path: ctx.blobs.path(img.fileDigest as `sha256:${string}`),
      size: img.fileSize,
      sha256: img.fileDigest.slice("sha256:".length),
      fileName: img.fileName,
      lastModified: job.finishedAt ?? img.lastModified,
      contentType: "application/gzip",
    },
    { claim: () => authorizeDownload(ctx.store, req, call.principal, owner, target, { consume: true }) },
  );
}
