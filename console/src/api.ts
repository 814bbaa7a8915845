/**
 * The console's one way to the API: JSON over `fetch` with the session cookie, the CSRF token on
 * every request, and the API's own error messages surfaced as {@link ApiError}. Uploads go
 * through XMLHttpRequest, the only browser API that reports upload progress.
 */

/** The session the page was rendered with, or the one sign-in opened. */
export interface Session {
  login: string;
  admin: boolean;
  csrfToken: string;
  expiresAt: string;
}

/** An API answer that was not a success: `message` is the API's own (uforgeError). */
export class ApiError extends Error {
  constructor(
    message: string,
    readonly status: number,
  ) {
    super(message);
    this.name = "ApiError";
  }
}

let csrfToken = "";
let onSessionEnded: (() => void) | undefined;

export function bindSession(s: Session | null, ended: () => void): void {
  csrfToken = s?.csrfToken ?? "";
  onSessionEnded = ended;
}

function headers(json: boolean): Record<string, string> {
  const h: Record<string, string> = { Accept: "application/json", "X-Kiln-CSRF": csrfToken };
  if (json) h["Content-Type"] = "application/json";
  return h;
}

async function errorOf(res: Response): Promise<ApiError> {
  let message = `${res.status} ${res.statusText}`;
  try {
    const body = (await res.json()) as { localizedErrorMsg?: { message?: string } };
    if (body.localizedErrorMsg?.message) message = body.localizedErrorMsg.message;
  } catch {
    // Not a uforgeError body: the status line says what there is to say.
  }
  return new ApiError(message, res.status);
}

/** Calls `/api/<path>` (a UForge uri such as `users/alice/mysoftware/1`). */
export async function api<T>(method: "GET" | "POST" | "PUT" | "DELETE", path: string, body?: unknown): Promise<T> {
  const res = await fetch(`/api/${path}`, {
    method,
    headers: headers(body !== undefined),
    credentials: "same-origin",
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  if (!res.ok) {
    const err = await errorOf(res);
    if (res.status === 401) onSessionEnded?.();
    throw err;
  }
  if (res.status === 204) return undefined as T;
  const text = await res.text();
  return (text ? JSON.parse(text) : undefined) as T;
}

export async function signIn(login: string, password: string): Promise<Session> {
  const res = await fetch("/api/session", {
    method: "POST",
    headers: { "Content-Type": "application/json", Accept: "application/json" },
    credentials: "same-origin",
    body: JSON.stringify({ login, password }),
  });
  if (!res.ok) throw await errorOf(res);
  return (await res.json()) as Session;
}

export async function signOut(): Promise<void> {
  const res = await fetch("/api/session", { method: "DELETE", headers: headers(false), credentials: "same-origin" });
  if (!res.ok && res.status !== 401) throw await errorOf(res);
}

/** Sends a file's bytes to `/api/<path>`, reporting progress (0–1). */
export function upload(path: string, file: File, progress: (fraction: number) => void, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", `/api/${path}`);
    for (const [k, v] of Object.entries(headers(false))) xhr.setRequestHeader(k, v);
    xhr.setRequestHeader("Content-Type", file.type || "application/octet-stream");
    xhr.upload.onprogress = (e) => {
      if (e.lengthComputable) progress(e.loaded / e.total);
    };
    xhr.onload = () => {
      if (xhr.status >= 200 && xhr.status < 300) {
        progress(1);
        resolve();
        return;
      }
      let message = `${xhr.status} ${xhr.statusText}`;
      try {
        const body = JSON.parse(xhr.responseText) as { localizedErrorMsg?: { message?: string } };
        if (body.localizedErrorMsg?.message) message = body.localizedErrorMsg.message;
      } catch {
        // Keep the status line.
      }
      if (xhr.status === 401) onSessionEnded?.();
      reject(new ApiError(message, xhr.status));
    };
    xhr.onerror = () => reject(new ApiError(`the upload of ${file.name} was interrupted (network error)`, 0));
    xhr.onabort = () => reject(new ApiError(`the upload of ${file.name} was cancelled`, 0));
    signal?.addEventListener("abort", () => xhr.abort());
    xhr.send(file);
  });
}

/** A message fit for the page, from anything thrown. */
export function messageOf(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}

// ---- The API's objects, as far as the console reads them (JSON representation) -------------

export interface OpStatus {
  percentage: number;
  message?: string;
  complete: boolean;
  error: boolean;
  cancelled: boolean;
  errorMessage?: string;
  eta?: string;
  bytesLoaded?: number;
  bytesTotal?: number;
  lastModified?: string;
}

export interface Bundle {
  dbId: number;
  uri: string;
  name: string;
  version?: string;
  description?: string;
  lastModified: string;
  bundleRestriction: { dbId: number; uri: string; restrictionRule: string };
}

export interface Artifact {
  dbId: number;
  uri: string;
  name: string;
  type: "file" | "folder";
  size?: number;
  uploaded?: boolean;
  extract: boolean;
  install: boolean;
  tag?: string;
  installLocation?: string;
  subSoftwareArtifacts?: Artifact[];
}

export interface Distribution {
  dbId: number;
  uri: string;
  name: string;
  version: string;
  arch: string;
}

export interface TargetFormat {
  dbId: number;
  name: string;
  credAccountType: "docker" | "openshift";
}

export interface Image {
  dbId: number;
  uri: string;
  parentUri: string;
  name: string;
  version?: string;
  revision: number;
  created: string;
  lastModified: string;
  compress: boolean;
  entrypoint?: string;
  distributionName?: string;
  fileName?: string;
  fileSize?: number;
  sha256sum?: string;
  downloadUri?: string;
  completeInstalledSize?: number;
  targetFormat: TargetFormat;
  status: OpStatus;
}

export interface Template {
  dbId: number;
  uri: string;
  softwareBundle: { dbId: number; name: string; version?: string; uri: string };
  distribution: Distribution;
  images: Image[];
}

export interface Publication {
  dbId: number;
  uri: string;
  imageUri: string;
  namespace: string;
  repositoryName: string;
  tagName: string;
  registeringName?: string;
  /** `host/namespace/repository:tag` once published (lists carry it here, not in registeringName). */
  publishLocation?: string;
  cloudId?: string;
  created: string;
  status: OpStatus;
}

export interface CloudAccount {
  dbId: number;
  uri: string;
  name: string;
  xsiType: "CredAccountDocker" | "CredAccountOpenShift";
  endpointUrl?: string;
  registryUrl?: string;
  login?: string;
}

export interface ImagePackage {
  native_from_distribution: boolean;
  pkg: { name: string; version: string; arch: string };
}

export const distributionLabel = (d: Pick<Distribution, "name" | "version" | "arch">): string => `${d.name} ${d.version} ${d.arch}`;
