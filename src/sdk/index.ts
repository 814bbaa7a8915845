/**
 * Kiln's typed client: `import { KilnClient } from "kiln"`. See `client.ts` for the tour.
 */
export {
  KilnClient,
  AccountsApi,
  ApiKeysApi,
  ArtifactsApi,
  BundlesApi,
  DistributionsApi,
  FormatsApi,
  ImagesApi,
  PublicationsApi,
  TemplatesApi,
  UsersApi,
  type CallOptions,
  type KilnClientOptions,
  type PublishRequest,
} from "./client.js";
export { KilnAbortError, KilnApiError, KilnConnectionError, KilnIntegrityError, KilnTimeoutError, redactUrl } from "./errors.js";
export { OPERATIONS, fillPath, type HttpMethod, type Operation, type OperationId } from "./operations.js";
export { imageRef, publicationRef, templateRef, type HasUri, type ImageRef, type PublicationRef, type TemplateRef } from "./refs.js";
export type { DownloadOptions, DownloadResult, UploadOptions } from "./transfer.js";
export { apiBaseOf, signUrl, type Credentials, type Query, type ResponseEvent } from "./transport.js";
export { isFinished, statusUriOf, type WaitOptions } from "./wait.js";
export type * from "./types.js";
