/**
 * A bundle's artifacts: files and folders (a folder's files are its sub-artifacts), their
 * fields, their uploaded bytes (streamed into the blob store, referenced atomically with their
 * publication) and their downloads.
 */
import type { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import type { BlobWriter, Digest } from "../blobs/blob-store.js";
import { checkFileName, isArtifactTag, isBootType, parseArtifactParams } from "../domain/artifacts.js";
import { fail, KilnError } from "../domain/errors.js";
import type { ArtifactRepo, ArtifactRow, BundleRow, NewArtifact, UserRow } from "../store/types.js";
import type { AnySoftwareArtifact, BootScript, SoftwareArtifact } from "../wire/index.js";
import { collectBlobs, publishReferenced } from "../store/blob-gc.js";
import type { LibraryDeps, OperationLog } from "./context.js";
import { issueDownloadKey } from "./download-keys.js";
import { optionalBoolean, optionalInstallPath, optionalString, requiredString } from "./fields.js";
import type { StoredFile } from "./images.js";
import { loadArtifact, loadBundle, type ArtifactRef, type BundleRef } from "./load.js";
import { artifactTrees, artifactWire, findInTrees } from "./representations.js";

/** Folders nest at most this deep in a request (real bundles are a few levels deep). */
const MAX_NESTING = 32;

function isBootScript(value: SoftwareArtifact): value is BootScript {
  return value.xsiType === "BootScript";
}

/** The artifact fields a client may set. */
function artifactFields(value: AnySoftwareArtifact, creating: boolean): Partial<NewArtifact> {
  const out: Partial<NewArtifact> = {};
  const name = creating ? requiredString(value, "softwareArtifact", "name", 255) : optionalString(value, "softwareArtifact", "name", 255);
  if (name !== undefined) out.name = checkFileName(name.trim());
  const type = optionalString(value, "softwareArtifact", "type", 16);
  if (type !== undefined) {
    if (!creating) fail("invalidField", "softwareArtifact.type cannot be changed");
    if (type !== "file" && type !== "folder") fail("invalidField", `softwareArtifact.type must be "file" or "folder", got "${type}"`);
    out.kind = type;
  } else if (creating) {
    out.kind = value.subSoftwareArtifacts !== undefined && value.subSoftwareArtifacts.length > 0 ? "folder" : "file";
  }
  // `shortTag` says the same as `tag` in UForge's words (the docs' example sends only it).
  const shortTag = optionalString(value, "softwareArtifact", "shortTag", 32);
  const tag = optionalString(value, "softwareArtifact", "tag", 32) ?? (shortTag === "osPackage" ? "ospkg" : shortTag);
  if (tag !== undefined) {
    if (!isArtifactTag(tag)) fail("invalidField", `softwareArtifact.tag must be softwarefile, ospkg or bootscript, got "${tag}"`);
    out.tag = tag;
  }
  // A BootScript (xsi:type) is the bootscript tag with when and in which order it runs.
  if (isBootScript(value)) {
    if (out.tag !== undefined && out.tag !== "bootscript") fail("invalidField", `a BootScript must be tagged bootscript, not ${out.tag}`);
    out.tag = "bootscript";
    if (value.bootOrder !== undefined) {
      if (value.bootOrder < 0) fail("invalidField", `softwareArtifact.bootOrder must be 0 or more, got ${value.bootOrder}`);
      out.bootOrder = value.bootOrder;
    }
    if (isBootType(value.bootType)) out.bootType = value.bootType;
  } else if (out.tag !== undefined && out.tag !== "bootscript") {
    // No longer a boot script: when and in which order no longer mean anything.
    out.bootOrder = null;
    out.bootType = null;
  }
  for (const f of ["fullName", "version", "release", "arch"] as const) {
    const v = optionalString(value, "softwareArtifact", f, 255);
    if (v !== undefined) out[f] = v;
  }
  const loc = optionalInstallPath(value, "softwareArtifact", "installLocation");
  if (loc !== undefined) out.installLocation = loc;
  const extract = optionalBoolean(value, "softwareArtifact", "extract");
  if (extract !== undefined) out.extract = extract;
  const install = optionalBoolean(value, "softwareArtifact", "install");
  if (install !== undefined) out.install = install;
  const params = optionalString(value, "softwareArtifact", "params");
  if (params !== undefined) out.params = parseArtifactParams(params).text ?? null;
  return out;
}

function checkArtifactRules(a: Pick<ArtifactRow, "kind" | "tag" | "params" | "bootOrder" | "bootType">, nested: boolean): void {
  if (a.kind === "folder" && (a.tag === "ospkg" || a.tag === "bootscript")) fail("invalidField", `a folder cannot be tagged ${a.tag}`);
  if (nested && (a.tag === "ospkg" || a.tag === "bootscript")) fail("invalidField", `an artifact tagged ${a.tag} must be at the first level of the bundle`);
  if (a.params && a.tag && a.tag !== "softwarefile") fail("invalidField", "ownerGroup, rights and symlink (params) apply only to softwarefile artifacts");
  if ((a.bootOrder !== null || a.bootType !== null) && a.tag !== "bootscript") fail("invalidField", "bootOrder and bootType apply only to bootscript artifacts");
}

function newArtifact(bundleId: number, parentId: number | null, fields: Partial<NewArtifact>): NewArtifact {
  return {
    bundleId,
    parentId,
    kind: fields.kind ?? "file",
    tag: fields.tag ?? (fields.kind === "folder" ? "softwarefile" : null),
    name: fields.name!,
    fullName: fields.fullName ?? null,
    origName: null,
    installLocation: fields.installLocation ?? null,
    extract: fields.extract ?? false,
    install: fields.install ?? false,
    params: fields.params ?? null,
    version: fields.version ?? null,
    release: fields.release ?? null,
    arch: fields.arch ?? null,
    mimeType: null,
    blobDigest: null,
    size: null,
    md5: null,
    uploadedTime: null,
    bootOrder: fields.bootOrder ?? null,
    bootType: fields.bootType ?? null,
  };
}

/** A file's bytes, already in the blob store (referenced in the same transaction), as its row records them. */
export type ArtifactBytes = Pick<ArtifactRow, "blobDigest" | "size" | "md5" | "origName" | "mimeType" | "uploadedTime">;

/**
 * Creates an artifact and, for a folder, the children given inline; `bytesOf` gives the bytes
 * of the files that come with theirs (an imported archive's).
 */
export async function createArtifactTree(
  repo: ArtifactRepo,
  bundleId: number,
  parent: ArtifactRow | null,
  value: AnySoftwareArtifact,
  depth: number,
  bytesOf: (value: AnySoftwareArtifact) => ArtifactBytes | undefined = () => undefined,
): Promise<ArtifactRow> {
  if (depth > MAX_NESTING) fail("invalidField", `artifacts are nested more than ${MAX_NESTING} levels deep`);
  const row = newArtifact(bundleId, parent?.id ?? null, artifactFields(value, true));
  checkArtifactRules(row, parent !== null);
  const bytes = bytesOf(value);
  if (bytes && row.kind !== "file") fail("invalidField", `${row.name} is a folder: only files have bytes`);
  const created = await repo.create(bytes ? { ...row, ...bytes } : row);
  const children = value.subSoftwareArtifacts ?? [];
  if (created.kind !== "folder" && children.length > 0) fail("invalidField", `${created.name} has children but is not a folder`);
  for (const c of children) await createArtifactTree(repo, bundleId, created, c, depth + 1, bytesOf);
  return created;
}

/** The id an update names an artifact by: its `dbId`, or the last segment of its `uri`. */
function artifactIdOf(value: SoftwareArtifact): number | undefined {
  if (value.dbId !== undefined) return value.dbId;
  const m = value.uri === undefined ? null : /\/artifacts\/(\d+)$/.exec(value.uri);
  return m ? Number(m[1]) : undefined;
}

async function updateArtifactRow(repo: ArtifactRepo, bundleId: number, a: ArtifactRow, value: AnySoftwareArtifact, recursive: boolean): Promise<ArtifactRow> {
  const patch = artifactFields(value, false);
  checkArtifactRules({ ...a, ...patch }, a.parentId !== null);
  const updated = await repo.update(bundleId, a.id, patch);
  if (!updated) fail("notFound", `no artifact ${a.id}`);
  if (recursive) {
    for (const child of value.subSoftwareArtifacts ?? []) {
      const id = artifactIdOf(child);
      if (id === undefined) continue;
      const c = await repo.get(bundleId, id);
      if (!c || c.parentId !== a.id) fail("notFound", `no artifact ${id} under artifact ${a.id}`);
      await updateArtifactRow(repo, bundleId, c, child, true);
    }
  }
  return updated;
}

/** The artifact and everything below it. */
function descendants(rows: ArtifactRow[], id: number): Set<number> {
  const out = new Set([id]);
  for (let grew = true; grew; ) {
    grew = false;
    for (const r of rows) {
      if (r.parentId !== null && out.has(r.parentId) && !out.has(r.id)) {
        out.add(r.id);
        grew = true;
      }
    }
  }
  return out;
}

/** An upload's bytes as the HTTP layer hands them over. */
export interface Upload {
  fileName: string;
  body: Readable;
  /** Content-Length, when the client said it. */
  declaredSize: number | undefined;
  contentType: string;
  /** Reads the rest of the body and throws it away (for an answer given before its end). */
  discard(): void;
}

/** Runs what may refuse an upload before its bytes are read; a refusal discards the body. */
export async function refusingEarly<T>(upload: Upload, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    upload.discard();
    throw err;
  }
}

/**
 * Streams an upload into a blob writer (at most KILN_MAX_UPLOAD) and seals it: the caller
 * references and publishes it (store/blob-gc.ts). Nothing is stored when the upload fails.
 */
export async function ingestUpload(deps: LibraryDeps, upload: Upload): Promise<BlobWriter> {
  const max = deps.limits.maxUpload;
  if (upload.declaredSize !== undefined && upload.declaredSize > max) {
    upload.discard();
    fail("tooLarge", `the upload (${upload.declaredSize} bytes) exceeds the limit of ${max} bytes (KILN_MAX_UPLOAD)`);
  }
  const writer = deps.blobs.ingest({ maxSize: max });
  try {
    await pipeline(upload.body, writer);
    await writer.seal();
    return writer;
  } catch (err) {
    await writer.cancel();
    // A chunked body that grew past the limit: the 413 must reach a client still sending.
    upload.discard();
    if (err instanceof KilnError) throw err;
    throw new KilnError("badRequest", "the upload was interrupted before it completed; nothing was stored", { cause: err });
  }
}

/** The top-level artifacts of a bundle, as its `softwareArtifactUris` lists them. */
export async function topLevelArtifacts(deps: LibraryDeps, bundle: BundleRow): Promise<ArtifactRow[]> {
  return (await deps.store.artifacts.listAll(bundle.id)).filter((r) => r.parentId === null);
}

export function artifactOperations(deps: LibraryDeps) {
  const { store } = deps;

  /** The artifact as a tree (a folder with its files); with a one-time key in its `binaryUri` when asked. */
  async function answer(owner: UserRow, bundle: BundleRow, a: ArtifactRow, withKey = false): Promise<AnySoftwareArtifact> {
    const rows = await store.artifacts.listAll(bundle.id);
    const tree = findInTrees(artifactTrees(owner.login, bundle.id, rows), a.id) ?? artifactWire(owner.login, bundle.id, a, []);
    if (withKey && a.kind === "file" && a.blobDigest) {
      // A one-time key so that the binary can be fetched without credentials (by a tool or a browser).
      const key = await issueDownloadKey(store, bundle.userId, `artifact:${a.id}`, deps.limits.downloadKeyTtlMs);
      return { ...tree, binaryUri: `${tree.binaryUri!}?downloadId=${key}` };
    }
    return tree;
  }

  async function load(owner: UserRow, ref: ArtifactRef): Promise<{ bundle: BundleRow; artifact: ArtifactRow }> {
    const bundle = await loadBundle(store, owner, ref.msid);
    return { bundle, artifact: await loadArtifact(store, bundle, ref.said) };
  }

  return {
    /** The bundle's artifact trees; only those named `filename` (and their sub-trees) when given. */
    async list(owner: UserRow, ref: BundleRef, filename?: string): Promise<AnySoftwareArtifact[]> {
      const bundle = await loadBundle(store, owner, ref.msid);
      const rows = await store.artifacts.listAll(bundle.id);
      const trees = artifactTrees(owner.login, bundle.id, rows);
      if (!filename) return trees;
      return rows.filter((r) => r.name === filename || r.origName === filename).map((r) => findInTrees(trees, r.id)!);
    },

    /** Adds an artifact (with the sub-artifacts of a folder) at the bundle's first level, or in folder `parent`. */
    async add(owner: UserRow, ref: BundleRef & { parent?: number }, value: AnySoftwareArtifact): Promise<AnySoftwareArtifact> {
      const bundle = await loadBundle(store, owner, ref.msid);
      let parent: ArtifactRow | null = null;
      if (ref.parent !== undefined) {
        parent = await loadArtifact(store, bundle, ref.parent);
        if (parent.kind !== "folder") fail("invalidField", `artifact ${parent.id} (${parent.name}) is a file: only folders have children`);
      }
      const created = await store.transaction((tx) => createArtifactTree(tx.artifacts, bundle.id, parent, value, parent ? 1 : 0));
      return answer(owner, bundle, created);
    },

    async get(owner: UserRow, ref: ArtifactRef): Promise<AnySoftwareArtifact> {
      const { bundle, artifact } = await load(owner, ref);
      return answer(owner, bundle, artifact, true);
    },

    /** Changes an artifact's fields (and, `recursive`, those of the sub-artifacts it lists). */
    async update(owner: UserRow, ref: ArtifactRef, value: AnySoftwareArtifact, recursive: boolean): Promise<AnySoftwareArtifact> {
      const { bundle, artifact } = await load(owner, ref);
      const updated = await store.transaction((tx) => updateArtifactRow(tx.artifacts, bundle.id, artifact, value, recursive));
      return answer(owner, bundle, updated);
    },

    /** Changes several artifacts at once, each named by its dbId or uri; all or none. */
    async updateAll(owner: UserRow, ref: BundleRef, values: AnySoftwareArtifact[], recursive: boolean): Promise<AnySoftwareArtifact[]> {
      const bundle = await loadBundle(store, owner, ref.msid);
      await store.transaction(async (tx) => {
        for (const item of values) {
          const id = artifactIdOf(item);
          if (id === undefined) fail("invalidField", "each softwareArtifact must carry its dbId or uri");
          const a = await tx.artifacts.get(bundle.id, id);
          if (!a) fail("notFound", `no artifact ${id} in software bundle ${bundle.id}`);
          await updateArtifactRow(tx.artifacts, bundle.id, a, item, recursive);
        }
      });
      return artifactTrees(owner.login, bundle.id, await store.artifacts.listAll(bundle.id));
    },

    /**
     * Deletes the artifact and its sub-artifacts, their download keys, then their unshared bytes
     * (a blob the blob store will not delete is left and said in `log`: the artifact is gone).
     */
    async delete(owner: UserRow, ref: ArtifactRef, log: OperationLog): Promise<void> {
      const { bundle, artifact } = await load(owner, ref);
      const rows = await store.artifacts.listAll(bundle.id);
      const gone = rows.filter((r) => descendants(rows, artifact.id).has(r.id));
      await store.transaction(async (tx) => {
        await tx.artifacts.delete(bundle.id, artifact.id);
        for (const r of gone) await tx.downloadKeys.deleteForTarget(`artifact:${r.id}`);
      });
      await collectBlobs(store, deps.blobs, gone.map((r) => r.blobDigest), log);
    },

    async deleteAll(owner: UserRow, ref: BundleRef, log: OperationLog): Promise<void> {
      const bundle = await loadBundle(store, owner, ref.msid);
      const rows = await store.artifacts.listAll(bundle.id);
      await store.transaction(async (tx) => {
        await tx.artifacts.deleteAll(bundle.id);
        for (const r of rows) await tx.downloadKeys.deleteForTarget(`artifact:${r.id}`);
      });
      await collectBlobs(store, deps.blobs, rows.map((r) => r.blobDigest), log);
    },

    /**
     * Stores the bytes of a file artifact, streamed from `body` (at most KILN_MAX_UPLOAD), as
     * `fileName`. The bytes are referenced and published in one step; the previous bytes are
     * collected if nothing else uses them (left, and said in `log`, if the blob store refuses).
     */
    async upload(owner: UserRow, ref: ArtifactRef, upload: Upload, log: OperationLog): Promise<AnySoftwareArtifact> {
      const { bundle, artifact } = await refusingEarly(upload, () => load(owner, ref));
      const fileName = checkFileName(upload.fileName);
      if (artifact.kind !== "file") {
        upload.discard();
        fail("invalidField", `artifact ${artifact.id} (${artifact.name}) is a folder: upload into a file artifact`);
      }
      const writer = await ingestUpload(deps, upload);
      const type = upload.contentType;
      const updated = await publishReferenced(store, writer, async (tx, blob) => {
        const row = await tx.artifacts.update(bundle.id, artifact.id, {
          blobDigest: blob.digest,
          size: blob.size,
          md5: blob.md5,
          origName: fileName,
          mimeType: type && type !== "application/x-www-form-urlencoded" ? type : "application/octet-stream",
          uploadedTime: new Date(),
        });
        if (!row) fail("notFound", `artifact ${artifact.id} was deleted during the upload`);
        return row;
      });
      if (artifact.blobDigest && artifact.blobDigest !== updated.blobDigest) await collectBlobs(store, deps.blobs, [artifact.blobDigest], log);
      return answer(owner, bundle, updated);
    },

    /** What a one-time download key of this artifact opens (`404` when there is no such artifact). */
    async downloadTarget(owner: UserRow, ref: ArtifactRef): Promise<string> {
      const { artifact } = await load(owner, ref);
      return `artifact:${artifact.id}`;
    },

    /** The artifact's uploaded file, named `fileName` when given. */
    async file(owner: UserRow, ref: ArtifactRef, fileName: string | undefined): Promise<StoredFile> {
      const { artifact } = await load(owner, ref);
      if (artifact.kind !== "file" || !artifact.blobDigest || artifact.size === null) fail("notFound", `artifact ${artifact.id} has no uploaded file`);
      const name = artifact.origName ?? artifact.name;
      if (fileName !== undefined && fileName !== name) fail("notFound", `artifact ${artifact.id} has no file named ${fileName}`);
      return {
        digest: artifact.blobDigest as Digest,
        size: artifact.size,
        fileName: name,
        lastModified: artifact.uploadedTime ?? artifact.lastModified,
        contentType: artifact.mimeType ?? "application/octet-stream",
      };
    },
  };
}

export type ArtifactOperations = ReturnType<typeof artifactOperations>;
