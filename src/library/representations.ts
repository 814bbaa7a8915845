/**
 * How Kiln's rows look on the wire: one function per UForge object type, turning a row into the
 * generated wire type the codec encodes (fields named as in uforge.xsd), and the URIs that link
 * objects together (relative to /api, no leading slash, as UForge writes them).
 */
import { CONTAINER_PLATFORMS, type ContainerFormat, type ContainerPlatform } from "../domain/formats.js";
import { debianArch, releaseDate } from "../domain/distributions.js";
import type { ApiKeyRow, ArtifactRow, BundleFileRow, BundleRow, CloudAccountRow, JobRow, TemplateRow, UserRow } from "../store/types.js";
import type {
  AnyCredAccount,
  AnySoftwareArtifact,
  APIKeyPair,
  BundleRestriction,
  ContainerTemplate,
  Distribution,
  Image,
  ImageFormat,
  MySoftware,
  OpStatus,
  TargetFormat,
  TargetPlatform,
  User,
} from "../wire/index.js";
import type { CatalogEntry } from "./catalog.js";
import { typeModel } from "../wire/model.js";

export const uris = {
  user: (login: string) => `users/${login}`,
  apiKeys: (login: string) => `users/${login}/apikeys`,
  apiKey: (login: string, id: number) => `users/${login}/apikeys/${id}`,
  bundles: (login: string) => `users/${login}/mysoftware`,
  bundle: (login: string, id: number) => `users/${login}/mysoftware/${id}`,
  artifacts: (login: string, msid: number) => `users/${login}/mysoftware/${msid}/artifacts`,
  artifact: (login: string, msid: number, id: number) => `users/${login}/mysoftware/${msid}/artifacts/${id}`,
  restriction: (login: string, msid: number, id: number) => `users/${login}/mysoftware/${msid}/restriction/${id}`,
  templates: (login: string, msid: number) => `users/${login}/mysoftware/${msid}/templates`,
  template: (login: string, msid: number, id: number) => `users/${login}/mysoftware/${msid}/templates/${id}`,
  image: (login: string, msid: number, tid: number, id: number) => `users/${login}/mysoftware/${msid}/templates/${tid}/images/${id}`,
  publication: (login: string, msid: number, tid: number, tiid: number, id: number) => `users/${login}/mysoftware/${msid}/templates/${tid}/images/${tiid}/pimages/${id}`,
  accounts: (login: string) => `users/${login}/accounts`,
  account: (login: string, id: number) => `users/${login}/accounts/${id}`,
  distribution: (id: number) => `distributions/${id}`,
  targetFormat: (login: string, id: number) => `users/${login}/targetformats/${id}`,
  targetPlatform: (login: string, id: number) => `users/${login}/targetplatforms/${id}`,
};

export function userWire(u: UserRow, extra: Pick<User, "password"> = {}): User {
  const login = u.login;
  return {
    dbId: u.id,
    created: u.created,
    lastModified: u.lastModified,
    loginName: login,
    active: u.active,
    email: u.email ?? undefined,
    firstName: u.firstName ?? undefined,
    surname: u.surname ?? undefined,
    admin: u.admin,
    baseApiKeysUri: uris.apiKeys(login),
    baseCredAccountsUri: uris.accounts(login),
    baseDistributionsUri: `users/${login}/distros`,
    baseFormatsUri: `users/${login}/formats`,
    baseTargetPlatformsUri: `users/${login}/targetplatforms`,
    baseTargetFormatsUri: `users/${login}/targetformats`,
    baseImagesUri: `users/${login}/images`,
    baseMySoftwareLibraryUri: uris.bundles(login),
    basePublishImagesUri: `users/${login}/pimages`,
    roles: [
      {
        name: u.admin ? "administrator" : "user",
        entitlements: u.entitlements.map((name) => ({ name })),
      },
    ],
    uri: uris.user(login),
    ...extra,
  };
}

export function apiKeyWire(login: string, k: ApiKeyRow, secret?: string): APIKeyPair {
  return {
    dbId: k.id,
    created: k.created,
    lastModified: k.lastModified,
    name: k.name ?? undefined,
    description: k.description ?? undefined,
    publicKey: k.publicKey,
    // The secret is only ever shown in the answer to its creation.
    secretKey: secret,
    uri: uris.apiKey(login, k.id),
  };
}

/**
 * Whether XML can carry the distribution: uforge.xsd enumerates the architectures of a
 * distribution (x86 family only), so an arm64 one exists for JSON clients alone.
 */
export function xmlRepresentable(e: CatalogEntry): boolean {
  return typeModel("Distribution").byName.get("arch")!.values!.has(e.config.arch);
}

export function distributionWire(e: CatalogEntry): Distribution {
  return {
    dbId: e.id,
    created: e.row.created,
    active: e.row.active,
    // The codec refuses, at encoding, a name or architecture outside uforge.xsd's enumerations.
    arch: e.config.arch as Distribution["arch"],
    basePkgsUri: `distributions/${e.id}/pkgs`,
    baseProfilesUri: `distributions/${e.id}/profiles`,
    description: `${e.config.name} ${e.config.version} (${e.config.suite}, ${debianArch(e.config.arch)})`,
    family: "linux",
    name: e.config.name as Distribution["name"],
    pkgType: "deb",
    releaseDate: releaseDate(e.config),
    uri: uris.distribution(e.id),
    version: e.config.version,
    visible: e.row.active,
  };
}

/** A bundle's license or logo file, as UForge's upload objects describe one. */
function bundleFileWire(login: string, b: BundleRow, f: BundleFileRow) {
  const parentUri = uris.bundle(login, b.id);
  return {
    dbId: f.id,
    created: f.created,
    lastModified: f.lastModified,
    parentUri,
    uri: `${parentUri}/${f.kind === "license" ? "licenses" : "logo"}/${f.id}`,
    md5sum: f.md5,
    mimeType: f.mimeType,
    sha256sum: f.blobDigest.slice("sha256:".length),
    size: f.size,
    uploaded: true,
    uploadedTime: f.created,
  };
}

/**
 * What a bundle's artifacts add up to: `size`, the bytes of its files; `installedSize`, what they
 * take installed — known only when every file is copied as it is (an archive unpacked or a
 * package installed takes what its contents take, which Kiln learns only when it builds).
 */
function artifactTotals(rows: readonly ArtifactRow[]): { size: number; installedSize: number | undefined } {
  let size = 0;
  let asIs = true;
  for (const r of rows) {
    if (r.kind !== "file") continue;
    size += r.size ?? 0;
    if (r.extract || r.install || r.tag === "ospkg") asIs = false;
  }
  return { size, installedSize: asIs ? size : undefined };
}

/** A bundle, with what its artifact rows (every level) and its license and logo files say about it. */
export function bundleWire(login: string, b: BundleRow, rows: readonly ArtifactRow[] = [], files: BundleFileRow[] = []): MySoftware {
  const totals = artifactTotals(rows);
  const licenseFile = files.find((f) => f.kind === "license");
  const logoFile = files.find((f) => f.kind === "logo");
  return {
    dbId: b.id,
    created: b.created,
    lastModified: b.lastModified,
    tag: b.tag ?? undefined,
    shortTag: "mySoftware",
    name: b.name,
    version: b.version ?? undefined,
    description: b.description ?? undefined,
    release: b.release ?? undefined,
    defaultInstallLocation: b.defaultInstallLocation ?? undefined,
    restricted: !!b.restrictionRule,
    installedSize: totals.installedSize,
    size: totals.size,
    revision: b.revision,
    bundleRestriction: restrictionWire(login, b),
    artifactsUri: uris.artifacts(login, b.id),
    uri: uris.bundle(login, b.id),
    // The license's name (`MIT`), and its file when one was uploaded (named by the file when the license has no name).
    license: licenseFile ? { ...bundleFileWire(login, b, licenseFile), name: b.license ?? licenseFile.fileName } : b.license ? { name: b.license } : undefined,
    logo: logoFile ? { ...bundleFileWire(login, b, logoFile), name: logoFile.fileName } : undefined,
    exportUri: `${uris.bundle(login, b.id)}/exports`,
    softwareArtifactUris: { uri: rows.filter((r) => r.parentId === null).map((r) => uris.artifact(login, b.id, r.id)) },
    containerTemplatesUri: uris.templates(login, b.id),
    cloneUri: `${uris.bundle(login, b.id)}/clone`,
    imported: b.imported,
    generationEnabled: true,
  };
}

export function restrictionWire(login: string, b: BundleRow): BundleRestriction {
  const uri = uris.restriction(login, b.id, b.restrictionId);
  return {
    dbId: b.restrictionId,
    lastModified: b.lastModified,
    uri,
    parentUri: uris.bundle(login, b.id),
    restrictionRule: b.restrictionRule ?? "",
    distributionsUri: `${uri}/distributions`,
  };
}

/** An artifact, with its children nested (folders). */
export function artifactWire(login: string, msid: number, a: ArtifactRow, children: AnySoftwareArtifact[] | undefined): AnySoftwareArtifact {
  const uri = uris.artifact(login, msid, a.id);
  const common = {
    dbId: a.id,
    created: a.created,
    lastModified: a.lastModified,
    md5sum: a.md5 ?? undefined,
    mimeType: a.mimeType ?? undefined,
    sha256sum: a.blobDigest ? a.blobDigest.slice("sha256:".length) : undefined,
    size: a.size ?? undefined,
    uploaded: a.kind === "file" ? a.blobDigest !== null : undefined,
    uploadedTime: a.uploadedTime ?? undefined,
    uri,
    tag: a.tag ?? undefined,
    binaryUri: a.kind === "file" && a.blobDigest ? `${uri}/bin/${encodeURIComponent(a.origName ?? a.name)}` : undefined,
    parentUri: a.parentId ? uris.artifact(login, msid, a.parentId) : uris.bundle(login, msid),
    extract: a.extract,
    install: a.install,
    installLocation: a.installLocation ?? undefined,
    name: a.name,
    fullName: a.fullName ?? undefined,
    origName: a.origName ?? undefined,
    release: a.release ?? undefined,
    shortTag: a.tag === null ? undefined : a.tag === "ospkg" ? "osPackage" : a.tag,
    type: a.kind,
    version: a.version ?? undefined,
    arch: a.arch ?? undefined,
    params: a.params ?? undefined,
    subSoftwareArtifacts: a.kind === "folder" ? (children ?? []) : undefined,
    subSoftwareArtifactUri: a.kind === "folder" ? `${uri}/subsoftwareartifacts` : undefined,
  };
  return a.tag === "bootscript" ? { ...common, xsiType: "BootScript", bootOrder: a.bootOrder ?? undefined, bootType: a.bootType ?? undefined } : common;
}

/** Builds the nested artifact trees of a bundle from its flat rows. */
export function artifactTrees(login: string, msid: number, rows: ArtifactRow[]): AnySoftwareArtifact[] {
  const byParent = new Map<number | null, ArtifactRow[]>();
  for (const r of rows) {
    const list = byParent.get(r.parentId) ?? [];
    list.push(r);
    byParent.set(r.parentId, list);
  }
  const build = (parent: number | null, depth: number): AnySoftwareArtifact[] =>
    (byParent.get(parent) ?? [])
      .sort((a, b) => a.position - b.position || a.id - b.id)
      .map((r) => artifactWire(login, msid, r, r.kind === "folder" && depth < 64 ? build(r.id, depth + 1) : undefined));
  return build(null, 0);
}

/** The subtree of `trees` rooted at artifact `id`. */
export function findInTrees(trees: AnySoftwareArtifact[], id: number): AnySoftwareArtifact | undefined {
  for (const t of trees) {
    if (t.dbId === id) return t;
    const found = t.subSoftwareArtifacts ? findInTrees(t.subSoftwareArtifacts, id) : undefined;
    if (found) return found;
  }
  return undefined;
}

export function accountWire(login: string, a: CloudAccountRow): AnyCredAccount {
  const platform = CONTAINER_PLATFORMS.find((p) => p.type === a.type)!;
  const base = {
    dbId: a.id,
    created: a.created,
    lastModified: a.lastModified,
    name: a.name,
    uri: uris.account(login, a.id),
    targetPlatform: targetPlatformWire(login, platform),
    // "The secrets of this credAccount are missing and left empty in this object" (its page):
    // Kiln never sends a password or token back.
    secretsMissing: true,
  };
  return a.type === "docker"
    ? { ...base, xsiType: "CredAccountDocker", endpointUrl: a.url, login: a.login ?? undefined }
    : { ...base, xsiType: "CredAccountOpenShift", registryUrl: a.url };
}

export function targetFormatWire(login: string, f: ContainerFormat): TargetFormat {
  return {
    dbId: f.id,
    name: f.name,
    format: imageFormatWire(f),
    type: f.type,
    // hammr prints it (`format list`); UForge files Docker and OpenShift under "Container".
    category: { name: "Container" },
    credAccountType: f.credAccountType,
    targetPlatformsUri: `${uris.targetFormat(login, f.id)}/targetplatforms`,
    imageInfos: f.description,
    access: true,
    active: true,
    uri: uris.targetFormat(login, f.id),
  };
}

export function targetPlatformWire(login: string, p: ContainerPlatform): TargetPlatform {
  return {
    dbId: p.id,
    name: p.name,
    type: p.type,
    targetFormatsUri: `${uris.targetPlatform(login, p.id)}/targetformats`,
    accountInfos: p.accountInfos,
    access: true,
    active: true,
    uri: uris.targetPlatform(login, p.id),
  };
}

export function imageFormatWire(f: ContainerFormat): ImageFormat {
  return { dbId: f.id, name: f.imageFormat, access: true, active: true };
}

export function templateWire(login: string, t: TemplateRow, bundle: BundleRow, dist: CatalogEntry, images: Image[] = []): ContainerTemplate {
  const uri = uris.template(login, bundle.id, t.id);
  return {
    dbId: t.id,
    created: t.created,
    lastModified: t.lastModified,
    uri,
    softwareBundle: {
      dbId: bundle.id,
      name: bundle.name,
      version: bundle.version ?? undefined,
      uri: uris.bundle(login, bundle.id),
    },
    distribution: distributionWire(dist),
    images,
    imagesUri: `${uri}/images`,
    formatsUri: `${uri}/formats`,
  };
}

/** An OpStatus for a job. */
export function statusWire(job: JobRow, uri: string, parentUri: string): OpStatus {
  return {
    dbId: job.id,
    created: job.created,
    lastModified: job.lastModified,
    bytesLoaded: job.bytesLoaded ?? undefined,
    bytesTotal: job.bytesTotal ?? undefined,
    cancelled: job.state === "cancelled",
    complete: job.state === "complete",
    detailedError: job.state === "error",
    detailedErrorMsg: job.state === "error" ? (job.detailedError ?? undefined) : undefined,
    error: job.state === "error",
    errorMessage: job.state === "error" ? (job.errorMessage ?? undefined) : undefined,
    eta: job.state === "running" ? (job.eta ?? undefined) : undefined,
    message: job.message ?? job.state,
    parentUri,
    percentage: job.percentage,
    uri,
  };
}
