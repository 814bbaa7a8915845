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
import type { BuildProgress } from "../builder/types.js";
import { parseEntrypoint } from "../domain/entrypoint.js";
import { KilnError, fail } from "../domain/errors.js";
import { writeDockerArchive, writeDockerArchiveGzip } from "../oci/docker-archive.js";
import { writeOciLayout } from "../oci/layout.js";
import type { ContainerConfig } from "../oci/types.js";
import { distributionLabel } from "../domain/distributions.js";
import { loadConfig } from "../server/config.js";
import { CliExit } from "./errors.js";
import { progressReporter } from "./progress.js";
import type { BuildReport } from "../builder/types.js";

import type { BuildOptions } from "./build.js";

export async function runBuild(opts: BuildOptions): Promise<void> {
  if (!opts.oci === !opts.dockerArchive) fail("badRequest", "give exactly one output: --oci DIR or --docker-archive FILE");
  if (opts.profile !== "minbase" && opts.profile !== "none") fail("badRequest", `--profile must be minbase or none, not "${opts.profile}"`);
  const config = loadConfig(process.env, opts.config ? { configFile: opts.config } : {});
  const dist = config.distributions.find((d) => distributionLabel(d).toLowerCase() === opts.os.trim().replace(/\s+/g, " ").toLowerCase());
  if (!dist) fail("badRequest", `no distribution "${opts.os}" in ${config.configFile ?? "the default configuration"}; offered: ${config.distributions.map(distributionLabel).join(", ")}`);
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
    const result = await buildImage(
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
        signal: controller.signal,
        ...(reporter ? { onProgress: (p: BuildProgress) => reporter.update(p.fraction, p.message) } : {}),
      },
      { dataDir: config.dataDir, blobs, debs },
    );
    reporter?.update(1, "writing the output");
    if (opts.oci) {
      await writeOciLayout(path.resolve(opts.oci), result.image, blobs, opts.tag ? { tag: opts.tag } : {});
    } else {
      const file = path.resolve(opts.dockerArchive!);
      const tmp = `${file}.tmp-${process.pid}`;
      await mkdir(path.dirname(file), { recursive: true });
      try {
        const out = createWriteStream(tmp);
        const repoTags = opts.tag ? [opts.tag] : [];
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
    for (const w of result.warnings) process.stderr.write(`warning: ${w}\n`);
    if (opts.report) await writeJson(path.resolve(opts.report), result.report);
    else for (const line of unreproducedWarnings(result.report)) process.stderr.write(`warning: ${line}\n`);
    if (opts.sbom) await writeJson(path.resolve(opts.sbom), result.sbom);
    if (opts.entrypoint === undefined && !hasCmd(result.image.config)) {
      process.stderr.write("note: the image has no /bin/sh, so it has no default command: give one when running it, or build with --entrypoint\n");
    }
    const seconds = ((Date.now() - started) / 1000).toFixed(2);
    process.stdout.write(
      `${result.image.manifestDigest}  ${result.packages.length} packages, ${result.image.layers.length} layers (${result.layersReused} cached, ${result.layersWritten} written) in ${seconds} s\n`,
    );
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
