/**
 * `kiln image`: generating images from templates, following them, reading them, downloading
 * them (resumable) and publishing them to a registry. A user knows an image by its id alone; the
 * image's place (bundle, template) is found in the user's image list.
 */
import { stat } from "node:fs/promises";
import path from "node:path";
import type { Command } from "commander";
import { parseEntrypoint } from "../domain/entrypoint.js";
import { isKilnError } from "../domain/errors.js";
import { sha256File } from "../domain/file-hash.js";
import type { Image, PublishImage } from "../sdk/index.js";
import { addCommonOptions, debugEnabled, examples, positiveInt, withClient, type CommonOptions } from "./context.js";
import { UsageError, nothingToCancel } from "./errors.js";
import { followJob } from "./follow.js";
import { bytes, details, idIn, note, printJson, say, statusText, table } from "./output.js";
import { transferReporter } from "./transfer-progress.js";

const FORMATS: Record<string, string> = { docker: "Docker", openshift: "OpenShift" };

/** `Docker` or `OpenShift`, whatever the case given. */
export function formatName(value: string): string {
  const f = FORMATS[value.trim().toLowerCase()];
  if (!f) throw new UsageError(`--format must be Docker or OpenShift, not "${value}"`);
  return f;
}

/** Checks `--entrypoint` here, so that a typo is a usage error before anything is sent. */
function entrypointText(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  try {
    parseEntrypoint(value);
  } catch (err) {
    if (isKilnError(err)) throw new UsageError(`--entrypoint: ${err.message.replace(/^image\.entrypoint /, "")}`);
    throw err;
  }
  return value;
}

function imageRow(i: Image): Array<string | number | undefined> {
  return [i.dbId, i.name, i.version, i.targetFormat?.name, statusText(i.status), i.fileSize !== undefined ? bytes(i.fileSize) : undefined, idIn(i.parentUri, "templates"), idIn(i.parentUri, "mysoftware"), i.created?.slice(0, 19).replace("T", " ")];
}

export function registerImage(program: Command): void {
  const image = program
    .command("image")
    .description("images: generate from a template, follow, download, publish to a registry")
    .addHelpText(
      "after",
      `
Examples:
  kiln image generate --template 4 --format Docker --entrypoint '["/opt/hello/bin/hello"]' --wait
  kiln image list
  kiln image download --id 5
  kiln image publish --id 5 --account 2 --namespace team --repository hello --tag 1.0 --wait`,
    );

  addCommonOptions(image.command("generate").description("generate an image from a container template"))
    .requiredOption("--template <id>", "the container template's id", positiveInt)
    .option("--bundle <id>", "the template's bundle (found by searching when not given)", positiveInt)
    .option("--format <format>", "Docker or OpenShift", "Docker")
    .option("--entrypoint <json>", 'the entrypoint in exec form, e.g. \'["/usr/sbin/nginx", "-g", "daemon off;"]\'')
    .option("--no-compress", "no downloadable .tar.gz (the image can still be published)")
    .option("--wait", "follow the generation to its end with a progress bar (Ctrl-C offers to cancel it)")
    .addHelpText(
      "after",
      `
Examples:
  kiln image generate --template 4 --format Docker --entrypoint '["/opt/hello/bin/hello"]' --wait
  kiln image generate --template 4 --format OpenShift --no-compress --json`,
    )
    .action(async (opts: CommonOptions & { template: number; bundle?: number; format: string; entrypoint?: string; compress: boolean; wait?: boolean }, cmd: Command) => {
      const format = formatName(opts.format);
      const entrypoint = entrypointText(opts.entrypoint);
      await withClient(cmd, opts, async (client) => {
        const template = await client.templates.find(opts.template, opts.bundle);
        const ticket = await client.images.generate(template, { targetFormat: { name: format }, compress: opts.compress, ...(entrypoint !== undefined ? { entrypoint } : {}) });
        const id = ticket.dbId!;
        if (!opts.wait) {
          if (opts.json) return printJson(ticket);
          say(`Generating image ${id} (${format}) from template ${opts.template}. Follow it with: kiln image status --id ${id}`);
          return;
        }
        if (!opts.json) note(`Generating image ${id} (${format}) from template ${opts.template}...`);
        await followJob({
          client,
          statusUri: ticket.statusUri!,
          what: "build",
          cancel: () => client.images.cancel(ticket),
          statusCommand: `kiln image status --id ${id}`,
          debug: debugEnabled(cmd),
        });
        const done = await client.images.get(ticket);
        if (opts.json) return printJson(done);
        say(`Generated image ${id}: ${done.registeringName ?? done.name}${done.fileName ? `, ${done.fileName} (${bytes(done.fileSize)})` : ""}`);
      });
    });

  addCommonOptions(image.command("list").description("list your images"))
    .addHelpText("after", "\nExample:\n  kiln image list")
    .action(async (opts: CommonOptions, cmd: Command) => {
      await withClient(cmd, opts, async (client) => {
        const list = await client.images.list();
        if (opts.json) return printJson(list);
        const rows = (list.images ?? []).map(imageRow);
        say(rows.length ? table(["ID", "NAME", "VERSION", "FORMAT", "STATUS", "SIZE", "TEMPLATE", "BUNDLE", "CREATED"], rows) : "No images yet: generate one with kiln image generate --template ID");
      });
    });

  addCommonOptions(image.command("info").description("show an image"))
    .requiredOption("--id <id>", "the image's id", positiveInt)
    .addHelpText("after", examples("kiln image info --id 5", "kiln image info --id 5 --json | jq -r .downloadUri"))
    .action(async (opts: CommonOptions & { id: number }, cmd: Command) => {
      await withClient(cmd, opts, async (client) => {
        const img = await client.images.get(await client.images.find(opts.id));
        if (opts.json) return printJson(img);
        say(
          details([
            ["ID", img.dbId],
            ["Name", img.registeringName ?? img.name],
            ["Format", img.targetFormat?.name],
            ["Distribution", img.distributionName],
            ["Status", statusText(img.status)],
            ["Entrypoint", img.entrypoint],
            ["Compressed", img.compress],
            ["File", img.fileName],
            ["Size", img.fileSize !== undefined ? bytes(img.fileSize) : undefined],
            ["SHA-256", img.sha256sum],
            ["Template", idIn(img.parentUri, "templates")],
            ["Bundle", idIn(img.parentUri, "mysoftware")],
            ["Revision", img.revision],
            ["Created", img.created],
          ]),
        );
      });
    });

  addCommonOptions(image.command("status").description("show the generation status of an image"))
    .requiredOption("--id <id>", "the image's id", positiveInt)
    .addHelpText("after", examples("kiln image status --id 5", "kiln image status --id 5 --json | jq .percentage"))
    .action(async (opts: CommonOptions & { id: number }, cmd: Command) => {
      await withClient(cmd, opts, async (client) => {
        const status = await client.images.status(await client.images.find(opts.id));
        if (opts.json) return printJson(status);
        say(`image ${opts.id}: ${statusText(status)}`);
        if (status.error && status.detailedErrorMsg && debugEnabled(cmd)) note(status.detailedErrorMsg);
      });
    });

  addCommonOptions(image.command("cancel").description("cancel a generation in progress"))
    .requiredOption("--id <id>", "the image's id", positiveInt)
    .addHelpText("after", examples("kiln image cancel --id 5"))
    .action(async (opts: CommonOptions & { id: number }, cmd: Command) => {
      await withClient(cmd, opts, async (client) => {
        const status = await client.images.cancel(await client.images.find(opts.id));
        if (opts.json) return printJson(status);
        nothingToCancel(`image ${opts.id}`, status);
        say(`Cancelled the generation of image ${opts.id}`);
      });
    });

  addCommonOptions(image.command("delete").description("delete an image (a generation in progress is cancelled)"))
    .requiredOption("--id <id>", "the image's id", positiveInt)
    .addHelpText("after", examples("kiln image delete --id 5"))
    .action(async (opts: CommonOptions & { id: number }, cmd: Command) => {
      await withClient(cmd, opts, async (client) => {
        await client.images.delete(await client.images.find(opts.id));
        if (!opts.json) say(`Deleted image ${opts.id}`);
      });
    });

  addCommonOptions(image.command("pkgs").description("list the packages in an image"))
    .requiredOption("--id <id>", "the image's id", positiveInt)
    .addHelpText("after", examples("kiln image pkgs --id 5", "kiln image pkgs --id 5 --json | jq -r '.imagePkgs[].pkg.name'"))
    .action(async (opts: CommonOptions & { id: number }, cmd: Command) => {
      await withClient(cmd, opts, async (client) => {
        const pkgs = await client.images.packages(await client.images.find(opts.id));
        if (opts.json) return printJson(pkgs);
        const rows = (pkgs.imagePkgs ?? []).map((p) => [p.pkg?.name, p.pkg?.version, p.pkg?.arch, p.native_from_distribution === false ? "bundle" : "distribution"]);
        say(table(["NAME", "VERSION", "ARCH", "FROM"], rows));
        say(`${rows.length} packages`);
      });
    });

  addCommonOptions(image.command("download").description("download an image's file (a partial download is resumed)"))
    .requiredOption("--id <id>", "the image's id", positiveInt)
    .option("--output <file>", "where to write it (default: the image's file name, in the current directory)")
    .addHelpText(
      "after",
      `
The bytes go to FILE.part, renamed to FILE once complete and checked against the image's SHA-256.
An interrupted download leaves FILE.part; running the same command again continues it.

Examples:
  kiln image download --id 5
  kiln image download --id 5 --output /tmp/hello.tar.gz && docker load -i /tmp/hello.tar.gz`,
    )
    .action(async (opts: CommonOptions & { id: number; output?: string }, cmd: Command) => {
      await withClient(cmd, opts, async (client) => {
        const img = await client.images.get(await client.images.find(opts.id));
        if (!img.status?.complete) throw new Error(`image ${opts.id} cannot be downloaded yet: ${statusText(img.status)}`);
        if (!img.fileName) throw new Error(`image ${opts.id} was generated with --no-compress: it has no file to download (publish it, or generate it again with compression)`);
        let file = path.resolve(opts.output ?? img.fileName);
        if (await stat(file).then((s) => s.isDirectory(), () => false)) file = path.join(file, img.fileName);
        const existing = await stat(file).catch(() => undefined);
        if (existing?.isFile() && existing.size === img.fileSize && img.sha256sum && (await sha256File(file)) === img.sha256sum) {
          if (opts.json) return printJson({ file, size: existing.size, sha256: img.sha256sum, resumedFrom: existing.size });
          say(`${file} is already downloaded (${bytes(existing.size)}, sha256 verified)`);
          return;
        }
        const reporter = transferReporter(process.stderr, `downloading ${path.basename(file)}`);
        let result;
        try {
          result = await client.images.download(img, file, { onProgress: (p) => reporter.update(p) });
        } finally {
          reporter.done();
        }
        if (opts.json) return printJson(result);
        const resumed = result.resumedFrom > 0 ? `, resumed from ${bytes(result.resumedFrom)}` : "";
        say(`Downloaded ${result.file} (${bytes(result.size)}${resumed}, sha256 ${result.sha256})`);
      });
    });

  addCommonOptions(image.command("publish").description("push an image to a registry account"))
    .requiredOption("--id <id>", "the image's id", positiveInt)
    .requiredOption("--account <id>", "the registry account's id (kiln account list)", positiveInt)
    .option("--namespace <namespace>", "the repository's namespace (team, organisation, OpenShift project)", "")
    .requiredOption("--repository <name>", "the repository name")
    .requiredOption("--tag <tag>", "the tag")
    .option("--wait", "follow the push to its end with a progress bar (Ctrl-C offers to cancel it)")
    .addHelpText("after", "\nExample:\n  kiln image publish --id 5 --account 2 --namespace team --repository hello --tag 1.0 --wait")
    .action(async (opts: CommonOptions & { id: number; account: number; namespace: string; repository: string; tag: string; wait?: boolean }, cmd: Command) => {
      await withClient(cmd, opts, async (client) => {
        const img = await client.images.find(opts.id);
        const ticket = await client.publications.publish(img, { account: opts.account, namespace: opts.namespace, repository: opts.repository, tag: opts.tag });
        const id = ticket.dbId!;
        if (!opts.wait) {
          if (opts.json) return printJson(ticket);
          say(`Publishing image ${opts.id} as publication ${id}. Follow it with: kiln publish status --id ${id}`);
          return;
        }
        if (!opts.json) note(`Publishing image ${opts.id} (publication ${id})...`);
        await followJob({
          client,
          statusUri: ticket.statusUri!,
          what: "publication",
          cancel: () => client.publications.cancel(ticket),
          statusCommand: `kiln publish status --id ${id}`,
          debug: debugEnabled(cmd),
        });
        const done = await client.publications.get(ticket);
        if (opts.json) return printJson(done);
        say(`Published image ${opts.id} to ${whereTo(done)}${done.cloudId ? ` (${done.cloudId.split("@")[1] ?? done.cloudId})` : ""}`);
      });
    });
}

/** `registry/namespace/repository:tag`. */
export function whereTo(p: PublishImage): string {
  // Where it landed is its `registeringName` (and `publishLocation`); until then, what was asked for.
  if (p.registeringName) return p.registeringName;
  if (p.publishLocation) return p.publishLocation;
  const d = p as { namespace?: string; repositoryName?: string; tagName?: string };
  return `${d.namespace ? `${d.namespace}/` : ""}${d.repositoryName ?? ""}:${d.tagName ?? ""}`;
}
