/**
 * Bundle exports (`mysoftware/{id}/exports`): a bundle as hammr's archive, the one `hammr bundle
 * import` sends back (and `hammr bundle create` builds): the description (`bundle.yml`, or
 * `bundle.json` for `outputFormat=json`) at the root and every file at the path its `source`
 * names — `bundles/<name>/<version>/<file>`, a folder's files below the folder's path, the license
 * and logo at `bundles/<name>/<file>` (names with spaces turned into `_`, as hammr does). The
 * archive is written as it is downloaded, from the bundle as it then is; it re-imports to an
 * equal bundle (names, sizes, checksums, params, restriction rule).
 */
import type { Readable } from "node:stream";
import type { Digest } from "../blobs/blob-store.js";
import { parseArtifactParams } from "../domain/artifacts.js";
import { archiveComponent, DESCRIPTION_FILES, formatDescription } from "../domain/bundle-description.js";
import { fail } from "../domain/errors.js";
import type { ArtifactRow, BundleExportRow, BundleRow, UserRow } from "../store/types.js";
import type { OpStatus, SoftwareBundleExport } from "../wire/index.js";
import { writeBundleArchive, type ArchiveMember } from "./bundle-archive.js";
import type { LibraryDeps } from "./context.js";
import { loadBundle, type BundleRef } from "./load.js";
import { uris } from "./representations.js";

export type ExportFormat = BundleExportRow["format"];

const exportUri = (login: string, e: Pick<BundleExportRow, "bundleId" | "id">): string => `${uris.bundle(login, e.bundleId)}/exports/${e.id}`;

function exportStatus(login: string, e: BundleExportRow): OpStatus {
  const uri = exportUri(login, e);
  // The archive is made as it is downloaded: a ticket is ready at once.
  return { dbId: e.id, created: e.created, lastModified: e.lastModified, uri: `${uri}/status`, parentUri: uri, complete: true, error: false, cancelled: false, percentage: 100, message: "complete" };
}

function exportWire(login: string, b: BundleRow, e: BundleExportRow): SoftwareBundleExport {
  const uri = exportUri(login, e);
  return {
    dbId: e.id,
    created: e.created,
    lastModified: e.lastModified,
    bundleName: b.name,
    bundleVersion: b.version ?? undefined,
    downloadUri: `${uri}/downloads`,
    parentUri: uris.bundle(login, b.id),
    status: exportStatus(login, e),
    uri,
  };
}

type Entry = Record<string, unknown>;

/** The description and the archive's members for a bundle, its artifacts and its files. */
async function layout(deps: LibraryDeps, b: BundleRow, format: ExportFormat): Promise<ArchiveMember[]> {
  if (!b.version) fail("invalidField", `software bundle ${b.id} has no version: a bundle archive (hammr's format) needs one; set mySoftware.version first`);
  const root = `bundles/${archiveComponent(b.name)}`;
  const base = `${root}/${archiveComponent(b.version)}`;
  const rows = await deps.store.artifacts.listAll(b.id);
  const byParent = new Map<number | null, ArtifactRow[]>();
  for (const r of rows) byParent.set(r.parentId, [...(byParent.get(r.parentId) ?? []), r]);
  const members: ArchiveMember[] = [];
  const taken = new Set<string>();

  const describe = (parent: number | null, dir: string, depth: number): Entry[] =>
    (byParent.get(parent) ?? [])
      .sort((x, y) => x.position - y.position || x.id - y.id)
      .map((a) => {
        const path = `${dir}/${archiveComponent(a.name)}`;
        if (taken.has(path)) fail("conflict", `software bundle ${b.id} has two files at ${path} (names differ only by spaces, or repeat): rename one to export it`);
        taken.add(path);
        const e: Entry = { name: a.name, source: path };
        if (a.tag) e.tag = a.tag;
        if (a.installLocation) e.destination = a.installLocation;
        if (a.extract) e.extract = true;
        if (a.install) e.install = true;
        Object.assign(e, parseArtifactParams(a.params ?? undefined).params);
        if (a.tag === "bootscript") {
          if (a.bootOrder !== null) e.bootOrder = a.bootOrder;
          if (a.bootType !== null) e.bootType = a.bootType;
        }
        const mtime = a.uploadedTime ?? a.lastModified;
        if (a.kind === "folder") {
          if (depth > 64) fail("invalidField", `software bundle ${b.id} nests folders too deep to export`);
          members.push({ kind: "directory", path, mtime });
          e.files = describe(a.id, path, depth + 1);
        } else if (a.blobDigest && a.size !== null) {
          members.push({ kind: "blob", path, digest: a.blobDigest as Digest, size: a.size, mtime });
          e.sha256sum = a.blobDigest.slice("sha256:".length);
          if (a.md5) e.md5sum = a.md5;
        } else if (a.tag === "ospkg") {
          // An OS package without a file: the distribution has it by name (hammr's "false source").
          e.source = a.name;
        } else {
          fail("invalidField", `artifact ${a.id} (${a.name}) of software bundle ${b.id} has no uploaded file: upload it before exporting`);
        }
        return e;
      });

  const d: Entry = { name: b.name, version: b.version };
  if (b.description) d.description = b.description;
  if (b.defaultInstallLocation) d.destination = b.defaultInstallLocation;
  if (b.restrictionRule) d.restrictionRule = b.restrictionRule;
  d.files = describe(null, base, 0);
  for (const f of await deps.store.bundleFiles.list(b.id)) {
    const path = `${root}/${archiveComponent(f.fileName)}`;
    members.push({ kind: "blob", path, digest: f.blobDigest as Digest, size: f.size, mtime: f.lastModified });
    if (f.kind === "license") d.license = { ...(b.license ? { name: b.license } : {}), source: path };
    else d.sourceLogo = path;
  }
  if (b.license && d.license === undefined) d.license = { name: b.license };
  members.push({ kind: "text", path: DESCRIPTION_FILES[format], text: formatDescription(d, format), mtime: b.lastModified });
  return members;
}

export function exportOperations(deps: LibraryDeps) {
  const { store } = deps;

  async function load(owner: UserRow, ref: BundleRef & { eid: number }): Promise<{ bundle: BundleRow; ticket: BundleExportRow }> {
    const bundle = await loadBundle(store, owner, ref.msid);
    const ticket = await store.bundleExports.get(owner.id, bundle.id, ref.eid);
    if (!ticket) fail("notFound", `no export ${ref.eid} of software bundle ${bundle.id}`);
    return { bundle, ticket };
  }

  return {
    /** A ticket for the bundle's archive (checked now: a bundle that cannot be exported is refused here). */
    async create(owner: UserRow, ref: BundleRef, format: ExportFormat): Promise<SoftwareBundleExport> {
      const bundle = await loadBundle(store, owner, ref.msid);
      await layout(deps, bundle, format);
      return exportWire(owner.login, bundle, await store.bundleExports.create(owner.id, bundle.id, format));
    },

    async status(owner: UserRow, ref: BundleRef & { eid: number }): Promise<OpStatus> {
      return exportStatus(owner.login, (await load(owner, ref)).ticket);
    },

    /** The archive, as a stream, and the name hammr gives its file. */
    async download(owner: UserRow, ref: BundleRef & { eid: number }): Promise<{ stream: Readable; fileName: string }> {
      const { bundle, ticket } = await load(owner, ref);
      const members = await layout(deps, bundle, ticket.format);
      return { stream: writeBundleArchive(deps.blobs, members), fileName: `${archiveComponent(bundle.name)}.tar.gz` };
    },

    async delete(owner: UserRow, ref: BundleRef & { eid: number }): Promise<void> {
      const { bundle, ticket } = await load(owner, ref);
      await store.bundleExports.delete(owner.id, bundle.id, ticket.id);
    },
  };
}

export type ExportOperations = ReturnType<typeof exportOperations>;
