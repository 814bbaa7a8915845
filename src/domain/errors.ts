/**
 * Kiln's one error catalog. Every error a client can see is declared here once, with its HTTP
 * status and a message template; the server renders it as a `uforgeError` (XML or JSON) and
 * the CLI prints its message. Lower-level errors ride along as `cause` and are never shown to an
 * HTTP client (they go to the log and, for builds, to `detailedErrorMsg`).
 */

export interface ErrorSpec {
  /** HTTP status the error maps to. */
  readonly status: number;
  /** Stable identifier (`messageId` in a uforgeError). */
  readonly code: string;
}

export const Errors = {
  // 400
  badRequest: { status: 400, code: "BadRequest" },
  malformedBody: { status: 400, code: "MalformedBody" },
  forbiddenDtd: { status: 400, code: "DtdForbidden" },
  wrongRoot: { status: 400, code: "WrongRootElement" },
  invalidField: { status: 400, code: "InvalidField" },
  invalidId: { status: 400, code: "InvalidId" },
  invalidQuery: { status: 400, code: "InvalidQueryParameter" },
  invalidFileName: { status: 400, code: "InvalidFileName" },
  restrictionSyntax: { status: 400, code: "RestrictionRuleSyntax" },
  unknownDistribution: { status: 400, code: "UnknownDistribution" },
  unknownFormat: { status: 400, code: "UnknownTargetFormat" },
  restrictionExcluded: { status: 400, code: "RestrictionExcluded" },
  notCompressed: { status: 400, code: "ImageNotCompressed" },
  // 401 / 403 / 404
  unauthorized: { status: 401, code: "Unauthorized" },
  forbidden: { status: 403, code: "Forbidden" },
  notFound: { status: 404, code: "NotFound" },
  methodNotAllowed: { status: 405, code: "MethodNotAllowed" },
  notAcceptable: { status: 406, code: "NotAcceptable" },
  // 409 / 413 / 415 / 416
  conflict: { status: 409, code: "Conflict" },
  notReady: { status: 409, code: "NotReady" },
  tooLarge: { status: 413, code: "PayloadTooLarge" },
  unsupportedMediaType: { status: 415, code: "UnsupportedMediaType" },
  rangeNotSatisfiable: { status: 416, code: "RangeNotSatisfiable" },
  // 429: carries Retry-After
  tooManyRequests: { status: 429, code: "TooManyRequests" },
  // 5xx
  internal: { status: 500, code: "InternalError" },
  unavailable: { status: 503, code: "ServiceUnavailable" },
  insufficientStorage: { status: 507, code: "InsufficientStorage" },
  // Builder and publisher failures (reported in an OpStatus; 500 only if they escape to HTTP).
  buildFailed: { status: 500, code: "BuildFailed" },
  resolveFailed: { status: 500, code: "ResolveFailed" },
  repositoryFailed: { status: 502, code: "RepositoryFailed" },
  integrityFailed: { status: 502, code: "IntegrityFailed" },
  unsafeArchive: { status: 400, code: "UnsafeArchiveEntry" },
  registryFailed: { status: 502, code: "RegistryFailed" },
  cancelled: { status: 409, code: "Cancelled" },
  /** `--strict`: a package script effect Kiln does not reproduce. */
  unreproducedEffects: { status: 422, code: "UnreproducedScriptEffects" },
} as const satisfies Record<string, ErrorSpec>;

export type ErrorKind = keyof typeof Errors;

/** An error a user can act on: its message is safe to show, its `cause` is not. */
export class KilnError extends Error {
  readonly kind: ErrorKind;
  readonly status: number;
  readonly code: string;
  /** Extra headers the HTTP layer should send with the error (e.g. `WWW-Authenticate`). */
  readonly headers: Record<string, string>;

  constructor(kind: ErrorKind, message: string, options?: { cause?: unknown; headers?: Record<string, string> }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = "KilnError";
    this.kind = kind;
    this.status = Errors[kind].status;
    this.code = Errors[kind].code;
    this.headers = options?.headers ?? {};
  }
}

/** Shorthand: `fail("notFound", "no bundle 3")`. */
export function fail(kind: ErrorKind, message: string, options?: { cause?: unknown; headers?: Record<string, string> }): never {
  throw new KilnError(kind, message, options);
}

export function isKilnError(err: unknown, kind?: ErrorKind): err is KilnError {
  return err instanceof KilnError && (kind === undefined || err.kind === kind);
}

/** Error codes of a filesystem that has no room left (a full disk, an exhausted quota). */
const NO_SPACE = new Set(["ENOSPC", "EDQUOT"]);

/**
 * A filesystem error as the user sees it: a full disk is `507 no space left on device` (the one
 * thing they can act on: free space), anything else passes through unchanged. Its `cause`
 * keeps the system's message, which names host paths.
 */
export function storageError(err: unknown): Error {
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code === "string" && NO_SPACE.has(code)) {
    return new KilnError("insufficientStorage", "no space left on device: Kiln's data directory is full; free space there (delete images or bundles) and try again", { cause: err });
  }
  return err instanceof Error ? err : new Error(String(err));
}

/** The chain of messages of an error and its causes, outermost first. */
export function causeChain(err: unknown): string[] {
  const out: string[] = [];
  let cur: unknown = err;
  for (let depth = 0; cur !== undefined && cur !== null && depth < 16; depth++) {
    if (cur instanceof Error) {
      out.push(cur.message);
      cur = (cur as { cause?: unknown }).cause;
    } else {
      out.push(String(cur));
      break;
    }
  }
  return out;
}

/**
 * The same error with every message of its chain passed through `rewrite` — kinds, statuses and
 * headers kept: how a job names the artifact behind a path of Kiln's store, and keeps host paths
 * out of what its user sees (statuses carry the whole chain).
 */
export function rewriteMessages(err: unknown, rewrite: (message: string) => string, depth = 0): unknown {
  if (!(err instanceof Error) || depth > 16) return err;
  const cause = (err as { cause?: unknown }).cause;
  const options = cause === undefined ? undefined : { cause: rewriteMessages(cause, rewrite, depth + 1) };
  if (err instanceof KilnError) return new KilnError(err.kind, rewrite(err.message), { ...options, headers: err.headers });
  const copy = new Error(rewrite(err.message), options);
  copy.name = err.name;
  const code = (err as { code?: unknown }).code;
  if (code !== undefined) Object.assign(copy, { code });
  return copy;
}
