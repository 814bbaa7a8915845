/**
 * `KilnClient`: a typed client of Kiln's (and UForge's) REST API. Every operation of
 * `spec/uforge/endpoints.tsv` is reachable through `call(operationId, ...)`, and through a typed
 * method of one of the groups below (`client.bundles.create(...)`, `client.images.download(...)`).
 * JSON on the wire; Basic or API-key authentication; errors as `KilnApiError` with the server's
 * `uforgeError`; file bytes streamed both ways with progress; `waitFor` follows a job.
 *
 * ```ts
 * const kiln = new KilnClient({ url: "http://127.0.0.1:8080", user: "alice", password: "..." });
 * const bundle = await kiln.bundles.create({ name: "hello", version: "1.0" });
 * ```
 */
import type { Readable } from "node:stream";
import { OPERATIONS, fillPath, type OperationId } from "./operations.js";
import { imageRef, publicationRef, templateRef, type HasUri, type ImageRef, type PublicationRef, type TemplateRef } from "./refs.js";
import { downloadToFile, openDownload, uploadBytes, type DownloadOptions, type DownloadResult, type UploadOptions } from "./transfer.js";
import { Transport, type Credentials, type Query, type ResponseEvent } from "./transport.js";
import type {
  AnyCredAccount,
  ApiKeyPair,
  ApiKeyPairs,
  BundleRestriction,
  ContainerTemplate,
  ContainerTemplates,
  CredAccountDocker,
  CredAccountOpenShift,
  CredAccountResources,
  CredAccounts,
  Distribution,
  Distributions,
  Image,
  ImageFormats,
  ImagePkgs,
  Images,
  ListCriteria,
  MySoftware,
  MySoftwareList,
  OpStatus,
  OpStatuses,
  Pkg,
  PkgList,
  PublishImage,
  PublishImages,
  ServiceStatus,
  SoftwareArtifact,
  SoftwareArtifacts,
  TargetFormats,
  TargetPlatforms,
  User,
  Users,
  SoftwareBundleExport,
  SoftwareBundleImport,
} from "./types.js";
import { KilnApiError } from "./errors.js";
import { pollStatus, statusUriOf, type WaitOptions } from "./wait.js";

/** How to reach and authenticate to a Kiln server. */
export interface KilnClientOptions {
  /** `http://host:8080` (the `/api` base is added), or the API base itself. */
  url: string;
  /** The login the client acts as (`{uid}` in paths). */
  user: string;
  /** HTTP Basic password. */
  password?: string;
  /** An API key pair instead of a password: each request URL is signed with the secret. */
  apiKey?: { publicKey: string; secret: string };
  /** Socket inactivity after which a request fails (default 120 s). */
  idleTimeoutMs?: number;
  userAgent?: string;
  /** Told of every answer: method, URL (secrets masked), status, time. */
  onResponse?: (event: ResponseEvent) => void;
}

/** Options every call takes. */
export interface CallOptions {
  query?: Query;
  body?: unknown;
  signal?: AbortSignal;
}

type Params = Record<string, string | number>;

function criteriaQuery(c: ListCriteria | undefined, extra: Query = {}): Query {
  return { query: c?.query, orderBy: c?.orderBy, descending: c?.descending, count: c?.count, offset: c?.offset, ...extra };
}

function imageParams(x: ImageRef | HasUri | string): Params {
  const r = imageRef(x);
  return { msid: r.bundleId, tid: r.templateId, tiid: r.imageId };
}

function publicationParams(x: PublicationRef | HasUri | string): Params {
  const r = publicationRef(x);
  return { msid: r.bundleId, tid: r.templateId, tiid: r.imageId, ptiid: r.publicationId };
}

export class KilnClient {
  /** The login the client acts as. */
  readonly user: string;
  /** The HTTP layer (for calls this class does not wrap). */
  readonly transport: Transport;

  /** Users (`user_*`): the caller's own account, and all accounts for an administrator. */
  readonly users: UsersApi;
  /** API key pairs of the caller (`apiKey_*`). */
  readonly apiKeys: ApiKeysApi;
  /** Distributions images are built on (`os*`, `userOS_getAll`). */
  readonly distributions: DistributionsApi;
  /** Image formats, target formats and platforms (`user*Formats*`, `userTargetPlatforms_getAll`). */
  readonly formats: FormatsApi;
  /** Software bundles of the library (`mySoftware*` without artifacts). */
  readonly bundles: BundlesApi;
  /** Files and folders of a bundle, and their bytes (`mySoftwareArtifact_*`). */
  readonly artifacts: ArtifactsApi;
  /** Container templates (`containerTemplate_*`, `containerTemplateTargetFormat_getAll`). */
  readonly templates: TemplatesApi;
  /** Generated images: generation, status, packages, download (`containerTemplateImage*`, `userMachineImage*`). */
  readonly images: ImagesApi;
  /** Images published to registries (`containerTemplateImagePublish*`, `userMachineImagePublished*`). */
  readonly publications: PublicationsApi;
  /** Cloud (registry) accounts (`cloudAccount*`). */
  readonly accounts: AccountsApi;

  constructor(options: KilnClientOptions) {
    if (!options.user) throw new TypeError("KilnClient needs the user it acts as");
    let credentials: Credentials;
    if (options.apiKey) credentials = { kind: "apiKey", publicKey: options.apiKey.publicKey, secret: options.apiKey.secret };
    else if (options.password !== undefined) credentials = { kind: "basic", password: options.password };
    else throw new TypeError("KilnClient needs a password or an API key pair");
    this.user = options.user;
    this.transport = new Transport({
      url: options.url,
      user: options.user,
      credentials,
      ...(options.idleTimeoutMs !== undefined ? { idleTimeoutMs: options.idleTimeoutMs } : {}),
      ...(options.userAgent !== undefined ? { userAgent: options.userAgent } : {}),
      ...(options.onResponse ? { onResponse: options.onResponse } : {}),
    });
    this.users = new UsersApi(this);
    this.apiKeys = new ApiKeysApi(this);
    this.distributions = new DistributionsApi(this);
    this.formats = new FormatsApi(this);
    this.bundles = new BundlesApi(this);
    this.artifacts = new ArtifactsApi(this);
    this.templates = new TemplatesApi(this);
    this.images = new ImagesApi(this);
    this.publications = new PublicationsApi(this);
    this.accounts = new AccountsApi(this);
  }

  /** The URL of an operation's path (for calls made outside the typed methods). */
  operationUrl(operationId: OperationId, params: Params = {}, query: Query = {}): URL {
    return this.transport.url(fillPath(OPERATIONS[operationId].path, { uid: this.user, ...params }), query);
  }

  /**
   * Calls any operation by its UForge id. `{uid}` defaults to the client's user; the answer is
   * the parsed JSON (undefined for `204`).
   */
  async call<T>(operationId: OperationId, params: Params = {}, options: CallOptions = {}): Promise<T> {
    const op = OPERATIONS[operationId];
    return this.transport.json<T>(op.method, fillPath(op.path, { uid: this.user, ...params }), { ...options, operationId });
  }

  /** GETs an object by the `uri` objects carry (`users/alice/mysoftware/3`). */
  async get<T>(uri: string, options: { query?: Query; signal?: AbortSignal } = {}): Promise<T> {
    return this.transport.json<T>("GET", uri, options);
  }

  /** The platform status (`uforgeStatus_get`, no authentication needed). */
  async status(): Promise<ServiceStatus> {
    return this.call("uforgeStatus_get");
  }

  /**
   * Follows a job until it ends (complete, error or cancelled) and answers its last status.
   * `target` is a status URI, an `OpStatus`, an image or publishImage (their `statusUri`), or an
   * image/publication URI. Polls with backoff; see `WaitOptions`.
   */
  async waitFor(target: string | { statusUri?: string; uri?: string }, options: WaitOptions = {}): Promise<OpStatus> {
    const uri = statusUriOf(target);
    return pollStatus(() => this.get<OpStatus>(uri, options.signal ? { signal: options.signal } : {}), uri, options);
  }

  /** Closes idle connections; the client can still be used (new connections are opened). */
  close(): void {
    this.transport.close();
  }
}

/** `user_*`. */
export class UsersApi {
  constructor(private readonly c: KilnClient) {}
  /** All users (administrators only). */
  async list(criteria?: ListCriteria & { orgName?: string; active?: boolean }): Promise<Users> {
    return this.c.call("user_getAll", {}, { query: criteria ? criteriaQuery(criteria, { orgName: criteria.orgName, active: criteria.active }) : {} });
  }
  /** Creates a user (administrators only); with `autopasswd` the answer carries the generated password. */
  async create(user: User, options: { autopasswd?: boolean; admin?: boolean } = {}): Promise<User> {
    return this.c.call("user_create", {}, { body: user, query: { autopasswd: options.autopasswd, admin: options.admin } });
  }
  /** A user (default: the client's own). */
  async get(login: string = this.c.user): Promise<User> {
    return this.c.call("user_get", { uid: login });
  }
  async update(patch: User, login: string = this.c.user): Promise<User> {
    return this.c.call("user_update", { uid: login }, { body: patch });
  }
}

/** `apiKey_*`. */
export class ApiKeysApi {
  constructor(private readonly c: KilnClient) {}
  async list(): Promise<ApiKeyPairs> {
    return this.c.call("apiKey_getAll");
  }
  /** A new key pair; its `secretKey` is only ever shown in this answer. */
  async create(key: { name?: string; description?: string } = {}): Promise<ApiKeyPair> {
    return this.c.call("apiKey_create", {}, { body: key });
  }
  async update(id: number, patch: { name?: string; description?: string }): Promise<ApiKeyPair> {
    return this.c.call("apiKey_update", { akid: id }, { body: patch });
  }
  async delete(id: number): Promise<void> {
    return this.c.call("apiKey_delete", { akid: id });
  }
}

/** `os_*`, `osPkg_*`, `userOS_getAll`. */
export class DistributionsApi {
  constructor(private readonly c: KilnClient) {}
  async list(criteria?: ListCriteria): Promise<Distributions> {
    return this.c.call("os_getAll", {}, { query: criteriaQuery(criteria) });
  }
  /** The distributions the client's user may build on. */
  async listForUser(criteria?: ListCriteria): Promise<Distributions> {
    return this.c.call("userOS_getAll", {}, { query: criteriaQuery(criteria) });
  }
  async get(id: number): Promise<Distribution> {
    return this.c.call("os_get", { id });
  }
  /** Changes a distribution (administrators: `active`, `visible`). */
  async update(id: number, patch: Distribution): Promise<Distribution> {
    return this.c.call("os_update", { id }, { body: patch });
  }
  async packages(id: number, criteria?: ListCriteria & { latestOnly?: boolean }): Promise<PkgList> {
    return this.c.call("osPkg_getAll", { id }, { query: criteriaQuery(criteria, { latestOnly: criteria?.latestOnly }) });
  }
  async package(id: number, packageId: number): Promise<Pkg> {
    return this.c.call("osPkg_get", { id, pid: packageId });
  }
}

/** `userFormats_getAll`, `userTargetFormat_getAll`, `userTargetPlatforms_getAll`, `userTargetPlatformFormat_getAll`. */
export class FormatsApi {
  constructor(private readonly c: KilnClient) {}
  async imageFormats(criteria?: ListCriteria): Promise<ImageFormats> {
    return this.c.call("userFormats_getAll", {}, { query: criteriaQuery(criteria) });
  }
  async targetFormats(criteria?: ListCriteria): Promise<TargetFormats> {
    return this.c.call("userTargetFormat_getAll", {}, { query: criteriaQuery(criteria) });
  }
  async targetPlatforms(criteria?: ListCriteria): Promise<TargetPlatforms> {
    return this.c.call("userTargetPlatforms_getAll", {}, { query: criteriaQuery(criteria) });
  }
  async targetPlatformFormats(platformId: number, criteria?: ListCriteria): Promise<TargetFormats> {
    return this.c.call("userTargetPlatformFormat_getAll", { tpid: platformId }, { query: criteriaQuery(criteria) });
  }
}

/** `mySoftware_*`, `mySoftwareRestriction*`. */
export class BundlesApi {
  constructor(private readonly c: KilnClient) {}
  /** The library; `distribId` keeps the bundles whose restriction rule allows that distribution. */
  async list(criteria?: ListCriteria & { distribId?: number }): Promise<MySoftwareList> {
    return this.c.call("mySoftware_getAll", {}, { query: criteriaQuery(criteria, { distribId: criteria?.distribId }) });
  }
  async create(bundle: MySoftware): Promise<MySoftware> {
    return this.c.call("mySoftware_create", {}, { body: bundle });
  }
  async get(id: number): Promise<MySoftware> {
    return this.c.call("mySoftware_get", { msid: id });
  }
  async update(id: number, patch: MySoftware): Promise<MySoftware> {
    return this.c.call("mySoftware_update", { msid: id }, { body: patch });
  }
  /** Deletes a bundle with its artifacts, templates and images. */
  async delete(id: number): Promise<void> {
    return this.c.call("mySoftware_delete", { msid: id });
  }
  /** A copy of a bundle and its artifacts; `overrides` may rename it (default: "<name> (copy)"). */
  async clone(id: number, overrides: MySoftware = {}): Promise<MySoftware> {
    return this.c.call("mySoftware_clone", { msid: id }, { body: overrides });
  }
  /** Sets the restriction rule (`brid` is the bundle's `bundleRestriction.dbId`). */
  async setRestriction(id: number, restrictionId: number, restrictionRule: string): Promise<BundleRestriction> {
    return this.c.call("mySoftwareRestriction_update", { msid: id, brid: restrictionId }, { body: { restrictionRule } });
  }
  /** The distributions the rule allows (`compatibility: false`: those it excludes). */
  async restrictionDistributions(id: number, restrictionId: number, options: { compatibility?: boolean } = {}): Promise<Distributions> {
    return this.c.call("mySoftwareRestrictionOS_getAll", { msid: id, brid: restrictionId }, { query: { compatibility: options.compatibility } });
  }
  /** The distributions a candidate rule would allow, without saving it. */
  async evaluateRestriction(id: number, restrictionId: number, restrictionRule: string): Promise<Distributions> {
    return this.c.call("mySoftwareRestrictionOS_evaluate", { msid: id, brid: restrictionId }, { body: { restrictionRule } });
  }

  /**
   * Sends a bundle archive (hammr's tar.gz: `bundle.yml` at the root, the files where it says)
   * as `hammr bundle create` (`imported: false`) and `hammr bundle import` (`imported: true`) do:
   * an import ticket, the archive as its upload, its status followed to the end. Answers the
   * bundle made; an archive the server refuses throws its `KilnApiError`.
   */
  async importArchive(source: string | Readable, options: Omit<UploadOptions, "operationId"> & { imported?: boolean } = {}): Promise<MySoftware> {
    const { imported, ...upload } = options;
    const ticket = await this.c.call<SoftwareBundleImport>("softwareBundle_import", {}, { query: { imported: imported ?? false } });
    const sbid = ticket.dbId!;
    await uploadBytes<OpStatus>(this.c.transport, this.c.operationUrl("softwareBundleImport_upload", { sbid }), source, { ...upload, operationId: "softwareBundleImport_upload" });
    // The upload's answer may already say how it ended; the status resource says it too, and is the one to follow.
    const status = await pollStatus(() => this.c.call<OpStatus>("softwareBundleImportStatus_get", { sbid }), `bundle import ${sbid}`, options.signal ? { signal: options.signal } : {});
    if (status.error) throw new Error(`the bundle import failed: ${status.errorMessage ?? status.message ?? "no reason given"}`);
    const done = await this.c.call<SoftwareBundleImport>("softwareBundleImport_get", { sbid });
    return this.c.get<MySoftware>(done.referenceUri!);
  }

  /**
   * Exports a bundle as hammr does: an export ticket (`format`: the description's, yaml by
   * default), its status followed to the end, the archive downloaded to `file`, the ticket deleted.
   */
  async exportArchive(id: number, file: string, options: Omit<DownloadOptions, "operationId"> & { format?: "yaml" | "json" } = {}): Promise<DownloadResult> {
    const { format, ...download } = options;
    const ticket = await this.c.call<SoftwareBundleExport>("mySoftware_export", { msid: id }, { query: { outputFormat: format ?? "yaml" } });
    const eid = ticket.dbId!;
    try {
      const status = await pollStatus(() => this.c.call<OpStatus>("mySoftwareExportStatus_get", { msid: id, eid }), `export ${eid} of bundle ${id}`, options.signal ? { signal: options.signal } : {});
      if (status.error) throw new Error(`the export of bundle ${id} failed: ${status.errorMessage ?? status.message ?? "no reason given"}`);
      const url = this.c.operationUrl("mySoftwareExport_download", { msid: id, eid });
      return await downloadToFile(this.c.transport, url, file, { ...download, resume: false, operationId: "mySoftwareExport_download" });
    } finally {
      await this.c.call("mySoftwareExport_delete", { msid: id, eid }).catch(() => undefined);
    }
  }
}

/** `mySoftwareArtifact_*`. */
export class ArtifactsApi {
  constructor(private readonly c: KilnClient) {}
  /** The bundle's artifacts as trees (folders carry `subSoftwareArtifacts`). */
  async list(bundleId: number, options: { filename?: string } = {}): Promise<SoftwareArtifacts> {
    return this.c.call("mySoftwareArtifact_getAll", { msid: bundleId }, { query: { filename: options.filename } });
  }
  /** Adds a file (or a folder, `type: "folder"`, with inline `subSoftwareArtifacts`) at the first level. */
  async add(bundleId: number, artifact: SoftwareArtifact): Promise<SoftwareArtifact> {
    return this.c.call("mySoftwareArtifact_add", { msid: bundleId }, { body: artifact });
  }
  /** Adds a child to a folder artifact. */
  async addChild(bundleId: number, folderId: number, artifact: SoftwareArtifact): Promise<SoftwareArtifact> {
    return this.c.call("mySoftwareArtifact_addChild", { msid: bundleId, said: folderId }, { body: artifact });
  }
  /** An artifact; a file's `binaryUri` then carries a one-time `downloadId`. */
  async get(bundleId: number, artifactId: number): Promise<SoftwareArtifact> {
    return this.c.call("mySoftwareArtifact_get", { msid: bundleId, said: artifactId });
  }
  async update(bundleId: number, artifactId: number, patch: SoftwareArtifact, options: { recursive?: boolean } = {}): Promise<SoftwareArtifact> {
    return this.c.call("mySoftwareArtifact_update", { msid: bundleId, said: artifactId }, { body: patch, query: { recursive: options.recursive } });
  }
  /** Updates several artifacts at once (each names itself by `dbId` or `uri`). */
  async updateAll(bundleId: number, artifacts: SoftwareArtifact[], options: { recursive?: boolean } = {}): Promise<SoftwareArtifacts> {
    return this.c.call("mySoftwareArtifact_updateAll", { msid: bundleId }, { body: { softwareArtifacts: artifacts }, query: { recursive: options.recursive } });
  }
  async delete(bundleId: number, artifactId: number): Promise<void> {
    return this.c.call("mySoftwareArtifact_delete", { msid: bundleId, said: artifactId });
  }
  async deleteAll(bundleId: number): Promise<void> {
    return this.c.call("mySoftwareArtifact_deleteAll", { msid: bundleId });
  }
  /** Streams a file's bytes (a path or a stream) into a file artifact, as `fileName`. */
  async upload(bundleId: number, artifactId: number, fileName: string, source: string | Readable, options: Omit<UploadOptions, "operationId"> = {}): Promise<SoftwareArtifact> {
    const url = this.c.operationUrl("mySoftwareArtifact_upload", { msid: bundleId, said: artifactId, fileName });
    return uploadBytes(this.c.transport, url, source, { ...options, operationId: "mySoftwareArtifact_upload" });
  }
  /**
   * Downloads a file artifact's bytes to `file` (resumable, see `DownloadOptions`). With
   * `fileName`, the request names the file (`.../bin/<fileName>`) and fails if it differs.
   */
  async download(bundleId: number, artifactId: number, file: string, options: Omit<DownloadOptions, "operationId"> & { fileName?: string } = {}): Promise<DownloadResult> {
    const { fileName, ...rest } = options;
    const op: OperationId = fileName === undefined ? "mySoftwareArtifact_download" : "mySoftwareArtifact_downloadFile";
    const url = this.c.operationUrl(op, { msid: bundleId, said: artifactId, ...(fileName === undefined ? {} : { fileName }) });
    return downloadToFile(this.c.transport, url, file, { ...rest, operationId: op });
  }
}

/** `containerTemplate_*`. */
export class TemplatesApi {
  constructor(private readonly c: KilnClient) {}
  async list(bundleId: number, criteria?: ListCriteria): Promise<ContainerTemplates> {
    return this.c.call("containerTemplate_getAll", { msid: bundleId }, { query: criteriaQuery(criteria) });
  }
  /** A template of the bundle on a distribution (`{ distribution: { uri } }` or its name, version and arch). */
  async create(bundleId: number, template: ContainerTemplate): Promise<ContainerTemplate> {
    return this.c.call("containerTemplate_create", { msid: bundleId }, { body: template });
  }
  async get(ref: TemplateRef | HasUri | string): Promise<ContainerTemplate> {
    const r = templateRef(ref);
    return this.c.call("containerTemplate_get", { msid: r.bundleId, tid: r.templateId });
  }
  /** Deletes a template and its images. */
  async delete(ref: TemplateRef | HasUri | string): Promise<void> {
    const r = templateRef(ref);
    return this.c.call("containerTemplate_delete", { msid: r.bundleId, tid: r.templateId });
  }
  /** The container formats the bundle's restriction rule allows for this template. */
  async formats(ref: TemplateRef | HasUri | string): Promise<TargetFormats> {
    const r = templateRef(ref);
    return this.c.call("containerTemplateTargetFormat_getAll", { msid: r.bundleId, tid: r.templateId });
  }
  /** Finds a template by id alone, searching the bundles (or only `bundleId`'s). */
  async find(templateId: number, bundleId?: number): Promise<ContainerTemplate> {
    const bundles = bundleId !== undefined ? [bundleId] : ((await this.c.bundles.list()).mySoftwareList ?? []).map((b) => b.dbId!);
    for (const msid of bundles) {
      const found = ((await this.list(msid)).containerTemplates ?? []).find((t) => t.dbId === templateId);
      if (found) return found;
    }
    throw notFound(`no container template ${templateId}${bundleId !== undefined ? ` in software bundle ${bundleId}` : ""}`, this.c);
  }
}

/** `containerTemplate_generate`, `containerTemplateImage*`, `userMachineImage*`. */
export class ImagesApi {
  constructor(private readonly c: KilnClient) {}
  /** Every image of the user. */
  async list(): Promise<Images> {
    return this.c.call("userMachineImage_getAll");
  }
  /** The statuses of every image of the user. */
  async statuses(): Promise<OpStatuses> {
    return this.c.call("userMachineImageStatus_get");
  }
  /** Starts a generation: `{ targetFormat: { name: "Docker" }, compress: true, entrypoint: '["/bin/app"]' }`. */
  async generate(template: TemplateRef | HasUri | string, image: Image): Promise<Image> {
    const r = templateRef(template);
    return this.c.call("containerTemplate_generate", { msid: r.bundleId, tid: r.templateId }, { body: image });
  }
  /** An image; once complete and compressed, its `downloadUri` carries a one-time `downloadId`. */
  async get(ref: ImageRef | HasUri | string): Promise<Image> {
    return this.c.call("containerTemplateImage_get", imageParams(ref));
  }
  /** Deletes an image (a generation still running is cancelled). */
  async delete(ref: ImageRef | HasUri | string): Promise<void> {
    return this.c.call("containerTemplateImage_delete", imageParams(ref));
  }
  async status(ref: ImageRef | HasUri | string): Promise<OpStatus> {
    return this.c.call("containerTemplateImageGeneration_get", imageParams(ref));
  }
  /** Cancels a generation; answers the status. */
  async cancel(ref: ImageRef | HasUri | string): Promise<OpStatus> {
    return this.c.call("containerTemplateImageGeneration_cancel", imageParams(ref));
  }
  /** The packages in a complete image. */
  async packages(ref: ImageRef | HasUri | string): Promise<ImagePkgs> {
    return this.c.call("containerTemplateImagePkgs_getAll", imageParams(ref));
  }
  /** Finds an image by id alone (the user's image list). */
  async find(imageId: number): Promise<Image> {
    const found = ((await this.list()).images ?? []).find((i) => i.dbId === imageId);
    if (!found) throw notFound(`no image ${imageId}`, this.c);
    return found;
  }
  /**
   * Downloads a complete, compressed image to `file` (resumable; checked against its sha256).
   * Given an image object with `fileName` and `sha256sum` it is used as is; given a reference the
   * image is read first.
   */
  async download(ref: ImageRef | Image | string, file: string, options: Omit<DownloadOptions, "operationId" | "sha256"> = {}): Promise<DownloadResult> {
    const image = typeof ref === "object" && "fileName" in ref && "sha256sum" in ref ? (ref as Image) : await this.get(ref);
    const params = imageParams(image);
    const op: OperationId = image.fileName ? "containerTemplateImage_downloadFile" : "containerTemplateImage_download";
    const url = this.c.operationUrl(op, { msid: params.msid!, tid: params.tid!, itid: params.tiid!, ...(image.fileName ? { fileName: image.fileName } : {}) });
    return downloadToFile(this.c.transport, url, file, { ...options, ...(image.sha256sum ? { sha256: image.sha256sum } : {}), operationId: op });
  }
  /** The image file as a stream (to pipe elsewhere); not resumable. */
  async open(ref: ImageRef | HasUri | string, options: { signal?: AbortSignal } = {}): Promise<{ stream: Readable; size: number | undefined }> {
    const p = imageParams(ref);
    const url = this.c.operationUrl("containerTemplateImage_download", { msid: p.msid!, tid: p.tid!, itid: p.tiid! });
    return openDownload(this.c.transport, url, { ...options, operationId: "containerTemplateImage_download" });
  }
}

/** What `publications.publish` needs. */
export interface PublishRequest {
  /** The registry account: an account object (its `uri` and `xsiType` are used) or its id. */
  account: AnyCredAccount | number;
  namespace?: string;
  repository: string;
  tag: string;
}

/** `containerTemplateImage_publish`, `containerTemplateImagePublish*`, `userMachineImagePublished*`. */
export class PublicationsApi {
  constructor(private readonly c: KilnClient) {}
  /** Every published image of the user. */
  async list(): Promise<PublishImages> {
    return this.c.call("userMachineImagePublished_getAll");
  }
  async statuses(): Promise<OpStatuses> {
    return this.c.call("userMachineImagePublishedStatus_getAll");
  }
  /**
   * Starts pushing an image to a registry. The publishImage's `xsiType` follows the account's
   * (`CredAccountDocker` → `PublishImageDocker`). Answers the ticket; follow it with `waitFor`.
   */
  async publish(image: ImageRef | HasUri | string, request: PublishRequest): Promise<PublishImage> {
    const account = typeof request.account === "number" ? await this.c.accounts.get(request.account) : request.account;
    const type = account.xsiType === "CredAccountOpenShift" ? "PublishImageOpenShift" : "PublishImageDocker";
    const body = {
      xsiType: type,
      credAccount: { xsiType: account.xsiType ?? "CredAccountDocker", uri: account.uri },
      namespace: request.namespace ?? "",
      repositoryName: request.repository,
      tagName: request.tag,
    };
    return this.c.call("containerTemplateImage_publish", imageParams(image), { body });
  }
  /** Sends any publishImage body as is. */
  async publishRaw(image: ImageRef | HasUri | string, publishImage: PublishImage): Promise<PublishImage> {
    return this.c.call("containerTemplateImage_publish", imageParams(image), { body: publishImage });
  }
  async get(ref: PublicationRef | HasUri | string): Promise<PublishImage> {
    return this.c.call("containerTemplateImagePublished_get", publicationParams(ref));
  }
  async status(ref: PublicationRef | HasUri | string): Promise<OpStatus> {
    return this.c.call("containerTemplateImagePublish_get", publicationParams(ref));
  }
  async cancel(ref: PublicationRef | HasUri | string): Promise<OpStatus> {
    return this.c.call("containerTemplateImagePublish_cancel", publicationParams(ref));
  }
  /** Deletes the record, and the tag from the registry where the registry allows it. */
  async delete(ref: PublicationRef | HasUri | string): Promise<void> {
    return this.c.call("containerTemplateImagePublished_delete", publicationParams(ref));
  }
  /** Finds a published image by id alone. */
  async find(publicationId: number): Promise<PublishImage> {
    const found = ((await this.list()).publishImages ?? []).find((p) => p.dbId === publicationId);
    if (!found) throw notFound(`no published image ${publicationId}`, this.c);
    return found;
  }
}

/** `cloudAccount*`. */
export class AccountsApi {
  constructor(private readonly c: KilnClient) {}
  async list(criteria?: ListCriteria): Promise<CredAccounts> {
    return this.c.call("cloudAccount_getAll", {}, { query: criteriaQuery(criteria) });
  }
  /** A registry account: `{ xsiType: "CredAccountDocker", name, endpointUrl, login, password }` or OpenShift's `registryUrl` and `token`. */
  async create(account: CredAccountDocker | CredAccountOpenShift): Promise<AnyCredAccount> {
    return this.c.call("cloudAccount_create", {}, { body: account });
  }
  async get(id: number): Promise<AnyCredAccount> {
    return this.c.call("cloudAccount_get", { caid: id });
  }
  async update(id: number, patch: CredAccountDocker | CredAccountOpenShift): Promise<AnyCredAccount> {
    return this.c.call("cloudAccount_update", { caid: id }, { body: patch });
  }
  async delete(id: number): Promise<void> {
    return this.c.call("cloudAccount_delete", { caid: id });
  }
  async resources(id: number): Promise<CredAccountResources> {
    return this.c.call("cloudAccountResources_get", { caid: id });
  }
}

/** A not-found from a client-side search, shaped like the server's own. */
function notFound(message: string, c: KilnClient): KilnApiError {
  return new KilnApiError({
    status: 404,
    method: "GET",
    url: c.transport.apiBase.href,
    uforgeError: { statusCode: 404, localizedErrorMsg: { message, messageId: "NotFound" } },
  });
}
