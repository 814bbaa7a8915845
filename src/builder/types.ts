/**
 * The image builder's contract: what `kiln build` and the generation jobs ask for, and what they
 * get back. The builder resolves packages from a distribution's repository, unpacks them into a
 * virtual rootfs, applies the fix-ups that replace package scripts, and writes a reproducible
 * OCI image into the blob store.
 */
import type { BlobStore } from "../blobs/blob-store.js";
import type { BinaryPackage } from "../debian/types.js";
import type { LayerCompression } from "../oci/layer.js";
import type { BuiltImage, ContainerConfig } from "../oci/types.js";
import type { ScriptReportEntry } from "../rootfs/fixups/maintainer-scripts.js";
import type { FsEntry, RootfsView } from "../rootfs/types.js";
import type { DistributionConfig } from "../domain/distributions.js";

/** A layer on top of the packages (the bundle's files), computed once the package tree exists. */
export interface ExtraLayer {
  /** One line for the image history. */
  createdBy: string;
  /**
   * What the layer's content depends on besides the tree below it (e.g. artifact digests and
   * settings); with it, an unchanged layer is reused from the layer cache.
   */
  cacheKey?: string;
  /** The layer's entries; `view` is the finished package tree (for users, groups, existing dirs). */
  entries(view: RootfsView): Promise<FsEntry[]>;
}

export type BuildPhase = "resolving" | "downloading" | "unpacking" | "configuring" | "writing layers" | "writing image";

export interface BuildProgress {
  phase: BuildPhase;
  /** A line for a user: `downloading 12/88 packages`. */
  message: string;
  /** Overall progress of the build, 0–1, never decreasing. */
  fraction: number;
}

export interface BuildRequest {
  distribution: DistributionConfig;
  /** `minbase`: Priority required + apt (debootstrap --variant=minbase); `none`: only what is asked. */
  profile: "minbase" | "none";
  /** More packages by name (`jq`, `libfoo (>= 2)`). */
  packages?: string[];
  /**
   * Also install Recommends (apt's default). Without it, like debootstrap and apko, only
   * Pre-Depends and Depends are followed.
   */
  installRecommends?: boolean;
  /** Local `.deb` files to install (bundle packages, `--deb`); their dependencies come from the repository. */
  localDebs?: string[];
  /**
   * Called with the size of each file `localDebs[index]` unpacks, before it is written (its whole
   * content at once when it was unpacked before): throwing stops the unpacking — a bundle's
   * budget against KILN_MAX_IMAGE_SIZE.
   */
  chargeLocalDeb?: (index: number, bytes: number) => void;
  extraLayers?: ExtraLayer[];
  /**
   * The image's name (`name:tag`), for its SBOM and for the writer's tags; without it, the first
   * named package (else the distribution) at `latest` (`defaultImageName`).
   */
  imageName?: string;
  /** Entrypoint, Cmd, Env, User, WorkingDir, Labels of the image config. */
  config: ContainerConfig;
  /**
   * The Cmd when `config` has neither Entrypoint nor Cmd — only if the finished image has its
   * program at `/bin/sh` (`["/bin/sh"]`); an image without a shell then gets no Cmd at all.
   */
  defaultCmd?: ["/bin/sh", ...string[]];
  /** The one clock of every timestamp; default `SOURCE_DATE_EPOCH`, else the newest package's date (a package layer's files: the newest of its own packages). */
  clock?: Date;
  /**
   * Rebuild every layer. Downloaded and unpacked packages are still reused: both are keyed by
   * the `.deb`'s sha256, so they are the same bytes a fresh download and unpacking would give.
   */
  noCache?: boolean;
  /** Decompress every package again (its unpacked copy is replaced), whatever `noCache` says. */
  noPackageCache?: boolean;
  /** The layers' compression (default gzip; zstd needs the `zstd` program and a consumer that reads it). */
  compression?: LayerCompression;
  /**
   * Fail (KilnError `unreproducedEffects`, before the image is assembled) when a package script
   * has an effect Kiln does not reproduce.
   */
  strict?: boolean;
  signal?: AbortSignal;
  onProgress?: (p: BuildProgress) => void;
}

export interface BuildResult {
  image: BuiltImage;
  /** `req.imageName`, or the default name the build gave the image. */
  imageName: string;
  /** Every package in the image, in install order. */
  packages: BinaryPackage[];
  /** Each package's build date (its `.deb`'s `debian-binary` mtime), by package name. */
  buildDates: ReadonlyMap<string, Date>;
  /** The names of the packages asked for (profile, named, local `.deb`, Essential): the others came as dependencies. */
  manual: string[];
  clock: Date;
  /** Layers taken from the cache vs written in this build. */
  layersReused: number;
  layersWritten: number;
  /** Problems the fix-ups met that are not script effects (for the build log). */
  warnings: string[];
  /** What Kiln did about every maintainer script and trigger (`kiln build --report`). */
  report: BuildReport;
  /** The image's SPDX 2.3 document (`kiln build --sbom`). */
  sbom: Record<string, unknown>;
}

/** The build report: the image, its packages, and every script effect with its outcome. */
export interface BuildReport {
  /** The OCI manifest's digest (`sha256:...`). */
  digest: string;
  packages: Array<{ name: string; version: string; architecture: string }>;
  scripts: ScriptReportEntry[];
}

export interface BuilderDeps {
  /** KILN_DATA_DIR: caches live under it (`cache/`). */
  dataDir: string;
  /** Where layers, configs and manifests go. */
  blobs: BlobStore;
  /** Where downloaded `.deb` files go (content-addressed). */
  debs: BlobStore;
}
