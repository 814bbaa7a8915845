/**
 * The metadata store's contract: row shapes and one small repository interface per object
 * family (role interfaces, not one god store). Implemented once over Kysely for SQLite and
 * PostgreSQL (store.ts); every method is exercised by the shared suite against both.
 *
 * Ownership is part of every query: a user-owned object is always looked up with its owner's
 * id, so one user can never read or change another's objects through this layer.
 */

export interface Timestamps {
  created: Date;
  lastModified: Date;
}

/** Search criteria of every UForge list (`query`, `orderBy`, `descending`, `count`, `offset`). */
export interface ListCriteria {
  /** Case-insensitive substring matched against the family's searchable text columns. */
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
}
export type NewBundle = Omit<BundleRow, "id" | "created" | "lastModified" | "restrictionId">;

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
  update(bundleId: number, id: number, patch: Partial<NewArtifact>): Promise<ArtifactRow | undefined>;
  /** Deletes the artifact and its descendants. */
  delete(bundleId: number, id: number): Promise<boolean>;
  deleteAll(bundleId: number): Promise<number>;
  /** Every blob digest referenced by any artifact (for blob garbage collection). */
  referencedBlobs(): Promise<string[]>;
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
  /** Runs `fn` in one transaction, with repositories bound to it. */
  transaction<T>(fn: (tx: Omit<Store, "transaction" | "close" | "dialect">) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}
