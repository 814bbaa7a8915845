/**
 * `kiln publish`: images published to registries (`kiln image publish` starts one). A
 * publication is known by its id; its place is found in the user's list of published images.
 */
import type { Command } from "commander";
import { addCommonOptions, debugEnabled, examples, positiveInt, withClient, type CommonOptions } from "./context.js";
import { whereTo } from "./image.js";
import { details, idIn, note, printJson, say, statusText, table } from "./output.js";
import { nothingToCancel } from "./errors.js";

export function registerPublish(program: Command): void {
  const publish = program
    .command("publish")
    .description("published images: list, follow, cancel, delete (kiln image publish starts one)")
    .addHelpText(
      "after",
      `
Examples:
  kiln publish list
  kiln publish status --id 7
  kiln publish delete --id 7`,
    );

  addCommonOptions(publish.command("list").description("list your published images"))
    .addHelpText("after", examples("kiln publish list", "kiln publish list --json | jq -r '.publishImages[].cloudId'"))
    .action(async (opts: CommonOptions, cmd: Command) => {
      await withClient(cmd, opts, async (client) => {
        const list = await client.publications.list();
        if (opts.json) return printJson(list);
        const rows = (list.publishImages ?? []).map((p) => [p.dbId, idIn(p.imageUri ?? p.parentUri, "images"), whereTo(p), statusText(p.status), p.cloudId?.split("@")[1]]);
        say(rows.length ? table(["ID", "IMAGE", "PUBLISHED AS", "STATUS", "DIGEST"], rows) : "Nothing published yet: kiln image publish --id ID --account ID --repository NAME --tag TAG");
      });
    });

  addCommonOptions(publish.command("status").description("show the status of a publication"))
    .requiredOption("--id <id>", "the publication's id", positiveInt)
    .addHelpText("after", examples("kiln publish status --id 7"))
    .action(async (opts: CommonOptions & { id: number }, cmd: Command) => {
      await withClient(cmd, opts, async (client) => {
        const p = await client.publications.find(opts.id);
        const status = await client.publications.status(p);
        if (opts.json) return printJson(status);
        say(details([["Publication", p.dbId], ["Image", idIn(p.imageUri ?? p.parentUri, "images")], ["Published as", whereTo(p)], ["Status", statusText(status)], ["Cloud id", p.cloudId]]));
        if (status.error && status.detailedErrorMsg && debugEnabled(cmd)) note(status.detailedErrorMsg);
      });
    });

  addCommonOptions(publish.command("cancel").description("cancel a publication in progress"))
    .requiredOption("--id <id>", "the publication's id", positiveInt)
    .addHelpText("after", examples("kiln publish cancel --id 7"))
    .action(async (opts: CommonOptions & { id: number }, cmd: Command) => {
      await withClient(cmd, opts, async (client) => {
        const status = await client.publications.cancel(await client.publications.find(opts.id));
        if (opts.json) return printJson(status);
        nothingToCancel(`publication ${opts.id}`, status);
        say(`Cancelled publication ${opts.id}`);
      });
    });

  addCommonOptions(publish.command("delete").description("delete a publication (and its tag, where the registry allows it)"))
    .requiredOption("--id <id>", "the publication's id", positiveInt)
    .addHelpText("after", examples("kiln publish delete --id 7"))
    .action(async (opts: CommonOptions & { id: number }, cmd: Command) => {
      await withClient(cmd, opts, async (client) => {
        await client.publications.delete(await client.publications.find(opts.id));
        if (!opts.json) say(`Deleted publication ${opts.id}`);
      });
    });
}
