/**
 * The endpoint table: `spec/uforge/endpoints.tsv` (extracted from UForge's WADL) is the single
 * source for every route's method, path, authentication and entitlements. The router registers
 * one Fastify route per row whose operation Kiln implements.
 */
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

export interface EndpointSpec {
  category: string;
  operationId: string;
  method: "GET" | "POST" | "PUT" | "DELETE";
  /** UForge form, under /api: `/users/{uid}/mysoftware/{msid}`. */
  path: string;
  /** Fastify form: `/api/users/:uid/mysoftware/:msid`. */
  route: string;
  auth: boolean;
  /** Any one of these is enough (UForge lists alternatives, e.g. `user_administrate,user_profile_edit`). */
  entitlements: string[];
  requestRoot: string | undefined;
  responseRoot: string | undefined;
  queryParams: string[];
}

/** Where the contract files live in the package (works from `src/` under vitest and from `dist/`). */
export const SPEC_DIR = fileURLToPath(new URL("../../spec/uforge/", import.meta.url));

export function loadEndpoints(file = `${SPEC_DIR}endpoints.tsv`): EndpointSpec[] {
  const lines = readFileSync(file, "utf8").split("\n").filter((l) => l.trim() !== "");
  const header = lines.shift()!.split("\t").map((h) => h.trim());
  const col = (name: string): number => {
    const i = header.indexOf(name);
    if (i < 0) throw new Error(`endpoints.tsv has no column ${name}`);
    return i;
  };
  const idx = {
    category: col("category"),
    id: col("id"),
    method: col("method"),
    path: col("path"),
    auth: col("auth"),
    entitlements: col("entitlements"),
    request: col("request"),
    response: col("response"),
    query: col("query_params"),
  };
  return lines.map((line) => {
    const f = line.split("\t");
    const cell = (i: number): string => (f[i] ?? "").trim();
    const path = cell(idx.path);
    const list = (s: string): string[] => s.split(",").map((x) => x.trim()).filter(Boolean);
    const root = (s: string): string | undefined => (s === "" || s.includes("/") ? undefined : s.split("|")[0]);
    return {
      category: cell(idx.category),
      operationId: cell(idx.id),
      method: cell(idx.method) as EndpointSpec["method"],
      path,
      route: `/api${path.replace(/\{(\w+)\}/g, ":$1")}`,
      auth: cell(idx.auth) === "true",
      entitlements: list(cell(idx.entitlements)),
      requestRoot: root(cell(idx.request)),
      responseRoot: root(cell(idx.response)),
      queryParams: list(cell(idx.query)),
    };
  });
}

/**
 * Every UForge endpoint Kiln serves: `endpoints.tsv` (the container flow and library) and
 * `endpoints-added.tsv` (what hammr needs besides: bundle import and export, licenses and logos,
 * OS profiles, orgs, quotas), in the same format.
 */
export function loadServedEndpoints(): EndpointSpec[] {
  return [...loadEndpoints(), ...loadEndpoints(`${SPEC_DIR}endpoints-added.tsv`)];
}

/** An image's document Kiln serves beyond UForge's contract (JSON only). */
function imageDocument(name: "report" | "sbom", operationId: string): EndpointSpec {
  return {
    category: "Containers",
    operationId,
    method: "GET",
    path: `/users/{uid}/mysoftware/{msid}/templates/{tid}/images/{tiid}/${name}`,
    route: `/api/users/:uid/mysoftware/:msid/templates/:tid/images/:tiid/${name}`,
    auth: true,
    entitlements: ["appliance_create"],
    requestRoot: undefined,
    responseRoot: undefined,
    queryParams: [],
  };
}

/**
 * Endpoints Kiln serves beyond UForge's table: an image's `pkgsUri` answers the list of packages
 * in the image (objects Kiln returns link to it); `.../report` the build report (what Kiln did
 * about every maintainer script effect) and `.../sbom` the image's SPDX 2.3 document, both JSON;
 * `events` is the console's live status stream (Server-Sent Events, server/events.ts).
 * `category_getAll` is UForge's own (its page is in the docs) but in neither endpoint file:
 * `hammr bundle categories` calls it after the orgs.
 */
export const EXTENSION_ENDPOINTS: EndpointSpec[] = [
  {
    category: "Categories",
    operationId: "category_getAll",
    method: "GET",
    path: "/orgs/{oid}/categories",
    route: "/api/orgs/:oid/categories",
    auth: false,
    entitlements: [],
    requestRoot: undefined,
    responseRoot: "categories",
    queryParams: ["query", "descending", "orderBy", "count", "offset"],
  },
  imageDocument("report", "containerTemplateImageReport_get"),
  imageDocument("sbom", "containerTemplateImageSbom_get"),
  {
    category: "Containers",
    operationId: "containerTemplateImagePkgs_getAll",
    method: "GET",
    path: "/users/{uid}/mysoftware/{msid}/templates/{tid}/images/{tiid}/pkgs",
    route: "/api/users/:uid/mysoftware/:msid/templates/:tid/images/:tiid/pkgs",
    auth: true,
    entitlements: ["appliance_create"],
    requestRoot: undefined,
    responseRoot: "imagePkgs",
    queryParams: [],
  },
  {
    category: "User Machine Image",
    operationId: "userEvents_get",
    method: "GET",
    path: "/users/{uid}/events",
    route: "/api/users/:uid/events",
    auth: true,
    entitlements: [],
    requestRoot: undefined,
    responseRoot: undefined,
    queryParams: [],
  },
];

/** Every entitlement named in the table: what the administrator holds. */
export function allEntitlements(endpoints: EndpointSpec[]): string[] {
  return [...new Set(endpoints.flatMap((e) => e.entitlements))].sort();
}

/** What a new user gets: everything the container flow needs (not administration). */
export const USER_ENTITLEMENTS = [
  "api_key_access",
  "appliance_create",
  "cloud_account_create",
  "cloud_account_delete",
  "cloud_account_edit",
  "image_generate",
  "image_publish",
  "software_upload",
  "user_profile_edit",
] as const;

/** Entitlements only an administrator holds. */
export const ADMIN_ONLY_ENTITLEMENTS = ["org_os_administrate", "user_administrate", "migration_publish"] as const;
