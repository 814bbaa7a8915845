/**
 * Bundle imports (`bundleimports`): how `hammr bundle create` and `hammr bundle import` send a
 * bundle. A ticket is made, the archive (hammr's tar.gz: `bundle.yml` at the root, the files where
 * its `source` fields say) is uploaded to it, and becomes one bundle: its fields, its artifacts
 * (a directory is a folder artifact with its files as sub-artifacts), their bytes, its license
 * and logo — all recorded in one transaction, or nothing. The upload is read as it arrives; the
 * ticket says how it ended (`complete`, or `error` with the reason) and names the new bundle.
 */
import type { BlobWriter, IngestedBlob } from "../blobs/blob-store.js";
import { DESCRIPTION_FILES, parseDescriptionText, readBundleDescription, type BundleDescription, type DescribedFile } from "../domain/bundle-description.js";
import { fail, KilnError } from "../domain/errors.js";
import { normaliseArchivePath, UnsafePathError } from "../rootfs/paths.js";
import type { BundleImportRow, StoreRepositories, UserRow } from "../store/types.js";
import type { AnySoftwareArtifact, BootScript, OpStatus, SoftwareBundleImport } from "../wire/index.js";
import { publishAllReferenced } from "../store/blob-gc.js";
import { createArtifactTree, refusingEarly, type ArtifactBytes, type Upload } from "./artifacts.js";
import { readBundleArchive, type ReadArchive } from "./bundle-archive.js";
import { newBundle } from "./bundles.js";
import type { LibraryDeps } from "./context.js";
import { uris } from "./representations.js";

const importUris = {
  ticket: (login: string, id: number) => `users/${login}/bundleimports/${id}`,
};

function importStatus(login: string, t: BundleImportRow): OpStatus {
  const uri = `${importUris.ticket(login, t.id)}/status`;
  const common = { dbId: t.id, created: t.created, lastModified: t.lastModified, uri, parentUri: importUris.ticket(login, t.id), cancelled: false };
  if (t.state === "complete") return { ...common, complete: true, error: false, percentage: 100, message: "complete" };
  if (t.state === "error") {
    const why = t.errorMessage ?? "the import failed";
    return { ...common, complete: false, error: true, percentage: 0, message: "error", errorMessage: why, detailedError: true, detailedErrorMsg: why };
  }
  return { ...common, complete: false, error: false, percentage: 0, message: "waiting for the archive upload" };
}

function importWire(login: string, t: BundleImportRow): SoftwareBundleImport {
  const uri = importUris.ticket(login, t.id);
  return {
    dbId: t.id,
    created: t.created,
    lastModified: t.lastModified,
    uri,
    parentUri: uris.user(login),
    uploadUri: `${uri}/uploads`,
    statusUri: `${uri}/status`,
    imported: t.imported,
    referenceUri: t.bundleId !== null ? uris.bundle(login, t.bundleId) : undefined,
    status: importStatus(login, t),
    uploaded: t.state !== "waiting",
    uploadedTime: t.uploadedTime ?? undefined,
    size: t.size ?? undefined,
    sha256sum: t.sha256 ?? undefined,
    md5sum: t.md5 ?? undefined,
    mimeType: t.state !== "waiting" ? "application/x-gzip" : undefined,
  };
}

/** A `source` as an archive path (hammr writes them relative, without `./`). */
function sourcePath(f: DescribedFile): string {
  try {
    return normaliseArchivePath(f.source);
  } catch (err) {
    if (err instanceof UnsafePathError) fail("unsafeArchive", `${f.where}: its source ${JSON.stringify(f.source)} ${err.message}: refused`);
    throw err;
  }
}

/** What an archive's description and files make: the artifact trees and which bytes each file has. */
interface Planned {
  trees: AnySoftwareArtifact[];
  bytes: Map<AnySoftwareArtifact, { writer: BlobWriter; fileName: string; f?: DescribedFile }>;
}

function artifactValue(f: Pick<DescribedFile, "name"> & Partial<DescribedFile>, folder: boolean, children: AnySoftwareArtifact[]): AnySoftwareArtifact {
  const v: AnySoftwareArtifact = { name: f.name, type: folder ? "folder" : "file" };
  if (f.tag) v.tag = f.tag;
  if (f.destination) v.installLocation = f.destination;
  if (f.extract !== undefined) v.extract = f.extract;
  if (f.install !== undefined) v.install = f.install;
  if (f.params) v.params = f.params;
  if (f.tag === "bootscript") {
    const boot = v as BootScript;
    boot.xsiType = "BootScript";
    if (f.bootOrder !== undefined) boot.bootOrder = f.bootOrder;
    if (f.bootType) boot.bootType = f.bootType;
  }
  if (folder) v.subSoftwareArtifacts = children;
  return v;
}

function plan(d: BundleDescription, archive: ReadArchive): Planned {
  const out: Planned = { trees: [], bytes: new Map() };
  const paths = [...archive.files.keys()];
  const isDirectory = (p: string): boolean => archive.directories.has(p) || paths.some((k) => k.startsWith(`${p}/`)) || [...archive.directories].some((k) => k.startsWith(`${p}/`));

  /** The files and directories just below `dir` that no entry of the description names. */
  const undescribed = (dir: string, described: Set<string>, depth: number): AnySoftwareArtifact[] => {
    if (depth > 32) fail("invalidField", `the archive nests directories more than 32 levels deep under ${dir}`);
    const names = new Set<string>();
    for (const k of [...paths, ...archive.directories]) if (k.startsWith(`${dir}/`)) names.add(k.slice(dir.length + 1).split("/")[0]!);
    return [...names]
      .sort()
      .filter((n) => !described.has(`${dir}/${n}`))
      .map((n) => {
        const p = `${dir}/${n}`;
        const writer = archive.files.get(p);
        if (writer) {
          const v = artifactValue({ name: n }, false, []);
          out.bytes.set(v, { writer, fileName: n });
          return v;
        }
        return artifactValue({ name: n }, true, undescribed(p, new Set(), depth + 1));
      });
  };

  const entry = (f: DescribedFile): AnySoftwareArtifact => {
    const p = sourcePath(f);
    const writer = archive.files.get(p);
    if (writer) {
      if (f.files && f.files.length > 0) fail("invalidField", `${f.where}: the list of files is not empty but its source ${f.source} is a file, not a directory`);
      const v = artifactValue(f, false, []);
      out.bytes.set(v, { writer, fileName: p.slice(p.lastIndexOf("/") + 1), f });
      return v;
    }
    if (p !== "" && isDirectory(p)) {
      const children = (f.files ?? []).map(entry);
      // Described by path, or by name: hammr's walk names a deeper level's files at paths of its
      // own (`<dir><subdir>/<file>`, no `/`) beside the copies its recursive add wrote.
      const described = new Set((f.files ?? []).flatMap((c) => [sourcePath(c), `${p}/${c.name}`]));
      return artifactValue(f, true, [...children, ...undescribed(p, described, 0)]);
    }
    // An OS package may name a file that is not there: the distribution has it, by name.
    if (f.tag === "ospkg") return artifactValue(f, false, []);
    fail("invalidField", `${f.where}: its source ${f.source} is not in the archive`);
  };
  out.trees = d.files.map(entry);
  return out;
}

function checkSums(f: DescribedFile | undefined, blob: IngestedBlob): void {
  if (!f) return;
  if (f.sha256sum && `sha256:${f.sha256sum}` !== blob.digest) fail("integrityFailed", `${f.where}: the archive's file has SHA-256 ${blob.digest.slice(7)}, the description says ${f.sha256sum}`);
  if (f.md5sum && f.md5sum !== blob.md5) fail("integrityFailed", `${f.where}: the archive's file has MD5 ${blob.md5}, the description says ${f.md5sum}`);
}

export function importOperations(deps: LibraryDeps) {
  const { store } = deps;

  async function load(owner: UserRow, id: number): Promise<BundleImportRow> {
    const t = await store.bundleImports.get(owner.id, id);
    if (!t) fail("notFound", `no bundle import ${id}`);
    return t;
  }

  /** Makes the bundle the archive describes, in one transaction with its bytes' publication. */
  async function materialise(tx: StoreRepositories, owner: UserRow, ticket: BundleImportRow, d: BundleDescription, planned: Planned, extras: Array<{ kind: "license" | "logo"; writer: BlobWriter; fileName: string }>, blobs: Map<BlobWriter, IngestedBlob>): Promise<number> {
    // Two uploads to one ticket: the first to get here makes the bundle.
    if ((await tx.bundleImports.get(owner.id, ticket.id))?.bundleId != null) fail("conflict", `bundle import ${ticket.id} has already made its bundle`);
    const bundle = await tx.bundles.create(
      newBundle(
        owner,
        {
          name: d.name,
          version: d.version,
          ...(d.description !== undefined ? { description: d.description } : {}),
          ...(d.destination !== undefined ? { defaultInstallLocation: d.destination } : {}),
          ...(d.license?.name !== undefined ? { license: { name: d.license.name } } : {}),
          ...(d.restrictionRule !== undefined ? { bundleRestriction: { restrictionRule: d.restrictionRule } } : {}),
        },
        ticket.imported,
      ),
    );
    const now = new Date();
    const bytesOf = (v: AnySoftwareArtifact): ArtifactBytes | undefined => {
      const b = planned.bytes.get(v);
      if (!b) return undefined;
      const blob = blobs.get(b.writer)!;
      return { blobDigest: blob.digest, size: blob.size, md5: blob.md5, origName: b.fileName, mimeType: "application/octet-stream", uploadedTime: now };
    };
    for (const t of planned.trees) await createArtifactTree(tx.artifacts, bundle.id, null, t, 0, bytesOf);
    for (const e of extras) {
      const blob = blobs.get(e.writer)!;
      await tx.bundleFiles.put({ bundleId: bundle.id, kind: e.kind, fileName: e.fileName, mimeType: "application/octet-stream", blobDigest: blob.digest, size: blob.size, md5: blob.md5 });
    }
    const done = await tx.bundleImports.update(owner.id, ticket.id, { state: "complete", bundleId: bundle.id });
    if (!done) fail("notFound", `bundle import ${ticket.id} was deleted during the upload`);
    return bundle.id;
  }

  return {
    /** A ticket waiting for its archive; `imported` marks the bundle it makes as imported. */
    async create(owner: UserRow, imported: boolean): Promise<SoftwareBundleImport> {
      return importWire(owner.login, await store.bundleImports.create(owner.id, imported));
    },

    async get(owner: UserRow, id: number): Promise<SoftwareBundleImport> {
      return importWire(owner.login, await load(owner, id));
    },

    async status(owner: UserRow, id: number): Promise<OpStatus> {
      return importStatus(owner.login, await load(owner, id));
    },

    /**
     * Reads the uploaded archive and makes its bundle. A refusal (unsafe entry, no description,
     * a description hammr would refuse, a missing file) ends the ticket in `error` with the
     * reason, and is thrown to the caller too.
     */
    async upload(owner: UserRow, id: number, upload: Upload): Promise<OpStatus> {
      const ticket = await refusingEarly(upload, () => load(owner, id));
      if (ticket.state !== "waiting") {
        upload.discard();
        fail("conflict", `bundle import ${id} has already received its archive (it is ${ticket.state}): make a new import`);
      }
      if (upload.declaredSize !== undefined && upload.declaredSize > deps.limits.maxUpload) {
        upload.discard();
        fail("tooLarge", `the archive (${upload.declaredSize} bytes) exceeds the limit of ${deps.limits.maxUpload} bytes (KILN_MAX_UPLOAD)`);
      }
      let archive: ReadArchive | undefined;
      try {
        archive = await readBundleArchive(deps.blobs, upload.body, deps.limits.maxUpload);
        await store.bundleImports.update(owner.id, id, { size: archive.size, sha256: archive.sha256, md5: archive.md5, uploadedTime: new Date() });
        if (!archive.description) fail("invalidField", `the archive has no ${DESCRIPTION_FILES.yaml} or ${DESCRIPTION_FILES.json} at its root`);
        const what = archive.description.json ? DESCRIPTION_FILES.json : DESCRIPTION_FILES.yaml;
        const d = readBundleDescription(parseDescriptionText(archive.description.text, archive.description.json, what), what);
        const planned = plan(d, archive);
        const extras: Array<{ kind: "license" | "logo"; writer: BlobWriter; fileName: string }> = [];
        for (const [kind, source] of [["license", d.license?.source], ["logo", d.sourceLogo]] as const) {
          if (source === undefined) continue;
          const p = sourcePath({ where: kind === "license" ? "license" : "sourceLogo", name: kind, source });
          const writer = archive.files.get(p);
          if (!writer) fail("invalidField", `${kind === "license" ? "license.source" : "sourceLogo"} ${source} is not in the archive`);
          extras.push({ kind, writer, fileName: p.slice(p.lastIndexOf("/") + 1) });
        }
        const writers = [...new Set([...[...planned.bytes.values()].map((b) => b.writer), ...extras.map((e) => e.writer)])];
        const blobs = new Map<BlobWriter, IngestedBlob>();
        for (const w of writers) blobs.set(w, await w.seal());
        for (const b of planned.bytes.values()) checkSums(b.f, blobs.get(b.writer)!);
        await publishAllReferenced(store, writers, (tx) => materialise(tx, owner, ticket, d, planned, extras, blobs));
      } catch (err) {
        upload.discard();
        const message = err instanceof KilnError ? err.message : "the archive could not be imported";
        await store.bundleImports.update(owner.id, id, { state: "error", errorMessage: message }).catch(() => undefined);
        throw err;
      } finally {
        // Files the description does not name are not kept.
        for (const w of archive?.files.values() ?? []) await w.cancel();
      }
      return importStatus(owner.login, await load(owner, id));
    },
  };
}

export type ImportOperations = ReturnType<typeof importOperations>;
