/**
 * Distributions (from kiln.yaml) and their packages (from the repository index), plus the
 * container target formats and platforms.
 */
import { createHash } from "node:crypto";
import { fail, KilnError } from "../domain/errors.js";
import { CONTAINER_FORMATS, CONTAINER_PLATFORMS } from "../domain/formats.js";
import type { BinaryPackage } from "../debian/types.js";
import type { ApiContext, Call, HandlerMap } from "../server/app.js";
import type { CatalogEntry } from "../server/distributions.js";
import { pageOf, parseBooleanParam, parseCriteria, parseId, readObject, sendList, sendObject } from "../server/http.js";
import { compareVersions } from "../debian/version.js";
import { distributionWire, imageFormatWire, targetFormatWire, targetPlatformWire, type Wire } from "./representations.js";

const DIST_SORT = ["id", "name", "version", "arch", "created"] as const;
const PKG_SORT = ["name", "version", "arch", "size"] as const;
const FORMAT_SORT = ["id", "name"] as const;

/** A package's id: stable across index refreshes (a 48-bit hash of name, version and arch). */
export function packageId(p: BinaryPackage): number {
  return createHash("sha256").update(`${p.name}\0${p.version}\0${p.architecture}`).digest().readUIntBE(0, 6) + 1;
}

function pkgWire(distId: number, p: BinaryPackage): Wire {
  const id = packageId(p);
  const epoch = /^(\d+):/.exec(p.version)?.[1];
  return {
    dbId: id,
    sha256sum: p.sha256,
    size: p.size,
    arch: p.architecture,
    fullName: p.filename ? p.filename.split("/").pop() : undefined,
    name: p.name,
    release: p.section,
    repositoryName: p.filename ? p.filename.split("/").slice(0, -2).join("/") || undefined : undefined,
    type: "deb",
    uri: `distributions/${distId}/pkgs/${id}`,
    version: p.version,
    epoch: epoch === undefined ? undefined : Number(epoch),
  };
}

function distSortKey(e: CatalogEntry, field: string): string | number {
  switch (field) {
    case "name":
      return e.config.name;
    case "version":
      return e.config.version;
    case "arch":
      return e.config.arch;
    case "created":
      return e.row.created.getTime();
    default:
      return e.id;
  }
}

async function packagesOf(ctx: ApiContext, dist: CatalogEntry): Promise<BinaryPackage[]> {
  try {
    return (await ctx.catalog.repository(dist.id)).packages;
  } catch (err) {
    if (err instanceof KilnError && err.status < 500) throw err;
    throw new KilnError("repositoryFailed", `cannot read the package index of ${dist.config.name} ${dist.config.version}: ${(err as Error).message}`, { cause: err });
  }
}

function latestOnly(pkgs: BinaryPackage[]): BinaryPackage[] {
  const best = new Map<string, BinaryPackage>();
  for (const p of pkgs) {
    const key = `${p.name}\0${p.architecture}`;
    const cur = best.get(key);
    if (!cur || compareVersions(p.version, cur.version) > 0) best.set(key, p);
  }
  return [...best.values()];
}

export function distributionHandlers(ctx: ApiContext): HandlerMap {
  function load(raw: string | undefined): CatalogEntry {
    const id = parseId(raw, "id");
    const d = ctx.catalog.get(id);
    if (!d) fail("notFound", `no distribution ${id}`);
    return d;
  }
  const listDistributions: HandlerMap[string] = async (req, reply) => {
    const c = parseCriteria(req.query as Record<string, string>, DIST_SORT);
    const page = pageOf(ctx.catalog.list(), c, (e) => `${e.config.name} ${e.config.version} ${e.config.arch}`, distSortKey);
    return sendList(req, reply, "distributions", { total: page.total, distributions: page.items.map(distributionWire) });
  };
  const login = (call: Call): string => call.owner?.login ?? call.principal!.user.login;
  return {
    os_getAll: listDistributions,
    userOS_getAll: listDistributions,

    async os_get(req, reply) {
      const d = load((req.params as Record<string, string>).id);
      return sendObject(req, reply, "distribution", distributionWire(d), { lastModified: d.row.created });
    },

    async os_update(req, reply) {
      const d = load((req.params as Record<string, string>).id);
      const { value } = await readObject(req, "distribution");
      if (typeof value.active === "boolean" && value.active !== d.row.active) {
        const row = await ctx.store.distributions.setActive(d.id, value.active);
        if (row) ctx.catalog.update(row);
      }
      const fresh = ctx.catalog.get(d.id)!;
      return sendObject(req, reply, "distribution", distributionWire(fresh));
    },

    async osPkg_getAll(req, reply) {
      const d = load((req.params as Record<string, string>).id);
      const q = req.query as Record<string, string>;
      const c = parseCriteria(q, PKG_SORT);
      let pkgs = await packagesOf(ctx, d);
      if (parseBooleanParam(q, "latestOnly") === true) pkgs = latestOnly(pkgs);
      const page = pageOf(
        [...pkgs].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : compareVersions(a.version, b.version))),
        c,
        (p) => p.name,
        (p, f) => (f === "size" ? (p.size ?? 0) : f === "arch" ? p.architecture : f === "version" ? p.version : p.name),
      );
      // PkgList has no `total` element in the schema: the count travels in a header.
      reply.header("X-Total-Count", String(page.total));
      return sendList(req, reply, "packages", { pkgs: page.items.map((p) => pkgWire(d.id, p)) });
    },

    async osPkg_get(req, reply) {
      const d = load((req.params as Record<string, string>).id);
      const pid = parseId((req.params as Record<string, string>).pid, "pid");
      const p = (await packagesOf(ctx, d)).find((x) => packageId(x) === pid);
      if (!p) fail("notFound", `no package ${pid} in distribution ${d.id}`);
      return sendObject(req, reply, "package", pkgWire(d.id, p), { lastModified: d.row.created });
    },

    async userFormats_getAll(req, reply) {
      const c = parseCriteria(req.query as Record<string, string>, FORMAT_SORT);
      const page = pageOf([...CONTAINER_FORMATS], c, (f) => f.imageFormat, (f, k) => (k === "name" ? f.imageFormat : f.id));
      return sendList(req, reply, "imageFormats", { total: page.total, imageFormats: page.items.map(imageFormatWire) });
    },

    async userTargetFormat_getAll(req, reply, call) {
      const c = parseCriteria(req.query as Record<string, string>, FORMAT_SORT);
      const page = pageOf([...CONTAINER_FORMATS], c, (f) => f.name, (f, k) => (k === "name" ? f.name : f.id));
      return sendList(req, reply, "targetFormats", { total: page.total, targetFormats: page.items.map((f) => targetFormatWire(login(call), f)) });
    },

    async userTargetPlatforms_getAll(req, reply, call) {
      const c = parseCriteria(req.query as Record<string, string>, FORMAT_SORT);
      const page = pageOf([...CONTAINER_PLATFORMS], c, (p) => p.name, (p, k) => (k === "name" ? p.name : p.id));
      return sendList(req, reply, "targetPlatforms", { total: page.total, targetPlatforms: page.items.map((p) => targetPlatformWire(login(call), p)) });
    },

    async userTargetPlatformFormat_getAll(req, reply, call) {
      const tpid = parseId((req.params as Record<string, string>).tpid, "tpid");
      const platform = CONTAINER_PLATFORMS.find((p) => p.id === tpid);
      if (!platform) fail("notFound", `no target platform ${tpid}`);
      const c = parseCriteria(req.query as Record<string, string>, FORMAT_SORT);
      const formats = CONTAINER_FORMATS.filter((f) => platform.formatIds.includes(f.id));
      const page = pageOf(formats, c, (f) => f.name, (f, k) => (k === "name" ? f.name : f.id));
      return sendList(req, reply, "targetFormats", { total: page.total, targetFormats: page.items.map((f) => targetFormatWire(login(call), f)) });
    },
  };
}
