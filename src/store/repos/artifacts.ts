/**
 * Artifacts: the file and folder tree of a bundle. Callers check that the bundle is the user's
 * first (BundleRepo.get); here every query is scoped to the bundle, and the schema keeps a tree
 * inside one bundle.
 */
import type { Kysely, Selectable, Updateable } from "kysely";
import { KilnError } from "../../domain/errors.js";
import { fromBool, fromInt8, fromMillis, toBool, toMillis } from "../codec.js";
import type { ArtifactsTable, KilnDatabase } from "../schema.js";
import { isBootType, type BootType } from "../../domain/artifacts.js";
import type { ArtifactKind, ArtifactRepo, ArtifactRow, NewArtifact } from "../types.js";
import { atomically, keepField } from "./context.js";
import type { RepoContext } from "./context.js";

/** Deeper than any real bundle; only there so that corrupt data cannot loop forever. */
const MAX_DEPTH = 4096;

function toKind(kind: string): ArtifactKind {
  if (kind === "file" || kind === "folder") return kind;
  throw new KilnError("internal", `stored artifact kind "${kind}" is unknown`);
}

export function toArtifactRow(r: Selectable<ArtifactsTable>): ArtifactRow {
  return {
    id: r.id,
    bundleId: r.bundle_id,
    parentId: r.parent_id,
    position: r.position,
    kind: toKind(r.kind),
    tag: r.tag,
    name: r.name,
    fullName: r.full_name,
    origName: r.orig_name,
    installLocation: r.install_location,
    extract: fromBool(r.extract),
    install: fromBool(r.install),
    params: r.params,
    version: r.version,
    release: r.release,
    arch: r.arch,
    mimeType: r.mime_type,
    blobDigest: r.blob_digest,
    size: r.size === null ? null : fromInt8(r.size),
    md5: r.md5,
    uploadedTime: r.uploaded_time === null ? null : fromMillis(r.uploaded_time),
    bootOrder: r.boot_order,
    bootType: toBootType(r.boot_type),
    created: fromMillis(r.created),
    lastModified: fromMillis(r.last_modified),
  };
}

function toBootType(t: string | null): BootType | null {
  if (t === null || isBootType(t)) return t;
  throw new KilnError("internal", `stored boot type "${t}" is unknown`);
}

/** The columns of an artifact's own fields (not its place in the tree). */
function toColumns(a: Partial<NewArtifact>): Updateable<ArtifactsTable> {
  const cols: Updateable<ArtifactsTable> = {};
  if (a.kind !== undefined) cols.kind = a.kind;
  if (a.tag !== undefined) cols.tag = a.tag;
  if (a.name !== undefined) cols.name = a.name;
  if (a.fullName !== undefined) cols.full_name = a.fullName;
  if (a.origName !== undefined) cols.orig_name = a.origName;
  if (a.installLocation !== undefined) cols.install_location = a.installLocation;
  if (a.extract !== undefined) cols.extract = toBool(a.extract);
  if (a.install !== undefined) cols.install = toBool(a.install);
  if (a.params !== undefined) cols.params = a.params;
  if (a.version !== undefined) cols.version = a.version;
  if (a.release !== undefined) cols.release = a.release;
  if (a.arch !== undefined) cols.arch = a.arch;
  if (a.mimeType !== undefined) cols.mime_type = a.mimeType;
  if (a.blobDigest !== undefined) cols.blob_digest = a.blobDigest;
  if (a.size !== undefined) cols.size = a.size;
  if (a.md5 !== undefined) cols.md5 = a.md5;
  if (a.uploadedTime !== undefined) cols.uploaded_time = a.uploadedTime === null ? null : toMillis(a.uploadedTime);
  if (a.bootOrder !== undefined) cols.boot_order = a.bootOrder;
  if (a.bootType !== undefined) cols.boot_type = a.bootType;
  return cols;
}

/**
 * Takes the bundle's row lock (a no-op update) so that concurrent changes to one bundle's tree
 * run one after the other: without it two creations could read the same "last position".
 * False if there is no such bundle.
 */
async function lockBundle(tx: Kysely<KilnDatabase>, bundleId: number): Promise<boolean> {
  const r = await tx
    .updateTable("bundles")
    .set((eb) => ({ restriction_id: eb.ref("restriction_id") }))
    .where("id", "=", bundleId)
    .executeTakeFirst();
  return r.numUpdatedRows > 0n;
}

/** 1 + the largest position among the children of `parentId` (the top level when null). */
async function nextPosition(tx: Kysely<KilnDatabase>, bundleId: number, parentId: number | null): Promise<number> {
  const r = await tx
    .selectFrom("artifacts")
    .select((eb) => eb.fn.max("position").as("last"))
    .where("bundle_id", "=", bundleId)
    .where("parent_id", parentId === null ? "is" : "=", parentId)
    .executeTakeFirst();
  return (r?.last == null ? 0 : Number(r.last)) + 1;
}

/**
 * Checks that `parentId` is a folder of the bundle and, when `moving` is given, that it is not
 * that artifact or one of its descendants (which would cut a loop out of the tree).
 */
async function checkParent(tx: Kysely<KilnDatabase>, bundleId: number, parentId: number, moving?: number): Promise<void> {
  let current: number | null = parentId;
  for (let depth = 0; current !== null; depth++) {
    if (depth > MAX_DEPTH) throw new KilnError("internal", `artifact tree of bundle ${bundleId} is too deep`);
    if (current === moving) throw new KilnError("invalidField", "an artifact cannot be moved into itself");
    const row = await tx
      .selectFrom("artifacts")
      .select(["kind", "parent_id"])
      .where("bundle_id", "=", bundleId)
      .where("id", "=", current)
      .executeTakeFirst();
    if (row === undefined) throw new KilnError("invalidId", `the parent artifact ${parentId} is not in this bundle`);
    if (depth === 0 && row.kind !== "folder") throw new KilnError("invalidField", `the parent artifact ${parentId} is not a folder`);
    if (moving === undefined) return;
    current = row.parent_id;
  }
}

export function artifactRepo(ctx: RepoContext): ArtifactRepo {
  const { db } = ctx;
  async function listAllOf(bundleIds: readonly number[]): Promise<ArtifactRow[]> {
    if (bundleIds.length === 0) return [];
    const rows = await db
      .selectFrom("artifacts")
      .selectAll()
      .where("bundle_id", "in", bundleIds)
      .orderBy("bundle_id")
      .orderBy("parent_id", (ob) => ob.asc().nullsFirst())
      .orderBy("position")
      .orderBy("id")
      .execute();
    return rows.map(toArtifactRow);
  }

  return {
    async create(a) {
      return atomically(ctx, async (tx) => {
        if (!(await lockBundle(tx, a.bundleId))) throw new KilnError("invalidId", `no bundle ${a.bundleId}`);
        if (a.parentId !== null) await checkParent(tx, a.bundleId, a.parentId);
        const now = toMillis(ctx.now());
        const row = await tx
          .insertInto("artifacts")
          .values({
            ...toColumns(a),
            kind: a.kind,
            name: a.name,
            extract: toBool(a.extract),
            install: toBool(a.install),
            bundle_id: a.bundleId,
            parent_id: a.parentId,
            position: await nextPosition(tx, a.bundleId, a.parentId),
            created: now,
            last_modified: now,
          })
          .returningAll()
          .executeTakeFirstOrThrow();
        return toArtifactRow(row);
      });
    },

    async get(bundleId, id) {
      const row = await db
        .selectFrom("artifacts")
        .selectAll()
        .where("bundle_id", "=", bundleId)
        .where("id", "=", id)
        .executeTakeFirst();
      return row && toArtifactRow(row);
    },

    listAll: (bundleId) => listAllOf([bundleId]),
    listAllOf,


    async update(bundleId, id, patch) {
      keepField("bundleId", patch.bundleId, bundleId);
      return atomically(ctx, async (tx) => {
        if (!(await lockBundle(tx, bundleId))) return undefined;
        const current = await tx
          .selectFrom("artifacts")
          .select(["kind", "parent_id"])
          .where("bundle_id", "=", bundleId)
          .where("id", "=", id)
          .executeTakeFirst();
        if (current === undefined) return undefined;
        const cols = toColumns(patch);
        if (patch.parentId !== undefined && patch.parentId !== current.parent_id) {
          if (patch.parentId !== null) await checkParent(tx, bundleId, patch.parentId, id);
          // A moved artifact goes last among its new siblings, as if it had just been created there.
          cols.parent_id = patch.parentId;
          cols.position = await nextPosition(tx, bundleId, patch.parentId);
        }
        if (patch.kind === "file" && current.kind === "folder") {
          const child = await tx
            .selectFrom("artifacts")
            .select("id")
            .where("bundle_id", "=", bundleId)
            .where("parent_id", "=", id)
            .executeTakeFirst();
          if (child !== undefined) throw new KilnError("invalidField", "a folder that has contents cannot become a file");
        }
        const row = await tx
          .updateTable("artifacts")
          .set({ ...cols, last_modified: toMillis(ctx.now()) })
          .where("bundle_id", "=", bundleId)
          .where("id", "=", id)
          .returningAll()
          .executeTakeFirstOrThrow();
        return toArtifactRow(row);
      });
    },

    async delete(bundleId, id) {
      // Descendants go with it: the parent foreign key cascades.
      const r = await db.deleteFrom("artifacts").where("bundle_id", "=", bundleId).where("id", "=", id).executeTakeFirst();
      return r.numDeletedRows > 0n;
    },

    async deleteAll(bundleId) {
      // Counted first: SQLite does not count the rows its cascades delete, and a folder deleted
      // before its contents takes them along.
      return atomically(ctx, async (tx) => {
        const counted = await tx
          .selectFrom("artifacts")
          .select((eb) => eb.fn.countAll().as("n"))
          .where("bundle_id", "=", bundleId)
          .executeTakeFirstOrThrow();
        await tx.deleteFrom("artifacts").where("bundle_id", "=", bundleId).execute();
        return Number(counted.n);
      });
    },

    async referencesBlob(digest) {
      const row = await db.selectFrom("artifacts").select("id").where("blob_digest", "=", digest).limit(1).executeTakeFirst();
      return row !== undefined;
    },
  };
}
