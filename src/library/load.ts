/**
 * Finding a user's objects by the ids a path names, always through their owner: another user's
 * object is indistinguishable from a missing one (`404`). Every family's operations start here.
 */
import { fail } from "../domain/errors.js";
import type { ArtifactRow, BundleRow, ImageRow, JobRow, PublicationRow, Store, TemplateRow, UserRow } from "../store/types.js";
import type { CatalogEntry } from "./catalog.js";
import type { LibraryDeps } from "./context.js";

/** The ids of a path below `users/{uid}/mysoftware/{msid}`. */
export interface BundleRef {
  msid: number;
}
export interface ArtifactRef extends BundleRef {
  said: number;
}
export interface TemplateRef extends BundleRef {
  tid: number;
}
export interface ImageRef extends TemplateRef {
  tiid: number;
}
export interface PublicationRef extends ImageRef {
  ptiid: number;
}

export async function loadBundle(store: Store, owner: UserRow, msid: number): Promise<BundleRow> {
  const bundle = await store.bundles.get(owner.id, msid);
  if (!bundle) fail("notFound", `no software bundle ${msid}`);
  return bundle;
}

export async function loadArtifact(store: Store, bundle: BundleRow, said: number): Promise<ArtifactRow> {
  const a = await store.artifacts.get(bundle.id, said);
  if (!a) fail("notFound", `no artifact ${said} in software bundle ${bundle.id}`);
  return a;
}

export interface LoadedTemplate {
  bundle: BundleRow;
  template: TemplateRow;
  dist: CatalogEntry;
}

export async function loadTemplate(deps: LibraryDeps, owner: UserRow, ref: TemplateRef): Promise<LoadedTemplate> {
  const bundle = await loadBundle(deps.store, owner, ref.msid);
  const template = await deps.store.templates.get(owner.id, bundle.id, ref.tid);
  if (!template) fail("notFound", `no container template ${ref.tid} in software bundle ${bundle.id}`);
  const dist = deps.catalog.get(template.distributionId);
  if (!dist) fail("notFound", `the distribution of container template ${ref.tid} is no longer offered`);
  return { bundle, template, dist };
}

export interface LoadedImage extends LoadedTemplate {
  image: ImageRow;
  job: JobRow;
}

export async function loadImage(deps: LibraryDeps, owner: UserRow, ref: ImageRef): Promise<LoadedImage> {
  const loaded = await loadTemplate(deps, owner, ref);
  const image = await deps.store.images.get(owner.id, loaded.template.id, ref.tiid);
  const job = image && image.bundleId === loaded.bundle.id ? await deps.store.jobs.get(image.jobId) : undefined;
  if (!image || !job) fail("notFound", `no image ${ref.tiid} in container template ${loaded.template.id}`);
  return { ...loaded, image, job };
}

export interface LoadedPublication extends LoadedImage {
  pub: PublicationRow;
  pubJob: JobRow;
}

export async function loadPublication(deps: LibraryDeps, owner: UserRow, ref: PublicationRef): Promise<LoadedPublication> {
  const loaded = await loadImage(deps, owner, ref);
  const pub = await deps.store.publications.get(owner.id, loaded.image.id, ref.ptiid);
  const pubJob = pub ? await deps.store.jobs.get(pub.jobId) : undefined;
  if (!pub || !pubJob) fail("notFound", `no published image ${ref.ptiid} of image ${loaded.image.id}`);
  return { ...loaded, pub, pubJob };
}
