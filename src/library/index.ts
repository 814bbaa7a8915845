/**
 * The library: Kiln's operations on a user's software and what is made of it — bundles,
 * artifacts, templates, images, publications, cloud accounts, and the distributions they are
 * built on. Operations take and return UForge's wire types (src/wire/schema.generated.ts), work
 * over the store, the blob store and the job runner, and make each change in one transaction.
 * The HTTP API (src/api/) decodes a request, calls one operation and encodes its answer.
 */
import { accountOperations } from "./accounts.js";
import { artifactOperations } from "./artifacts.js";
import { bundleFileOperations } from "./bundle-files.js";
import { bundleOperations } from "./bundles.js";
import type { LibraryDeps } from "./context.js";
import { distributionOperations } from "./distributions.js";
import { exportOperations } from "./exports.js";
import { imageOperations } from "./images.js";
import { importOperations } from "./imports.js";
import { organisationOperations } from "./organisation.js";
import { publicationOperations } from "./publications.js";
import { templateOperations } from "./templates.js";

export type { JobControl, LibraryDeps, Sealer } from "./context.js";
export type { StoredFile } from "./images.js";
export type { ArtifactRef, BundleRef, ImageRef, PublicationRef, TemplateRef } from "./load.js";

export function openLibrary(deps: LibraryDeps) {
  return {
    deps,
    bundles: bundleOperations(deps),
    artifacts: artifactOperations(deps),
    templates: templateOperations(deps),
    images: imageOperations(deps),
    publications: publicationOperations(deps),
    accounts: accountOperations(deps),
    distributions: distributionOperations(deps),
    organisation: organisationOperations(),
    imports: importOperations(deps),
    exports: exportOperations(deps),
    bundleFiles: bundleFileOperations(deps),
  };
}

export type Library = ReturnType<typeof openLibrary>;
