/**
 * The HTTP conventions every UForge endpoint follows, in one place: content negotiation, reading
 * a UForge object from a request body, answering with an object (digest as ETag, Last-Modified,
 * conditional 304), created/no-content answers, and the parsing of ids and search criteria.
 */
import { createHash } from "node:crypto";
import { PassThrough, type Readable } from "node:stream";
import type { FastifyReply, FastifyRequest } from "fastify";
import { KilnError, fail } from "../domain/errors.js";
import { constraints, matchFiql, parseFiql, unknownSelector } from "../domain/fiql.js";
import type { ListCriteria } from "../store/types.js";
import { decode, encode, type RootElement, type RootValues } from "../wire/index.js";
import { bodyText } from "../wire/body.js";
import { findTypeModel, typeModel } from "../wire/model.js";

export type WireFormat = "xml" | "json";

/** Largest object body accepted (uploads of file bytes have their own limit). */
export const OBJECT_BODY_LIMIT = 4 * 1024 * 1024;

const CONTENT_TYPES: Record<WireFormat, string> = {
  xml: "application/xml; charset=utf-8",
  json: "application/json; charset=utf-8",
};

/** XML unless the client prefers JSON (UForge's default is XML). */
export function responseFormat(req: FastifyRequest): WireFormat {
  const accept = req.headers.accept;
  if (!accept) return "xml";
  const json = accept.search(/application\/(?:[\w.+-]*\+)?json/i);
  if (json < 0) return "xml";
  const xml = accept.search(/(?:application|text)\/(?:[\w.+-]*\+)?xml/i);
  return xml >= 0 && xml < json ? "xml" : "json";
}

/** The format of a request body, from its Content-Type; anything else is a 415. */
export function requestFormat(req: FastifyRequest): WireFormat {
  const type = (req.headers["content-type"] ?? "").split(";")[0]!.trim().toLowerCase();
  if (type === "application/xml" || type === "text/xml" || /^application\/[\w.-]+\+xml$/.test(type)) return "xml";
  if (type === "application/json" || /^application\/[\w.-]+\+json$/.test(type)) return "json";
  throw new KilnError(
    "unsupportedMediaType",
    type === "" ? "the request has no Content-Type: send application/xml or application/json" : `unsupported Content-Type "${type}": send application/xml or application/json`,
  );
}

/** Reads the whole (bounded) request body. */
export async function readBody(req: FastifyRequest, limit = OBJECT_BODY_LIMIT): Promise<Buffer> {
  const body = req.body as Readable | Buffer | string | undefined;
  if (body === undefined || body === null) return Buffer.alloc(0);
  if (Buffer.isBuffer(body)) return body;
  if (typeof body === "string") return Buffer.from(body);
  const declared = Number(req.headers["content-length"]);
  if (Number.isFinite(declared) && declared > limit) {
    discardBody(req);
    fail("tooLarge", `the request body (${declared} bytes) exceeds the limit of ${limit} bytes for an object`);
  }
  // Listeners, not `for await`: leaving that loop early would destroy the request, and with it
  // the connection the 413 has to go out on.
  return new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const done = (): void => {
      body.off("data", onData).off("end", onEnd).off("error", onError).off("close", onClose);
    };
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size > limit) {
        done();
        discardBody(req);
        reject(new KilnError("tooLarge", `the request body exceeds the limit of ${limit} bytes for an object`));
      } else chunks.push(chunk);
    };
    const onEnd = (): void => {
      done();
      resolve(Buffer.concat(chunks));
    };
    const onError = (err: Error): void => {
      done();
      reject(err);
    };
    const onClose = (): void => {
      if (body.readableEnded) return;
      done();
      reject(new KilnError("badRequest", "the request body was cut off before its end"));
    };
    body.on("data", onData).on("end", onEnd).on("error", onError).on("close", onClose);
  });
}

/** How much of an unwanted request body is read and thrown away, and for how long, before the connection is closed. */
const DISCARD_BYTES = 64 << 20;
const DISCARD_MS = 10_000;

/**
 * For an answer given before the request body was read to its end (a 413, an early refusal):
 * the rest of the body is read and thrown away instead of the request being destroyed. Destroying
 * it resets the connection while the client is still sending, and a reset makes the client's
 * network stack drop the answer it had not read yet: the client would see "connection reset"
 * instead of the 413. Past a bound (bytes or time), the connection is closed after all.
 */
export function discardBody(req: FastifyRequest): void {
  const body = req.body as Readable | undefined;
  if (!body || typeof body.resume !== "function" || body.readableEnded || body.destroyed) return;
  body.unpipe();
  let read = 0;
  const close = (): void => {
    clearTimeout(timer);
    req.raw.socket?.destroy();
  };
  const timer = setTimeout(close, DISCARD_MS);
  timer.unref();
  body.on("data", (chunk: Buffer) => {
    read += chunk.length;
    if (read > DISCARD_BYTES) close();
  });
  body.once("end", () => clearTimeout(timer));
  body.once("close", () => clearTimeout(timer));
  body.on("error", () => clearTimeout(timer));
  body.resume();
}

/**
 * The request body as a stream a consumer may destroy (a size limit hit, a failed write) without
 * destroying the request; see {@link discardBody}. A body cut off by the client fails it.
 */
export function detachedBody(req: FastifyRequest): Readable | undefined {
  const body = req.body as Readable | undefined;
  if (!body || typeof body.pipe !== "function") return undefined;
  const out = new PassThrough({ highWaterMark: 1 << 20 });
  body.once("error", (err) => out.destroy(err));
  body.once("close", () => {
    if (!body.readableEnded) out.destroy(Object.assign(new Error("the request body was cut off before its end"), { code: "ECONNRESET" }));
  });
  return body.pipe(out);
}

/** Reads and decodes a UForge object of one of the expected root elements, typed as the schema says. */
export async function readObject<R extends RootElement>(
  req: FastifyRequest,
  roots: R | readonly R[],
  extensions: readonly string[] = [],
): Promise<{ root: R; value: RootValues[R]; extensions: Record<string, unknown> }> {
  const format = requestFormat(req);
  const body = await readBody(req);
  if (body.length === 0) fail("malformedBody", `the request body is empty: expected ${describeRoots(roots)}`);
  // `decode` types its answer for any root name; for a known root it is the generated type.
  const decoded: { root: string; value: unknown } = decode<string>(roots, body, format);
  // Kiln's JSON extensions of a request: top-level properties the schema does not declare (which
  // the decoder drops), read from the same, already valid, JSON document.
  const found: Record<string, unknown> = {};
  if (format === "json" && extensions.length > 0) {
    let raw = JSON.parse(bodyText(body)) as Record<string, unknown>;
    // Wrapped as {"image": {...}}, or the object itself.
    const wrapped = raw[decoded.root];
    if (Object.keys(raw).length === 1 && typeof wrapped === "object" && wrapped !== null && !Array.isArray(wrapped)) raw = wrapped as Record<string, unknown>;
    for (const name of extensions) if (Object.hasOwn(raw, name)) found[name] = raw[name];
  }
  return { ...(decoded as { root: R; value: RootValues[R] }), extensions: found };
}

function describeRoots(roots: string | readonly string[]): string {
  return (Array.isArray(roots) ? roots : [roots]).map((r) => `<${r}>`).join(" or ");
}

export interface ObjectAnswer {
  status?: number;
  location?: string;
  lastModified?: Date;
  /** Fields that change on every answer (one-time keys): left out of the digest, so ETags stay stable. */
  volatile?: readonly string[];
}

/** An answer as sent, kept so that the same request can be answered again without recomputing it. */
export interface Representation {
  etag: string;
  lastModified: string | undefined;
  contentType: string;
  body: string;
}

/**
 * Object answers are always revalidated: with Last-Modified and no Cache-Control, a browser may
 * reuse an answer without asking (heuristic freshness) — the console then missed an image just
 * generated (a template's lastModified does not move when an image is added). `no-cache` keeps
 * the conditional requests (ETag, 304) and forbids the guess.
 */
const REVALIDATE = "no-cache";

/** Where sendObject leaves the representation it sent (for the router's answer cache). */
export const REPRESENTATION = Symbol("kiln.representation");

/** Answers a GET from a kept representation, with the same caching semantics as sendObject. */
export function sendRepresentation(req: FastifyRequest, reply: FastifyReply, r: Representation): FastifyReply {
  reply.header("ETag", r.etag);
  reply.header("Cache-Control", REVALIDATE);
  if (r.lastModified) reply.header("Last-Modified", r.lastModified);
  if (notModified(req, r.etag, r.lastModified ? new Date(r.lastModified) : undefined)) return reply.code(304).send();
  return reply.code(200).type(r.contentType).send(r.body);
}

/**
 * The `digest` of an object: sha256 of its JSON form without the digest itself. The wire
 * representations build their objects in a fixed key order, so `JSON.stringify` is canonical
 * enough here and much cheaper than a second trip through the codec.
 */
export function objectDigest(root: string, value: object, volatile: readonly string[] = []): string {
  const stable: Record<string, unknown> = { ...value, digest: undefined };
  for (const k of volatile) stable[k] = undefined;
  return createHash("sha256").update(root).update(JSON.stringify(stable)).digest("hex");
}

let lastDate = { second: -1, text: "" };
/** HTTP dates have one-second precision; the last one formatted is reused. */
function httpDate(d: Date): string {
  const second = Math.floor(d.getTime() / 1000);
  if (second !== lastDate.second) lastDate = { second, text: new Date(second * 1000).toUTCString() };
  return lastDate.text;
}

function notModified(req: FastifyRequest, etag: string, lastModified: Date | undefined): boolean {
  const inm = req.headers["if-none-match"];
  if (inm !== undefined) {
    return inm.split(",").some((t) => {
      const tag = t.trim().replace(/^W\//, "");
      return tag === "*" || tag === etag;
    });
  }
  const ims = req.headers["if-modified-since"];
  if (ims !== undefined && lastModified) {
    const since = Date.parse(ims);
    return Number.isFinite(since) && Math.floor(lastModified.getTime() / 1000) * 1000 <= since;
  }
  return false;
}

/**
 * Answers with a UForge object: fills its `digest`, sends it as `ETag` with `Last-Modified`, and
 * answers `304` (no body) when the client's copy is current.
 */
export function sendObject<R extends RootElement>(req: FastifyRequest, reply: FastifyReply, root: R, value: RootValues[R], answer: ObjectAnswer = {}): FastifyReply {
  const digest = objectDigest(root, value, answer.volatile);
  const etag = `"${digest}"`;
  const own = (value as { lastModified?: unknown }).lastModified;
  const lastModified = answer.lastModified ?? (own instanceof Date ? own : undefined);
  reply.header("ETag", etag);
  reply.header("Cache-Control", REVALIDATE);
  if (lastModified) reply.header("Last-Modified", httpDate(lastModified));
  if ((answer.status ?? 200) === 200 && req.method === "GET" && notModified(req, etag, lastModified)) {
    return reply.code(304).send();
  }
  if (answer.location) reply.header("Location", answer.location);
  const format = responseFormat(req);
  const body = encode<string>(root, { ...value, digest }, format);
  if ((answer.status ?? 200) === 200 && !answer.volatile?.length) {
    (req as FastifyRequest & { [REPRESENTATION]?: Representation })[REPRESENTATION] = {
      etag,
      lastModified: lastModified ? httpDate(lastModified) : undefined,
      contentType: CONTENT_TYPES[format],
      body,
    };
  }
  return reply
    .code(answer.status ?? 200)
    .type(CONTENT_TYPES[format])
    .send(body);
}

/** A list answer (`containerTemplates`, ...): no digest of its own, never cached by ETag. */
export function sendList<R extends RootElement>(req: FastifyRequest, reply: FastifyReply, root: R, value: RootValues[R]): FastifyReply {
  const format = responseFormat(req);
  return reply.code(200).type(CONTENT_TYPES[format]).send(encode<string>(root, value, format));
}

/** Sends an arbitrary UForge body (errors, statuses) without caching headers. */
export function sendBody<R extends RootElement>(req: FastifyRequest, reply: FastifyReply, status: number, root: R, value: RootValues[R]): FastifyReply {
  const format = responseFormat(req);
  return reply.code(status).type(CONTENT_TYPES[format]).send(encode<string>(root, value, format));
}

/** `201 Created` with `Location` pointing at the new object, its `uri` (absolute path under /api). */
export function sendCreated<R extends RootElement>(req: FastifyRequest, reply: FastifyReply, root: R, value: RootValues[R] & { uri?: string }): FastifyReply {
  return sendObject(req, reply, root, value, { status: 201, ...(value.uri === undefined ? {} : { location: `/api/${value.uri}` }) });
}

export function sendNoContent(reply: FastifyReply): FastifyReply {
  return reply.code(204).send();
}

const MAX_ID = Number.MAX_SAFE_INTEGER;

/** A path id: a positive integer, else `400`. */
export function parseId(raw: string | undefined, name: string): number {
  if (raw === undefined || !/^[0-9]{1,16}$/.test(raw) || Number(raw) < 1 || Number(raw) > MAX_ID) {
    fail("invalidId", `${name} must be a positive integer, got "${raw ?? ""}"`);
  }
  return Number(raw);
}

/** The ids a route's path names (`{msid}`, `{tid}`, ...), each a positive integer, else `400`. */
export function pathIds<K extends string>(req: FastifyRequest, ...names: K[]): Record<K, number> {
  const params = req.params as Record<string, string | undefined>;
  const out = {} as Record<K, number>;
  for (const name of names) out[name] = parseId(params[name], name);
  return out;
}

/** A path parameter as text (Fastify has already percent-decoded it). */
export function pathText(req: FastifyRequest, name: string): string {
  return (req.params as Record<string, string | undefined>)[name] ?? "";
}

export type Query = Record<string, string | string[] | undefined>;

function single(query: Query, name: string): string | undefined {
  const v = query[name];
  if (Array.isArray(v)) fail("invalidQuery", `query parameter ${name} is given more than once`);
  return v;
}

export function parseBooleanParam(query: Query, name: string): boolean | undefined {
  const v = single(query, name);
  if (v === undefined || v === "") return undefined;
  if (/^(true|1|yes)$/i.test(v)) return true;
  if (/^(false|0|no)$/i.test(v)) return false;
  fail("invalidQuery", `query parameter ${name} must be true or false, got "${v}"`);
}

function parseNonNegative(query: Query, name: string): number | undefined {
  const v = single(query, name);
  if (v === undefined || v === "") return undefined;
  if (!/^[0-9]{1,9}$/.test(v)) fail("invalidQuery", `query parameter ${name} must be a non-negative integer, got "${v}"`);
  return Number(v);
}

/**
 * UForge's search criteria; `orderBy` must be one of `sortable` (when it is not empty). `query`
 * is FIQL: parsed here already, so that a malformed one is a 400 pointing at the character
 * before any work is done.
 */
export function parseCriteria(query: Query, sortable: readonly string[]): ListCriteria {
  const c: ListCriteria = {};
  const q = single(query, "query");
  if (q !== undefined && q !== "") {
    parseFiql(q);
    c.query = q;
  }
  const orderBy = single(query, "orderBy");
  if (orderBy !== undefined && orderBy !== "" && sortable.length > 0) {
    if (!sortable.includes(orderBy)) fail("invalidQuery", `cannot order by "${orderBy}": use one of ${sortable.join(", ")}`);
    c.orderBy = orderBy;
  }
  const descending = parseBooleanParam(query, "descending");
  if (descending !== undefined) c.descending = descending;
  const count = parseNonNegative(query, "count");
  if (count !== undefined) c.count = count;
  const offset = parseNonNegative(query, "offset");
  if (offset !== undefined) c.offset = offset;
  return c;
}

/** Whether `path` names a scalar field of `type` or of one of its subtypes (dots go into embedded objects). */
function scalarField(type: string, path: string): boolean {
  const model = findTypeModel(type);
  if (model === undefined) return false;
  const [head, ...rest] = path.split(".");
  for (const candidate of model.candidates.values()) {
    const field = candidate.byName.get(head!);
    if (field === undefined || field.kind === "list" || field.repeated) continue;
    if (rest.length === 0 ? field.kind !== "object" : field.kind === "object" && scalarField(field.type!, rest.join("."))) return true;
  }
  return false;
}

/** The scalar fields of a type and its subtypes, for an error message. */
function scalarFields(type: string): string[] {
  const out = new Set<string>();
  for (const candidate of typeModel(type).candidates.values()) {
    for (const f of candidate.fields) if (f.kind !== "object" && f.kind !== "list" && !f.repeated) out.add(f.name);
  }
  return [...out];
}

/** A field of an in-memory wire object by its dotted path. */
export function wireField(item: object, path: string): unknown {
  let v: unknown = item;
  for (const part of path.split(".")) {
    if (typeof v !== "object" || v === null) return undefined;
    v = (v as Record<string, unknown>)[part];
  }
  return v;
}

function sortValue(v: unknown): string | number | undefined {
  if (v instanceof Date) return v.getTime();
  if (typeof v === "string") return v.toLowerCase();
  if (typeof v === "number") return v;
  if (typeof v === "boolean") return v ? 1 : 0;
  return undefined;
}

/**
 * Search criteria over a list computed in memory (distributions, packages, formats, images,
 * statuses, publications, artifact trees): `query` (FIQL) and `orderBy` name fields of `type`,
 * the items' UForge type (dotted for embedded objects: `targetFormat.name`). `valueOf` reads a
 * field of an item that is not itself a wire object (packages straight from the index).
 */
export function listPage<T extends object>(
  req: FastifyRequest,
  items: readonly T[],
  type: string,
  valueOf: (item: T, path: string) => unknown = wireField,
): { items: T[]; total: number } {
  const query = req.query as Query;
  const c = parseCriteria(query, []);
  const orderBy = single(query, "orderBy");
  if (orderBy !== undefined && orderBy !== "") {
    if (!scalarField(type, orderBy)) fail("invalidQuery", `cannot order by "${orderBy}": use a field of ${type} (${scalarFields(type).join(", ")})`);
    c.orderBy = orderBy;
  }
  let out = [...items];
  if (c.query) {
    const tree = parseFiql(c.query);
    for (const k of constraints(tree)) if (!scalarField(type, k.selector)) unknownSelector(k, `a list of ${type}`, scalarFields(type));
    out = out.filter((item) => matchFiql(tree, (path) => valueOf(item, path)));
  }
  if (c.orderBy) {
    const field = c.orderBy;
    const keyed = out.map((item) => ({ item, key: sortValue(valueOf(item, field)) }));
    const sign = c.descending ? -1 : 1;
    keyed.sort((a, b) => {
      if (a.key === b.key) return 0;
      if (a.key === undefined) return -sign;
      if (b.key === undefined) return sign;
      return (a.key < b.key ? -1 : 1) * sign;
    });
    out = keyed.map((k) => k.item);
  } else if (c.descending) out.reverse();
  const total = out.length;
  const offset = c.offset ?? 0;
  out = out.slice(offset, c.count === undefined ? undefined : offset + c.count);
  return { items: out, total };
}
