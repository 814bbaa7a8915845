/**
 * Names a registry understands: the endpoint a user wrote, repository names and tags (OCI
 * distribution-spec "Pulling manifests" grammar), and the references Kiln records once an image
 * is published (`cloudId`, `registeringName`).
 *
 * Everything here is checked before a byte leaves the machine, so a push to a name the registry
 * would reject fails at once with the rule it broke, not after uploading layers.
 */
import { KilnError } from "../domain/errors.js";

/** Where a registry's `/v2/` API lives, and how Kiln names it in image references. */
export interface RegistryEndpoint {
  /** `https://host[:port]` (no trailing slash): the API is at `${baseUrl}/v2/`. */
  readonly baseUrl: string;
  /** `host[:port]` the API is reached at (`registry-1.docker.io` for Docker Hub). */
  readonly host: string;
  /** `host[:port]` as it appears in image names and messages (`docker.io` for Docker Hub). */
  readonly name: string;
  /** True only for an `http://` endpoint the user wrote so: everything else is TLS, verified. */
  readonly insecure: boolean;
  /** Docker Hub: one-component repositories live under `library/`. */
  readonly dockerHub: boolean;
}

/** The host names that all mean Docker Hub; its API is served by `registry-1.docker.io`. */
const DOCKER_HUB_NAMES: ReadonlySet<string> = new Set(["docker.io", "index.docker.io", "registry-1.docker.io", "registry.hub.docker.com"]);
const DOCKER_HUB_API = "registry-1.docker.io";

/** A path component of a repository name (distribution-spec: `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`). */
const PATH_COMPONENT = /^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*$/;
const TAG = /^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$/;
/** What clients (docker, containerd, skopeo) accept for `host/name` as a whole. */
export const MAX_REFERENCE_NAME_LENGTH = 255;

function invalid(message: string): never {
  throw new KilnError("invalidField", message);
}

/** The input without any `user:password@` part, so that an error message can quote it. */
function withoutUserinfo(input: string): string {
  return input.replace(/^([a-z][a-z0-9+.-]*:\/\/)?[^/@]*@/i, "$1");
}

/**
 * Parses a registry endpoint as a user writes it: `registry.example.com`, `host:5000`,
 * `https://host`, `http://127.0.0.1:5000` (plain HTTP only when written so), `docker.io`.
 * A path is refused (the API is always at `/v2/`; a trailing `/v2` is tolerated), and so are
 * credentials in the URL (they belong in the account, where they are kept encrypted).
 */
export function parseRegistryEndpoint(input: string): RegistryEndpoint {
  const raw = input.trim();
  if (raw === "") invalid("the registry URL is empty");
  const shown = JSON.stringify(withoutUserinfo(raw));
  const hasScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(raw);
  let url: URL;
  try {
    url = new URL(hasScheme ? raw : `https://${raw}`);
  } catch {
    invalid(`the registry URL ${shown} is not a URL`);
  }
  if (url.username !== "" || url.password !== "") invalid("the registry URL must not contain credentials: give them as the account's login and password");
  if (url.protocol !== "https:" && url.protocol !== "http:") invalid(`the registry URL ${shown} must use https:// (or http:// for a registry without TLS)`);
  if (url.search !== "" || url.hash !== "") invalid(`the registry URL ${shown} must not have a query or fragment`);
  if (!/^\/?(?:v2\/?)?$/.test(url.pathname)) invalid(`the registry URL ${shown} must not have a path: the registry API is always at /v2/`);
  if (url.hostname === "") invalid(`the registry URL ${shown} has no host`);
  const insecure = url.protocol === "http:";
  const dockerHub = DOCKER_HUB_NAMES.has(url.hostname) && url.port === "";
  if (dockerHub) {
    if (insecure) invalid("Docker Hub is only reachable over https://");
    return { baseUrl: `https://${DOCKER_HUB_API}`, host: DOCKER_HUB_API, name: "docker.io", insecure: false, dockerHub: true };
  }
  return { baseUrl: `${url.protocol}//${url.host}`, host: url.host, name: url.host, insecure, dockerHub: false };
}

/**
 * Checks a repository name (`namespace/name`, lower case, `.`, `_`, `__` or dashes between
 * alphanumerics, components joined by `/`) and returns it as the registry will know it: on
 * Docker Hub, a one-component name is an official image's, under `library/`.
 */
export function normaliseRepository(endpoint: RegistryEndpoint, repository: string): string {
  if (repository === "") invalid("the repository name is empty");
  const shown = JSON.stringify(repository.length > 300 ? `${repository.slice(0, 300)}…` : repository);
  const components = repository.split("/");
  for (const c of components) {
    if (c === "") invalid(`the repository name ${shown} has an empty component (no leading, trailing or double "/")`);
    if (!PATH_COMPONENT.test(c)) {
      invalid(
        `the repository name ${shown} is invalid: each "/"-separated component must be lower-case letters and digits, separated by ".", "_", "__" or dashes, starting and ending with a letter or digit`,
      );
    }
  }
  const name = endpoint.dockerHub && components.length === 1 ? `library/${repository}` : repository;
  if (endpoint.name.length + 1 + name.length > MAX_REFERENCE_NAME_LENGTH) {
    invalid(`the repository name ${shown} is too long: "${endpoint.name}/" and the name together must not exceed ${MAX_REFERENCE_NAME_LENGTH} characters`);
  }
  return name;
}

/** Checks a tag: up to 128 characters of letters, digits, `_`, `.` and `-`, not starting with `.` or `-`. */
export function assertTag(tag: string): string {
  if (!TAG.test(tag)) {
    const shown = JSON.stringify(tag.length > 140 ? `${tag.slice(0, 140)}…` : tag);
    invalid(`the tag ${shown} is invalid: 1 to 128 letters, digits, "_", "." or "-", not starting with "." or "-"`);
  }
  return tag;
}

/** `host/namespace/repository@sha256:...`: what a published image is, immutably. */
export function cloudId(endpoint: RegistryEndpoint, repository: string, digest: string): string {
  return `${endpoint.name}/${repository}@${digest}`;
}

/** `host/namespace/repository:tag`: what a user pulls. */
export function registeringName(endpoint: RegistryEndpoint, repository: string, tag: string): string {
  return `${endpoint.name}/${repository}:${tag}`;
}
