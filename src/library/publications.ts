/**
 * Publication of generated images to container registries: the publish ticket (a queued job),
 * its status (bytes loaded of bytes total) and cancellation, the published image, its deletion
 * (the tag goes too, where the registry allows it), and the user's publication lists.
 */
import { fail } from "../domain/errors.js";
import { formatById } from "../domain/formats.js";
import { accountCredentials, repositoryOf } from "../jobs/publish.js";
import { RegistryClient } from "../registry/client.js";
import { assertTag, normaliseRepository, parseRegistryEndpoint } from "../registry/names.js";
import type { CloudAccountRow, ImageRow, JobRow, PublicationRow, UserRow } from "../store/types.js";
import type { AnyCredAccount, AnyPublishImage, OpStatus, PublishImageDocker, PublishImageOpenShift } from "../wire/index.js";
import { accountFields, type AccountFields } from "./accounts.js";
import type { LibraryDeps, OperationLog } from "./context.js";
import { requiredString } from "./fields.js";
import { imageWire } from "./images.js";
import { loadImage, loadPublication, type ImageRef, type PublicationRef } from "./load.js";
import { accountWire, statusWire, uris } from "./representations.js";

const TYPES = { docker: "PublishImageDocker", openshift: "PublishImageOpenShift" } as const;
/** What an account of each type is for, as a sentence names it. */
const REGISTRY = { docker: "a Docker registry", openshift: "an OpenShift registry" } as const;


function pubUri(login: string, img: ImageRow, id: number): string {
  return uris.publication(login, img.bundleId, img.templateId, img.id, id);
}

function publicationStatus(login: string, img: ImageRow, pub: PublicationRow, job: JobRow): OpStatus {
  const base = pubUri(login, img, pub.id);
  return statusWire(job, `${base}/status`, base);
}

/** The account a publication names: by value or by reference, its `dbId` or its `uri`. */
function accountIdOf(value: AnyCredAccount | undefined): number | undefined {
  if (!value) return undefined;
  if (value.dbId !== undefined) return value.dbId;
  const m = value.uri === undefined ? null : /accounts\/(\d+)\/?$/.exec(value.uri);
  return m ? Number(m[1]) : undefined;
}

export function publicationOperations(deps: LibraryDeps) {
  const { store } = deps;

  function wire(login: string, img: ImageRow, imgJob: JobRow, pub: PublicationRow, job: JobRow, account: CloudAccountRow | undefined): AnyPublishImage {
    const base = pubUri(login, img, pub.id);
    const image = imageWire(deps, login, img, imgJob);
    const format = formatById(pub.formatId)!;
    return {
      xsiType: TYPES[format.credAccountType],
      dbId: pub.id,
      created: pub.created,
      lastModified: job.lastModified > pub.lastModified ? job.lastModified : pub.lastModified,
      status: publicationStatus(login, img, pub, job),
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
      registeringName: pub.registeringName ?? undefined,
      cloudId: pub.cloudId ?? undefined,
      imageUri: image.uri,
      publishLocation: pub.registeringName ?? undefined,
      namespace: pub.namespace,
      repositoryName: pub.repository,
      tagName: pub.tag,
    };
  }

  /** The user's account with exactly these credentials (same type, URL, login and secret), if any. */
  async function sameAccount(owner: UserRow, f: AccountFields): Promise<CloudAccountRow | undefined> {
    const secret = deps.secrets.decrypt(f.secretEnc!);
    const { items } = await store.cloudAccounts.list(owner.id, {});
    return items.find((a) => a.type === f.type && a.url === f.url && (a.login ?? null) === (f.login ?? null) && deps.secrets.decrypt(a.secretEnc) === secret);
  }

  async function answer(owner: UserRow, img: ImageRow, imgJob: JobRow, pub: PublicationRow, job: JobRow): Promise<AnyPublishImage> {
    return wire(owner.login, img, imgJob, pub, job, await store.cloudAccounts.get(owner.id, pub.accountId));
  }

  async function all(owner: UserRow): Promise<Array<{ img: ImageRow; imgJob: JobRow; pub: PublicationRow; job: JobRow }>> {
    const out = [];
    for (const pub of await store.publications.listByUser(owner.id)) {
      const img = await store.images.getById(pub.imageId);
      const imgJob = img && (await store.jobs.get(img.jobId));
      const job = await store.jobs.get(pub.jobId);
      if (img && imgJob && job) out.push({ img, imgJob, pub, job });
    }
    return out;
  }

  return {
    /** Queues the publication of a complete image with one of the user's cloud accounts. */
    async publish(owner: UserRow, ref: ImageRef, value: AnyPublishImage): Promise<AnyPublishImage> {
      const jobs = deps.jobs;
      if (!jobs) fail("unavailable", "this server does not run jobs");
      const { image: img, job: imgJob } = await loadImage(deps, owner, ref);
      if (imgJob.state !== "complete" || !img.manifestDigest) {
        fail("notReady", `image ${img.id} is ${imgJob.state === "queued" || imgJob.state === "running" ? "still generating" : `not complete (${imgJob.state})`}: only a complete image can be published`);
      }
      if (value.credAccount === undefined) fail("invalidField", "publishImage.credAccount is required: a cloud account by its uri (users/<login>/accounts/<id>), or its type and credentials");
      const accountId = accountIdOf(value.credAccount);
      // By value (UForge's publish example): the credentials of an account that may not exist yet.
      const given = accountId === undefined ? accountFields(deps.secrets, value.credAccount, undefined, { nameOptional: true }) : undefined;
      const account = given ? await sameAccount(owner, given) : await store.cloudAccounts.get(owner.id, accountId!);
      if (!account && accountId !== undefined) fail("invalidField", `no cloud account ${accountId}`);
      const type = account?.type ?? given!.type;
      const url = account?.url ?? given!.url!;
      const format = formatById(img.formatId)!;
      const what = account ? `cloud account ${account.name}` : "publishImage.credAccount";
      if (type !== format.credAccountType) {
        fail("invalidField", `${what} is for ${REGISTRY[type]}; ${format.name} images are published to ${REGISTRY[format.credAccountType]}`);
      }
      if (value.xsiType !== TYPES[type]) fail("invalidField", `publishImage must be of xsi:type ${TYPES[type]} for ${what} (${REGISTRY[type]})${value.xsiType ? `, not ${value.xsiType}` : ""}`);
      const container = value as PublishImageDocker | PublishImageOpenShift;
      const namespace = (container.namespace ?? "").trim();
      const repositoryName = requiredString(container, "publishImage", "repositoryName", 255);
      const tagName = requiredString(container, "publishImage", "tagName", 128);
      const endpoint = parseRegistryEndpoint(url);
      normaliseRepository(endpoint, repositoryOf(namespace, repositoryName));
      assertTag(tagName);
      const { pub, job, used } = await store.transaction(async (tx) => {
        // Credentials given by value that match no account become one, listed with the others
        // (the publication refers to it, and a user can delete it).
        const used =
          account ??
          (await tx.cloudAccounts.create({ userId: owner.id, name: given!.name ?? endpoint.name, type, url, login: given!.login ?? null, secretEnc: given!.secretEnc! }));
        const job = await tx.jobs.create({ kind: "publish", userId: owner.id });
        const pub = await tx.publications.create({
          userId: owner.id,
          imageId: img.id,
          accountId: used.id,
          formatId: img.formatId,
          namespace,
          repository: repositoryName,
          tag: tagName,
          registry: endpoint.name,
          jobId: job.id,
        });
        return { pub, job, used };
      });
      jobs.wake();
      return wire(owner.login, img, imgJob, pub, job, used);
    },

    async get(owner: UserRow, ref: PublicationRef): Promise<AnyPublishImage> {
      const { image, job, pub, pubJob } = await loadPublication(deps, owner, ref);
      return answer(owner, image, job, pub, pubJob);
    },

    async status(owner: UserRow, ref: PublicationRef): Promise<OpStatus> {
      const { image, pub, pubJob } = await loadPublication(deps, owner, ref);
      return publicationStatus(owner.login, image, pub, pubJob);
    },

    async cancel(owner: UserRow, ref: PublicationRef): Promise<OpStatus> {
      const { image, pub, pubJob } = await loadPublication(deps, owner, ref);
      // As for a generation: a finished publication stays as it is, its status says so (200).
      if (pubJob.state === "complete" || pubJob.state === "error") return publicationStatus(owner.login, image, pub, pubJob);
      const after = (await deps.jobs?.cancel(pubJob.id)) ?? pubJob;
      return publicationStatus(owner.login, image, pub, after);
    },

    /**
     * Deletes the publication record; a completed one's tag is deleted from the registry too where
     * the registry allows it. A registry that refuses (or is down) does not keep the record alive:
     * the outcome is logged.
     */
    async delete(owner: UserRow, ref: PublicationRef, log: OperationLog): Promise<void> {
      const { pub, pubJob } = await loadPublication(deps, owner, ref);
      await deps.jobs?.cancel(pubJob.id);
      if (pubJob.state === "complete") {
        const account = await store.cloudAccounts.get(owner.id, pub.accountId);
        if (account) {
          const client = new RegistryClient(account.url, { credentials: accountCredentials(deps.secrets, account), egress: deps.egress });
          try {
            const outcome = await client.deleteTag(repositoryOf(pub.namespace, pub.repository), pub.tag, AbortSignal.timeout(15_000));
            log.info({ publication: pub.id, outcome: outcome.deleted ? outcome.method : outcome.reason }, "registry tag deletion");
          } catch (err) {
            log.warn({ publication: pub.id, err: (err as Error).message }, "could not delete the tag from the registry");
          } finally {
            client.close();
          }
        }
      }
      await store.publications.delete(owner.id, pub.id);
    },

    async listAll(owner: UserRow): Promise<AnyPublishImage[]> {
      const out: AnyPublishImage[] = [];
      for (const p of await all(owner)) out.push(await answer(owner, p.img, p.imgJob, p.pub, p.job));
      return out;
    },

    async statuses(owner: UserRow): Promise<OpStatus[]> {
      return (await all(owner)).map((p) => publicationStatus(owner.login, p.img, p.pub, p.job));
    },
  };
}

export type PublicationOperations = ReturnType<typeof publicationOperations>;
