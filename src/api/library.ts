/**
 * The software library: bundles (`mySoftware`), their artifacts (files and folders, with the
 * bytes uploaded and downloaded), and their restriction rules.
 */
import type { FastifyRequest } from "fastify";
import { isArtifactTag, isBootType } from "../domain/artifacts.js";
import { fail, KilnError } from "../domain/errors.js";
import { allowsDistribution, parseRestrictionRule } from "../domain/restriction.js";
import { CONTAINER_FORMATS, formatFacts } from "../domain/formats.js";
import type { ApiContext, Call, HandlerMap } from "../server/app.js";
import { authorizeDownload, findDownload, issueDownloadKey, sendFile } from "../server/downloads.js";
import { criteriaPage, detachedBody, discardBody, parseBooleanParam, parseCriteria, parseId, readObject, sendCreated, sendList, sendNoContent, sendObject } from "../server/http.js";
import { SORTABLE_FIELDS } from "../store/store.js";
import { deleteImagesOf } from "./images.js";
import type { ArtifactRepo, ArtifactRow, BundleRow, NewArtifact, NewBundle, UserRow } from "../store/types.js";
import { artifactTrees, artifactWire, bundleWire, distributionFacts, distributionWire, restrictionWire, uris, type Wire } from "./representations.js";
import { checkFileName, optionalBoolean, optionalInstallPath, optionalString, parseArtifactParams, requiredString } from "./values.js";

type Params = Record<string, string>;

function ownerOf(call: Call): UserRow {
  if (!call.owner) fail("unauthorized", "authentication required");
  return call.owner;
}

export async function loadBundle(ctx: ApiContext, user: UserRow, req: FastifyRequest): Promise<BundleRow> {
  const msid = parseId((req.params as Params).msid, "msid");
  const bundle = await ctx.store.bundles.get(user.id, msid);
  if (!bundle) fail("notFound", `no software bundle ${msid}`);
  return bundle;
}

async function loadArtifact(ctx: ApiContext, bundle: BundleRow, req: FastifyRequest): Promise<ArtifactRow> {
  const said = parseId((req.params as Params).said, "said");
  const a = await ctx.store.artifacts.get(bundle.id, said);
  if (!a) fail("notFound", `no artifact ${said} in software bundle ${bundle.id}`);
  return a;
}

/** The bundle fields a client may set (create, update, clone). */
function bundleFields(value: Wire, requireName: boolean): Partial<NewBundle> {
  const out: Partial<NewBundle> = {};
  const name = requireName ? requiredString(value, "mySoftware", "name", 255) : optionalString(value, "mySoftware", "name", 255);
  if (name !== undefined) {
    if (name.trim() === "") fail("invalidField", "mySoftware.name must not be empty");
    out.name = name.trim();
  }
  for (const f of ["version", "description", "release", "tag"] as const) {
    const v = optionalString(value, "mySoftware", f);
    if (v !== undefined) out[f] = v;
  }
  const loc = optionalInstallPath(value, "mySoftware", "defaultInstallLocation");
  if (loc !== undefined) out.defaultInstallLocation = loc;
  const license = value.license as Wire | undefined;
  if (license && typeof license === "object") {
    const n = optionalString(license, "mySoftware.license", "name", 255);
    if (n !== undefined) out.license = n;
  }
  const restriction = value.bundleRestriction as Wire | undefined;
  if (restriction && typeof restriction === "object") {
    const rule = optionalString(restriction, "mySoftware.bundleRestriction", "restrictionRule");
    if (rule !== undefined) {
      parseRestrictionRule(rule);
      out.restrictionRule = rule.trim() === "" ? null : rule;
    }
  }
  return out;
}

/** The artifact fields a client may set. */
function artifactFields(value: Wire, creating: boolean): Partial<NewArtifact> {
  const out: Partial<NewArtifact> = {};
  const name = creating ? requiredString(value, "softwareArtifact", "name", 255) : optionalString(value, "softwareArtifact", "name", 255);
  if (name !== undefined) out.name = checkFileName(name.trim());
  const type = optionalString(value, "softwareArtifact", "type", 16);
  if (type !== undefined) {
    if (!creating) fail("invalidField", "softwareArtifact.type cannot be changed");
    if (type !== "file" && type !== "folder") fail("invalidField", `softwareArtifact.type must be "file" or "folder", got "${type}"`);
    out.kind = type;
  } else if (creating) {
    out.kind = Array.isArray(value.subSoftwareArtifacts) && value.subSoftwareArtifacts.length > 0 ? "folder" : "file";
  }
  const tag = optionalString(value, "softwareArtifact", "tag", 32);
  if (tag !== undefined) {
    if (!isArtifactTag(tag)) fail("invalidField", `softwareArtifact.tag must be softwarefile, ospkg or bootscript, got "${tag}"`);
    out.tag = tag;
  }
  // A BootScript (xsi:type) is the bootscript tag with when and in which order it runs.
  if (value.xsiType === "BootScript") {
    if (out.tag !== undefined && out.tag !== "bootscript") fail("invalidField", `a BootScript must be tagged bootscript, not ${out.tag}`);
    out.tag = "bootscript";
    if (typeof value.bootOrder === "number") {
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

function checkArtifactRules(a: Pick<ArtifactRow, "kind" | "tag" | "params" | "extract" | "install" | "bootOrder" | "bootType">, nested: boolean): void {
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

/** Creates an artifact and, for a folder, the children given inline. */
async function createArtifactTree(repo: ArtifactRepo, bundleId: number, parent: ArtifactRow | null, value: Wire, depth: number): Promise<ArtifactRow> {
  if (depth > 32) fail("invalidField", "artifacts are nested more than 32 levels deep");
  const fields = artifactFields(value, true);
  const row = newArtifact(bundleId, parent?.id ?? null, fields);
  checkArtifactRules(row, parent !== null);
  const created = await repo.create(row);
  const children = value.subSoftwareArtifacts;
  if (Array.isArray(children)) {
    if (created.kind !== "folder" && children.length > 0) fail("invalidField", `${created.name} has children but is not a folder`);
    for (const c of children) await createArtifactTree(repo, bundleId, created, c as Wire, depth + 1);
  }
  return created;
}

async function bundleAnswer(ctx: ApiContext, login: string, b: BundleRow): Promise<Wire> {
  const rows = await ctx.store.artifacts.listAll(b.id);
  return bundleWire(
    login,
    b,
    rows.filter((r) => r.parentId === null).map((r) => uris.artifact(login, b.id, r.id)),
  );
}

async function artifactAnswer(ctx: ApiContext, login: string, bundle: BundleRow, a: ArtifactRow, withKey: boolean): Promise<Wire> {
  const rows = await ctx.store.artifacts.listAll(bundle.id);
  const tree = findInTrees(artifactTrees(login, bundle.id, rows), a.id) ?? artifactWire(login, bundle.id, a, []);
  if (withKey && a.kind === "file" && a.blobDigest) {
    // A one-time key so that the binary can be fetched without credentials (by a tool or a browser).
    const key = await issueDownloadKey(ctx.store, bundle.userId, `artifact:${a.id}`, ctx.config.downloadKeyTtlMs);
    return { ...tree, binaryUri: `${tree.binaryUri as string}?downloadId=${key}` };
  }
  return tree;
}

function findInTrees(trees: Wire[], id: number): Wire | undefined {
  for (const t of trees) {
    if (t.dbId === id) return t;
    const sub = t.subSoftwareArtifacts;
    if (Array.isArray(sub)) {
      const found = findInTrees(sub as Wire[], id);
      if (found) return found;
    }
  }
  return undefined;
}

/** Blobs no longer referenced by anything are removed (best effort, after deletes). */
async function collectBlobs(ctx: ApiContext, digests: Array<string | null>): Promise<void> {
  const candidates = digests.filter((d): d is string => !!d);
  if (candidates.length === 0) return;
  const referenced = new Set([...(await ctx.store.artifacts.referencedBlobs()), ...(await ctx.store.images.referencedBlobs())]);
  for (const d of new Set(candidates)) {
    if (!referenced.has(d) && /^sha256:[0-9a-f]{64}$/.test(d)) await ctx.blobs.delete(d as `sha256:${string}`).catch(() => undefined);
  }
}

export function libraryHandlers(ctx: ApiContext): HandlerMap {
  return {
    async mySoftware_getAll(req, reply, call) {
      const u = ownerOf(call);
      const q = req.query as Record<string, string>;
      const criteria = parseCriteria(q, SORTABLE_FIELDS.bundles);
      let page = await ctx.store.bundles.list(u.id, criteria);
      if (q.distribId !== undefined && q.distribId !== "") {
        // Only the bundles whose restriction rule allows this distribution.
        const id = parseId(q.distribId, "distribId");
        const dist = ctx.catalog.get(id);
        if (!dist) fail("notFound", `no distribution ${id}`);
        const all = await ctx.store.bundles.list(u.id, { ...criteria, count: undefined, offset: undefined });
        const formats = CONTAINER_FORMATS.map(formatFacts);
        const allowed = all.items.filter((b) => allowsDistribution(parseRestrictionRule(b.restrictionRule ?? ""), distributionFacts(dist), formats));
        const offset = criteria.offset ?? 0;
        page = { total: allowed.length, items: allowed.slice(offset, criteria.count === undefined ? undefined : offset + criteria.count) };
      }
      const items = await Promise.all(page.items.map((b) => bundleAnswer(ctx, u.login, b)));
      return sendList(req, reply, "mySoftwareList", { total: page.total, mySoftwareList: items });
    },

    async mySoftware_create(req, reply, call) {
      const u = ownerOf(call);
      const { value } = await readObject(req, "mySoftware");
      const f = bundleFields(value, true);
      const created = await ctx.store.bundles.create({
          userId: u.id,
          name: f.name!,
          version: f.version ?? null,
          description: f.description ?? null,
          release: f.release ?? null,
          tag: f.tag ?? null,
          license: f.license ?? null,
          defaultInstallLocation: f.defaultInstallLocation ?? null,
          restrictionRule: f.restrictionRule ?? null,
      });
      return sendCreated(req, reply, "mySoftware", await bundleAnswer(ctx, u.login, created), uris.bundle(u.login, created.id));
    },

    async mySoftware_get(req, reply, call) {
      const u = ownerOf(call);
      const b = await loadBundle(ctx, u, req);
      return sendObject(req, reply, "mySoftware", await bundleAnswer(ctx, u.login, b));
    },

    async mySoftware_update(req, reply, call) {
      const u = ownerOf(call);
      const b = await loadBundle(ctx, u, req);
      const { value } = await readObject(req, "mySoftware");
      const updated = await ctx.store.bundles.update(u.id, b.id, bundleFields(value, false));
      if (!updated) fail("notFound", `no software bundle ${b.id}`);
      return sendObject(req, reply, "mySoftware", await bundleAnswer(ctx, u.login, updated));
    },

    async mySoftware_clone(req, reply, call) {
      const u = ownerOf(call);
      const b = await loadBundle(ctx, u, req);
      const { value } = await readObject(req, "mySoftware");
      const overrides = bundleFields(value, false);
      if (overrides.name === undefined) overrides.name = `${b.name} (copy)`;
      const clone = await ctx.store.bundles.clone(u.id, b.id, overrides);
      if (!clone) fail("notFound", `no software bundle ${b.id}`);
      return sendCreated(req, reply, "mySoftware", await bundleAnswer(ctx, u.login, clone), uris.bundle(u.login, clone.id));
    },

    async mySoftware_delete(req, reply, call) {
      const u = ownerOf(call);
      const b = await loadBundle(ctx, u, req);
      const rows = await ctx.store.artifacts.listAll(b.id);
      const templates = await ctx.store.templates.list(u.id, b.id, {});
      await deleteImagesOf(ctx, u, templates.items);
      await ctx.store.bundles.delete(u.id, b.id);
      await collectBlobs(ctx, rows.map((r) => r.blobDigest));
      return sendNoContent(reply);
    },

    async mySoftwareRestriction_update(req, reply, call) {
      const u = ownerOf(call);
      const b = await loadBundle(ctx, u, req);
      const brid = parseId((req.params as Params).brid, "brid");
      const { value } = await readObject(req, "bundleRestriction");
      const rule = optionalString(value, "bundleRestriction", "restrictionRule") ?? "";
      parseRestrictionRule(rule);
      const updated = await ctx.store.bundles.setRestriction(u.id, b.id, brid, rule.trim() === "" ? null : rule);
      if (!updated) fail("notFound", `no restriction ${brid} on software bundle ${b.id}`);
      return sendObject(req, reply, "bundleRestriction", restrictionWire(u.login, updated));
    },

    async mySoftwareRestrictionOS_getAll(req, reply, call) {
      const u = ownerOf(call);
      const b = await loadBundle(ctx, u, req);
      const brid = parseId((req.params as Params).brid, "brid");
      if (brid !== b.restrictionId) fail("notFound", `no restriction ${brid} on software bundle ${b.id}`);
      const compatible = parseBooleanParam(req.query as Record<string, string>, "compatibility") ?? true;
      const rule = parseRestrictionRule(b.restrictionRule ?? "");
      const formats = CONTAINER_FORMATS.map(formatFacts);
      const list = ctx.catalog.list().filter((d) => allowsDistribution(rule, distributionFacts(d), formats) === compatible);
      return sendList(req, reply, "distributions", { total: list.length, distributions: list.map(distributionWire) });
    },

    async mySoftwareRestrictionOS_evaluate(req, reply, call) {
      const u = ownerOf(call);
      const b = await loadBundle(ctx, u, req);
      const brid = parseId((req.params as Params).brid, "brid");
      if (brid !== b.restrictionId) fail("notFound", `no restriction ${brid} on software bundle ${b.id}`);
      const { value } = await readObject(req, "bundleRestriction");
      const rule = parseRestrictionRule(optionalString(value, "bundleRestriction", "restrictionRule") ?? "");
      const formats = CONTAINER_FORMATS.map(formatFacts);
      const list = ctx.catalog.list().filter((d) => allowsDistribution(rule, distributionFacts(d), formats));
      return sendList(req, reply, "distributions", { total: list.length, distributions: list.map(distributionWire) });
    },

    async mySoftwareArtifact_getAll(req, reply, call) {
      const u = ownerOf(call);
      const b = await loadBundle(ctx, u, req);
      const rows = await ctx.store.artifacts.listAll(b.id);
      let trees = artifactTrees(u.login, b.id, rows);
      const filename = (req.query as Record<string, string>).filename;
      if (filename) trees = rows.filter((r) => r.name === filename || r.origName === filename).map((r) => findInTrees(trees, r.id)!);
      const page = criteriaPage(req, trees, ["dbId", "name", "created", "lastModified", "size"], (w) => String(w.name ?? ""));
      return sendList(req, reply, "softwareArtifacts", { total: page.total, softwareArtifacts: page.items });
    },

    async mySoftwareArtifact_add(req, reply, call) {
      const u = ownerOf(call);
      const b = await loadBundle(ctx, u, req);
      const { value } = await readObject(req, "softwareArtifact");
      const created = await ctx.store.transaction(async (tx) => createArtifactTree(tx.artifacts, b.id, null, value, 0));
      return sendCreated(req, reply, "softwareArtifact", await artifactAnswer(ctx, u.login, b, created, false), uris.artifact(u.login, b.id, created.id));
    },

    async mySoftwareArtifact_addChild(req, reply, call) {
      const u = ownerOf(call);
      const b = await loadBundle(ctx, u, req);
      const parent = await loadArtifact(ctx, b, req);
      if (parent.kind !== "folder") fail("invalidField", `artifact ${parent.id} (${parent.name}) is a file: only folders have children`);
      const { value } = await readObject(req, "softwareArtifact");
      const created = await ctx.store.transaction(async (tx) => createArtifactTree(tx.artifacts, b.id, parent, value, 1));
      return sendCreated(req, reply, "softwareArtifact", await artifactAnswer(ctx, u.login, b, created, false), uris.artifact(u.login, b.id, created.id));
    },

    async mySoftwareArtifact_get(req, reply, call) {
      const u = ownerOf(call);
      const b = await loadBundle(ctx, u, req);
      const a = await loadArtifact(ctx, b, req);
      return sendObject(req, reply, "softwareArtifact", await artifactAnswer(ctx, u.login, b, a, true));
    },

    async mySoftwareArtifact_update(req, reply, call) {
      const u = ownerOf(call);
      const b = await loadBundle(ctx, u, req);
      const a = await loadArtifact(ctx, b, req);
      const { value } = await readObject(req, "softwareArtifact");
      const recursive = parseBooleanParam(req.query as Record<string, string>, "recursive") === true;
      const updated = await ctx.store.transaction(async (tx) => updateArtifact(tx.artifacts, b.id, a, value, recursive));
      return sendObject(req, reply, "softwareArtifact", await artifactAnswer(ctx, u.login, b, updated, false));
    },

    async mySoftwareArtifact_updateAll(req, reply, call) {
      const u = ownerOf(call);
      const b = await loadBundle(ctx, u, req);
      const { value } = await readObject(req, "softwareArtifacts");
      const recursive = parseBooleanParam(req.query as Record<string, string>, "recursive") === true;
      const list = (value.softwareArtifacts as Wire[] | undefined) ?? [];
      await ctx.store.transaction(async (tx) => {
        for (const item of list) {
          const id = typeof item.dbId === "number" ? item.dbId : idFromUri(item.uri);
          if (id === undefined) fail("invalidField", "each softwareArtifact must carry its dbId or uri");
          const a = await tx.artifacts.get(b.id, id);
          if (!a) fail("notFound", `no artifact ${id} in software bundle ${b.id}`);
          await updateArtifact(tx.artifacts, b.id, a, item, recursive);
        }
      });
      const rows = await ctx.store.artifacts.listAll(b.id);
      const trees = artifactTrees(u.login, b.id, rows);
      return sendList(req, reply, "softwareArtifacts", { total: trees.length, softwareArtifacts: trees });
    },

    async mySoftwareArtifact_delete(req, reply, call) {
      const u = ownerOf(call);
      const b = await loadBundle(ctx, u, req);
      const a = await loadArtifact(ctx, b, req);
      const rows = await ctx.store.artifacts.listAll(b.id);
      await ctx.store.artifacts.delete(b.id, a.id);
      await ctx.store.downloadKeys.deleteForTarget(`artifact:${a.id}`);
      const gone = descendants(rows, a.id);
      await collectBlobs(ctx, rows.filter((r) => gone.has(r.id)).map((r) => r.blobDigest));
      return sendNoContent(reply);
    },

    async mySoftwareArtifact_deleteAll(req, reply, call) {
      const u = ownerOf(call);
      const b = await loadBundle(ctx, u, req);
      const rows = await ctx.store.artifacts.listAll(b.id);
      await ctx.store.artifacts.deleteAll(b.id);
      await collectBlobs(ctx, rows.map((r) => r.blobDigest));
      return sendNoContent(reply);
    },

    async mySoftwareArtifact_upload(req, reply, call) {
      const u = ownerOf(call);
      const b = await loadBundle(ctx, u, req);
      const a = await loadArtifact(ctx, b, req);
      const fileName = checkFileName(decodeParam((req.params as Params).fileName));
      if (a.kind !== "file") fail("invalidField", `artifact ${a.id} (${a.name}) is a folder: upload into a file artifact`);
      const declared = Number(req.headers["content-length"]);
      if (Number.isFinite(declared) && declared > ctx.config.maxUpload) {
        discardBody(req);
        fail("tooLarge", `the upload (${declared} bytes) exceeds the limit of ${ctx.config.maxUpload} bytes (KILN_MAX_UPLOAD)`);
      }
      const body = detachedBody(req);
      if (!body) fail("malformedBody", "the upload has no body");
      let blob;
      try {
        blob = await ctx.blobs.put(body, {}, { maxSize: ctx.config.maxUpload });
      } catch (err) {
        // A chunked body that grew past the limit: the 413 must reach a client still sending.
        discardBody(req);
        if (err instanceof KilnError) throw err;
        throw new KilnError("badRequest", "the upload was interrupted before it completed; nothing was stored", { cause: err });
      }
      const previous = a.blobDigest;
      const type = (req.headers["content-type"] ?? "").split(";")[0]!.trim();
      const updated = await ctx.store.artifacts.update(b.id, a.id, {
        blobDigest: blob.digest,
        size: blob.size,
        md5: blob.md5,
        origName: fileName,
        mimeType: type && type !== "application/x-www-form-urlencoded" ? type : "application/octet-stream",
        uploadedTime: new Date(),
      });
      if (!updated) fail("notFound", `artifact ${a.id} was deleted during the upload`);
      if (previous && previous !== blob.digest) await collectBlobs(ctx, [previous]);
      return sendObject(req, reply, "softwareArtifact", await artifactAnswer(ctx, u.login, b, updated, false));
    },

    async mySoftwareArtifact_download(req, reply, call) {
      return downloadArtifact(ctx, req, reply, call, undefined);
    },

    async mySoftwareArtifact_downloadFile(req, reply, call) {
      return downloadArtifact(ctx, req, reply, call, checkFileName(decodeParam((req.params as Params).fileName)));
    },
  };
}

function decodeParam(raw: string | undefined): string {
  // Fastify has already percent-decoded path parameters.
  return raw ?? "";
}

function idFromUri(uri: unknown): number | undefined {
  if (typeof uri !== "string") return undefined;
  const m = /\/artifacts\/(\d+)$/.exec(uri);
  return m ? Number(m[1]) : undefined;
}

function descendants(rows: ArtifactRow[], id: number): Set<number> {
  const out = new Set([id]);
  let grew = true;
  while (grew) {
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

async function updateArtifact(repo: ArtifactRepo, bundleId: number, a: ArtifactRow, value: Wire, recursive: boolean): Promise<ArtifactRow> {
  const patch = artifactFields(value, false);
  checkArtifactRules({ ...a, ...patch } as ArtifactRow, a.parentId !== null);
  const updated = await repo.update(bundleId, a.id, patch);
  if (!updated) fail("notFound", `no artifact ${a.id}`);
  if (recursive && Array.isArray(value.subSoftwareArtifacts)) {
    for (const child of value.subSoftwareArtifacts as Wire[]) {
      const id = typeof child.dbId === "number" ? child.dbId : idFromUri(child.uri);
      if (id === undefined) continue;
      const c = await repo.get(bundleId, id);
      if (!c || c.parentId !== a.id) fail("notFound", `no artifact ${id} under artifact ${a.id}`);
      await updateArtifact(repo, bundleId, c, child, true);
    }
  }
  return updated;
}

async function downloadArtifact(ctx: ApiContext, req: FastifyRequest, reply: import("fastify").FastifyReply, call: Call, fileName: string | undefined): Promise<unknown> {
  const uid = (req.params as Params).uid!;
  // Unauthenticated requests name their owner in the path; the download key must belong to them.
  const { owner, artifact } = await findDownload(req, call.principal, async () => {
    const owner = call.owner ?? (await ctx.store.users.getByLogin(uid));
    if (!owner) fail("notFound", `no user ${uid}`);
    const msid = parseId((req.params as Params).msid, "msid");
    const said = parseId((req.params as Params).said, "said");
    const bundle = await ctx.store.bundles.get(owner.id, msid);
    const artifact = bundle ? await ctx.store.artifacts.get(bundle.id, said) : undefined;
    if (!bundle || !artifact) fail("notFound", `no artifact ${said} in software bundle ${msid}`);
    return { owner, artifact };
  });
  const target = `artifact:${artifact.id}`;
  await authorizeDownload(ctx.store, req, call.principal, owner, target, { consume: false });
  if (artifact.kind !== "file" || !artifact.blobDigest || artifact.size === null) fail("notFound", `artifact ${artifact.id} has no uploaded file`);
  const name = artifact.origName ?? artifact.name;
  if (fileName !== undefined && fileName !== name) fail("notFound", `artifact ${artifact.id} has no file named ${fileName}`);
  // Only an answer that sends the file uses up the one-time key.
  return sendFile(
    req,
    reply,
    {
      path: ctx.blobs.path(artifact.blobDigest as `sha256:${string}`),
      size: artifact.size,
      sha256: artifact.blobDigest.slice(7),
      fileName: name,
      lastModified: artifact.uploadedTime ?? artifact.lastModified,
      contentType: artifact.mimeType ?? "application/octet-stream",
    },
    { claim: () => authorizeDownload(ctx.store, req, call.principal, owner, target, { consume: true }) },
  );
}
