/**
 * The publication job: pushes a generated image from the blob store to the registry of the
 * user's cloud account, with progress in bytes, and records where it landed.
 */
import type { BlobStore } from "../blobs/blob-store.js";
import { KilnError } from "../domain/errors.js";
import { loadStored } from "../oci/load.js";
import type { EgressPolicy } from "../registry/egress.js";
import { parseRegistryEndpoint } from "../registry/names.js";
import { openShiftCredentials, pushImage } from "../registry/push.js";
import type { Credentials } from "../registry/auth.js";
import type { CloudAccountRow, Store } from "../store/types.js";
import type { JobHandler } from "./runner.js";

/** Opens the secrets sealed at rest (server/secrets.ts's SecretBox). */
export interface SecretOpener {
  decrypt(sealed: string): string;
}

export interface PublicationDeps {
  store: Store;
  blobs: BlobStore;
  secrets: SecretOpener;
  /** Where the registries of users' accounts may be reached (KILN_PUBLISH_ALLOW). */
  egress: EgressPolicy;
}

/** What a registry expects from an account: Basic credentials, or OpenShift's token as a password. */
export function accountCredentials(secrets: SecretOpener, account: CloudAccountRow): Credentials {
  const secret = secrets.decrypt(account.secretEnc);
  return account.type === "openshift" ? openShiftCredentials(secret) : { username: account.login ?? "", password: secret };
}

export function repositoryOf(namespace: string, repository: string): string {
  return namespace ? `${namespace}/${repository}` : repository;
}

const PHASES: Record<string, string> = { blobs: "uploading layers", manifest: "uploading the manifest", done: "published" };

export function publicationHandler(deps: PublicationDeps): JobHandler {
  return async (job, ctx) => {
    const { store } = deps;
    const pub = await store.publications.getByJob(job.id);
    if (!pub) throw new KilnError("notFound", "the publication of this job was deleted");
    const img = await store.images.getById(pub.imageId);
    if (!img?.manifestDigest) throw new KilnError("notFound", "the image of this publication is gone");
    const account = await store.cloudAccounts.get(pub.userId, pub.accountId);
    if (!account) throw new KilnError("notFound", `cloud account ${pub.accountId} was deleted before the image was published`);
    ctx.progress({ percentage: 0, message: `connecting to ${parseRegistryEndpoint(account.url).name}` });
    const image = await loadStored(deps.blobs, img.manifestDigest as `sha256:${string}`, { verifyLayers: false });
    const registry = parseRegistryEndpoint(account.url).name;
    const result = await pushImage(
      image,
      deps.blobs,
      { registry: account.url, repository: repositoryOf(pub.namespace, pub.repository), tag: pub.tag },
      accountCredentials(deps.secrets, account),
      {
        signal: ctx.signal,
        mountFrom: await store.publications.pushedRepositories(account.id, registry),
        clientOptions: { egress: deps.egress },
        onProgress: (p) =>
          ctx.progress({
            percentage: p.bytesTotal > 0 ? (p.bytesLoaded / p.bytesTotal) * (p.phase === "done" ? 100 : 98) : 0,
            message: PHASES[p.phase] ?? p.phase,
            bytesLoaded: p.bytesLoaded,
            bytesTotal: p.bytesTotal,
          }),
      },
    );
    await store.transaction(async (tx) => {
      await ctx.fence(tx);
      await tx.publications.update(pub.id, { cloudId: result.cloudId, registeringName: result.registeringName });
    });
  };
}
