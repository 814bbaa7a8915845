/**
 * The names a generated image goes by: the `name:tag` `docker load` gives it, and the name of its
 * downloadable file. Both follow the docker reference grammar, so any bundle name works.
 */
import { formatById } from "./formats.js";

/** A docker reference component: lower case, `[a-z0-9._-]`, starting with a letter or digit. */
function referenceName(s: string): string {
  // Separators may not follow each other (`a..b`, `a.-b` are not valid names): a run becomes one dash.
  const n = s.toLowerCase().replace(/[^a-z0-9._-]+/g, "-").replace(/[._-]{2,}/g, "-").replace(/^[^a-z0-9]+/, "").replace(/[._-]+$/, "");
  return n || "image";
}

function tagOf(version: string | null): string {
  const t = (version ?? "latest").replace(/[^A-Za-z0-9_.-]+/g, "-").replace(/^[.-]+/, "").slice(0, 128);
  return t || "latest";
}

/** The name `docker load` gives the image: `hello:1.0`. */
export function registeringName(img: { name: string; version: string | null }): string {
  return `${referenceName(img.name)}:${tagOf(img.version)}`;
}

/**
 * Where a registry blob store tags the image: repository `<login>/<name>` (under the store's
 * prefix), tag `<version>-<revision>`, so every generation has a reference of its own.
 */
export function registryTarget(login: string, img: { name: string; version: string | null; revision: number }): { repository: string; tag: string } {
  const revision = `-${img.revision}`;
  return { repository: `${referenceName(login)}/${referenceName(img.name)}`, tag: `${tagOf(img.version).slice(0, 128 - revision.length)}${revision}` };
}

/**
 * The name of an image nobody named (`kiln build` without `--tag`): its first named package (or
 * the distribution's name for a bare minbase) at `latest`, so that an OCI layout has a ref name
 * and a docker-archive `RepoTags` — `docker load` and `umoci unpack` need one.
 */
export function defaultImageName(what: string): string {
  return registeringName({ name: what, version: null });
}

/** `hello-1.0-docker.tar.gz`. */
export function imageFileName(img: { name: string; version: string | null; formatId: number }): string {
  const format = formatById(img.formatId)!;
  return `${referenceName(img.name)}-${tagOf(img.version)}-${format.imageFormat}.tar.gz`;
}

