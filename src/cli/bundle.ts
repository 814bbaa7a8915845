/**
 * `kiln bundle`: software bundles of the library. `create` builds one from a hammr bundle file
 * (see `bundle-file.ts`) and uploads every file with progress; `validate` checks such a file
 * without a server; `list`, `info`, `delete` and `clone` manage what is there.
 */
import path from "node:path";
import type { Command } from "commander";
import type { BootScript, KilnClient, MySoftware, SoftwareArtifact } from "../sdk/index.js";
import { addCommonOptions, positiveInt, withClient, type CommonOptions } from "./context.js";
import { CliExit } from "./errors.js";
import { loadBundleFile, type BundlePlan, type PlannedArtifact } from "./bundle-file.js";
import { openUrl } from "./fetch-source.js";
import { bytes, details, printJson, say, table } from "./output.js";
import { transferReporter } from "./transfer-progress.js";

export function registerBundle(program: Command): void {
  const bundle = program
    .command("bundle")
    .description("software bundles: create one from a hammr bundle file, list, inspect, clone, delete")
    .addHelpText(
      "after",
      `
Examples:
  kiln bundle validate --file bundle.yml
  kiln bundle create --file bundle.yml
  kiln bundle list
  kiln bundle info --id 3
  kiln bundle clone --id 3 --name hello-2 --version 2.0
  kiln bundle delete --id 3`,
    );

  addCommonOptions(bundle.command("create").description("create a bundle from a hammr bundle file (YAML or JSON) and upload its files"))
    .requiredOption("--file <file>", "the bundle file: bundle.yml, bundle.yaml or bundle.json")
    .addHelpText(
      "after",
      `
The bundle file (hammr's format; sources are paths relative to the file, or http(s) URLs):
  name: hello
  version: "1.0"
  destination: /opt/hello
  files:
    - name: hello.tar.gz
      source: dist/hello.tar.gz
      extract: true
    - name: conf                 # a folder: its source is a directory
      source: conf
      files:
        - name: app.conf
          source: conf/app.conf
          rights: "0640"

Examples:
  kiln bundle create --file bundle.yml
  kiln bundle create --file bundle.json --json`,
    )
    .action(async (opts: CommonOptions & { file: string }, cmd: Command) => {
      const plan = await loadBundleFile(opts.file);
      await withClient(cmd, opts, async (client) => {
        const created = await createBundle(client, plan);
        if (opts.json) printJson(await client.bundles.get(created.dbId!));
        else say(`Created bundle ${created.dbId} "${created.name}" ${created.version ?? ""} with ${plan.fileCount} file${plan.fileCount === 1 ? "" : "s"}`.trimEnd());
      });
    });

  bundle
    .command("validate")
    .description("check a bundle file the way hammr does, without a server")
    .requiredOption("--file <file>", "the bundle file: bundle.yml, bundle.yaml or bundle.json")
    .addHelpText("after", "\nExample:\n  kiln bundle validate --file bundle.yml   # exit 0 when valid, 1 with the first problem otherwise")
    .action(async (opts: { file: string }) => {
      const plan = await loadBundleFile(opts.file);
      say(`OK: the bundle file ${path.resolve(opts.file)} is valid (${plan.bundle.name} ${plan.bundle.version}, ${plan.fileCount} file${plan.fileCount === 1 ? "" : "s"}, ${bytes(plan.localBytes)} to upload)`);
    });

  addCommonOptions(bundle.command("list").description("list the bundles of your library"))
    .option("--query <fiql>", "only the bundles this FIQL search finds (name=='hello*';version=='1.0')")
    .addHelpText("after", "\nExamples:\n  kiln bundle list\n  kiln bundle list --query \"name=='hello*'\" --json")
    .action(async (opts: CommonOptions & { query?: string }, cmd: Command) => {
      await withClient(cmd, opts, async (client) => {
        const list = await client.bundles.list(opts.query ? { query: opts.query } : {});
        if (opts.json) return printJson(list);
        const rows = (list.mySoftwareList ?? []).map((b) => [b.dbId, b.name, b.version, b.defaultInstallLocation, b.bundleRestriction?.restrictionRule, b.description]);
        say(rows.length ? table(["ID", "NAME", "VERSION", "DESTINATION", "RESTRICTION", "DESCRIPTION"], rows) : "No bundles yet: create one with kiln bundle create --file bundle.yml");
      });
    });

  addCommonOptions(bundle.command("info").description("show a bundle and its files"))
    .requiredOption("--id <id>", "the bundle's id", positiveInt)
    .addHelpText("after", "\nExample:\n  kiln bundle info --id 3")
    .action(async (opts: CommonOptions & { id: number }, cmd: Command) => {
      await withClient(cmd, opts, async (client) => {
        const b = await client.bundles.get(opts.id);
        const artifacts = await client.artifacts.list(opts.id);
        if (opts.json) return printJson({ ...b, softwareArtifacts: artifacts.softwareArtifacts ?? [] });
        say(
          details([
            ["ID", b.dbId],
            ["Name", b.name],
            ["Version", b.version],
            ["Description", b.description],
            ["Destination", b.defaultInstallLocation],
            ["License", b.license?.name],
            ["Restriction", b.bundleRestriction?.restrictionRule],
            ["Created", b.created],
          ]),
        );
        const lines: string[] = [];
        const walk = (items: SoftwareArtifact[], depth: number): void => {
          for (const a of items) {
            const boot = a.xsiType === "BootScript" ? (a as BootScript) : undefined;
            const when = boot ? [boot.bootType ?? "", boot.bootOrder !== undefined ? `order ${boot.bootOrder}` : ""].filter(Boolean).join(" ") : "";
            const flags = [a.tag && a.tag !== "softwarefile" ? a.tag : "", when, a.extract ? "extract" : "", a.install ? "install" : "", a.params ?? ""].filter(Boolean).join(", ");
            const where = a.installLocation ? ` -> ${a.installLocation}` : "";
            lines.push(`${"  ".repeat(depth + 1)}${a.type === "folder" ? `${a.name}/` : a.name}${where}${a.type === "folder" ? "" : ` (${a.uploaded ? bytes(a.size) : "not uploaded"})`}${flags ? ` [${flags}]` : ""}`);
            walk(a.subSoftwareArtifacts ?? [], depth + 1);
          }
        };
        walk(artifacts.softwareArtifacts ?? [], 0);
        say(lines.length ? `Files:\n${lines.join("\n")}` : "Files: none");
      });
    });

  addCommonOptions(bundle.command("delete").description("delete a bundle with its files, templates and images"))
    .requiredOption("--id <id>", "the bundle's id", positiveInt)
    .addHelpText("after", "\nExample:\n  kiln bundle delete --id 3")
    .action(async (opts: CommonOptions & { id: number }, cmd: Command) => {
      await withClient(cmd, opts, async (client) => {
        await client.bundles.delete(opts.id);
        if (!opts.json) say(`Deleted bundle ${opts.id}`);
      });
    });

  addCommonOptions(bundle.command("clone").description("copy a bundle and its files"))
    .requiredOption("--id <id>", "the bundle to copy", positiveInt)
    .option("--name <name>", 'the copy\'s name (default: "<name> (copy)")')
    .option("--version <version>", "the copy's version")
    .addHelpText("after", "\nExample:\n  kiln bundle clone --id 3 --name hello-next --version 1.1")
    .action(async (opts: CommonOptions & { id: number; name?: string; version?: string }, cmd: Command) => {
      await withClient(cmd, opts, async (client) => {
        const overrides: MySoftware = {};
        if (opts.name !== undefined) overrides.name = opts.name;
        if (opts.version !== undefined) overrides.version = opts.version;
        const copy = await client.bundles.clone(opts.id, overrides);
        if (opts.json) return printJson(copy);
        say(`Cloned bundle ${opts.id} as bundle ${copy.dbId} "${copy.name}" ${copy.version ?? ""}`.trimEnd());
      });
    });
}

/**
 * Creates the bundle, then each artifact (folders before their children) and uploads each file.
 * If anything fails the half-made bundle is deleted, so a retry starts clean.
 */
export async function createBundle(client: KilnClient, plan: BundlePlan): Promise<MySoftware> {
  const created = await client.bundles.create(plan.bundle);
  const msid = created.dbId!;
  // Ctrl-C during the uploads: remove what was made, then stop.
  let interrupted = false;
  const onSigint = (): void => {
    interrupted = true;
  };
  process.once("SIGINT", onSigint);
  try {
    for (const a of plan.artifacts) {
      await addArtifact(client, msid, undefined, a, () => interrupted);
    }
    return created;
  } catch (err) {
    await client.bundles.delete(msid).catch(() => undefined);
    if (interrupted) throw new CliExit(130, `interrupted: bundle ${created.name} was not created`);
    throw new Error(`bundle ${created.name} was not created: ${(err as Error).message}`, { cause: err });
  } finally {
    process.removeListener("SIGINT", onSigint);
  }
}

async function addArtifact(client: KilnClient, msid: number, parent: number | undefined, a: PlannedArtifact, interrupted: () => boolean): Promise<void> {
  if (interrupted()) throw new Error("interrupted");
  const made = parent === undefined ? await client.artifacts.add(msid, a.body) : await client.artifacts.addChild(msid, parent, a.body);
  if (a.kind === "folder") {
    for (const child of a.children) await addArtifact(client, msid, made.dbId!, child, interrupted);
    return;
  }
  const name = a.body.name!;
  const reporter = transferReporter(process.stderr, `uploading ${name}`);
  let uploaded: SoftwareArtifact;
  try {
    const controller = new AbortController();
    const onSigint = (): void => controller.abort();
    process.once("SIGINT", onSigint);
    try {
      if (a.source!.kind === "path") {
        uploaded = await client.artifacts.upload(msid, made.dbId!, name, a.source!.path, { onProgress: (p) => reporter.update(p), signal: controller.signal });
      } else {
        const { stream, size } = await openUrl(a.source!.url);
        uploaded = await client.artifacts.upload(msid, made.dbId!, name, stream, { ...(size !== undefined ? { size } : {}), onProgress: (p) => reporter.update(p), signal: controller.signal });
      }
    } finally {
      process.removeListener("SIGINT", onSigint);
    }
  } finally {
    reporter.done();
  }
  if (a.md5sum && uploaded.md5sum !== a.md5sum) throw new Error(`${a.where}: the uploaded file has MD5 ${uploaded.md5sum}, the bundle file says ${a.md5sum}`);
  if (a.sha256sum && uploaded.sha256sum !== a.sha256sum) throw new Error(`${a.where}: the uploaded file has SHA-256 ${uploaded.sha256sum}, the bundle file says ${a.sha256sum}`);
}
