/**
 * `kiln bundle`: software bundles of the library. `create` builds hammr's archive from a hammr
 * bundle file (see `bundle-file.ts`) and sends it as `hammr bundle create` does (an import), so
 * a bundle made by kiln and one made by hammr arrive the same; `import` sends an archive as
 * `hammr bundle import`, `export` fetches one as `hammr bundle export`; `validate` checks a
 * bundle file without a server; `list`, `info`, `delete` and `clone` manage what is there.
 */
import path from "node:path";
import type { Command } from "commander";
import type { BootScript, KilnClient, MySoftware, SoftwareArtifact } from "../sdk/index.js";
import { addCommonOptions, positiveInt, withClient, type CommonOptions } from "./context.js";
import { CliExit, UsageError } from "./errors.js";
import { archiveComponent } from "../domain/bundle-description.js";
import type { BundlePlan } from "./bundle-file.js";
import { bytes, details, note, printJson, say, table } from "./output.js";
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
  kiln bundle export --id 3 --file hello.tar.gz
  kiln bundle import --file hello.tar.gz
  kiln bundle list
  kiln bundle info --id 3
  kiln bundle clone --id 3 --name hello-2 --version 2.0
  kiln bundle delete --id 3`,
    );

  addCommonOptions(bundle.command("create").description("create a bundle from a hammr bundle file (YAML or JSON): its files go in one archive, as hammr sends them"))
    .requiredOption("--file <file>", "the bundle file: bundle.yml, bundle.yaml or bundle.json")
    .addHelpText(
      "after",
      `
The bundle file (hammr's format; sources are http(s) URLs or paths relative to the current
directory, as hammr reads them, else to the bundle file's directory):
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
      const plan = await (await import("./bundle-file.js")).loadBundleFile(opts.file);
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
    .addHelpText("after", "\nExample:\n  kiln bundle validate --file bundle.yml   # exit 0 when valid (files not found are warnings), 1 with the first problem otherwise")
    .action(async (opts: { file: string }) => {
      const plan = await (await import("./bundle-file.js")).loadBundleFile(opts.file);
      for (const w of plan.warnings) note(`warning: ${w}`);
      say(`OK: the bundle file ${path.resolve(opts.file)} is valid (${plan.description.name} ${plan.description.version}, ${plan.fileCount} file${plan.fileCount === 1 ? "" : "s"}, ${bytes(plan.localBytes)} to upload)${plan.warnings.length ? `, with ${plan.warnings.length} warning${plan.warnings.length === 1 ? "" : "s"}` : ""}`);
    });

  addCommonOptions(bundle.command("import").description("import a bundle archive (hammr's .tar.gz, from kiln or hammr bundle export) as a new bundle"))
    .requiredOption("--file <file>", "the archive: a .tar.gz with bundle.yml or bundle.json at its root")
    .addHelpText("after", "\nExample:\n  kiln bundle import --file hello.tar.gz")
    .action(async (opts: CommonOptions & { file: string }, cmd: Command) => {
      await withClient(cmd, opts, async (client) => {
        const made = await sendArchive(client, opts.file, `uploading ${path.basename(opts.file)}`, true);
        if (opts.json) return printJson(made);
        say(`Imported bundle ${made.dbId} "${made.name}" ${made.version ?? ""}`.trimEnd());
      });
    });

  addCommonOptions(bundle.command("export").description("download a bundle as hammr's archive (bundle.yml and its files), which kiln or hammr can import"))
    .requiredOption("--id <id>", "the bundle's id", positiveInt)
    .option("--file <file>", "where to write the archive (default: <name>.tar.gz in the current directory)")
    .option("--output-format <format>", "the description's format in the archive: yaml (bundle.yml) or json (bundle.json)", "yaml")
    .addHelpText("after", "\nExamples:\n  kiln bundle export --id 3\n  kiln bundle export --id 3 --file hello.tar.gz --output-format json")
    .action(async (opts: CommonOptions & { id: number; file?: string; outputFormat: string }, cmd: Command) => {
      if (opts.outputFormat !== "yaml" && opts.outputFormat !== "json") throw new UsageError(`--output-format must be yaml or json, not ${opts.outputFormat}`);
      const format = opts.outputFormat;
      await withClient(cmd, opts, async (client) => {
        const b = await client.bundles.get(opts.id);
        const file = opts.file ?? `${archiveComponent(b.name ?? String(opts.id))}.tar.gz`;
        const reporter = transferReporter(process.stderr, `downloading ${path.basename(file)}`);
        let result;
        try {
          result = await client.bundles.exportArchive(opts.id, file, { format, onProgress: (p) => reporter.update(p) });
        } finally {
          reporter.done();
        }
        if (opts.json) return printJson({ file: path.resolve(file), size: result.size });
        say(`Exported bundle ${opts.id} "${b.name}" to ${file} (${bytes(result.size)})`);
      });
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
            ["License", b.license?.uploaded ? `${b.license.name ?? ""} (file, ${bytes(b.license.size)})`.trim() : b.license?.name],
            ["Logo", b.logo ? `${b.logo.name} (${bytes(b.logo.size)})` : undefined],
            ["Imported", b.imported ? "yes (from an archive, kiln or hammr bundle import)" : undefined],
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

/** Sends an archive as hammr does (an import ticket, the archive, its status); answers the bundle made. */
async function sendArchive(client: KilnClient, archive: string, label: string, imported: boolean): Promise<MySoftware> {
  const controller = new AbortController();
  const onSigint = (): void => controller.abort();
  process.once("SIGINT", onSigint);
  const reporter = transferReporter(process.stderr, label);
  try {
    return await client.bundles.importArchive(archive, { imported, onProgress: (p) => reporter.update(p), signal: controller.signal });
  } catch (err) {
    // The server makes the bundle whole or not at all: an interrupted upload leaves nothing.
    if (controller.signal.aborted) throw new CliExit(130, "interrupted: nothing was created");
    throw err;
  } finally {
    reporter.done();
    process.removeListener("SIGINT", onSigint);
  }
}

/**
 * Creates the bundle as `hammr bundle create` does: hammr's archive of the bundle file's files
 * (built in a temporary directory, removed after), imported with `imported=false`.
 */
export async function createBundle(client: KilnClient, plan: BundlePlan): Promise<MySoftware> {
  const name = plan.description.name;
  let built: Awaited<ReturnType<typeof import("./bundle-file.js").buildBundleArchive>>;
  try {
    built = await (await import("./bundle-file.js")).buildBundleArchive(plan);
  } catch (err) {
    throw new Error(`bundle ${name} was not created: ${(err as Error).message}`, { cause: err });
  }
  try {
    return await sendArchive(client, built.archive, `uploading the archive of ${name} (${plan.fileCount} file${plan.fileCount === 1 ? "" : "s"})`, false);
  } catch (err) {
    if (err instanceof CliExit) throw err;
    throw new Error(`bundle ${name} was not created: ${(err as Error).message}`, { cause: err });
  } finally {
    await built.cleanup();
  }
}
