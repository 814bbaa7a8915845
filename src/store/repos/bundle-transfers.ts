/**
 * A bundle's license and logo files, and the tickets of bundle imports and exports. Every query
 * carries the owner's id (files are reached through their bundle, already checked).
 */
import type { Selectable } from "kysely";
import { fromBool, fromInt8, fromMillis, toBool, toMillis } from "../codec.js";
import type { BundleExportsTable, BundleFilesTable, BundleImportsTable } from "../schema.js";
import type { BundleExportRepo, BundleExportRow, BundleFileKind, BundleFileRepo, BundleFileRow, BundleImportRepo, BundleImportRow, BundleImportState } from "../types.js";
import { atomically, type RepoContext } from "./context.js";

function fileRow(r: Selectable<BundleFilesTable>): BundleFileRow {
  return {
    id: r.id,
    bundleId: r.bundle_id,
    kind: r.kind as BundleFileKind,
    fileName: r.file_name,
    mimeType: r.mime_type,
    blobDigest: r.blob_digest,
    size: fromInt8(r.size),
    md5: r.md5,
    created: fromMillis(r.created),
    lastModified: fromMillis(r.last_modified),
  };
}

export function bundleFileRepo(ctx: RepoContext): BundleFileRepo {
  const { db } = ctx;
  async function listOf(bundleIds: readonly number[]): Promise<BundleFileRow[]> {
    if (bundleIds.length === 0) return [];
    return (await db.selectFrom("bundle_files").selectAll().where("bundle_id", "in", bundleIds).orderBy("bundle_id").orderBy("kind").execute()).map(fileRow);
  }

  return {
    list: (bundleId) => listOf([bundleId]),
    listOf,

    async get(bundleId, kind) {
      const r = await db.selectFrom("bundle_files").selectAll().where("bundle_id", "=", bundleId).where("kind", "=", kind).executeTakeFirst();
      return r && fileRow(r);
    },

    async put(f) {
      return atomically(ctx, async (tx) => {
        const now = toMillis(ctx.now());
        // A new file is a new object (a new id): a link to the one before no longer opens it.
        await tx.deleteFrom("bundle_files").where("bundle_id", "=", f.bundleId).where("kind", "=", f.kind).execute();
        const r = await tx
          .insertInto("bundle_files")
          .values({ bundle_id: f.bundleId, kind: f.kind, file_name: f.fileName, mime_type: f.mimeType, blob_digest: f.blobDigest, size: f.size, md5: f.md5, created: now, last_modified: now })
          .returningAll()
          .executeTakeFirstOrThrow();
        return fileRow(r);
      });
    },

    async delete(bundleId, kind) {
      const r = await db.deleteFrom("bundle_files").where("bundle_id", "=", bundleId).where("kind", "=", kind).executeTakeFirst();
      return r.numDeletedRows > 0n;
    },

    async referencesBlob(digest) {
      return (await db.selectFrom("bundle_files").select("id").where("blob_digest", "=", digest).limit(1).executeTakeFirst()) !== undefined;
    },
  };
}

function importRow(r: Selectable<BundleImportsTable>): BundleImportRow {
  return {
    id: r.id,
    userId: r.user_id,
    imported: fromBool(r.imported),
    state: r.state as BundleImportState,
    message: r.message,
    errorMessage: r.error_message,
    bundleId: r.bundle_id,
    size: r.size === null ? null : fromInt8(r.size),
    sha256: r.sha256,
    md5: r.md5,
    uploadedTime: r.uploaded_time === null ? null : fromMillis(r.uploaded_time),
    created: fromMillis(r.created),
    lastModified: fromMillis(r.last_modified),
  };
}

export function bundleImportRepo(ctx: RepoContext): BundleImportRepo {
  const { db } = ctx;
  return {
    async create(userId, imported) {
      const now = toMillis(ctx.now());
      const r = await db
        .insertInto("bundle_imports")
        .values({ user_id: userId, imported: toBool(imported), state: "waiting", created: now, last_modified: now })
        .returningAll()
        .executeTakeFirstOrThrow();
      return importRow(r);
    },

    async get(userId, id) {
      const r = await db.selectFrom("bundle_imports").selectAll().where("user_id", "=", userId).where("id", "=", id).executeTakeFirst();
      return r && importRow(r);
    },

    async update(userId, id, p) {
      const r = await db
        .updateTable("bundle_imports")
        .set({
          ...(p.state !== undefined ? { state: p.state } : {}),
          ...(p.message !== undefined ? { message: p.message } : {}),
          ...(p.errorMessage !== undefined ? { error_message: p.errorMessage } : {}),
          ...(p.bundleId !== undefined ? { bundle_id: p.bundleId } : {}),
          ...(p.size !== undefined ? { size: p.size } : {}),
          ...(p.sha256 !== undefined ? { sha256: p.sha256 } : {}),
          ...(p.md5 !== undefined ? { md5: p.md5 } : {}),
          ...(p.uploadedTime !== undefined ? { uploaded_time: p.uploadedTime === null ? null : toMillis(p.uploadedTime) } : {}),
          last_modified: toMillis(ctx.now()),
        })
        .where("user_id", "=", userId)
        .where("id", "=", id)
        .returningAll()
        .executeTakeFirst();
      return r && importRow(r);
    },
  };
}

function exportRow(r: Selectable<BundleExportsTable>): BundleExportRow {
  return {
    id: r.id,
    userId: r.user_id,
    bundleId: r.bundle_id,
    format: r.format as BundleExportRow["format"],
    created: fromMillis(r.created),
    lastModified: fromMillis(r.last_modified),
  };
}

export function bundleExportRepo(ctx: RepoContext): BundleExportRepo {
  const { db } = ctx;
  return {
    async create(userId, bundleId, format) {
      const now = toMillis(ctx.now());
      const r = await db
        .insertInto("bundle_exports")
        .values({ user_id: userId, bundle_id: bundleId, format, created: now, last_modified: now })
        .returningAll()
        .executeTakeFirstOrThrow();
      return exportRow(r);
    },

    async get(userId, bundleId, id) {
      const r = await db.selectFrom("bundle_exports").selectAll().where("user_id", "=", userId).where("bundle_id", "=", bundleId).where("id", "=", id).executeTakeFirst();
      return r && exportRow(r);
    },

    async delete(userId, bundleId, id) {
      const r = await db.deleteFrom("bundle_exports").where("user_id", "=", userId).where("bundle_id", "=", bundleId).where("id", "=", id).executeTakeFirst();
      return r.numDeletedRows > 0n;
    },
  };
}
