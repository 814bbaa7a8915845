/**
 * How Kiln's rows look on the wire: one function per UForge object type, turning a row into the
 * plain object the wire codec encodes (fields named as in uforge.xsd), and the URIs that link
 * objects together (relative to /api, no leading slash, as UForge writes them).
 */
import type { CatalogEntry } from "../server/distributions.js";
import { debianArch } from "../server/config.js";
import type { ApiKeyRow, ArtifactRow, BundleRow, CloudAccountRow, TemplateRow, UserRow } from "../store/types.js";
import { CONTAINER_FORMATS, CONTAINER_PLATFORMS, type ContainerFormat, type ContainerPlatform } from "../domain/formats.js";

export type Wire = Record<string, unknown>;

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
  accounts: (login: string) => `users/${login}/accounts`,
  account: (login: string, id: number) => `users/${login}/accounts/${id}`,
  distribution: (id: number) => `distributions/${id}`,
  targetFormat: (login: string, id: number) => `users/${login}/targetformats/${id}`,
  targetPlatform: (login: string, id: number) => `users/${login}/targetplatforms/${id}`,
};

export function userWire(u: UserRow, extra: Wire = {}): Wire {
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

export function apiKeyWire(login: string, k: ApiKeyRow, secret?: string): Wire {
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

export function distributionWire(e: CatalogEntry): Wire {
  return {
    dbId: e.id,
    created: e.row.created,
    active: e.row.active,
    arch: e.config.arch,
    basePkgsUri: `distributions/${e.id}/pkgs`,
    description: `${e.config.name} ${e.config.version} (${e.config.suite}, ${debianArch(e.config.arch)})`,
    family: "linux",
    name: e.config.name,
    pkgType: "deb",
    uri: uris.distribution(e.id),
    version: e.config.version,
    visible: e.row.active,
  };
}

/** The facts a restriction rule sees about a distribution. */
export function distributionFacts(e: CatalogEntry): Record<string, string> {
  return { family: "linux", pkgType: "deb", name: e.config.name, version: e.config.version, arch: e.config.arch };
}

export function bundleWire(login: string, b: BundleRow, artifactUris: string[] = []): Wire {
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
    bundleRestriction: restrictionWire(login, b),
    artifactsUri: uris.artifacts(login, b.id),
    uri: uris.bundle(login, b.id),
    license: b.license ? { name: b.license } : undefined,
    softwareArtifactUris: { uri: artifactUris },
    containerTemplatesUri: uris.templates(login, b.id),
    cloneUri: `${uris.bundle(login, b.id)}/clone`,
    imported: false,
    generationEnabled: true,
  };
}

export function restrictionWire(login: string, b: BundleRow): Wire {
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
export function artifactWire(login: string, msid: number, a: ArtifactRow, children: Wire[] | undefined, extra: Wire = {}): Wire {
  const uri = uris.artifact(login, msid, a.id);
  return {
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
    type: a.kind,
    version: a.version ?? undefined,
    arch: a.arch ?? undefined,
    params: a.params ?? undefined,
    subSoftwareArtifacts: a.kind === "folder" ? (children ?? []) : undefined,
    subSoftwareArtifactUri: a.kind === "folder" ? `${uri}/subsoftwareartifacts` : undefined,
    ...(a.tag === "bootscript" ? { xsiType: "BootScript", bootOrder: a.bootOrder ?? undefined, bootType: a.bootType ?? undefined } : {}),
    ...extra,
  };
}

/** Builds the nested artifact trees of a bundle from its flat rows. */
export function artifactTrees(login: string, msid: number, rows: ArtifactRow[]): Wire[] {
  const byParent = new Map<number | null, ArtifactRow[]>();
  for (const r of rows) {
    const list = byParent.get(r.parentId) ?? [];
    list.push(r);
    byParent.set(r.parentId, list);
  }
  const build = (parent: number | null, depth: number): Wire[] =>
    (byParent.get(parent) ?? [])
      .sort((a, b) => a.position - b.position || a.id - b.id)
      .map((r) => artifactWire(login, msid, r, r.kind === "folder" && depth < 64 ? build(r.id, depth + 1) : undefined));
  return build(null, 0);
}

export function accountWire(login: string, a: CloudAccountRow): Wire {
  const platform = CONTAINER_PLATFORMS.find((p) => p.type === a.type)!;
  const base: Wire = {
    dbId: a.id,
    created: a.created,
    lastModified: a.lastModified,
    name: a.name,
    uri: uris.account(login, a.id),
    targetPlatform: targetPlatformWire(login, platform),
    // Secrets are never sent back; UForge clients read this flag instead.
    secretsMissing: false,
  };
  return a.type === "docker"
    ? { ...base, xsiType: "CredAccountDocker", endpointUrl: a.url, login: a.login ?? undefined }
    : { ...base, xsiType: "CredAccountOpenShift", registryUrl: a.url };
}

export function targetFormatWire(login: string, f: ContainerFormat): Wire {
  return {
    dbId: f.id,
    name: f.name,
    format: { dbId: f.id, name: f.imageFormat, access: true, active: true },
    type: f.type,
    credAccountType: f.credAccountType,
    targetPlatformsUri: `${uris.targetFormat(login, f.id)}/targetplatforms`,
    imageInfos: f.description,
    access: true,
    active: true,
    uri: uris.targetFormat(login, f.id),
  };
}

export function targetPlatformWire(login: string, p: ContainerPlatform): Wire {
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

export function imageFormatWire(f: ContainerFormat): Wire {
  return { dbId: f.id, name: f.imageFormat, access: true, active: true };
}

export function templateWire(login: string, t: TemplateRow, bundle: BundleRow, dist: CatalogEntry, images: Wire[] = []): Wire {
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

export { CONTAINER_FORMATS, CONTAINER_PLATFORMS };
