/**
 * `kiln account`: the registry accounts images are published with. Secrets (a Docker password,
 * an OpenShift token) are read from standard input or the environment, never from the command
 * line where `ps` and shell history would show them; the server never sends them back.
 */
import type { Command } from "commander";
import type { AnyCredAccount, CredAccountDocker, CredAccountOpenShift } from "../sdk/index.js";
import { addCommonOptions, examples, positiveInt, withClient, type CommonOptions } from "./context.js";
import { UsageError } from "./errors.js";
import { printJson, say, table } from "./output.js";
import { readSecret } from "./secret-input.js";

interface CreateOptions extends CommonOptions {
  type: string;
  name: string;
  endpoint?: string;
  login?: string;
  passwordStdin?: boolean;
  registry?: string;
  tokenStdin?: boolean;
}

function accountUrl(a: AnyCredAccount): string | undefined {
  return (a as CredAccountDocker).endpointUrl ?? (a as CredAccountOpenShift).registryUrl;
}

export function registerAccount(program: Command): void {
  const account = program
    .command("account")
    .description("registry accounts that images are published with")
    .addHelpText(
      "after",
      `
Examples:
  printf '%s' "$REGISTRY_PASSWORD" | kiln account create --type docker --name hub --endpoint https://registry.example.com --login me --password-stdin
  printf '%s' "$OPENSHIFT_TOKEN" | kiln account create --type openshift --name ocp --registry https://registry.apps.example.com --token-stdin
  kiln account list
  kiln account delete --id 2`,
    );

  addCommonOptions(account.command("create").description("add a Docker registry or OpenShift registry account"))
    .requiredOption("--type <type>", "docker or openshift")
    .requiredOption("--name <name>", "a name for the account")
    .option("--endpoint <url>", "docker: the registry URL (https://registry.example.com, or http:// for a local one)")
    .option("--login <login>", "docker: the registry login")
    .option("--password-stdin", "docker: read the registry password from standard input (or set KILN_REGISTRY_PASSWORD)")
    .option("--registry <url>", "openshift: the registry URL")
    .option("--token-stdin", "openshift: read the token from standard input (or set KILN_REGISTRY_TOKEN)")
    .addHelpText(
      "after",
      `
Examples:
  printf '%s' "$REGISTRY_PASSWORD" | kiln account create --type docker --name hub --endpoint https://registry.example.com --login me --password-stdin
  printf '%s' "$OPENSHIFT_TOKEN" | kiln account create --type openshift --name ocp --registry https://registry.apps.example.com --token-stdin`,
    )
    .action(async (opts: CreateOptions, cmd: Command) => {
      const type = opts.type.trim().toLowerCase();
      let body: CredAccountDocker | CredAccountOpenShift;
      if (type === "docker") {
        if (!opts.endpoint || !opts.login) throw new UsageError("a docker account needs --endpoint URL and --login LOGIN");
        if (opts.registry || opts.tokenStdin) throw new UsageError("--registry and --token-stdin are for --type openshift");
        const password = opts.passwordStdin ? await readSecret("registry password") : process.env.KILN_REGISTRY_PASSWORD;
        if (!password) throw new UsageError("give the registry password on standard input with --password-stdin (or in KILN_REGISTRY_PASSWORD)");
        body = { xsiType: "CredAccountDocker", name: opts.name, endpointUrl: opts.endpoint, login: opts.login, password };
      } else if (type === "openshift") {
        if (!opts.registry) throw new UsageError("an openshift account needs --registry URL");
        if (opts.endpoint || opts.login || opts.passwordStdin) throw new UsageError("--endpoint, --login and --password-stdin are for --type docker");
        const token = opts.tokenStdin ? await readSecret("token") : process.env.KILN_REGISTRY_TOKEN;
        if (!token) throw new UsageError("give the token on standard input with --token-stdin (or in KILN_REGISTRY_TOKEN)");
        body = { xsiType: "CredAccountOpenShift", name: opts.name, registryUrl: opts.registry, token };
      } else {
        throw new UsageError(`--type must be docker or openshift, not "${opts.type}"`);
      }
      await withClient(cmd, opts, async (client) => {
        const a = await client.accounts.create(body);
        if (opts.json) return printJson(a);
        say(`Created ${type} account ${a.dbId} "${a.name}" (${accountUrl(a)})`);
      });
    });

  addCommonOptions(account.command("list").description("list your registry accounts"))
    .addHelpText("after", examples("kiln account list"))
    .action(async (opts: CommonOptions, cmd: Command) => {
      await withClient(cmd, opts, async (client) => {
        const list = await client.accounts.list();
        if (opts.json) return printJson(list);
        const rows = (list.credAccounts ?? []).map((a) => [a.dbId, a.name, a.xsiType === "CredAccountOpenShift" ? "openshift" : "docker", accountUrl(a), (a as CredAccountDocker).login]);
        say(rows.length ? table(["ID", "NAME", "TYPE", "URL", "LOGIN"], rows) : "No accounts yet: add one with kiln account create");
      });
    });

  addCommonOptions(account.command("delete").description("delete a registry account"))
    .requiredOption("--id <id>", "the account's id", positiveInt)
    .addHelpText("after", examples("kiln account delete --id 2"))
    .action(async (opts: CommonOptions & { id: number }, cmd: Command) => {
      await withClient(cmd, opts, async (client) => {
        await client.accounts.delete(opts.id);
        if (!opts.json) say(`Deleted account ${opts.id}`);
      });
    });
}
