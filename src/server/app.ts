/**
 * The Fastify application factory. Everything it needs comes in through `deps`, so tests build
 * an app over a temporary data directory and call it with `inject()`, and `kiln serve` builds the
 * same app over the real configuration.
 */
import { randomBytes } from "node:crypto";
import fastifyCookie from "@fastify/cookie";
import Fastify, { LogController, type FastifyInstance, type FastifyReply, type FastifyRequest } from "fastify";
import { KilnError, fail, storageError } from "../domain/errors.js";
import type { BlobStore } from "../blobs/blob-store.js";
import type { Store, UserRow } from "../store/types.js";
import { Authenticator, unauthorized, type Principal } from "./auth.js";
import type { KilnConfig } from "./config.js";
import { EXTENSION_ENDPOINTS, loadServedEndpoints, type EndpointSpec } from "./endpoints.js";
import { KeptWhileUnchanged } from "./kept.js";
import { findDownload } from "./downloads.js";
import { REPRESENTATION, responseFormat, sendBody, sendRepresentation, type Representation } from "./http.js";
import type { SecretBox } from "./secrets.js";
import type { DistributionCatalog } from "../library/catalog.js";
import { openLibrary, type Library } from "../library/index.js";
import { publicationEgress } from "../registry/egress.js";
import { apiHandlers } from "../api/index.js";
import type { JobRunner } from "../jobs/runner.js";
import { registerConsole } from "./console.js";
import { EventHub, eventHandlers } from "./events.js";
import { Sessions, registerSessionRoutes } from "./session.js";

/** What the app is built from. */
export interface AppDeps {
  config: KilnConfig;
  store: Store;
  blobs: BlobStore;
  secrets: SecretBox;
  catalog: DistributionCatalog;
  /** Pino options, `false` for silence (tests); defaults to JSON logs at `config.logLevel`. */
  logger?: boolean | Record<string, unknown>;
  /** The job runner (generation, publication); absent in apps that only serve metadata. */
  jobs?: JobRunner;
}

/** What a handler gets besides the request and reply. */
export interface Call {
  spec: EndpointSpec;
  /** The authenticated caller (always set when the endpoint requires authentication). */
  principal: Principal | undefined;
}

/** What the handler of a `/users/{uid}/...` route gets: the user the path names, too. */
export interface UserCall extends Call {
  /**
   * The user named by `{uid}`: the caller themselves, or anyone for an administrator. On the
   * few routes open without credentials (downloads with a one-time key) it is the user the path
   * names, and the handler decides what the request may see.
   */
  owner: UserRow;
}

export interface ApiContext extends AppDeps {
  endpoints: EndpointSpec[];
  auth: Authenticator;
  /** The console's live status stream. */
  events: EventHub;
  library: Library;
  now(): Date;
}

export type Handler = (req: FastifyRequest, reply: FastifyReply, call: Call) => Promise<unknown>;
export type UserHandler = (req: FastifyRequest, reply: FastifyReply, call: UserCall) => Promise<unknown>;

/**
 * Handlers by UForge operation id: `user` ones serve routes under `/users/{uid}` (the router
 * hands them the owner), `global` ones every other route. The router checks the split at start.
 */
export interface HandlerMap {
  user?: Record<string, UserHandler>;
  global?: Record<string, Handler>;
}

const SECRET_QUERY_RE = /([?&](?:signature|downloadId|apiKey|password|token)=)[^&#]*/gi;

/** A URL fit for logs and error bodies: secrets in the query are masked. */
export function redactUrl(url: string): string {
  return url.replace(SECRET_QUERY_RE, "$1[redacted]");
}

function requestUri(req: FastifyRequest): string {
  const q = req.url.indexOf("?");
  return q < 0 ? req.url : req.url.slice(0, q);
}

function renderError(req: FastifyRequest, reply: FastifyReply, status: number, code: string, message: string): FastifyReply {
  return sendBody(req, reply, status, "uforgeError", {
    statusCode: status,
    requestMethod: req.method,
    requestUri: requestUri(req),
    timestamp: new Date(),
    localizedErrorMsg: { message, messageId: code },
  });
}

/** Maps Fastify's own errors (body limits, bad content types, ...) onto the catalog. */
function fromFastifyError(err: { code?: string; statusCode?: number; message: string }): KilnError | undefined {
  switch (err.code) {
    // A full disk met outside the blob store (a temp file, the layer cache) is still a 507.
    case "ENOSPC":
    case "EDQUOT":
      return storageError(err) as KilnError;
    case "FST_ERR_CTP_BODY_TOO_LARGE":
      return new KilnError("tooLarge", "the request body is too large");
    case "FST_ERR_CTP_INVALID_MEDIA_TYPE":
    case "FST_ERR_CTP_INVALID_CONTENT_LENGTH":
      return new KilnError("unsupportedMediaType", err.message);
    case "FST_ERR_CTP_EMPTY_JSON_BODY":
    case "FST_ERR_CTP_INVALID_JSON_BODY":
      return new KilnError("malformedBody", err.message);
    default:
      if (err.statusCode && err.statusCode >= 400 && err.statusCode < 500) {
        return new KilnError(err.statusCode === 404 ? "notFound" : err.statusCode === 413 ? "tooLarge" : err.statusCode === 415 ? "unsupportedMediaType" : "badRequest", err.message);
      }
      return undefined;
  }
}

export async function buildApp(deps: AppDeps): Promise<FastifyInstance> {
  const endpoints = loadServedEndpoints();
  const logger =
    deps.logger === false
      ? false
      : {
          level: deps.config.logLevel,
          redact: { paths: ["req.headers.authorization", "req.headers.cookie", "headers.authorization"], censor: "[redacted]" },
          serializers: {
            req: (req: FastifyRequest) => ({ method: req.method, url: redactUrl(req.url), remoteAddress: req.ip }),
          },
          ...(typeof deps.logger === "object" ? deps.logger : {}),
        };
  let seq = 0;
  const instance = randomBytes(3).toString("hex");
  const app = Fastify({
    logger,
    genReqId: (req) => {
      const given = req.headers["x-request-id"];
      if (typeof given === "string" && /^[\w.-]{1,64}$/.test(given)) return given;
      return `${instance}-${(++seq).toString(36)}`;
    },
    logController: new LogController({ requestIdLogLabel: "requestId" }),
    // Object bodies are read (bounded) by the handlers; uploads stream. See the parser below.
    bodyLimit: 64 * 1024 ** 4,
    routerOptions: { ignoreTrailingSlash: true },
    return503OnClosing: true,
    // Only then do X-Forwarded-Proto/-Host/-For count (API-key signatures, client addresses).
    trustProxy: deps.config.trustProxy,
    forceCloseConnections: "idle",
  });

  const auth = new Authenticator(deps.store, deps.secrets, { signatures: deps.config.apiKeySignatures });
  const events = new EventHub(deps.store);
  const library = openLibrary({
    store: deps.store,
    blobs: deps.blobs,
    catalog: deps.catalog,
    secrets: deps.secrets,
    egress: publicationEgress(deps.config.publishAllow),
    ...(deps.jobs ? { jobs: deps.jobs } : {}),
    limits: { maxUpload: deps.config.maxUpload, downloadKeyTtlMs: deps.config.downloadKeyTtlMs },
  });
  const ctx: ApiContext = { ...deps, endpoints, auth, events, library, now: () => new Date() };

  // Every body reaches the handler as a stream: object endpoints read it with a limit and decode
  // XML or JSON themselves (415 for anything else); upload endpoints stream it to the blob store.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser("*", (_req, payload, done) => done(null, payload));

  app.addHook("onRequest", async (req, reply) => {
    reply.header("X-Request-Id", req.id);
  });

  app.setErrorHandler((err: Error & { code?: string; statusCode?: number }, req, reply) => {
    const kiln = err instanceof KilnError ? err : fromFastifyError(err);
    if (kiln) {
      for (const [k, v] of Object.entries(kiln.headers)) reply.header(k, v);
      if (kiln.status >= 500) req.log.error({ err }, kiln.message);
      else req.log.info({ code: kiln.code, status: kiln.status }, kiln.message);
      return renderError(req, reply, kiln.status, kiln.code, kiln.message);
    }
    req.log.error({ err }, "unexpected error");
    return renderError(req, reply, 500, "InternalError", `internal error (request ${req.id}); the server log has the details`);
  });

  app.setNotFoundHandler((req, reply) => renderError(req, reply, 404, "NotFound", `no endpoint ${req.method} ${requestUri(req)}`));

  // The console (routes made after the error handler, which a route takes when it is made):
  // sessions (a cookie is the last way in, after Basic and API keys), its page and
  // assets, and the event stream, which must end before the server can close.
  // A worker process serves its health only (GET /api/status): no console, no API.
  const worker = deps.config.role === "worker";
  if (!worker) {
    const sessions = new Sessions(deps.store, deps.config.sessionTtlMs);
    auth.sessions = sessions;
    await app.register(fastifyCookie);
    registerSessionRoutes(app, { auth, sessions });
    await registerConsole(app, { sessions });
  }
  app.addHook("preClose", async () => events.close());

  const api = apiHandlers(ctx);
  const handlers = { ...api, user: { ...api.user, ...eventHandlers(ctx).user } };
  const answers = new AnswerCache(deps.store);
  for (const spec of [...endpoints, ...EXTENSION_ENDPOINTS]) {
    const userHandler = handlers.user?.[spec.operationId];
    const globalHandler = handlers.global?.[spec.operationId];
    if (!userHandler && !globalHandler) continue;
    if (worker && spec.operationId !== STATUS_OPERATION) continue;
    const scoped = spec.path.startsWith("/users/{uid}");
    if (scoped !== (userHandler !== undefined)) {
      throw new Error(`${spec.operationId} (${spec.path}) needs a ${scoped ? "user" : "global"} handler`);
    }
    const handler: Handler = userHandler ? (req, reply, call) => userHandler(req, reply, call as UserCall) : globalHandler!;
    const cacheable = CACHEABLE.has(spec.operationId);
    app.route({
      method: spec.method,
      url: spec.route,
      handler: async (req, reply) => {
        const call = await authorize(ctx, spec, req, scoped);
        if (cacheable && call.principal) return answers.serve(req, reply, call.principal.user.id, () => handler(req, reply, call));
        try {
          return await handler(req, reply, call);
        } finally {
          // A request that may have changed something makes every kept answer stale, including
          // state outside the store (the distributions' active flags, ...).
          if (spec.method !== "GET") deps.store.bump();
        }
      },
    });
  }

  return app;
}

/** The one operation a worker process serves. */
const STATUS_OPERATION = "uforgeStatus_get";

/**
 * Object GETs whose answers may be kept: they hand out no one-time keys. An answer is reused
 * for the same user, URL and format only while the store has seen no write since it was made.
 */
const CACHEABLE = new Set(["containerTemplate_get", "mySoftware_get", "cloudAccount_get", "user_get", "os_get", "apiKey_getAll"]);
const ANSWER_CACHE_SIZE = 5000;

class AnswerCache {
  private readonly kept: KeptWhileUnchanged<Representation>;
  constructor(store: Store) {
    this.kept = new KeptWhileUnchanged(store, ANSWER_CACHE_SIZE);
  }

  async serve(req: FastifyRequest, reply: FastifyReply, userId: number, compute: () => Promise<unknown>): Promise<unknown> {
    const key = `${userId} ${responseFormat(req)} ${req.url}`;
    const kept = this.kept.get(key);
    if (kept) return sendRepresentation(req, reply, kept);
    const generation = this.kept.stamp();
    const result = await compute();
    // What sendObject sent, if it sent an object that may be kept.
    const made = (req as FastifyRequest & { [REPRESENTATION]?: Representation })[REPRESENTATION];
    if (made) this.kept.set(key, made, generation);
    return result;
  }
}

/** Authentication, the `{uid}` scope (for `scoped` routes) and entitlements, in that order. */
async function authorize(ctx: ApiContext, spec: EndpointSpec, req: FastifyRequest, scoped: boolean): Promise<Call | UserCall> {
  const principal = await ctx.auth.identify(req);
  if (!principal && spec.auth) throw unauthorized("authentication required: use HTTP Basic or an API key signature");
  const owner = scoped ? await ownerOf(ctx, principal, req) : undefined;
  if (principal && spec.entitlements.length > 0 && !principal.user.admin) {
    const held = new Set(principal.user.entitlements);
    if (!spec.entitlements.some((e) => held.has(e))) {
      fail("forbidden", `user ${principal.user.login} lacks the entitlement ${spec.entitlements.join(" or ")} needed for ${spec.operationId}`);
    }
  }
  return owner ? { spec, principal, owner } : { spec, principal };
}

/**
 * The user `{uid}` names, once the caller may act for them: themselves, or anyone for an
 * administrator. Without credentials (the download routes, open to one-time keys) it is whoever
 * the path names, found the way a download finds what it serves (a stranger learns nothing).
 */
async function ownerOf(ctx: ApiContext, principal: Principal | undefined, req: FastifyRequest): Promise<UserRow> {
  const uid = (req.params as Record<string, string | undefined>).uid ?? "";
  const find = async (): Promise<UserRow> => {
    let owner: UserRow | undefined;
    if (principal?.user.login === uid) owner = principal.user;
    else if (!principal || principal.user.admin) owner = await ctx.store.users.getByLogin(uid);
    // Another user's space is indistinguishable from a missing one.
    if (!owner) fail("notFound", `no user ${uid}`);
    return owner;
  };
  return principal ? find() : findDownload(req, undefined, find);
}
