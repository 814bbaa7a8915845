/**
 * The tables as Kysely sees them (snake_case, as stored). Only the repositories read these
 * shapes; everything outside src/store/ sees the camelCase rows of types.ts.
 *
 * Two storage choices make one schema work unchanged on SQLite and PostgreSQL:
 * - Timestamps are `bigint` milliseconds since the epoch: exact round-trips to `Date` on both,
 *   and plain integer ordering. PostgreSQL hands `bigint` back as a string, hence `number | string`.
 * - Booleans are `boolean` columns (a real boolean in PostgreSQL, 0/1 in SQLite) and are always
 *   written as 0/1: better-sqlite3 cannot bind a JS boolean, and PostgreSQL's boolean input
 *   accepts '1'/'0'. They read back as `true`/`false` or `1`/`0`, normalised by the row mappers.
 */
import type { ColumnType, Generated } from "kysely";

/** `bigint`: written as a number, read as a number (SQLite) or a decimal string (PostgreSQL). */
export type Int8 = ColumnType<number | string, number, number>;
export type NullableInt8 = ColumnType<number | string | null, number | null, number | null>;
/** `boolean`: written as 0/1, read as a boolean (PostgreSQL) or 0/1 (SQLite). */
export type Bool = ColumnType<boolean | number, 0 | 1, 0 | 1>;

export interface UsersTable {
  id: Generated<number>;
  login: string;
  email: string | null;
  first_name: string | null;
  surname: string | null;
  password_hash: string;
  admin: Bool;
  active: Bool;
  /** JSON array of entitlement names. */
  entitlements: string;
  created: Int8;
  last_modified: Int8;
}

export interface ApiKeysTable {
  id: Generated<number>;
  user_id: number;
  name: string | null;
  description: string | null;
  public_key: string;
  secret_enc: string;
  created: Int8;
  last_modified: Int8;
}

export interface DistributionsTable {
  id: Generated<number>;
  name: string;
  version: string;
  arch: string;
  active: Bool;
  created: Int8;
}

/** Hands out restriction ids: their own id space, never reused (clones get fresh ones). */
export interface RestrictionIdsTable {
  id: Generated<number>;
}

export interface BundlesTable {
  id: Generated<number>;
  user_id: number;
  name: string;
  version: string | null;
  description: string | null;
  release: string | null;
  tag: string | null;
  license: string | null;
  default_install_location: string | null;
  restriction_id: number;
  restriction_rule: string | null;
  /** Defaults to false: bundles made before imports existed were not imported. */
  imported: ColumnType<boolean | number, 0 | 1 | undefined, 0 | 1>;
  /** 1 when made, one more at every change (migration 012). */
  revision: Generated<number>;
  created: Int8;
  last_modified: Int8;
}

/** A bundle's license or logo file (one of each at most). */
export interface BundleFilesTable {
  id: Generated<number>;
  bundle_id: number;
  kind: string;
  file_name: string;
  mime_type: string;
  blob_digest: string;
  size: Int8;
  md5: string;
  created: Int8;
  last_modified: Int8;
}

/** An import ticket: the archive uploaded to it becomes a bundle. */
export interface BundleImportsTable {
  id: Generated<number>;
  user_id: number;
  imported: Bool;
  state: string;
  message: string | null;
  error_message: string | null;
  bundle_id: number | null;
  size: NullableInt8;
  sha256: string | null;
  md5: string | null;
  uploaded_time: NullableInt8;
  created: Int8;
  last_modified: Int8;
}

/** An export ticket: a bundle to be downloaded as an archive. */
export interface BundleExportsTable {
  id: Generated<number>;
  user_id: number;
  bundle_id: number;
  format: string;
  created: Int8;
  last_modified: Int8;
}

export interface ArtifactsTable {
  id: Generated<number>;
  bundle_id: number;
  parent_id: number | null;
  position: number;
  kind: string;
  tag: string | null;
  name: string;
  full_name: string | null;
  orig_name: string | null;
  install_location: string | null;
  extract: Bool;
  install: Bool;
  params: string | null;
  version: string | null;
  release: string | null;
  arch: string | null;
  mime_type: string | null;
  blob_digest: string | null;
  size: NullableInt8;
  md5: string | null;
  uploaded_time: NullableInt8;
  boot_order: number | null;
  boot_type: string | null;
  created: Int8;
  last_modified: Int8;
}

export interface CloudAccountsTable {
  id: Generated<number>;
  user_id: number;
  name: string;
  type: string;
  url: string;
  login: string | null;
  secret_enc: string;
  created: Int8;
  last_modified: Int8;
}

export interface TemplatesTable {
  id: Generated<number>;
  user_id: number;
  bundle_id: number;
  distribution_id: number;
  created: Int8;
  last_modified: Int8;
}

export interface DownloadKeysTable {
  key_hash: string;
  user_id: number;
  target: string;
  expires_at: Int8;
}

export interface JobsTable {
  id: Generated<number>;
  kind: string;
  user_id: number;
  state: string;
  percentage: number;
  message: string | null;
  error_message: string | null;
  detailed_error: string | null;
  eta: NullableInt8;
  bytes_loaded: NullableInt8;
  bytes_total: NullableInt8;
  attempts: number;
  cancel_requested: Bool;
  started_at: NullableInt8;
  finished_at: NullableInt8;
  created: Int8;
  last_modified: Int8;
  /** Who holds the job while it runs (migration 009). */
  lease_owner: string | null;
  /** Until when (ms since the epoch) the claim holds unless renewed; null counts as expired. */
  lease_expires: NullableInt8;
  /** The fencing token: one more at every claim. */
  lease_token: ColumnType<number | string, number | undefined, number>;
}

export interface ImagesTable {
  id: Generated<number>;
  user_id: number;
  bundle_id: number;
  template_id: number;
  distribution_id: number;
  job_id: number;
  format_id: number;
  compress: Bool;
  entrypoint: string | null;
  name: string;
  version: string | null;
  revision: number;
  file_name: string | null;
  file_size: NullableInt8;
  file_digest: string | null;
  manifest_digest: string | null;
  installed_size: NullableInt8;
  /** JSON array of {name, version, arch}. */
  packages: string | null;
  /** Blob digests of the build report and the SBOM (JSON documents). */
  report_digest: string | null;
  architectures: string | null;
  sbom_digest: string | null;
  /** Where the image is tagged in a registry blob store (migration 012). */
  registry_reference: string | null;
  created: Int8;
  last_modified: Int8;
}

export interface PublicationsTable {
  id: Generated<number>;
  user_id: number;
  image_id: number;
  account_id: number;
  format_id: number;
  namespace: string;
  repository: string;
  tag: string;
  registry: string;
  job_id: number;
  cloud_id: string | null;
  registering_name: string | null;
  created: Int8;
  last_modified: Int8;
}

export interface SessionsTable {
  token_hash: string;
  user_id: number;
  csrf_token: string;
  created: Int8;
  last_seen: Int8;
  expires_at: Int8;
}

/** A blob digest being referenced or collected (its row is the lock; see BlobLockRepo). */
export interface BlobLocksTable {
  digest: string;
}

/** A blob or registry tag whose deletion failed, to be tried again (see LeftoverRepo). */
export interface RegistryLeftoversTable {
  id: Generated<number>;
  kind: string;
  name: string;
  attempts: number;
  last_error: string | null;
  next_attempt: Int8;
  created: Int8;
}

/** Every table of the metadata store, by name. */
export interface KilnDatabase {
  users: UsersTable;
  api_keys: ApiKeysTable;
  distributions: DistributionsTable;
  restriction_ids: RestrictionIdsTable;
  bundles: BundlesTable;
  artifacts: ArtifactsTable;
  cloud_accounts: CloudAccountsTable;
  templates: TemplatesTable;
  download_keys: DownloadKeysTable;
  jobs: JobsTable;
  images: ImagesTable;
  publications: PublicationsTable;
  sessions: SessionsTable;
  blob_locks: BlobLocksTable;
  registry_leftovers: RegistryLeftoversTable;
  bundle_files: BundleFilesTable;
  bundle_imports: BundleImportsTable;
  bundle_exports: BundleExportsTable;
}
