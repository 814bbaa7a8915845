/**
 * `kiln build`: one image from a distribution of kiln.yaml, without a server.
 *
 *   kiln build --config kiln.yaml --os "Debian 12 x86_64" [--profile minbase|none]
 *              (or --os "Debian 12" --arch x86_64,aarch64: an image index, with --oci)
 *              [--packages a,b] [--deb ./local.deb ...] [--entrypoint '["/bin/sh"]'] [--tag NAME]
 *              (--oci DIR | --docker-archive FILE[.tar|.tar.gz]) [--report FILE] [--sbom FILE] [--strict]
 *              [--install-recommends] [--no-cache] [--no-package-cache] [--compression gzip|zstd]
 */
import { Option, type Command } from "commander";

/** The options of `kiln build`, as commander parses them. */
export interface BuildOptions {
  config?: string;
  os: string;
  arch?: string;
  profile: string;
  packages?: string;
  deb: string[];
  entrypoint?: string;
  tag?: string;
  oci?: string;
  dockerArchive?: string;
  cache: boolean;
  packageCache: boolean;
  compression: "gzip" | "zstd";
  installRecommends?: boolean;
  report?: string;
  sbom?: string;
  strict?: boolean;
  quiet?: boolean;
}

export function registerBuild(program: Command): void {
  program
    .command("build")
    .description("build a Debian image from packages, without Docker, root or package scripts")
    .requiredOption("--os <name>", 'the distribution, as "<name> <version> <arch>" from kiln.yaml (e.g. "Debian 12 x86_64")')
    .option("--arch <list>", 'with --os "<name> <version>": the architectures, comma-separated (x86_64,aarch64); several make a multi-architecture image (an OCI image index), which needs --oci')
    .option("--config <file>", "kiln.yaml listing the distributions (default: $KILN_CONFIG, else ./kiln.yaml, else Debian 12 and 13, x86_64 and aarch64, from deb.debian.org)")
    .option("--profile <profile>", "minbase: Priority required + apt, like debootstrap --variant=minbase; none: only the named packages", "minbase")
    .option("--packages <list>", "more packages, comma-separated (jq,curl)")
    .option("--deb <file>", "a local .deb to install (repeatable); its dependencies come from the distribution", (v: string, acc: string[]) => [...acc, v], [] as string[])
    .option("--entrypoint <json>", 'the entrypoint in exec form, e.g. \'["/bin/sh"]\'')
    .option("--tag <name>", "the image name:tag (OCI ref name / docker-archive RepoTags); default: the first package named (else the distribution) at latest, e.g. jq:latest")
    .option("--oci <dir>", "write an OCI image layout to this directory")
    .option("--docker-archive <file>", "write a docker-archive (docker load) to this file; .tar.gz compresses it")
    .option("--report <file>", "write a JSON report: the image digest, its packages, and what Kiln did about every maintainer script effect (emulated, not-needed, unreproduced)")
    .option("--sbom <file>", "write the image's SBOM: an SPDX 2.3 JSON document of its packages (versions, source packages, purls, licences)")
    .option("--strict", "fail (exit 3, no image written) if a package script has an effect Kiln does not reproduce")
    .option("--install-recommends", "also install the packages' Recommends, as apt does by default (Kiln, like debootstrap, installs only Depends)")
    .option("--no-cache", "rebuild every layer (downloaded and unpacked packages are still reused)")
    .option("--no-package-cache", "decompress every package again instead of reusing its unpacked copy")
    .addOption(
      new Option("--compression <format>", "the layers' compression: gzip (every consumer reads it) or zstd (smaller, quicker; containerd ≥ 1.5, Docker ≥ 23, podman, skopeo; needs --oci and the zstd program)")
        .choices(["gzip", "zstd"])
        .default("gzip"),
    )
    .option("-q, --quiet", "no progress output")
    .addHelpText(
      "after",
      `
Examples:
  kiln build --os "Debian 12 x86_64" --oci ./out --tag minbase:12
  kiln build --os "Debian 12 x86_64" --profile none --packages jq \\
             --entrypoint '["/usr/bin/jq"]' --docker-archive jq.tar.gz
  kiln build --os "Debian 12 x86_64" --deb ./hello_1.0_all.deb --oci ./out --no-cache
  kiln build --os "Debian 12" --arch x86_64,aarch64 --oci ./out --tag minbase:12
  kiln build --os "Debian 12 x86_64" --compression zstd --oci ./out --tag minbase:12-zstd

Package scripts are never run: their effects are reproduced by fix-ups. Those Kiln does not
reproduce are printed as warnings, one per package (or listed in --report's file); --strict makes
them fail the build with exit code 3.

Caches (index, downloaded packages, unpacked packages, layers) live under $KILN_DATA_DIR (./data).
SOURCE_DATE_EPOCH fixes every timestamp; without it, the newest package's date is used.`,
    )
    .action(async (opts: BuildOptions) => {
      // The builder and its dependencies load only when a build runs: other commands start faster.
      const { runBuild } = await import("./build-run.js");
      await runBuild(opts);
    });
}

