/**
 * Publication of generated images to container registries: the publish ticket, its status
 * (bytes loaded of bytes total) and cancellation, the published image, and its deletion (the
 * tag goes too, where the registry allows it).
 */
import type { FastifyReply, FastifyRequest } from "fastify";
import { fail } from "../domain/errors.js";
import { formatById } from "../domain/formats.js";
import { accountCredentials, repositoryOf } from "../jobs/publish.js";
import { RegistryClient } from "../registry/client.js";
import { publicationEgress } from "../registry/egress.js";
import { assertTag, normaliseRepository, parseRegistryEndpoint } from "../registry/names.js";
import type { ApiContext, Call, HandlerMap } from "../server/app.js";
import { criteriaPage, parseId, readObject, sendBody, sendCreated, sendList, sendNoContent, sendObject } from "../server/http.js";
import type { CloudAccountRow, ImageRow, JobRow, PublicationRow, UserRow } from "../store/types.js";
import { IMAGE_SORT, STATUS_SORT, imageWire, loadImage, statusWire } from "./images.js";
import { accountWire, uris, type Wire } from "./representations.js";
import { requiredString } from "./values.js";

type Params = Record<string, string>;

function ownerOf(call: Call): UserRow {
  if (!call.owner) fail("unauthorized", "authentication required");
  return call.owner;
}

const TYPES = { docker: "PublishImageDocker", openshift: "PublishImageOpenShift" } as const;

function pubUri(login: string, img: ImageRow, id: number): string {
  return `${uris.template(login, img.bundleId, img.templateId)}/images/${img.id}/pimages/${id}`;
}

function publicationWire(ctx: ApiContext, login: string, img: ImageRow, imgJob: JobRow, pub: PublicationRow, job: JobRow, account: CloudAccountRow | undefined): { wire: Wire; jsonExtra: Record<string, unknown> } {
  const base = pubUri(login, img, pub.id);
  const image = imageWire(ctx, login, img, imgJob).wire;
  const format = formatById(pub.formatId)!;
  return {
    wire: {
      xsiType: TYPES[format.credAccountType],
      dbId: pub.id,
      created: pub.created,
      lastModified: job.lastModified > pub.lastModified ? job.lastModified : pub.lastModified,
      status: statusWire(job, `${base}/status`, base),
      parentUri: image.uri,
      compress: img.compress,
      credAccount: account ? accountWire(login, account) : { xsiType: format.credAccountType === "docker" ? "CredAccountDocker" : "CredAccountOpenShift", uri: uris.account(login, pub.accountId) },
      distributionName: image.distributionName,
      format: image.format,
      targetFormat: image.targetFormat,
      fullName: pub.registeringName ?? undefined,
      name: img.name,
      revision: img.revision,
      statusUri: `${base}/status`,
      uri: base,
      version: img.version ?? undefined,
      entrypoint: img.entrypoint ?? undefined,
      cloudId: pub.cloudId ?? undefined,
      imageUri: image.uri,
      // uforge.xsd has no `registeringName`: XML carries it as `publishLocation` (and fullName).
      publishLocation: pub.registeringName ?? undefined,
      namespace: pub.namespace,
      repositoryName: pub.repository,
      tagName: pub.tag,
    },
    jsonExtra: pub.registeringName ? { registeringName: pub.registeringName } : {},
  };
}

function accountIdFromUri(value: unknown): number | undefined {
  if (!value || typeof value !== "object") return undefined;
  const v = value as Wire;
  if (typeof v.dbId === "number") return v.dbId;
  if (typeof v.uri === "string") {
    const m = /accounts\/(\d+)\/?$/.exec(v.uri);
    if (m) return Number(m[1]);
  }
  return undefined;
}

export function publishHandlers(ctx: ApiContext): HandlerMap {
  async function loadPublication(user: UserRow, req: FastifyRequest): Promise<{ img: ImageRow; imgJob: JobRow; pub: PublicationRow; job: JobRow }> {
    const { img, job: imgJob } = await loadImage(ctx, user, req);
    const id = parseId((req.params as Params).ptiid, "ptiid");
    const pub = await ctx.store.publications.get(user.id, img.id, id);
    if (!pub) fail("notFound", `no published image ${id} of image ${img.id}`);
    const job = await ctx.store.jobs.get(pub.jobId);
    if (!job) fail("notFound", `no published image ${id} of image ${img.id}`);
    return { img, imgJob, pub, job };
  }
  const send = async (req: FastifyRequest, reply: FastifyReply, user: UserRow, img: ImageRow, imgJob: JobRow, pub: PublicationRow, job: JobRow, status = 200): Promise<FastifyReply> => {
    const view = publicationWire(ctx, user.login, img, imgJob, pub, job, await ctx.store.cloudAccounts.get(user.id, pub.accountId));
    if (status === 201) return sendCreated(req, reply, "publishImage", view.wire, pubUri(user.login, img, pub.id));
    return sendObject(req, reply, "publishImage", view.wire, { jsonExtra: view.jsonExtra });
  };
  const userPublications = async (u: UserRow): Promise<Array<{ img: ImageRow; imgJob: JobRow; pub: PublicationRow; job: JobRow }>> => {
    const out = [];
    for (const pub of await ctx.store.publications.listByUser(u.id)) {
      const img = await ctx.store.images.getById(pub.imageId);
      const imgJob = img && (await ctx.store.jobs.get(img.jobId));
      const job = await ctx.store.jobs.get(pub.jobId);
      if (img && imgJob && job) out.push({ img, imgJob, pub, job });
    }
    return out;
  };

  return {
    async containerTemplateImage_publish(req, reply, call) {
      const u = ownerOf(call);
      if (!ctx.jobs) fail("unavailable", "this server does not run jobs");
      const { img, job: imgJob } = await loadImage(ctx, u, req);
      const { value } = await readObject(req, "publishImage");
      if (imgJob.state !== "complete" || !img.manifestDigest) {
        fail("notReady", `image ${img.id} is ${imgJob.state === "queued" || imgJob.state === "running" ? "still generating" : `not complete (${imgJob.state})`}: only a complete image can be published`);
      }
      const accountId = accountIdFromUri(value.credAccount);
      if (accountId === undefined) fail("invalidField", "publishImage.credAccount must name a cloud account by its uri (users/<login>/accounts/<id>)");
      const account = await ctx.store.cloudAccounts.get(u.id, accountId);
      if (!account) fail("invalidField", `no cloud account ${accountId}`);
      const format = formatById(img.formatId)!;
      if (account.type !== format.credAccountType) {
        fail("invalidField", `cloud account ${account.name} is a ${account.type} account; a ${format.name} image is published with a ${format.credAccountType} account`);
      }
      const xsiType = value.xsiType as string | undefined;
      if (xsiType !== TYPES[account.type]) fail("invalidField", `publishImage must be of xsi:type ${TYPES[account.type]} for a ${account.type} account${xsiType ? `, not ${xsiType}` : ""}`);
      const namespace = (typeof value.namespace === "string" ? value.namespace : "").trim();
      const repositoryName = requiredString(value, "publishImage", "repositoryName", 255);
      const tagName = requiredString(value, "publishImage", "tagName", 128);
      const endpoint = parseRegistryEndpoint(account.url);
      normaliseRepository(endpoint, repositoryOf(namespace, repositoryName));
      assertTag(tagName);
      const { pub, job } = await ctx.store.transaction(async (tx) => {
        const job = await tx.jobs.create({ kind: "publish", userId: u.id });
        const pub = await tx.publications.create({
          userId: u.id,
          imageId: img.id,
          accountId: account.id,
          formatId: img.formatId,
          namespace,
          repository: repositoryName,
          tag: tagName,
          registry: endpoint.name,
          jobId: job.id,
        });
        return { pub, job };
      });
      ctx.jobs.wake();
      return send(req, reply, u, img, imgJob, pub, job, 201);
    },

    async containerTemplateImagePublished_get(req, reply, call) {
      const u = ownerOf(call);
      const { img, imgJob, pub, job } = await loadPublication(u, req);
      return send(req, reply, u, img, imgJob, pub, job);
    },

    async containerTemplateImagePublish_get(req, reply, call) {
      const u = ownerOf(call);
      const { img, pub, job } = await loadPublication(u, req);
      const base = pubUri(u.login, img, pub.id);
      return sendBody(req, reply, 200, "status", statusWire(job, `${base}/status`, base));
    },

    async containerTemplateImagePublish_cancel(req, reply, call) {
      const u = ownerOf(call);
      const { img, pub, job } = await loadPublication(u, req);
      if (job.state === "complete" || job.state === "error") fail("conflict", `publication ${pub.id} has already ${job.state === "complete" ? "completed" : "failed"}; there is nothing to cancel`);
      const after = (await ctx.jobs?.cancel(job.id)) ?? job;
      const base = pubUri(u.login, img, pub.id);
      return sendBody(req, reply, 200, "status", statusWire(after, `${base}/status`, base));
    },

    async containerTemplateImagePublished_delete(req, reply, call) {
      const u = ownerOf(call);
      const { pub, job } = await loadPublication(u, req);
      await ctx.jobs?.cancel(job.id);
      // The tag goes too where the registry allows it; a registry that refuses (or is down) does
      // not keep the record alive — the outcome is logged.
      if (job.state === "complete") {
        const account = await ctx.store.cloudAccounts.get(u.id, pub.accountId);
        if (account) {
          const client = new RegistryClient(account.url, { credentials: accountCredentials(ctx.secrets, account), egress: publicationEgress(ctx.config.publishAllow) });
          try {
            const outcome = await client.deleteTag(repositoryOf(pub.namespace, pub.repository), pub.tag, AbortSignal.timeout(15_000));
            req.log.info({ publication: pub.id, outcome: outcome.deleted ? outcome.method : outcome.reason }, "registry tag deletion");
          } catch (err) {
            req.log.warn({ publication: pub.id, err: (err as Error).message }, "could not delete the tag from the registry");
          } finally {
            client.close();
          }
        }
      }
      await ctx.store.publications.delete(u.id, pub.id);
      return sendNoContent(reply);
    },

    async userMachineImagePublished_getAll(req, reply, call) {
      const u = ownerOf(call);
      const items: Wire[] = [];
      for (const p of await userPublications(u)) {
        items.push(publicationWire(ctx, u.login, p.img, p.imgJob, p.pub, p.job, await ctx.store.cloudAccounts.get(u.id, p.pub.accountId)).wire);
      }
      const page = criteriaPage(req, items, [...IMAGE_SORT, "repositoryName", "tagName"], (w) => `${w.namespace as string}/${w.repositoryName as string}:${w.tagName as string}`);
      return sendList(req, reply, "publishImages", { total: page.total, publishImages: page.items });
    },

    async userMachineImagePublishedStatus_getAll(req, reply, call) {
      const u = ownerOf(call);
      const statuses = (await userPublications(u)).map((p) => {
        const base = pubUri(u.login, p.img, p.pub.id);
        return statusWire(p.job, `${base}/status`, base);
      });
      const page = criteriaPage(req, statuses, STATUS_SORT, (w) => String(w.message ?? ""));
      return sendList(req, reply, "statuses", { total: page.total, statuses: page.items });
    },
  };
}
