/**
 * The objects the client hands back: UForge's generated interfaces (`src/wire/schema.generated.ts`)
 * as they travel in JSON. The server's JSON carries dates as ISO 8601 strings, so `Json<T>` turns
 * every `Date` of an interface into a `string`; everything else is the interface itself. Objects
 * are returned exactly as the server sent them (fields the schema does not know included), so a
 * CLI can print them as-is.
 */
import type * as wire from "../wire/schema.generated.js";

/** A wire interface as it is read from JSON: dates are ISO 8601 strings. */
export type Json<T> = T extends Date
  ? string
  : T extends ReadonlyArray<infer U>
    ? Array<Json<U>>
    : T extends object
      ? { [K in keyof T]: Json<T[K]> }
      : T;

/** A list answer: `{ total, <listName>: [...] }` (`total` is absent on a few UForge lists). */
export type ListOf<Name extends string, Item> = { total?: number } & { [K in Name]?: Item[] };

export type ServiceStatus = Json<wire.ServiceStatus>;
export type User = Json<wire.User>;
export type ApiKeyPair = Json<wire.APIKeyPair>;
export type Distribution = Json<wire.Distribution>;
export type Pkg = Json<wire.Pkg>;
export type PkgList = Json<wire.PkgList>;
export type ImageFormat = Json<wire.ImageFormat>;
export type TargetFormat = Json<wire.TargetFormat>;
export type TargetPlatform = Json<wire.TargetPlatform>;
export type MySoftware = Json<wire.MySoftware>;
export type BundleRestriction = Json<wire.BundleRestriction>;
export type SoftwareArtifact = Json<wire.SoftwareArtifact>;
/** A software artifact tagged `bootscript`, with when (`bootType`) and in which order (`bootOrder`) it runs. */
export type BootScript = Json<wire.BootScript>;
export type ContainerTemplate = Json<wire.ContainerTemplate>;
export type OpStatus = Json<wire.OpStatus>;
export type SoftwareBundleImport = Json<wire.SoftwareBundleImport>;
export type SoftwareBundleExport = Json<wire.SoftwareBundleExport>;
export type ImagePkg = Json<wire.ImagePkg>;
export type CredAccount = Json<wire.CredAccount>;
export type CredAccountDocker = Json<wire.CredAccountDocker>;
export type CredAccountOpenShift = Json<wire.CredAccountOpenShift>;
export type AnyCredAccount = Json<wire.AnyCredAccount>;
export type CredAccountResources = Json<wire.CredAccountResources>;
export type UForgeError = Json<wire.UForgeError>;

/** A generated image; `registeringName` is the `name:tag` docker gives it. */
export type Image = Json<wire.Image>;
/** A published image of either container kind; `registeringName` is where it was pushed. */
export type PublishImage = Json<wire.PublishImageDocker | wire.PublishImageOpenShift>;
export type PublishImageDocker = Json<wire.PublishImageDocker>;
export type PublishImageOpenShift = Json<wire.PublishImageOpenShift>;

export type Users = ListOf<"users", User>;
export type ApiKeyPairs = ListOf<"apiKeyPairs", ApiKeyPair>;
export type Distributions = ListOf<"distributions", Distribution>;
export type ImageFormats = ListOf<"imageFormats", ImageFormat>;
export type TargetFormats = ListOf<"targetFormats", TargetFormat>;
export type TargetPlatforms = ListOf<"targetPlatforms", TargetPlatform>;
export type MySoftwareList = ListOf<"mySoftwareList", MySoftware>;
export type SoftwareArtifacts = ListOf<"softwareArtifacts", SoftwareArtifact>;
export type ContainerTemplates = ListOf<"containerTemplates", ContainerTemplate>;
export type Images = ListOf<"images", Image>;
export type OpStatuses = ListOf<"statuses", OpStatus>;
export type ImagePkgs = ListOf<"imagePkgs", ImagePkg>;
export type PublishImages = ListOf<"publishImages", PublishImage>;
export type CredAccounts = ListOf<"credAccounts", AnyCredAccount>;

/** UForge's search criteria, accepted by most lists. */
export interface ListCriteria {
  /** Text every returned object contains. */
  query?: string;
  /** A sortable field of the listed objects. */
  orderBy?: string;
  descending?: boolean;
  count?: number;
  offset?: number;
}

/** Bytes moved so far, for upload and download progress. */
export interface TransferProgress {
  /** Bytes transferred, counting a resumed download's bytes already on disk. */
  loaded: number;
  /** Total bytes when known. */
  total: number | undefined;
}

/** Called as bytes move (at most every 64 KiB chunk). */
export type ProgressCallback = (progress: TransferProgress) => void;
