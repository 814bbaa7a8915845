/**
 * Images generated from templates, and their publications to registries. Each has a job; deleting
 * an image deletes its job and its publications (and their jobs) in one transaction.
 */
import { sql, type Selectable } from "kysely";
import { fromBool, fromInt8, fromMillis, toBool, toMillis } from "../codec.js";
import type { ImagesTable, PublicationsTable } from "../schema.js";
import type { ImagePackage, ImageRepo, ImageRow, PublicationRepo, PublicationRow } from "../types.js";
import { atomically, type RepoContext } from "./context.js";

function imageRow(r: Selectable<ImagesTable>): ImageRow {
  return {
    id: r.id,
    userId: r.user_id,
    bundleId: r.bundle_id,
    templateId: r.template_id,
    distributionId: r.distribution_id,
    jobId: r.job_id,
    formatId: r.format_id,
    compress: fromBool(r.compress),
    entrypoint: r.entrypoint,
    name: r.name,
    version: r.version,
    revision: r.revision,
    fileName: r.file_name,
    fileSize: r.file_size === null ? null : fromInt8(r.file_size),
    fileDigest: r.file_digest,
    manifestDigest: r.manifest_digest,
    installedSize: r.installed_size === null ? null : fromInt8(r.installed_size),
    packages: r.packages === null ? null : (JSON.parse(r.packages) as ImagePackage[]),
    reportDigest: r.report_digest,
    registryReference: r.registry_reference,
    architectures: r.architectures === null ? null : r.architectures.split(","),
    sbomDigest: r.sbom_digest,
    created: fromMillis(r.created),
    lastModified: fromMillis(r.last_modified),
  };
}

function publicationRow(r: Selectable<PublicationsTable>): PublicationRow {
  return {
    id: r.id,
    userId: r.user_id,
    imageId: r.image_id,
    accountId: r.account_id,
    formatId: r.format_id,
    namespace: r.namespace,
    repository: r.repository,
    tag: r.tag,
    registry: r.registry,
    jobId: r.job_id,
    cloudId: r.cloud_id,
    registeringName: r.registering_name,
    created: fromMillis(r.created),
    lastModified: fromMillis(r.last_modified),
  };
}

export function imageRepo(ctx: RepoContext): ImageRepo {
  const { db } = ctx;
  return {
    async create(i) {
      return atomically(ctx, async (tx) => {
        const now = toMillis(ctx.now());
        const last = await tx
          .selectFrom("images")
          .select(sql<number | null>`max(revision)`.as("rev"))
          .where("template_id", "=", i.templateId)
          .executeTakeFirst();
        const row = await tx
          .insertInto("images")
          .values({
            user_id: i.userId,
            bundle_id: i.bundleId,
            template_id: i.templateId,
            distribution_id: i.distributionId,
            job_id: i.jobId,
            format_id: i.formatId,
            compress: toBool(i.compress),
            entrypoint: i.entrypoint,
            name: i.name,
            version: i.version,
            revision: Number(last?.rev ?? 0) + 1,
            file_name: null,
            file_size: null,
            file_digest: null,
            manifest_digest: null,
            installed_size: null,
            packages: null,
            report_digest: null,
            registry_reference: null,
            architectures: i.architectures && i.architectures.length > 0 ? i.architectures.join(",") : null,
            sbom_digest: null,
            created: now,
            last_modified: now,
          })
          .returningAll()
          .executeTakeFirstOrThrow();
        return imageRow(row);
      });
    },

    async get(userId, templateId, id) {
      const row = await db.selectFrom("images").selectAll().where("user_id", "=", userId).where("template_id", "=", templateId).where("id", "=", id).executeTakeFirst();
      return row && imageRow(row);
    },

    async getById(id) {
      const row = await db.selectFrom("images").selectAll().where("id", "=", id).executeTakeFirst();
      return row && imageRow(row);
    },

    async getByJob(jobId) {
      const row = await db.selectFrom("images").selectAll().where("job_id", "=", jobId).executeTakeFirst();
      return row && imageRow(row);
    },

    async listByTemplate(userId, templateId) {
      const rows = await db.selectFrom("images").selectAll().where("user_id", "=", userId).where("template_id", "=", templateId).orderBy("id").execute();
      return rows.map(imageRow);
    },

    async listByUser(userId) {
      const rows = await db.selectFrom("images").selectAll().where("user_id", "=", userId).orderBy("id").execute();
      return rows.map(imageRow);
    },

    async update(id, patch) {
      const set: Record<string, unknown> = { last_modified: toMillis(ctx.now()) };
      if (patch.fileName !== undefined) set.file_name = patch.fileName;
      if (patch.fileSize !== undefined) set.file_size = patch.fileSize;
      if (patch.fileDigest !== undefined) set.file_digest = patch.fileDigest;
      if (patch.manifestDigest !== undefined) set.manifest_digest = patch.manifestDigest;
      if (patch.installedSize !== undefined) set.installed_size = patch.installedSize;
      if (patch.packages !== undefined) set.packages = patch.packages === null ? null : JSON.stringify(patch.packages);
      if (patch.reportDigest !== undefined) set.report_digest = patch.reportDigest;
      if (patch.sbomDigest !== undefined) set.sbom_digest = patch.sbomDigest;
      if (patch.registryReference !== undefined) set.registry_reference = patch.registryReference;
      const row = await db.updateTable("images").set(set).where("id", "=", id).returningAll().executeTakeFirst();
      return row && imageRow(row);
    },

    async delete(userId, id) {
      return atomically(ctx, async (tx) => {
        const image = await tx.selectFrom("images").select(["id", "job_id"]).where("user_id", "=", userId).where("id", "=", id).executeTakeFirst();
        if (!image) return false;
        const pubs = await tx.selectFrom("publications").select("job_id").where("image_id", "=", id).execute();
        await tx.deleteFrom("publications").where("image_id", "=", id).execute();
        await tx.deleteFrom("images").where("id", "=", id).execute();
        const jobIds = [image.job_id, ...pubs.map((p) => p.job_id)];
        await tx.deleteFrom("jobs").where("id", "in", jobIds).execute();
        return true;
      });
    },

    async referencesBlob(digest) {
      const row = await db
        .selectFrom("images")
        .select("id")
        .where((eb) => eb.or([eb("file_digest", "=", digest), eb("manifest_digest", "=", digest), eb("report_digest", "=", digest), eb("sbom_digest", "=", digest)]))
        .limit(1)
        .executeTakeFirst();
      return row !== undefined;
    },

    async referencesTag(reference) {
      const row = await db.selectFrom("images").select("id").where("registry_reference", "=", reference).limit(1).executeTakeFirst();
      return row !== undefined;
    },

    async listGenerating() {
      const rows = await db
        .selectFrom("images")
        .innerJoin("jobs", "jobs.id", "images.job_id")
        .selectAll("images")
        .where("jobs.state", "in", ["queued", "running"])
        .execute();
      return rows.map(imageRow);
    },
  };
}

export function publicationRepo(ctx: RepoContext): PublicationRepo {
  const { db } = ctx;
  return {
    async create(p) {
      const now = toMillis(ctx.now());
      const row = await db
        .insertInto("publications")
        .values({
          user_id: p.userId,
          image_id: p.imageId,
          account_id: p.accountId,
          format_id: p.formatId,
          namespace: p.namespace,
          repository: p.repository,
          tag: p.tag,
          registry: p.registry,
          job_id: p.jobId,
          cloud_id: null,
          registering_name: null,
          created: now,
          last_modified: now,
        })
        .returningAll()
        .executeTakeFirstOrThrow();
      return publicationRow(row);
    },

    async get(userId, imageId, id) {
      const row = await db.selectFrom("publications").selectAll().where("user_id", "=", userId).where("image_id", "=", imageId).where("id", "=", id).executeTakeFirst();
      return row && publicationRow(row);
    },

    async getById(id) {
      const row = await db.selectFrom("publications").selectAll().where("id", "=", id).executeTakeFirst();
      return row && publicationRow(row);
    },

    async getByJob(jobId) {
      const row = await db.selectFrom("publications").selectAll().where("job_id", "=", jobId).executeTakeFirst();
      return row && publicationRow(row);
    },

    async listByImage(userId, imageId) {
      const rows = await db.selectFrom("publications").selectAll().where("user_id", "=", userId).where("image_id", "=", imageId).orderBy("id").execute();
      return rows.map(publicationRow);
    },

    async listByUser(userId) {
      const rows = await db.selectFrom("publications").selectAll().where("user_id", "=", userId).orderBy("id").execute();
      return rows.map(publicationRow);
    },

    async update(id, patch) {
      const set: Record<string, unknown> = { last_modified: toMillis(ctx.now()) };
      if (patch.cloudId !== undefined) set.cloud_id = patch.cloudId;
      if (patch.registeringName !== undefined) set.registering_name = patch.registeringName;
      const row = await db.updateTable("publications").set(set).where("id", "=", id).returningAll().executeTakeFirst();
      return row && publicationRow(row);
    },

    async delete(userId, id) {
      return atomically(ctx, async (tx) => {
        const pub = await tx.selectFrom("publications").select(["id", "job_id"]).where("user_id", "=", userId).where("id", "=", id).executeTakeFirst();
        if (!pub) return false;
        await tx.deleteFrom("publications").where("id", "=", id).execute();
        await tx.deleteFrom("jobs").where("id", "=", pub.job_id).execute();
        return true;
      });
    },

    async pushedRepositories(accountId, registry) {
      const rows = await db
        .selectFrom("publications")
        .innerJoin("jobs", "jobs.id", "publications.job_id")
        .select(["publications.namespace", "publications.repository"])
        .where("publications.account_id", "=", accountId)
        .where("publications.registry", "=", registry)
        .where("jobs.state", "=", "complete")
        .orderBy("publications.id", "desc")
        .execute();
      return [...new Set(rows.map((r) => (r.namespace ? `${r.namespace}/${r.repository}` : r.repository)))];
    },
  };
}
