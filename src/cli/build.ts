/**
 * `kiln build`: one image from a distribution of kiln.yaml, without a server.
 *
 *   kiln build --config kiln.yaml --os "Debian 12 x86_64" [--profile minbase|none]
 *              [--packages a,b] [--deb ./local.deb ...] [--entrypoint '["/bin/sh"]'] [--tag NAME]
 *              (--oci DIR | --docker-archive FILE[.tar|.tar.gz]) [--no-cache]
 */
import { createWriteStream } from "node:fs";
import { mkdir, rename, rm } from "node:fs/promises";
import path from "node:path";
import { pipeline } from "node:stream/promises";
import { PassThrough } from "node:stream";
import type { Command } from "commander";
import { BlobStore } from "../blobs/blob-store.js";
import { buildImage } from "../builder/build.js";
import type { BuildProgress } from "../builder/types.js";
import { parseEntrypoint } from "../domain/entrypoint.js";
import { KilnError, fail } from "../domain/errors.js";
import { writeDockerArchive, writeDockerArchiveGzip } from "../oci/docker-archive.js";
import { writeOciLayout } from "../oci/layout.js";
import type { ContainerConfig } from "../oci/types.js";
import { distributionLabel, loadConfig } from "../server/config.js";
import { progressReporter } from "./progress.js";

interface BuildOptions {
  config?: string;
  os: string;
  profile: string;
  packages?: string;
  deb: string[];
  entrypoint?: string;
  tag?: string;
  oci?: string;
  dockerArchive?: string;
  cache: boolean;
  quiet?: boolean;
}

export function registerBuild(program: Command): void {
  program
    .command("build")
    .description("build a Debian image from packages, without Docker, root or package scripts")
    .requiredOption("--os <name>", 'the distribution, as "<name> <version> <arch>" from kiln.yaml (e.g. "Debian 12 x86_64")')
    .option("--config <file>", "kiln.yaml listing the distributions (default: $KILN_CONFIG, else ./kiln.yaml, else Debian 12 from deb.debian.org)")
    .option("--profile <profile>", "minbase: Priority required + apt, like debootstrap --variant=minbase; none: only the named packages", "minbase")
    .option("--packages <list>", "more packages, comma-separated (jq,curl)")
    .option("--deb <file>", "a local .deb to install (repeatable); its dependencies come from the distribution", (v: string, acc: string[]) => [...acc, v], [] as string[])
    .option("--entrypoint <json>", 'the entrypoint in exec form, e.g. \'["/bin/sh"]\'')
    .option("--tag <name>", "the image name:tag (OCI ref name / docker-archive RepoTags)")
    .option("--oci <dir>", "write an OCI image layout to this directory")
    .option("--docker-archive <file>", "write a docker-archive (docker load) to this file; .tar.gz compresses it")
    .option("--no-cache", "rebuild every layer (downloaded packages are still reused)")
    .option("-q, --quiet", "no progress output")
    .addHelpText(
      "after",
      `
Examples:
  kiln build --os "Debian 12 x86_64" --oci ./out --tag minbase:12
  kiln build --config kiln.yaml --os "Debian 12 x86_64" --profile none --packages jq \\
             --entrypoint '["/usr/bin/jq"]' --docker-archive jq.tar.gz
  kiln build --os "Debian 12 x86_64" --deb ./hello_1.0_all.deb --oci ./out --no-cache

Caches (index, downloaded packages, unpacked packages, layers) live under $KILN_DATA_DIR (./data).
SOURCE_DATE_EPOCH fixes every timestamp; without it, the newest package's date is used.`,
    )
    .action(async (opts: BuildOptions) => {
      await runBuild(opts);
    });
}

async function runBuild(opts: BuildOptions): Promise<void> {
  if (!opts.oci === !opts.dockerArchive) fail("badRequest", "give exactly one output: --oci DIR or --docker-archive FILE");
  if (opts.profile !== "minbase" && opts.profile !== "none") fail("badRequest", `--profile must be minbase or none, not "${opts.profile}"`);
  const config = loadConfig(process.env, opts.config ? { configFile: opts.config } : {});
  const dist = config.distributions.find((d) => distributionLabel(d).toLowerCase() === opts.os.trim().replace(/\s+/g, " ").toLowerCase());
  if (!dist) fail("badRequest", `no distribution "${opts.os}" in ${config.configFile ?? "the default configuration"}; offered: ${config.distributions.map(distributionLabel).join(", ")}`);
  const containerConfig: ContainerConfig = {};
  if (opts.entrypoint !== undefined) containerConfig.Entrypoint = parseEntrypoint(opts.entrypoint);
  else containerConfig.Cmd = ["/bin/sh"];
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
    const seconds = ((Date.now() - started) / 1000).toFixed(2);
    process.stdout.write(
      `${result.image.manifestDigest}  ${result.packages.length} packages, ${result.image.layers.length} layers (${result.layersReused} cached, ${result.layersWritten} written) in ${seconds} s\n`,
    );
  } catch (err) {
    reporter?.done();
    throw err;
  } finally {
    process.removeListener("SIGINT", onSignal);
  }
}
