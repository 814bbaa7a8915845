/**
 * Bundles (UForge's "my software"): a user's named set of artifacts, with one restriction rule.
 * Every query carries the owner's id.
 */
import type { Kysely, Selectable, Updateable } from "kysely";
import { sql } from "kysely";
import { fromBool, fromInt8, fromMillis, toBool, toMillis } from "../codec.js";
import { pageOf } from "../list.js";
import type { ArtifactsTable, BundlesTable, KilnDatabase } from "../schema.js";
import type { BundleRepo, BundleRow, NewBundle } from "../types.js";
import { atomically, keepField } from "./context.js";
import type { RepoContext } from "./context.js";

function toRow(r: Selectable<BundlesTable>): BundleRow {
  return {
    id: r.id,
    userId: r.user_id,
    name: r.name,
    version: r.version,
    description: r.description,
    release: r.release,
    tag: r.tag,
    license: r.license,
    defaultInstallLocation: r.default_install_location,
    restrictionId: r.restriction_id,
    restrictionRule: r.restriction_rule,
    imported: fromBool(r.imported),
    revision: Number(r.revision),
    created: fromMillis(r.created),
    lastModified: fromMillis(r.last_modified),
  };
}

/** The columns of a bundle's own fields; the owner is never among them (see keepField). */
function toColumns(b: Partial<NewBundle>): Updateable<BundlesTable> {
  const cols: Updateable<BundlesTable> = {};
  if (b.name !== undefined) cols.name = b.name;
  if (b.version !== undefined) cols.version = b.version;
  if (b.description !== undefined) cols.description = b.description;
  if (b.release !== undefined) cols.release = b.release;
  if (b.tag !== undefined) cols.tag = b.tag;
  if (b.license !== undefined) cols.license = b.license;
  if (b.defaultInstallLocation !== undefined) cols.default_install_location = b.defaultInstallLocation;
  if (b.restrictionRule !== undefined) cols.restriction_rule = b.restrictionRule;
  if (b.imported !== undefined) cols.imported = toBool(b.imported);
  return cols;
}

/** A fresh restriction id: restrictions are objects of their own in UForge, with their own ids. */
async function newRestrictionId(tx: Kysely<KilnDatabase>): Promise<number> {
  const r = await tx.insertInto("restriction_ids").defaultValues().returning("id").executeTakeFirstOrThrow();
  return r.id;
}

async function insertBundle(tx: Kysely<KilnDatabase>, userId: number, b: Partial<NewBundle> & { name: string }, now: number): Promise<BundleRow> {
  const row = await tx
    .insertInto("bundles")
    .values({
      ...toColumns(b),
      user_id: userId,
      name: b.name,
      restriction_id: await newRestrictionId(tx),
      created: now,
      last_modified: now,
    })
    .returningAll()
    .executeTakeFirstOrThrow();
  return toRow(row);
}

/**
 * Copies a bundle's artifact tree under `toBundle`, parents before children so that each copy's
 * parent already has its new id. Walks the tree rather than sorting by id: an artifact moved
 * into a folder created after it has a smaller id than its parent.
 */
async function copyArtifacts(tx: Kysely<KilnDatabase>, fromBundle: number, toBundle: number, now: number): Promise<void> {
  const rows = await tx.selectFrom("artifacts").selectAll().where("bundle_id", "=", fromBundle).execute();
  const children = new Map<number | null, Array<Selectable<ArtifactsTable>>>();
  for (const r of rows) {
    const siblings = children.get(r.parent_id) ?? [];
    siblings.push(r);
    children.set(r.parent_id, siblings);
  }
  const pending: Array<{ oldParent: number | null; newParent: number | null }> = [{ oldParent: null, newParent: null }];
  for (let next = pending.pop(); next !== undefined; next = pending.pop()) {
    for (const r of children.get(next.oldParent) ?? []) {
      const { id: oldId, bundle_id: _bundle, parent_id: _parent, created: _c, last_modified: _m, size, uploaded_time, ...fields } = r;
      const copy = await tx
        .insertInto("artifacts")
        .values({
          ...fields,
          size: size === null ? null : fromInt8(size),
          uploaded_time: uploaded_time === null ? null : fromInt8(uploaded_time),
          extract: toBool(fromBool(fields.extract)),
          install: toBool(fromBool(fields.install)),
          bundle_id: toBundle,
          parent_id: next.newParent,
          created: now,
          last_modified: now,
        })
        .returning("id")
        .executeTakeFirstOrThrow();
      if (children.has(oldId)) pending.push({ oldParent: oldId, newParent: copy.id });
    }
  }
}

export function bundleRepo(ctx: RepoContext): BundleRepo {
  const { db } = ctx;
  const owned = (q: Kysely<KilnDatabase>, userId: number, id: number) =>
    q.selectFrom("bundles").selectAll().where("user_id", "=", userId).where("id", "=", id);

  return {
    async create(b) {
      return atomically(ctx, (tx) => insertBundle(tx, b.userId, b, toMillis(ctx.now())));
    },

    async get(userId, id) {
      const row = await owned(db, userId, id).executeTakeFirst();
      return row && toRow(row);
    },

    async list(userId, c) {
      return pageOf("bundles", c, db.selectFrom("bundles").where("user_id", "=", userId), (q) => q.selectAll(), toRow);
    },

    async update(userId, id, patch) {
      keepField("userId", patch.userId, userId);
      const row = await db
        .updateTable("bundles")
        .set({ ...toColumns(patch), revision: sql`revision + 1`, last_modified: toMillis(ctx.now()) })
        .where("user_id", "=", userId)
        .where("id", "=", id)
        .returningAll()
        .executeTakeFirst();
      return row && toRow(row);
    },

    async setRestriction(userId, bundleId, restrictionId, rule) {
      const row = await db
        .updateTable("bundles")
        .set({ restriction_rule: rule, revision: sql`revision + 1`, last_modified: toMillis(ctx.now()) })
        .where("user_id", "=", userId)
        .where("id", "=", bundleId)
        .where("restriction_id", "=", restrictionId)
        .returningAll()
        .executeTakeFirst();
      return row && toRow(row);
    },

    async clone(userId, id, overrides) {
      keepField("userId", overrides.userId, userId);
      return atomically(ctx, async (tx) => {
        const source = await owned(tx, userId, id).executeTakeFirst();
        if (source === undefined) return undefined;
        const now = toMillis(ctx.now());
        const { id: _id, userId: _user, restrictionId: _r, created: _c, lastModified: _m, ...fields } = toRow(source);
        // An override given as undefined means "not overridden", not "cleared".
        const given = Object.fromEntries(Object.entries(overrides).filter(([, v]) => v !== undefined)) as Partial<NewBundle>;
        const copy = await insertBundle(tx, userId, { ...fields, ...given }, now);
        await copyArtifacts(tx, id, copy.id, now);
        // The license and logo go with the copy (their bytes are shared, as the artifacts' are).
        const files = await tx.selectFrom("bundle_files").selectAll().where("bundle_id", "=", id).execute();
        for (const { id: _fid, bundle_id: _b, created: _fc, last_modified: _fm, size, ...f } of files) {
          await tx.insertInto("bundle_files").values({ ...f, size: fromInt8(size), bundle_id: copy.id, created: now, last_modified: now }).execute();
        }
        return copy;
      });
    },

    async delete(userId, id) {
      // Artifacts and templates go with it: their foreign keys cascade.
      const r = await db.deleteFrom("bundles").where("user_id", "=", userId).where("id", "=", id).executeTakeFirst();
      return r.numDeletedRows > 0n;
    },
  };
}
