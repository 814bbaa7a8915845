/**
 * `kiln template`: container templates, a bundle on a distribution. A template is known by its
 * id; the commands find its bundle by searching the library when `--bundle` is not given.
 */
import type { Command } from "commander";
import type { ContainerTemplate, KilnClient } from "../sdk/index.js";
import { addCommonOptions, examples, positiveInt, withClient, type CommonOptions } from "./context.js";
import { details, idIn, printJson, say, statusText, table } from "./output.js";

function osLabel(t: ContainerTemplate): string {
  const d = t.distribution;
  return d ? `${d.name ?? ""} ${d.version ?? ""} ${d.arch ?? ""}`.trim() : "";
}

/** The distribution named "Debian 12 x86_64" (case and spacing forgiven), from the server's list. */
async function distributionUri(client: KilnClient, os: string): Promise<string> {
  const wanted = os.trim().replace(/\s+/g, " ").toLowerCase();
  const all = (await client.distributions.listForUser()).distributions ?? [];
  const found = all.find((d) => `${d.name} ${d.version} ${d.arch}`.toLowerCase() === wanted) ?? all.filter((d) => `${d.name} ${d.version}`.toLowerCase() === wanted).at(0);
  if (!found?.uri) {
    const offered = all.map((d) => `"${d.name} ${d.version} ${d.arch}"`).join(", ");
    throw new Error(`no distribution "${os}" on this server; it offers ${offered || "none"} (kiln os list)`);
  }
  return found.uri;
}

async function allTemplates(client: KilnClient, bundleId: number | undefined): Promise<ContainerTemplate[]> {
  const bundles = bundleId !== undefined ? [bundleId] : ((await client.bundles.list()).mySoftwareList ?? []).map((b) => b.dbId!);
  const out: ContainerTemplate[] = [];
  for (const id of bundles) out.push(...((await client.templates.list(id)).containerTemplates ?? []));
  return out;
}

export function registerTemplate(program: Command): void {
  const template = program
    .command("template")
    .description("container templates: a bundle on a distribution, from which images are generated")
    .addHelpText(
      "after",
      `
Examples:
  kiln template create --bundle 3 --os "Debian 12 x86_64"
  kiln template list
  kiln template delete --id 4`,
    );

  addCommonOptions(template.command("create").description("create a container template of a bundle on a distribution"))
    .requiredOption("--bundle <id>", "the bundle's id", positiveInt)
    .requiredOption("--os <name>", 'the distribution, as "<name> <version> <arch>" (kiln os list)')
    .addHelpText("after", '\nExample:\n  kiln template create --bundle 3 --os "Debian 12 x86_64"')
    .action(async (opts: CommonOptions & { bundle: number; os: string }, cmd: Command) => {
      await withClient(cmd, opts, async (client) => {
        const uri = await distributionUri(client, opts.os);
        const t = await client.templates.create(opts.bundle, { distribution: { uri } });
        if (opts.json) return printJson(t);
        const formats = ((await client.templates.formats(t)).targetFormats ?? []).map((f) => f.name).join(", ");
        say(`Created template ${t.dbId} of bundle ${opts.bundle} on ${osLabel(t)} (formats: ${formats || "none"})`);
      });
    });

  addCommonOptions(template.command("list").description("list container templates (of every bundle, or of one)"))
    .option("--bundle <id>", "only this bundle's templates", positiveInt)
    .addHelpText("after", examples("kiln template list", "kiln template list --bundle 3 --json"))
    .action(async (opts: CommonOptions & { bundle?: number }, cmd: Command) => {
      await withClient(cmd, opts, async (client) => {
        const templates = await allTemplates(client, opts.bundle);
        if (opts.json) return printJson({ total: templates.length, containerTemplates: templates });
        const rows = templates.map((t) => [t.dbId, idIn(t.uri, "mysoftware"), t.softwareBundle?.name, t.softwareBundle?.version, osLabel(t), (t.images ?? []).length, t.created?.slice(0, 19).replace("T", " ")]);
        say(rows.length ? table(["ID", "BUNDLE", "NAME", "VERSION", "OS", "IMAGES", "CREATED"], rows) : 'No templates yet: create one with kiln template create --bundle ID --os "Debian 12 x86_64"');
      });
    });

  addCommonOptions(template.command("info").description("show a container template, its formats and its images"))
    .requiredOption("--id <id>", "the template's id", positiveInt)
    .addHelpText("after", examples("kiln template info --id 4"))
    .option("--bundle <id>", "the template's bundle (found by searching when not given)", positiveInt)
    .action(async (opts: CommonOptions & { id: number; bundle?: number }, cmd: Command) => {
      await withClient(cmd, opts, async (client) => {
        const t = await client.templates.get(await client.templates.find(opts.id, opts.bundle));
        if (opts.json) return printJson(t);
        const formats = ((await client.templates.formats(t)).targetFormats ?? []).map((f) => f.name).join(", ");
        say(details([["ID", t.dbId], ["Bundle", `${idIn(t.uri, "mysoftware")} (${t.softwareBundle?.name ?? ""} ${t.softwareBundle?.version ?? ""})`.trim()], ["OS", osLabel(t)], ["Formats", formats], ["Created", t.created]]));
        const images = (t.images ?? []).map((i) => [i.dbId, i.targetFormat?.name, statusText(i.status)]);
        if (images.length) say(`Images:\n${table(["ID", "FORMAT", "STATUS"], images)}`);
      });
    });

  addCommonOptions(template.command("delete").description("delete a container template and its images"))
    .requiredOption("--id <id>", "the template's id", positiveInt)
    .addHelpText("after", examples("kiln template delete --id 4"))
    .option("--bundle <id>", "the template's bundle (found by searching when not given)", positiveInt)
    .action(async (opts: CommonOptions & { id: number; bundle?: number }, cmd: Command) => {
      await withClient(cmd, opts, async (client) => {
        await client.templates.delete(await client.templates.find(opts.id, opts.bundle));
        if (!opts.json) say(`Deleted template ${opts.id}`);
      });
    });
}

/** `kiln os list`: the distributions templates can use. */
export function registerOs(program: Command): void {
  const os = program.command("os").description("the distributions images are built on");
  addCommonOptions(os.command("list").description("list the distributions you can build on"))
    .addHelpText("after", "\nExample:\n  kiln os list")
    .action(async (opts: CommonOptions, cmd: Command) => {
      await withClient(cmd, opts, async (client) => {
        const list = await client.distributions.listForUser();
        if (opts.json) return printJson(list);
        say(table(["ID", "OS", "DESCRIPTION"], (list.distributions ?? []).map((d) => [d.dbId, `${d.name} ${d.version} ${d.arch}`, d.description])));
      });
    });
}
