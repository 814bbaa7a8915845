/**
 * What `kiln build` does once its options are parsed (see build.ts for the command itself).
 */
import { createWriteStream } from "node:fs";
import { mkdir, rename, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { pipeline } from "node:stream/promises";
import { PassThrough } from "node:stream";
import { BlobStore } from "../blobs/blob-store.js";
import { buildImage } from "../builder/build.js";
import type { BuildProgress, BuildResult } from "../builder/types.js";
import { parseEntrypoint } from "../domain/entrypoint.js";
import { KilnError, fail } from "../domain/errors.js";
import { writeDockerArchive, writeDockerArchiveGzip } from "../oci/docker-archive.js";
import { assembleIndex } from "../oci/image.js";
import { writeOciLayout } from "../oci/layout.js";
import type { ContainerConfig } from "../oci/types.js";
import { distributionLabel, type DistributionConfig } from "../domain/distributions.js";
import { loadConfig } from "../server/config.js";
import { CliExit, UsageError } from "./errors.js";
import { progressReporter } from "./progress.js";
import type { BuildReport } from "../builder/types.js";

import type { BuildOptions } from "./build.js";

/** The distributions a build asks for: `--os` alone, or `--os "<name> <version>"` with each `--arch`. */
function distributionsFor(opts: BuildOptions, config: ReturnType<typeof loadConfig>): DistributionConfig[] {
  const norm = (s: string): string => s.trim().replace(/\s+/g, " ").toLowerCase();
  const arches = (opts.arch ?? "").split(",").map((a) => a.trim()).filter(Boolean);
  if (opts.arch !== undefined && arches.length === 0) fail("badRequest", "--arch needs at least one architecture (x86_64,aarch64)");
  if (new Set(arches).size !== arches.length) fail("badRequest", `--arch names an architecture twice: ${opts.arch}`);
  const labels = arches.length === 0 ? [opts.os] : arches.map((a) => `${opts.os} ${a}`);
  return labels.map((label) => {
    const dist = config.distributions.find((d) => norm(distributionLabel(d)) === norm(label));
    if (!dist) fail("badRequest", `no distribution "${label.trim()}" in ${config.configFile ?? "the default configuration"}; offered: ${config.distributions.map(distributionLabel).join(", ")}`);
    return dist;
  });
}

export async function runBuild(opts: BuildOptions): Promise<void> {
  if (!opts.oci === !opts.dockerArchive) fail("badRequest", "give exactly one output: --oci DIR or --docker-archive FILE");
  if (opts.profile !== "minbase" && opts.profile !== "none") fail("badRequest", `--profile must be minbase or none, not "${opts.profile}"`);
  if (opts.compression === "zstd" && opts.dockerArchive) {
    throw new UsageError("--compression zstd needs --oci DIR: a docker-archive is for docker load, which reads zstd layers only from Docker 23 on; build it with --compression gzip");
  }
  const config = loadConfig(process.env, opts.config ? { configFile: opts.config } : {});
  const dists = distributionsFor(opts, config);
  if (dists.length > 1) {
    if (opts.dockerArchive) fail("badRequest", `a docker-archive holds one architecture (docker load knows no image index): build ${dists.map((d) => d.arch).join(" and ")} with --oci DIR, or one --arch at a time`);
    if (opts.report || opts.sbom) fail("badRequest", "--report and --sbom describe one image: give one --arch with them");
  }
  const containerConfig: ContainerConfig = {};
  if (opts.entrypoint !== undefined) containerConfig.Entrypoint = parseEntrypoint(opts.entrypoint);
  const packages = (opts.packages ?? "").split(",").map((s) => s.trim()).filter(Boolean);
  const blobs = BlobStore.open(path.join(config.dataDir, "blobs"));
  const debs = BlobStore.open(path.join(config.dataDir, "cache", "debs"));

  const started = Date.now();
  const reporter = opts.quiet ? undefined : progressReporter(process.stderr);
  const controller = new AbortController();
  const onSignal = (): void => controller.abort(new KilnError("cancelled", "interrupted"));
  process.once("SIGINT", onSignal);
  try {
    // One build per architecture, one after the other: each already uses every core it can.
    const results: BuildResult[] = [];
    for (const [i, dist] of dists.entries()) {
      const prefix = dists.length > 1 ? `${dist.arch}: ` : "";
      results.push(
        await buildImage(
          {
            distribution: dist,
            profile: opts.profile,
            packages,
            localDebs: opts.deb.map((d) => path.resolve(d)),
            config: containerConfig,
            defaultCmd: ["/bin/sh"],
            ...(opts.tag ? { imageName: opts.tag } : {}),
            ...(opts.installRecommends ? { installRecommends: true } : {}),
            ...(opts.strict ? { strict: true } : {}),
            noCache: !opts.cache,
            ...(opts.packageCache ? {} : { noPackageCache: true }),
            compression: opts.compression,
            signal: controller.signal,
            ...(reporter ? { onProgress: (p: BuildProgress) => reporter.update((i + p.fraction) / dists.length, `${prefix}${p.message}`) } : {}),
          },
          { dataDir: config.dataDir, blobs, debs },
        ),
      );
    }
    const result = results[0]!;
    const index = results.length > 1 ? await assembleIndex(results.map((r) => r.image), blobs) : undefined;
    reporter?.update(1, "writing the output");
    if (opts.oci) {
      await writeOciLayout(path.resolve(opts.oci), index ?? result.image, blobs, { tag: result.imageName });
    } else {
      const file = path.resolve(opts.dockerArchive!);
      const tmp = `${file}.tmp-${process.pid}`;
      await mkdir(path.dirname(file), { recursive: true });
      try {
        const out = createWriteStream(tmp);
        const repoTags = [result.imageName];
        const through = new PassThrough();
        const done = pipeline(through, out);
        if (/\.(tar\.gz|tgz)$/.test(file)) await writeDockerArchiveGzip(through, result.image, blobs, { repoTags, layers: "gzip", gzipLevel: 0 });
        else await writeDockerArchive(through, result.image, blobs, { repoTags });
        await done;
        await rename(tmp, file);
      } finally {
        await rm(tmp, { force: true });
      }
    }
    reporter?.done();
    for (const [i, r] of results.entries()) for (const w of r.warnings) process.stderr.write(`warning: ${results.length > 1 ? `${dists[i]!.arch}: ` : ""}${w}\n`);
    if (opts.report) await writeJson(path.resolve(opts.report), result.report);
    else for (const [i, r] of results.entries()) for (const line of unreproducedWarnings(r.report)) process.stderr.write(`warning: ${results.length > 1 ? `${dists[i]!.arch}: ` : ""}${line}\n`);
    if (opts.sbom) await writeJson(path.resolve(opts.sbom), result.sbom);
    if (!opts.tag) process.stderr.write(`note: the image is tagged ${result.imageName} (--tag NAME to choose)\n`);
    if (opts.entrypoint === undefined && !hasCmd(result.image.config)) {
      process.stderr.write("note: the image has no /bin/sh, so it has no default command: give one when running it, or build with --entrypoint\n");
    }
    const seconds = ((Date.now() - started) / 1000).toFixed(2);
    const summary = (r: BuildResult): string => `${r.packages.length} packages, ${r.image.layers.length} layers (${r.layersReused} cached, ${r.layersWritten} written)`;
    if (!index) process.stdout.write(`${result.image.manifestDigest}  ${summary(result)} in ${seconds} s\n`);
    else {
      process.stdout.write(`${index.indexDigest}  image index of ${results.length} architectures in ${seconds} s\n`);
      for (const r of results) process.stdout.write(`  ${r.image.architecture}${r.image.variant ? `/${r.image.variant}` : ""} ${r.image.manifestDigest}  ${summary(r)}\n`);
    }
  } catch (err) {
    reporter?.done();
    if (err instanceof KilnError && err.kind === "unreproducedEffects") throw new CliExit(3, err.message);
    throw err;
  } finally {
    process.removeListener("SIGINT", onSignal);
  }
}

/** Whether an image config (JSON) declares a Cmd. */
function hasCmd(config: Buffer): boolean {
  const parsed = JSON.parse(config.toString("utf8")) as { config?: { Cmd?: unknown } };
  return Array.isArray(parsed.config?.Cmd);
}

/** One line per package with script effects Kiln did not reproduce, naming them. */
export function unreproducedWarnings(report: BuildReport): string[] {
  const byPackage = new Map<string, string[]>();
  for (const e of report.scripts) {
    if (e.outcome !== "unreproduced") continue;
    byPackage.set(e.package, [...(byPackage.get(e.package) ?? []), `${e.script}: ${e.effect}`]);
  }
  return [...byPackage].map(([pkg, effects]) => `${pkg}: not reproduced: ${effects.join("; ")} (--report FILE lists every script effect, --strict refuses them)`);
}

/** A JSON document (the report, the SBOM), written whole or not at all. */
async function writeJson(file: string, value: unknown): Promise<void> {
  await mkdir(path.dirname(file), { recursive: true });
  const tmp = `${file}.tmp-${process.pid}`;
  try {
    await writeFile(tmp, `${JSON.stringify(value, null, 2)}\n`);
    await rename(tmp, file);
  } finally {
    await rm(tmp, { force: true });
  }
}
