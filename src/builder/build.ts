/**
 * The image builder: repository → resolver → downloads → virtual rootfs → fix-ups → layers →
 * image, with a layer cache so that unchanged inputs cost nothing the second time.
 *
 *   1. Read the distribution's (verified) index; resolve the profile, the asked packages and the
 *      local `.deb` files with their dependencies.
 *   2. Fetch missing `.deb` files (verified against the signed index) into the deb store.
 *   3. Record every package into a {@link Rootfs}, in install order. A package already unpacked
 *      once (same sha256) is read from its manifest: nothing is decompressed twice.
 *   4. Group packages into layers (layers.ts) and snapshot each group's entries: their cache keys
 *      are hashes of exactly what they would contain.
 *   5. Apply the fix-ups that replace package scripts — only when their layer (or a layer built on
 *      top of the finished tree) is not cached. The fix-up layer holds what they wrote, and
 *      whiteouts for what they removed from the package layers.
 *   6. Write the layers that are not cached (concurrently: gzip runs on libuv's thread pool),
 *      then the image config and manifests.
 */
import path from "node:path";
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { KilnError } from "../domain/errors.js";
import { openRepository } from "../debian/repository.js";
import { resolvePackages } from "../debian/resolver.js";
import { essentialNames, selectProfile } from "../debian/profiles.js";
import type { BinaryPackage } from "../debian/types.js";
import { spdxDocument } from "../debian/sbom.js";
import { buildClock } from "../oci/clock.js";
import { assembleImage } from "../oci/image.js";
import { LayerCache } from "../oci/layer-cache.js";
import { layerFormat, writeLayer, type LayerCompression } from "../oci/layer.js";
import type { Layer } from "../oci/types.js";
import { MERGED_USR_DIRS, ROOTFS_OWNER, Rootfs } from "../rootfs/rootfs.js";
import { aptSourceFor } from "../rootfs/fixups/apt-sources.js";
import { bufferContent, type FsEntry } from "../rootfs/types.js";
import { describeUnpacked, extractPackage, unpackPackages, type PackageSource } from "../rootfs/unpack.js";
import { readDebDate } from "../debian/deb.js";
import { debianArch, ociArch, ociVariant } from "../domain/distributions.js";
import { defaultImageName } from "../domain/image-names.js";
import { refuseDeviceNodes } from "./bundle-layer.js";
import { groupDescription, groupPackages, layerKey } from "./layers.js";
import type { ScriptReportEntry } from "../rootfs/fixups/maintainer-scripts.js";
import type { BuildPhase, BuildReport, BuildRequest, BuildResult, BuilderDeps } from "./types.js";

/** Kiln's version, for the SBOM's creator (from package.json, next to src/ and dist/). */
const KILN_VERSION = (JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version: string }).version;

/** Bump when a fix-up's output may change for the same packages (cached fix-up layers are then rebuilt). */
export const FIXUPS_VERSION = 5;

/** Share of the whole build each phase accounts for, for a progress bar that only moves forward. */
const PHASES: Record<BuildPhase, [number, number]> = {
  resolving: [0, 0.05],
  downloading: [0.05, 0.25],
  unpacking: [0.25, 0.55],
  configuring: [0.55, 0.6],
  "writing layers": [0.6, 0.97],
  "writing image": [0.97, 1],
};

class Progress {
  private best = 0;
  constructor(private readonly report: BuildRequest["onProgress"]) {}
  set(phase: BuildPhase, message: string, within = 0): void {
    const [a, b] = PHASES[phase];
    this.best = Math.max(this.best, a + (b - a) * Math.max(0, Math.min(1, within)));
    this.report?.({ phase, message, fraction: this.best });
  }
}

function checkCancelled(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new KilnError("cancelled", "the build was cancelled", { cause: signal.reason });
}

const hex = (s: string): string => createHash("sha256").update(s).digest("hex");

/**
 * Builds an image; see the module comment for the steps. Layer writes run beside the later
 * steps: whatever fails or is cancelled, the promise settles only once every write it started
 * has stopped (their temporary blobs removed).
 */
export async function buildImage(req: BuildRequest, deps: BuilderDeps): Promise<BuildResult> {
  const writes = new LayerWriter(deps, req.signal);
  try {
    return await buildStages(req, deps, writes);
  } catch (err) {
    writes.abort();
    await writes.settle();
    throw err;
  }
}

async function buildStages(req: BuildRequest, deps: BuilderDeps, writes: LayerWriter): Promise<BuildResult> {
  const { signal } = req;
  // First: a zstd build on a host without the zstd program fails before anything is downloaded.
  const format = layerFormat(undefined, req.compression);
  const progress = new Progress(req.onProgress);
  const arch = debianArch(req.distribution.arch);
  const cacheDir = path.join(deps.dataDir, "cache");

  // 1. Index and resolution.
  progress.set("resolving", `reading the package index of ${req.distribution.suite}`);
  const repo = await openRepository(req.distribution, { cacheDir: path.join(cacheDir, "repos"), debs: deps.debs, ...(signal ? { signal } : {}) });
  checkCancelled(signal);
  const local = await allSettledOrThrow(
    (req.localDebs ?? []).map(async (deb, i) => {
      const charge = req.chargeLocalDeb ? (bytes: number) => req.chargeLocalDeb!(i, bytes) : undefined;
      const unpacked = await extractPackage({ deb }, { cacheDir, ...(req.noPackageCache ? { noCache: true } : {}), ...(signal ? { signal } : {}), ...(charge ? { charge } : {}) });
      refuseDeviceNodes(deb, unpacked);
      return { deb, pkg: describeUnpacked(unpacked), sha256: unpacked.sha256 };
    }),
  );
  const localByName = new Map<string, (typeof local)[number]>();
  for (const l of local) {
    if (localByName.has(l.pkg.name)) throw new KilnError("buildFailed", `two local packages are named ${l.pkg.name}`);
    localByName.set(l.pkg.name, l);
  }
  progress.set("resolving", "resolving dependencies", 0.5);
  const profileNames = selectProfile(req.profile, repo.packages, arch);
  const packages = resolvePackages(repo.packages, {
    names: [...profileNames, ...(req.packages ?? [])],
    localDebs: local.map((l) => l.pkg),
    arch,
    ...(req.installRecommends ? { recommends: true } : {}),
  });
  // The base system alone is the same request when nothing is added to the profile (resolving is deterministic).
  const onlyProfile = (req.packages ?? []).length === 0 && local.length === 0 && !req.installRecommends;
  const base = req.profile === "none" ? [] : onlyProfile ? packages : resolvePackages(repo.packages, { names: profileNames, arch });
  const isLocal = (p: BinaryPackage): boolean => localByName.get(p.name)?.pkg === p;
  const manual = manualPackages(req, profileNames, local.map((l) => l.pkg.name), req.profile === "none" ? [] : resolvePackages(repo.packages, { names: essentialNames(repo.packages, arch), arch }));

  // 2. Downloads.
  const remote = packages.filter((p) => !isLocal(p));
  progress.set("downloading", `downloading ${remote.length} packages`);
  const digests = await repo.fetchDebs(remote, {
    ...(signal ? { signal } : {}),
    onProgress: (done, total) => progress.set("downloading", `downloading ${done}/${total} packages`, done / Math.max(1, total)),
  });
  checkCancelled(signal);

  // 3. The one clock (known before unpacking: layers are written while packages still unpack).
  const sources: PackageSource[] = packages.map((p) => {
    const l = localByName.get(p.name);
    if (l && l.pkg === p) return { deb: l.deb, pkg: p, sha256: l.sha256 };
    const digest = digests.get(p);
    if (!digest) throw new KilnError("internal", `package ${p.name} was not downloaded`);
    return { deb: deps.debs.path(digest), pkg: p, sha256: digest.slice(7) };
  });
  const dates = await Promise.all(sources.map((s) => readDebDate(s.deb)));
  const clockOf = (candidates: Iterable<Date>): Date => req.clock ?? buildClock({ sourceDateEpoch: process.env.SOURCE_DATE_EPOCH, candidates });
  const clock = clockOf(dates);
  // A package layer's clock is its own packages' newest date: a bundle's fresh .deb (or any
  // package added to the image) then changes the clock of its own layer and of the fix-up layer,
  // never the bytes of the distribution's layers, which stay shared with every other image.
  const dateOf = new Map(sources.map((s, i) => [s.pkg!.name, dates[i]!]));
  const shaOf = new Map(sources.map((s) => [s.pkg!.name, s.sha256!]));
  const cache = new LayerCache(path.join(cacheDir, "layers"), deps.blobs);
  const cached = async (key: string | undefined): Promise<Layer | undefined> => (key === undefined || req.noCache ? undefined : cache.get(key));
  writes.begin(cache, clock, req.compression ?? "gzip");

  // 4. The package tree, and each group's layer as soon as its content is final: all its
  //    packages are in, and so is every package that may take files over from them (Replaces —
  //    without it, a second package shipping a path fails the build).
  const rootfs = new Rootfs({ usrMerge: MERGED_USR_DIRS, fileConflicts: "refuse" });
  const groups = groupPackages(packages, base, new Set(packages.filter(isLocal).map((p) => p.name)));
  const waitsFor = groups.map((g) => new Set([...g.names, ...packages.filter((p) => replacesAny(p, g.packages)).map((p) => p.name)]));
  const packageLayers: Array<{ createdBy: string; entries: FsEntry[]; key: string; layer: Promise<Layer> } | undefined> = groups.map(() => undefined);
  const settle = (i: number): void => {
    const g = groups[i]!;
    const entries = rootfs.entries((owner) => g.names.has(owner));
    const groupClock = clockOf(g.packages.map((p) => dateOf.get(p.name)!));
    const key = layerKey({ kind: `packages ${g.tier}/${g.bucket}`, format, clock: groupClock, sources: g.packages.map((p) => `${p.name} ${shaOf.get(p.name)}`), entries });
    const createdBy = groupDescription(g);
    packageLayers[i] = { createdBy, entries, key, layer: writes.track(cached(key).then((hit) => hit ?? writes.write(key, createdBy, entries, { clock: groupClock }))) };
  };
  let installed = 0;
  progress.set("unpacking", `unpacking ${packages.length} packages`);
  await unpackPackages(rootfs, sources, {
    cacheDir,
    concurrency: 2,
    ...(req.noPackageCache ? { noCache: true } : {}),
    ...(signal ? { signal } : {}),
    onInstalled: (pkg) => {
      installed++;
      progress.set("unpacking", `unpacking ${installed}/${packages.length} packages (${pkg.pkg.name})`, installed / packages.length);
      waitsFor.forEach((w, i) => {
        if (w.delete(pkg.pkg.name) && w.size === 0) settle(i);
      });
    },
  });
  checkCancelled(signal);
  groups.forEach((_, i) => packageLayers[i] ?? settle(i));
  const settled = packageLayers as Array<NonNullable<(typeof packageLayers)[number]>>;
  // Every path the package layers hold, to know what the fix-ups take away from them.
  const below = new Map<string, FsEntry["type"]>();
  for (const l of settled) for (const e of l.entries) below.set(e.path, e.type);

  const aptSources = /^https?:\/\//.test(req.distribution.mirror) ? [aptSourceFor(req.distribution)] : [];
  const fixupKey = hex(
    JSON.stringify({ v: FIXUPS_VERSION, format, clock: clock.toISOString(), arch, aptSources, manual: [...manual].sort(), packages: packages.map((p) => `${p.name} ${shaOf.get(p.name)}`) }),
  );
  const extraKeys = (req.extraLayers ?? []).map((x, i) => (x.cacheKey ? hex(`extra ${i} ${x.cacheKey} ${fixupKey} ${settled.map((l) => l.key).join(",")}`) : undefined));
  // The fix-up layer is reused only with the note that says what its fix-ups found.
  const cachedNote = req.noCache ? undefined : parseConfiguration(await cache.note(fixupKey));
  const fixupCached = cachedNote ? await cached(fixupKey) : undefined;
  const extraCached = await Promise.all(extraKeys.map((k) => cached(k)));

  // 5. Fix-ups, when something needs the finished tree.
  let fixupEntries: FsEntry[] | undefined;
  let configuration = fixupCached ? cachedNote : undefined;
  if (!fixupCached || extraCached.some((l) => l === undefined)) {
    progress.set("configuring", "configuring (replacing package scripts)");
    const warnings: string[] = [];
    const scripts: ScriptReportEntry[] = [];
    // Loaded only here: a build whose fix-up layer is cached runs none (and skips loading ~40 modules).
    const { fixupsFor } = await import("../rootfs/fixups/index.js");
    const fixups = fixupsFor(req.distribution.suite, { aptSources, manual, warn: (m) => warnings.push(m), report: scripts });
    for (const [i, f] of fixups.entries()) {
      checkCancelled(signal);
      const result = await f.apply({ packages: rootfs.installedPackages(), fs: rootfs, arch, clock });
      rootfs.applyFixup(f.name, result);
      progress.set("configuring", `configuring: ${f.name}`, (i + 1) / fixups.length);
    }
    configuration = { warnings, scripts, binSh: rootfs.stat("bin/sh")?.type === "file" };
    fixupEntries = rootfs.entries((owner) => owner === ROOTFS_OWNER || owner.startsWith("<fixup:"));
    // What the fix-ups removed, or turned from a directory into something else, is hidden from the
    // package layers below by whiteouts in their layer: `.wh.<name>` (OCI image-spec, layer.md).
    const whiteouts: FsEntry[] = [];
    let hidden: string | undefined;
    for (const p of [...below.keys()].sort()) {
      if (hidden !== undefined && p.startsWith(`${hidden}/`)) continue;
      const now = rootfs.lstat(p);
      if (now && (now.type === "dir") === (below.get(p) === "dir")) continue;
      hidden = p;
      const slash = p.lastIndexOf("/");
      whiteouts.push({ path: `${p.slice(0, slash + 1)}.wh.${p.slice(slash + 1)}`, type: "file", mode: 0o644, uid: 0, gid: 0, content: bufferContent("") });
    }
    fixupEntries = [...fixupEntries, ...whiteouts];
  }

  const unreproduced = configuration!.scripts.filter((e) => e.outcome === "unreproduced");
  if (req.strict && unreproduced.length > 0) {
    writes.abort();
    await Promise.allSettled(settled.map((l) => l.layer));
    const names = [...new Set(unreproduced.map((e) => e.package))];
    throw new KilnError("unreproducedEffects", `${unreproduced.length} script effect${unreproduced.length === 1 ? "" : "s"} of ${names.join(", ")} not reproduced (--strict): ${unreproduced.map((e) => `${e.package} ${e.script}: ${e.effect}`).join("; ")}`);
  }

  // 6. The layers on top, then every write finished.
  progress.set("writing layers", "writing layers");
  const top: Array<Promise<Layer>> = [
    fixupCached ? Promise.resolve(fixupCached) : writes.write(fixupKey, FIXUP_HISTORY, fixupEntries!, { note: configuration }),
    ...(req.extraLayers ?? []).map(async (x, i) => extraCached[i] ?? writes.write(extraKeys[i], x.createdBy, await x.entries(rootfs), { ancestors: (p) => rootfs.lstat(p) })),
  ];
  const layers = await Promise.all([...settled.map((l) => l.layer), ...top.map((l) => writes.track(l))]);
  checkCancelled(signal);
  const layersWritten = writes.count;

  progress.set("writing image", "writing the image config and manifests");
  const config = { ...req.config };
  // A default command only when the image has the program: a distroless image has no /bin/sh.
  if (req.defaultCmd && config.Entrypoint === undefined && config.Cmd === undefined && configuration!.binSh) config.Cmd = [...req.defaultCmd];
  const variant = ociVariant(req.distribution.arch);
  const image = await assembleImage(layers, { architecture: ociArch(req.distribution.arch), ...(variant ? { variant } : {}), config, clock, blobs: deps.blobs });
  progress.set("writing image", "done", 1);
  const imageName = req.imageName ?? defaultImageName(req.packages?.[0] ?? local[0]?.pkg.name ?? req.distribution.name);
  const sbom = spdxDocument({
    name: imageName,
    digest: image.manifestDigest,
    created: clock,
    release: req.distribution.version,
    tool: `Tool: kiln-${KILN_VERSION}`,
    packages: await Promise.all(packages.map(async (p) => ({ pkg: p, ...(await copyrightOf(rootfs, p.name)) }))),
  });
  const report: BuildReport = {
    digest: image.manifestDigest,
    packages: packages.map((p) => ({ name: p.name, version: p.version, architecture: p.architecture })),
    scripts: configuration!.scripts,
  };
  return { image, imageName, packages, buildDates: dateOf, manual: [...manual].sort(), clock, layersReused: layers.length - layersWritten, layersWritten, warnings: configuration!.warnings, report, sbom };
}

/** A package's copyright file in the tree (`/usr/share/doc/<name>/copyright`), when it has one. */
async function copyrightOf(rootfs: Rootfs, name: string): Promise<{ copyright?: string }> {
  const path = `usr/share/doc/${name}/copyright`;
  const e = rootfs.stat(path);
  if (e?.type !== "file" || (e.content?.size ?? 0) > 4 << 20) return {};
  return { copyright: (await rootfs.readFile(path)).toString("utf8") };
}

/** What the fix-ups found, kept with their cached layer for the builds that reuse it. */
interface Configuration {
  /** Problems the fix-ups met (see FixupOptions.warn). */
  warnings: string[];
  /** What Kiln did about every maintainer script and trigger. */
  scripts: ScriptReportEntry[];
  /** Whether `/bin/sh` leads to a regular file in the finished tree. */
  binSh: boolean;
}

/** A cached note, if it is a whole {@link Configuration} (else the layer is rebuilt). */
function parseConfiguration(note: unknown): Configuration | undefined {
  if (typeof note !== "object" || note === null) return undefined;
  const n = note as Partial<Configuration>;
  if (!Array.isArray(n.warnings) || !n.warnings.every((w) => typeof w === "string") || typeof n.binSh !== "boolean" || !Array.isArray(n.scripts)) return undefined;
  const scripts = n.scripts.filter(
    (e): e is ScriptReportEntry =>
      typeof e === "object" && e !== null && typeof e.package === "string" && typeof e.script === "string" && typeof e.effect === "string" && ["emulated", "not-needed", "unreproduced"].includes(e.outcome),
  );
  if (scripts.length !== n.scripts.length) return undefined;
  return { warnings: n.warnings, scripts, binSh: n.binSh };
}

/** Like Promise.all, but rejects only once every promise has settled: none is left running. */
async function allSettledOrThrow<T>(promises: Array<Promise<T>>): Promise<T[]> {
  const results = await Promise.allSettled(promises);
  const failed = results.find((r): r is PromiseRejectedResult => r.status === "rejected");
  if (failed) throw failed.reason;
  return results.map((r) => (r as PromiseFulfilledResult<T>).value);
}

const FIXUP_HISTORY = "kiln: configuration (users and groups, alternatives, dpkg database, ld.so.cache, ...)";

/**
 * The packages apt must not mark automatic: what the user named (packages and local `.deb`
 * files), what the profile named, and — for a bootstrap profile — the Essential set with its
 * dependencies, which debootstrap and mmdebstrap install with dpkg before apt runs.
 */
function manualPackages(req: BuildRequest, profileNames: readonly string[], localNames: readonly string[], essential: readonly BinaryPackage[]): Set<string> {
  const named = (req.packages ?? []).map((n) => n.trim().split(/[\s(:]/)[0]!);
  return new Set([...profileNames, ...named, ...localNames, ...essential.map((p) => p.name)]);
}

/** Does `p` declare that it replaces (may take files over from) one of `pkgs`? */
function replacesAny(p: BinaryPackage, pkgs: readonly BinaryPackage[]): boolean {
  if (p.replaces.length === 0) return false;
  const names = new Set<string>();
  for (const q of pkgs) {
    if (q === p) continue;
    names.add(q.name);
    for (const v of q.provides) names.add(v.name);
  }
  return p.replaces.some((group) => group.some((r) => names.has(r.name)));
}

interface WriteOptions {
  /** Resolves parents missing from the entries (see {@link LayerWriter.write}). */
  ancestors?: (p: string) => FsEntry | undefined;
  /** Recorded with the layer in the cache. */
  note?: unknown;
  /** The layer's own clock, when not the image's. */
  clock?: Date;
}

/**
 * Writes layers, at most {@link LayerWriter.LIMIT} at once (gzip runs on libuv's thread pool),
 * records each in the cache, and counts them. It keeps every promise of a layer it was given
 * ({@link track}): `abort()` cancels what is in flight and {@link settle} waits until all of it
 * has stopped, so a failed build leaves no write running and no rejection unhandled.
 */
class LayerWriter {
  static readonly LIMIT = 3;
  count = 0;
  private running = 0;
  private readonly queue: Array<() => void> = [];
  private readonly controller = new AbortController();
  private readonly inFlight = new Set<Promise<unknown>>();
  private cache: LayerCache | undefined;
  private clock: Date | undefined;
  private compression: LayerCompression = "gzip";

  constructor(
    private readonly deps: BuilderDeps,
    signal: AbortSignal | undefined,
  ) {
    signal?.addEventListener("abort", () => this.abort(), { once: true });
  }

  /** Where layers are recorded, the image's clock (of entries whose layer has none of its own) and the layers' compression. */
  begin(cache: LayerCache, clock: Date, compression: LayerCompression): void {
    this.cache = cache;
    this.clock = clock;
    this.compression = compression;
  }

  abort(): void {
    if (!this.controller.signal.aborted) this.controller.abort(new KilnError("cancelled", "the build was cancelled"));
  }

  /** Keeps `p` until it settles; its rejection is handled here too (whoever awaits it still sees it). */
  track<T>(p: Promise<T>): Promise<T> {
    this.inFlight.add(p);
    p.then(
      () => this.inFlight.delete(p),
      () => this.inFlight.delete(p),
    );
    return p;
  }

  /** Resolves once every tracked promise has settled, including those started meanwhile. */
  async settle(): Promise<void> {
    while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight]);
  }

  /**
   * `ancestors` resolves parents missing from `entries`; package and fix-up layers list theirs
   * (Rootfs.entries includes them), since the tree keeps changing while their writes are queued.
   */
  write(key: string | undefined, createdBy: string, entries: readonly FsEntry[], options: WriteOptions = {}): Promise<Layer> {
    return this.track(this.writeNow(key, createdBy, entries, options));
  }

  private async writeNow(key: string | undefined, createdBy: string, entries: readonly FsEntry[], { ancestors, note, clock }: WriteOptions): Promise<Layer> {
    if (this.running >= LayerWriter.LIMIT) await new Promise<void>((resolve) => this.queue.push(resolve));
    this.running++;
    try {
      checkCancelled(this.controller.signal);
      const layer = await writeLayer(entries, this.deps.blobs, { clock: clock ?? this.clock!, createdBy, compression: this.compression, signal: this.controller.signal, ...(ancestors ? { ancestors } : {}) });
      if (key !== undefined) await this.cache!.put(key, layer, note);
      this.count++;
      return layer;
    } finally {
      this.running--;
      this.queue.shift()?.();
    }
  }
}
