/**
 * The metadata store's contract: row shapes and one small repository interface per object
 * family (role interfaces, not one god store). Implemented once over Kysely for SQLite and
 * PostgreSQL (store.ts); every method is exercised by the shared suite against both.
 *
 * Ownership is part of every query: a user-owned object is always looked up with its owner's
 * id, so one user can never read or change another's objects through this layer.
 */

import type { BootType } from "../domain/artifacts.js";

export interface Timestamps {
  created: Date;
  lastModified: Date;
}

/** Search criteria of every UForge list (`query`, `orderBy`, `descending`, `count`, `offset`). */
export interface ListCriteria {
  /** FIQL (`name=='nginx';version=='1.*'`) over the family's fields (see store/list.ts); malformed: `invalidQuery`. */
  query?: string;
  /** A field name from the family's sortable fields (SORTABLE_FIELDS in store.ts); others are rejected with `invalidQuery`. */
  orderBy?: string;
  descending?: boolean;
  /** Page size; undefined means all. */
  count?: number;
  offset?: number;
}

export interface Page<T> {
  items: T[];
  /** Number of matching rows before `count`/`offset`. */
  total: number;
}

export interface UserRow extends Timestamps {
  id: number;
  login: string;
  email: string | null;
  firstName: string | null;
  surname: string | null;
  /** `scrypt$N$r$p$salt$hash` (see server/passwords.ts); never leaves the server. */
  passwordHash: string;
  admin: boolean;
  active: boolean;
  entitlements: string[];
}
export type NewUser = Omit<UserRow, "id" | "created" | "lastModified">;

export interface ApiKeyRow extends Timestamps {
  id: number;
  userId: number;
  name: string | null;
  description: string | null;
  publicKey: string;
  /** The secret, encrypted with the server key (it is needed to check signatures). */
  secretEnc: string;
}
export type NewApiKey = Omit<ApiKeyRow, "id" | "created" | "lastModified">;

/** A distribution of kiln.yaml, given a stable id the first time it is seen. */
export interface DistributionRow {
  id: number;
  name: string;
  version: string;
  arch: string;
  active: boolean;
  created: Date;
}

export interface BundleRow extends Timestamps {
  id: number;
  userId: number;
  name: string;
  version: string | null;
  description: string | null;
  release: string | null;
  tag: string | null;
  license: string | null;
  defaultInstallLocation: string | null;
  /** The bundle's restriction rule (one per bundle, id = restrictionId). */
  restrictionId: number;
  restrictionRule: string | null;
  /** Made by an import (`hammr bundle import`), not created in the library. */
  imported: boolean;
  /** 1 when made, one more at every change of its fields or rule. */
  revision: number;
}
export type NewBundle = Omit<BundleRow, "id" | "created" | "lastModified" | "restrictionId" | "revision">;

export type ArtifactKind = "file" | "folder";

export interface ArtifactRow extends Timestamps {
  id: number;
  bundleId: number;
  /** The folder artifact this one is nested in, or null at the bundle's top level. */
  parentId: number | null;
  /** Order among siblings (creation order). */
  position: number;
  kind: ArtifactKind;
  /** UForge's `tag` (`softwarefile`, `ospkg`, `bootscript`, ...). */
  tag: string | null;
  name: string;
  fullName: string | null;
  origName: string | null;
  installLocation: string | null;
  extract: boolean;
  install: boolean;
  /** UForge's `params`: owner, group, rights, symlink (a JSON object in text form). */
  params: string | null;
  version: string | null;
  release: string | null;
  arch: string | null;
  mimeType: string | null;
  /** The uploaded bytes in the blob store (`sha256:...`), null until uploaded. */
  blobDigest: string | null;
  size: number | null;
  md5: string | null;
  uploadedTime: Date | null;
  /** Boot scripts only: the order among them (from 0). */
  bootOrder: number | null;
  /** Boot scripts only: run once on the first start, or at every start. */
  bootType: BootType | null;
}
export type NewArtifact = Omit<ArtifactRow, "id" | "created" | "lastModified" | "position">;

export type CloudAccountType = "docker" | "openshift";

export interface CloudAccountRow extends Timestamps {
  id: number;
  userId: number;
  name: string;
  type: CloudAccountType;
  /** Docker: endpointUrl; OpenShift: registryUrl. */
  url: string;
  /** Docker: login; OpenShift: null. */
  login: string | null;
  /** Docker password or OpenShift token, encrypted (AES-256-GCM, server/secrets.ts). */
  secretEnc: string;
}
export type NewCloudAccount = Omit<CloudAccountRow, "id" | "created" | "lastModified">;

export interface TemplateRow extends Timestamps {
  id: number;
  userId: number;
  bundleId: number;
  distributionId: number;
}
export type NewTemplate = Omit<TemplateRow, "id" | "created" | "lastModified">;

/** A one-time download key; only its sha256 is stored. */
export interface DownloadKeyRow {
  keyHash: string;
  userId: number;
  /** What it opens: `artifact:<id>` or `image:<id>`. */
  target: string;
  expiresAt: Date;
}

export interface UserRepo {
  create(u: NewUser): Promise<UserRow>;
  get(id: number): Promise<UserRow | undefined>;
  getByLogin(login: string): Promise<UserRow | undefined>;
  /** The user whose login is `login` whatever the case (logins are unique that way). */
  getByLoginIgnoringCase(login: string): Promise<UserRow | undefined>;
  list(c: ListCriteria & { active?: boolean }): Promise<Page<UserRow>>;
  update(id: number, patch: Partial<NewUser>): Promise<UserRow | undefined>;
  /** Deletes the user and everything of theirs (API keys, bundles, cloud accounts, templates, download keys). */
  delete(id: number): Promise<boolean>;
}

export interface ApiKeyRepo {
  create(k: NewApiKey): Promise<ApiKeyRow>;
  get(userId: number, id: number): Promise<ApiKeyRow | undefined>;
  getByPublicKey(publicKey: string): Promise<ApiKeyRow | undefined>;
  list(userId: number, c: ListCriteria): Promise<Page<ApiKeyRow>>;
  update(userId: number, id: number, patch: Partial<Pick<ApiKeyRow, "name" | "description">>): Promise<ApiKeyRow | undefined>;
  delete(userId: number, id: number): Promise<boolean>;
}

export interface DistributionRepo {
  /** Inserts the ones not yet known (by name+version+arch), marks the rest inactive; returns all active. */
  sync(dists: Array<Pick<DistributionRow, "name" | "version" | "arch">>): Promise<DistributionRow[]>;
  get(id: number): Promise<DistributionRow | undefined>;
  list(c: ListCriteria): Promise<Page<DistributionRow>>;
  setActive(id: number, active: boolean): Promise<DistributionRow | undefined>;
}

export interface BundleRepo {
  create(b: NewBundle): Promise<BundleRow>;
  get(userId: number, id: number): Promise<BundleRow | undefined>;
  list(userId: number, c: ListCriteria): Promise<Page<BundleRow>>;
  update(userId: number, id: number, patch: Partial<NewBundle>): Promise<BundleRow | undefined>;
  /** Sets the restriction rule; undefined if the restriction id is not this bundle's. */
  setRestriction(userId: number, bundleId: number, restrictionId: number, rule: string | null): Promise<BundleRow | undefined>;
  /** Copies the bundle, its restriction and its whole artifact tree (blobs are shared). */
  clone(userId: number, id: number, overrides: Partial<NewBundle>): Promise<BundleRow | undefined>;
  /** Deletes the bundle and everything that hangs from it (artifacts, templates). */
  delete(userId: number, id: number): Promise<boolean>;
}

export interface ArtifactRepo {
  create(a: NewArtifact): Promise<ArtifactRow>;
  /** By id within a bundle (any depth). */
  get(bundleId: number, id: number): Promise<ArtifactRow | undefined>;
  /** Every artifact of the bundle, ordered by (parentId, position) so a tree can be rebuilt. */
  listAll(bundleId: number): Promise<ArtifactRow[]>;
  /** The artifacts of several bundles at once (a page of a bundle list), in `listAll`'s order per bundle. */
  listAllOf(bundleIds: readonly number[]): Promise<ArtifactRow[]>;
  update(bundleId: number, id: number, patch: Partial<NewArtifact>): Promise<ArtifactRow | undefined>;
  /** Deletes the artifact and its descendants. */
  delete(bundleId: number, id: number): Promise<boolean>;
  deleteAll(bundleId: number): Promise<number>;
  /** Whether any artifact references the blob (for blob garbage collection). */
  referencesBlob(digest: string): Promise<boolean>;
}

export interface CloudAccountRepo {
  create(a: NewCloudAccount): Promise<CloudAccountRow>;
  get(userId: number, id: number): Promise<CloudAccountRow | undefined>;
  list(userId: number, c: ListCriteria): Promise<Page<CloudAccountRow>>;
  update(userId: number, id: number, patch: Partial<NewCloudAccount>): Promise<CloudAccountRow | undefined>;
  delete(userId: number, id: number): Promise<boolean>;
}

export interface TemplateRepo {
  create(t: NewTemplate): Promise<TemplateRow>;
  get(userId: number, bundleId: number, id: number): Promise<TemplateRow | undefined>;
  list(userId: number, bundleId: number, c: ListCriteria): Promise<Page<TemplateRow>>;
  delete(userId: number, bundleId: number, id: number): Promise<boolean>;
}

export interface DownloadKeyRepo {
  create(k: DownloadKeyRow): Promise<void>;
  /**
   * Atomically removes the key and returns it if it exists, opens `target` and has not expired
   * at `now`; two concurrent calls for one key: exactly one gets it.
   */
  consume(keyHash: string, target: string, now: Date): Promise<DownloadKeyRow | undefined>;
  /** Checks a key without consuming it (HEAD requests). */
  peek(keyHash: string, target: string, now: Date): Promise<DownloadKeyRow | undefined>;
  deleteExpired(now: Date): Promise<number>;
  deleteForTarget(target: string): Promise<number>;
}

/** A console sign-in session; stored by the sha256 of its token only. */
export interface SessionRow {
  tokenHash: string;
  userId: number;
  /** Sent back by the console on every state-changing request (`X-Kiln-CSRF`). */
  csrfToken: string;
  created: Date;
  lastSeen: Date;
  expiresAt: Date;
}

export interface SessionRepo {
  create(s: SessionRow): Promise<void>;
  /** The session if it exists and has not expired at `now`. */
  get(tokenHash: string, now: Date): Promise<SessionRow | undefined>;
  /** Records use: moves `lastSeen` and `expiresAt` (only forward). */
  touch(tokenHash: string, lastSeen: Date, expiresAt: Date): Promise<void>;
  delete(tokenHash: string): Promise<boolean>;
  deleteExpired(now: Date): Promise<number>;
}

export type JobKind = "generate" | "publish";
/** `queued` → `running` → one of the three ends; a queued job may also go straight to `cancelled`. */
export type JobState = "queued" | "running" | "complete" | "error" | "cancelled";

/** A unit of asynchronous work (a generation or a publication) and its progress: an OpStatus. */
export interface JobRow extends Timestamps {
  id: number;
  kind: JobKind;
  userId: number;
  state: JobState;
  /** 0–100, never decreasing while the job runs. */
  percentage: number;
  message: string | null;
  /** One line a user can act on. */
  errorMessage: string | null;
  /** The chain of causes. */
  detailedError: string | null;
  eta: Date | null;
  bytesLoaded: number | null;
  bytesTotal: number | null;
  /** How many times a worker has started it (a restart may resume a job). */
  attempts: number;
  cancelRequested: boolean;
  startedAt: Date | null;
  finishedAt: Date | null;
  /** The worker holding the job while it runs (null when no one does). */
  leaseOwner: string | null;
  /** When the holder's claim lapses unless renewed. */
  leaseExpires: Date | null;
  /** The fencing token of the current claim: writes for the job present it (see JobRepo.fence). */
  leaseToken: number;
}

/** How a worker claims: who it is, for how long a claim holds, and when a job is given up. */
export interface JobLease {
  owner: string;
  ms: number;
  /** A job claimed this many times whose lease lapses again fails with `interruptedMessage`. */
  maxAttempts: number;
  interruptedMessage: string;
}

export interface JobProgress {
  percentage?: number;
  message?: string;
  eta?: Date | null;
  bytesLoaded?: number;
  bytesTotal?: number;
}

export interface JobRepo {
  create(j: { kind: JobKind; userId: number }): Promise<JobRow>;
  get(id: number): Promise<JobRow | undefined>;
  /**
   * Atomically takes the oldest job of these kinds that is queued, or running under a lease that
   * has lapsed (its worker died): running, attempts + 1, a new fencing token, leased to
   * `lease.owner` for `lease.ms`. Lapsed jobs that must not run again end first (cancelled when a
   * cancel was asked, failed after `maxAttempts`). Concurrent claimers never get the same job.
   */
  claimNext(kinds: JobKind[], lease?: JobLease): Promise<JobRow | undefined>;
  /**
   * Extends the lease of a job its holder still holds (`token`); undefined when the lease was
   * taken over or the job ended (the holder must stop), else whether a cancel was asked.
   */
  renew(id: number, token: number, ms: number): Promise<{ cancelRequested: boolean } | undefined>;
  /**
   * Inside a transaction: holds the job's row until the transaction ends and fails with
   * `conflict` unless the job is running under `token` — the fence that makes a worker whose
   * lease was taken over unable to write the job's results.
   */
  fence(id: number, token: number): Promise<void>;
  /** Gives a running job back to the queue (a worker shutting down); false if it was not held under `token`. */
  release(id: number, token: number): Promise<boolean>;
  /**
   * Lets every lease lapse now: for a process that knows no other worker is alive (the single
   * process on SQLite, at start), so that the jobs it left running resume at once.
   */
  expireLeases(): Promise<number>;
  /** Records progress of a running job (held under `token`, when given); the percentage never goes down. */
  progress(id: number, p: JobProgress, token?: number): Promise<void>;
  /**
   * Ends a queued or running job (a complete one shows `message`, default "complete"); undefined
   * if it had already ended, or, with `token`, if it is no longer held under that token.
   */
  finish(id: number, end: { state: "complete" | "error" | "cancelled"; message?: string; errorMessage?: string; detailedError?: string }, token?: number): Promise<JobRow | undefined>;
  /** A queued job is cancelled at once; a running one is flagged for its worker (and its worker told). */
  requestCancel(id: number): Promise<JobRow | undefined>;
  /** Jobs whose `lastModified` is at or after `since`, oldest change first, at most `limit`. */
  listChangedSince(since: Date, limit: number): Promise<JobRow[]>;
  delete(id: number): Promise<boolean>;
}

export interface ImagePackage {
  name: string;
  version: string;
  arch: string;
  /** Where it came from: the distribution's repository, or the bundle's own `.deb` files. */
  origin?: "distribution" | "bundle";
  /** 0: asked for (profile, bundle `.deb`, Essential); 1: installed as a dependency (UForge's imagePkg `level`). */
  level?: 0 | 1;
  /** When the `.deb` was built (ISO 8601; imagePkg's `pkgBuildDate`); absent for images generated before Kiln kept it. */
  buildDate?: string | undefined;
}

export interface ImageRow extends Timestamps {
  id: number;
  userId: number;
  bundleId: number;
  templateId: number;
  distributionId: number;
  jobId: number;
  /** Container format id (domain/formats.ts). */
  formatId: number;
  compress: boolean;
  /** Exec-form entrypoint as JSON text (`["/bin/sh"]`), or null. */
  entrypoint: string | null;
  name: string;
  version: string | null;
  /** 1, 2, ... per template. */
  revision: number;
  /** The downloadable file (compressed images only), once complete. */
  fileName: string | null;
  fileSize: number | null;
  fileDigest: string | null;
  /** The image in the blob store (OCI manifest digest), once complete; what publication pushes. */
  manifestDigest: string | null;
  /** Sum of the uncompressed layers. */
  installedSize: number | null;
  /** Every package in the image, once complete. */
  packages: ImagePackage[] | null;
  /** The build report (JSON blob: script effects and their outcomes), once complete. */
  reportDigest: string | null;
  /** The SBOM (SPDX 2.3 JSON blob), once complete. */
  sbomDigest: string | null;
  /** With a registry blob store: the reference the image is tagged under there, once complete. */
  registryReference: string | null;
  /**
   * A multi-architecture image: the architectures asked for (UForge names, the template's among
   * them); its `manifestDigest` is an OCI image index. Null: the template's architecture alone.
   */
  architectures: string[] | null;
}
export type NewImage = Omit<ImageRow, "id" | "created" | "lastModified" | "revision" | "fileName" | "fileSize" | "fileDigest" | "manifestDigest" | "installedSize" | "packages" | "reportDigest" | "sbomDigest" | "registryReference" | "architectures"> & {
  architectures?: string[] | null;
};

export interface ImageRepo {
  /** Creates the image with the next revision of its template. */
  create(i: NewImage): Promise<ImageRow>;
  get(userId: number, templateId: number, id: number): Promise<ImageRow | undefined>;
  /** By id alone: for workers, never for requests. */
  getById(id: number): Promise<ImageRow | undefined>;
  getByJob(jobId: number): Promise<ImageRow | undefined>;
  listByTemplate(userId: number, templateId: number): Promise<ImageRow[]>;
  listByUser(userId: number): Promise<ImageRow[]>;
  update(id: number, patch: Partial<Pick<ImageRow, "fileName" | "fileSize" | "fileDigest" | "manifestDigest" | "installedSize" | "packages" | "reportDigest" | "sbomDigest" | "registryReference">>): Promise<ImageRow | undefined>;
  /** Deletes the image, its job and its publications (and their jobs). */
  delete(userId: number, id: number): Promise<boolean>;
  /** Whether any image still needs the blob (as its download file or its manifest). */
  referencesBlob(digest: string): Promise<boolean>;
  /** Whether an image is tagged `reference` in a registry blob store (its registryReference). */
  referencesTag(reference: string): Promise<boolean>;
  /** The images whose generation has not ended (queued or running): they may be tagging right now. */
  listGenerating(): Promise<ImageRow[]>;
}

export interface PublicationRow extends Timestamps {
  id: number;
  userId: number;
  imageId: number;
  /** The cloud account used (its row may since have been deleted). */
  accountId: number;
  formatId: number;
  namespace: string;
  repository: string;
  tag: string;
  jobId: number;
  /** `host/namespace/repository@sha256:...`, once done. */
  cloudId: string | null;
  /** `host/namespace/repository:tag`, once done. */
  registeringName: string | null;
  /** The registry host the account pointed at when this was published. */
  registry: string;
}
export type NewPublication = Omit<PublicationRow, "id" | "created" | "lastModified" | "cloudId" | "registeringName">;

export interface PublicationRepo {
  create(p: NewPublication): Promise<PublicationRow>;
  get(userId: number, imageId: number, id: number): Promise<PublicationRow | undefined>;
  getById(id: number): Promise<PublicationRow | undefined>;
  getByJob(jobId: number): Promise<PublicationRow | undefined>;
  listByImage(userId: number, imageId: number): Promise<PublicationRow[]>;
  listByUser(userId: number): Promise<PublicationRow[]>;
  update(id: number, patch: Partial<Pick<PublicationRow, "cloudId" | "registeringName">>): Promise<PublicationRow | undefined>;
  /** Deletes the publication and its job. */
  delete(userId: number, id: number): Promise<boolean>;
  /** Repositories this account completed pushes to on `registry` (sources for cross-repository mounts). */
  pushedRepositories(accountId: number, registry: string): Promise<string[]>;
}

/**
 * Locks on blob digests, taken inside a transaction and held until it ends: the one way to make
 * "reference a blob" and "collect an unreferenced blob" exclude each other (store/blob-gc.ts).
 */
export interface BlobLockRepo {
  /** Takes the lock on `digest` (waiting for another transaction that holds it). */
  lock(digest: string): Promise<void>;
  /** Forgets the lock row (after the blob is gone); the lock itself is held until the transaction ends. */
  forget(digest: string): Promise<void>;
}

/** A blob of the blob store (named by its digest) or a registry tag (by its reference, `host/repository:tag`). */
export type LeftoverKind = "blob" | "tag";

/** A blob or registry tag whose deletion failed after the objects naming it were deleted. */
export interface LeftoverRow {
  id: number;
  kind: LeftoverKind;
  name: string;
  /** Tries that failed so far, the first one included. */
  attempts: number;
  lastError: string | null;
  /** When the next try is due; while a sweeper holds the row, until when its claim holds. */
  nextAttempt: Date;
  created: Date;
}

/**
 * The durable record of what is left to delete (store/migrations/013-registry-leftovers.ts).
 * Several sweepers (one per process that runs jobs) share it: each claims a due row by moving
 * its next attempt forward with a conditional UPDATE, and ends its try only under that claim.
 */
export interface LeftoverRepo {
  /** Records a failed deletion (one more attempt when the row exists); the next try is due in `delayMs`. */
  record(kind: LeftoverKind, name: string, error: string, delayMs: number): Promise<void>;
  /** Claims at most `limit` due rows, each held for `holdMs`; the rows as claimed (their claim is their nextAttempt). */
  claimDue(limit: number, holdMs: number): Promise<LeftoverRow[]>;
  /** Ends a failed try of a claimed row: one more attempt, the next due in `delayMs`. False when the claim was lost. */
  retryLater(claim: LeftoverRow, error: string, delayMs: number): Promise<boolean>;
  /** Drops a claimed row (its blob or tag is gone, or no longer to delete). False when the claim was lost. */
  forget(claim: LeftoverRow): Promise<boolean>;
  list(): Promise<LeftoverRow[]>;
}

/** What a bundle carries besides its artifacts: a license file and a logo. */
export type BundleFileKind = "license" | "logo";

export interface BundleFileRow extends Timestamps {
  id: number;
  bundleId: number;
  kind: BundleFileKind;
  fileName: string;
  mimeType: string;
  blobDigest: string;
  size: number;
  md5: string;
}
export type NewBundleFile = Omit<BundleFileRow, "id" | "created" | "lastModified">;

export interface BundleFileRepo {
  list(bundleId: number): Promise<BundleFileRow[]>;
  /** The files of several bundles at once. */
  listOf(bundleIds: readonly number[]): Promise<BundleFileRow[]>;
  get(bundleId: number, kind: BundleFileKind): Promise<BundleFileRow | undefined>;
  /** Sets the bundle's file of this kind (replacing the one before); returns the new row. */
  put(f: NewBundleFile): Promise<BundleFileRow>;
  delete(bundleId: number, kind: BundleFileKind): Promise<boolean>;
  referencesBlob(digest: string): Promise<boolean>;
}

export type BundleImportState = "waiting" | "complete" | "error";

export interface BundleImportRow extends Timestamps {
  id: number;
  userId: number;
  imported: boolean;
  state: BundleImportState;
  message: string | null;
  errorMessage: string | null;
  bundleId: number | null;
  size: number | null;
  sha256: string | null;
  md5: string | null;
  uploadedTime: Date | null;
}

export interface BundleImportRepo {
  create(userId: number, imported: boolean): Promise<BundleImportRow>;
  get(userId: number, id: number): Promise<BundleImportRow | undefined>;
  update(userId: number, id: number, patch: Partial<Pick<BundleImportRow, "state" | "message" | "errorMessage" | "bundleId" | "size" | "sha256" | "md5" | "uploadedTime">>): Promise<BundleImportRow | undefined>;
}

export interface BundleExportRow extends Timestamps {
  id: number;
  userId: number;
  bundleId: number;
  format: "yaml" | "json";
}

export interface BundleExportRepo {
  create(userId: number, bundleId: number, format: BundleExportRow["format"]): Promise<BundleExportRow>;
  get(userId: number, bundleId: number, id: number): Promise<BundleExportRow | undefined>;
  delete(userId: number, bundleId: number, id: number): Promise<boolean>;
}

/** The whole store: the repositories plus lifecycle. */
export interface Store {
  readonly dialect: "sqlite" | "postgres";
  readonly users: UserRepo;
  readonly apiKeys: ApiKeyRepo;
  readonly distributions: DistributionRepo;
  readonly bundles: BundleRepo;
  readonly artifacts: ArtifactRepo;
  readonly cloudAccounts: CloudAccountRepo;
  readonly templates: TemplateRepo;
  readonly downloadKeys: DownloadKeyRepo;
  readonly jobs: JobRepo;
  readonly images: ImageRepo;
  readonly publications: PublicationRepo;
  readonly sessions: SessionRepo;
  readonly blobLocks: BlobLockRepo;
  readonly leftovers: LeftoverRepo;
  readonly bundleFiles: BundleFileRepo;
  readonly bundleImports: BundleImportRepo;
  readonly bundleExports: BundleExportRepo;
  /**
   * A counter that moves after every write through this store (and every `bump()`): anything
   * derived from reads — a cached answer, a cached login — is current only while it has not moved.
   */
  readonly generation: number;
  /** Marks derived state stale (for changes made outside the store, e.g. in-memory configuration). */
  bump(): void;
  /** Runs `fn` in one transaction, with repositories bound to it. */
  transaction<T>(fn: (tx: StoreRepositories) => Promise<T>): Promise<T>;
  /** Resolves when the database answers a query; else rejects with `unavailable` (or `insufficientStorage`). */
  ping(): Promise<void>;
  /**
   * Calls `onEvent` with what other processes say about jobs (`queued`, `cancel:<id>`, `complete:<id>`; and
   * `reconnected` after a lost connection, when something may have been missed): PostgreSQL's
   * LISTEN/NOTIFY. On SQLite (one process) nothing arrives. Resolves once listening.
   */
  listen(onEvent: (event: string) => void): Promise<{ close(): Promise<void> }>;
  close(): Promise<void>;
}

/** The repositories alone, as a transaction binds them. */
export type StoreRepositories = Omit<Store, "transaction" | "ping" | "listen" | "close" | "dialect" | "generation" | "bump">;
