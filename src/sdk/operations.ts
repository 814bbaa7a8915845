/**
 * Every operation the client can call: UForge's operation ids (the `id` column of
 * `spec/uforge/endpoints.tsv`) with their method and path, plus Kiln's image package list and
 * the bundle import and export operations of `endpoints-added.tsv`. A test
 * holds this table equal to the endpoint file, so an endpoint added there cannot be forgotten here.
 */

/** An HTTP method the API uses. */
export type HttpMethod = "GET" | "POST" | "PUT" | "DELETE";

/** One operation: method and path template (`{uid}`-style parameters, under `/api`). */
export interface Operation {
  readonly method: HttpMethod;
  readonly path: string;
}

export const OPERATIONS = {
  apiKey_getAll: { method: "GET", path: "/users/{uid}/apikeys" },
  apiKey_create: { method: "POST", path: "/users/{uid}/apikeys" },
  apiKey_delete: { method: "DELETE", path: "/users/{uid}/apikeys/{akid}" },
  apiKey_update: { method: "PUT", path: "/users/{uid}/apikeys/{akid}" },
  containerTemplate_getAll: { method: "GET", path: "/users/{uid}/mysoftware/{msid}/templates" },
  containerTemplate_create: { method: "POST", path: "/users/{uid}/mysoftware/{msid}/templates" },
  containerTemplate_delete: { method: "DELETE", path: "/users/{uid}/mysoftware/{msid}/templates/{tid}" },
  containerTemplate_get: { method: "GET", path: "/users/{uid}/mysoftware/{msid}/templates/{tid}" },
  containerTemplateTargetFormat_getAll: { method: "GET", path: "/users/{uid}/mysoftware/{msid}/templates/{tid}/formats" },
  containerTemplate_generate: { method: "POST", path: "/users/{uid}/mysoftware/{msid}/templates/{tid}/images" },
  containerTemplateImage_download: { method: "GET", path: "/users/{uid}/mysoftware/{msid}/templates/{tid}/images/{itid}/downloads" },
  containerTemplateImage_downloadFile: { method: "GET", path: "/users/{uid}/mysoftware/{msid}/templates/{tid}/images/{itid}/downloads/{fileName}" },
  containerTemplateImage_delete: { method: "DELETE", path: "/users/{uid}/mysoftware/{msid}/templates/{tid}/images/{tiid}" },
  containerTemplateImage_get: { method: "GET", path: "/users/{uid}/mysoftware/{msid}/templates/{tid}/images/{tiid}" },
  containerTemplateImage_publish: { method: "POST", path: "/users/{uid}/mysoftware/{msid}/templates/{tid}/images/{tiid}/pimages" },
  containerTemplateImagePublished_delete: { method: "DELETE", path: "/users/{uid}/mysoftware/{msid}/templates/{tid}/images/{tiid}/pimages/{ptiid}" },
  containerTemplateImagePublished_get: { method: "GET", path: "/users/{uid}/mysoftware/{msid}/templates/{tid}/images/{tiid}/pimages/{ptiid}" },
  containerTemplateImagePublish_cancel: { method: "DELETE", path: "/users/{uid}/mysoftware/{msid}/templates/{tid}/images/{tiid}/pimages/{ptiid}/cancel" },
  containerTemplateImagePublish_get: { method: "GET", path: "/users/{uid}/mysoftware/{msid}/templates/{tid}/images/{tiid}/pimages/{ptiid}/status" },
  containerTemplateImageGeneration_cancel: { method: "DELETE", path: "/users/{uid}/mysoftware/{msid}/templates/{tid}/images/{tiid}/status" },
  containerTemplateImageGeneration_get: { method: "GET", path: "/users/{uid}/mysoftware/{msid}/templates/{tid}/images/{tiid}/status" },
  os_getAll: { method: "GET", path: "/distributions" },
  os_get: { method: "GET", path: "/distributions/{id}" },
  os_update: { method: "PUT", path: "/distributions/{id}" },
  osPkg_getAll: { method: "GET", path: "/distributions/{id}/pkgs" },
  osPkg_get: { method: "GET", path: "/distributions/{id}/pkgs/{pid}" },
  uforgeStatus_get: { method: "GET", path: "/status" },
  user_getAll: { method: "GET", path: "/users" },
  user_create: { method: "POST", path: "/users" },
  user_get: { method: "GET", path: "/users/{uid}" },
  user_update: { method: "PUT", path: "/users/{uid}" },
  cloudAccount_getAll: { method: "GET", path: "/users/{uid}/accounts" },
  cloudAccount_create: { method: "POST", path: "/users/{uid}/accounts" },
  cloudAccount_delete: { method: "DELETE", path: "/users/{uid}/accounts/{caid}" },
  cloudAccount_get: { method: "GET", path: "/users/{uid}/accounts/{caid}" },
  cloudAccount_update: { method: "PUT", path: "/users/{uid}/accounts/{caid}" },
  cloudAccountResources_get: { method: "GET", path: "/users/{uid}/accounts/{caid}/resources" },
  userMachineImage_getAll: { method: "GET", path: "/users/{uid}/images" },
  userMachineImageStatus_get: { method: "GET", path: "/users/{uid}/images/status" },
  userMachineImagePublished_getAll: { method: "GET", path: "/users/{uid}/pimages" },
  userMachineImagePublishedStatus_getAll: { method: "GET", path: "/users/{uid}/pimages/status" },
  userOS_getAll: { method: "GET", path: "/users/{uid}/distros" },
  mySoftware_getAll: { method: "GET", path: "/users/{uid}/mysoftware" },
  mySoftware_create: { method: "POST", path: "/users/{uid}/mysoftware" },
  mySoftware_delete: { method: "DELETE", path: "/users/{uid}/mysoftware/{msid}" },
  mySoftware_get: { method: "GET", path: "/users/{uid}/mysoftware/{msid}" },
  mySoftware_update: { method: "PUT", path: "/users/{uid}/mysoftware/{msid}" },
  mySoftwareArtifact_deleteAll: { method: "DELETE", path: "/users/{uid}/mysoftware/{msid}/artifacts" },
  mySoftwareArtifact_getAll: { method: "GET", path: "/users/{uid}/mysoftware/{msid}/artifacts" },
  mySoftwareArtifact_add: { method: "POST", path: "/users/{uid}/mysoftware/{msid}/artifacts" },
  mySoftwareArtifact_updateAll: { method: "PUT", path: "/users/{uid}/mysoftware/{msid}/artifacts" },
  mySoftwareArtifact_delete: { method: "DELETE", path: "/users/{uid}/mysoftware/{msid}/artifacts/{said}" },
  mySoftwareArtifact_get: { method: "GET", path: "/users/{uid}/mysoftware/{msid}/artifacts/{said}" },
  mySoftwareArtifact_update: { method: "PUT", path: "/users/{uid}/mysoftware/{msid}/artifacts/{said}" },
  mySoftwareArtifact_download: { method: "GET", path: "/users/{uid}/mysoftware/{msid}/artifacts/{said}/bin" },
  mySoftwareArtifact_downloadFile: { method: "GET", path: "/users/{uid}/mysoftware/{msid}/artifacts/{said}/bin/{fileName}" },
  mySoftwareArtifact_upload: { method: "POST", path: "/users/{uid}/mysoftware/{msid}/artifacts/{said}/bin/{fileName}" },
  mySoftwareArtifact_addChild: { method: "POST", path: "/users/{uid}/mysoftware/{msid}/artifacts/{said}/subsoftwareartifacts" },
  mySoftware_clone: { method: "POST", path: "/users/{uid}/mysoftware/{msid}/clone" },
  mySoftwareRestriction_update: { method: "PUT", path: "/users/{uid}/mysoftware/{msid}/restriction/{brid}" },
  mySoftwareRestrictionOS_getAll: { method: "GET", path: "/users/{uid}/mysoftware/{msid}/restriction/{brid}/distributions" },
  mySoftwareRestrictionOS_evaluate: { method: "POST", path: "/users/{uid}/mysoftware/{msid}/restriction/{brid}/distributions" },
  userFormats_getAll: { method: "GET", path: "/users/{uid}/formats" },
  userTargetFormat_getAll: { method: "GET", path: "/users/{uid}/targetformats" },
  userTargetPlatforms_getAll: { method: "GET", path: "/users/{uid}/targetplatforms" },
  userTargetPlatformFormat_getAll: { method: "GET", path: "/users/{uid}/targetplatforms/{tpid}/targetformats" },
  containerTemplateImagePkgs_getAll: { method: "GET", path: "/users/{uid}/mysoftware/{msid}/templates/{tid}/images/{tiid}/pkgs" },
  // From endpoints-added.tsv: hammr's bundle import and export.
  softwareBundle_import: { method: "POST", path: "/users/{uid}/bundleimports" },
  softwareBundleImport_get: { method: "GET", path: "/users/{uid}/bundleimports/{sbid}" },
  softwareBundleImportStatus_get: { method: "GET", path: "/users/{uid}/bundleimports/{sbid}/status" },
  softwareBundleImport_upload: { method: "POST", path: "/users/{uid}/bundleimports/{sbid}/uploads" },
  mySoftware_export: { method: "POST", path: "/users/{uid}/mysoftware/{msid}/exports" },
  mySoftwareExport_delete: { method: "DELETE", path: "/users/{uid}/mysoftware/{msid}/exports/{eid}" },
  mySoftwareExport_download: { method: "GET", path: "/users/{uid}/mysoftware/{msid}/exports/{eid}/downloads" },
  mySoftwareExportStatus_get: { method: "GET", path: "/users/{uid}/mysoftware/{msid}/exports/{eid}/status" },
} as const satisfies Record<string, Operation>;

/** A UForge operation id, e.g. `"mySoftware_create"`. */
export type OperationId = keyof typeof OPERATIONS;

/** The path parameters an operation's template names. */
export type PathParams<P extends string> = P extends `${string}{${infer Name}}${infer Rest}` ? { [K in Name | keyof PathParams<Rest>]: string | number } : {};

/** Fills a path template; each value is percent-encoded as one path segment. */
export function fillPath(template: string, params: Readonly<Record<string, string | number>>): string {
  return template.replace(/\{(\w+)\}/g, (_, name: string) => {
    const v = params[name];
    if (v === undefined || v === "") throw new TypeError(`missing path parameter ${name} for ${template}`);
    return encodeURIComponent(String(v));
  });
}
