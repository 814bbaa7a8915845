/**
 * What the library's operations work over: the metadata store, the blob store, the distributions
 * on offer, the job runner, the key that seals secrets at rest, and the limits of the
 * configuration. The API builds one at start-up; tests may build their own.
 */
import type { BlobStore } from "../blobs/blob-store.js";
import type { EgressPolicy } from "../registry/egress.js";
import type { JobRow, Store } from "../store/types.js";
import type { DistributionCatalog } from "./catalog.js";

/** Encrypts secrets at rest (server/secrets.ts's SecretBox). */
export interface Sealer {
  encrypt(plain: string): string;
  decrypt(sealed: string): string;
}

/** What the library asks of the job runner. */
export interface JobControl {
  /** Looks for queued work now (after a job was enqueued). */
  wake(): void;
  /** Cancels a job (a queued one at once, a running one once its worker stops); the job as it now stands. */
  cancel(jobId: number): Promise<JobRow | undefined>;
}

/**
 * Where an operation reports what it could not do and does not fail for (the request's logger):
 * a registry that refused or could not be reached to delete a tag.
 */
export interface OperationLog {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

export interface LibraryDeps {
  store: Store;
  blobs: BlobStore;
  catalog: DistributionCatalog;
  secrets: Sealer;
  /** Where the registries of users' accounts may be reached (KILN_PUBLISH_ALLOW). */
  egress: EgressPolicy;
  /** Absent in a process that serves metadata only (generation and publication are refused). */
  jobs?: JobControl;
  limits: {
    /** Largest upload (KILN_MAX_UPLOAD). */
    maxUpload: number;
    /** How long a one-time download key stays valid (KILN_DOWNLOAD_KEY_TTL). */
    downloadKeyTtlMs: number;
  };
}
