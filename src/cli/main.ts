/**
 * The `kiln` command. Each subcommand lives in its own module; this file only wires them into
 * commander and turns failures into one clear line and an exit code (0 success, 1 failure,
 * 2 bad usage, 130 interrupted), with the stack trace only under `--debug`.
 */
import { Command, CommanderError } from "commander";
import { isKilnError } from "../domain/errors.js";
import { KilnApiError } from "../sdk/index.js";
import { registerAccount } from "./account.js";
import { registerBuild } from "./build.js";
import { registerBundle } from "./bundle.js";
import { registerCompletion } from "./completion.js";
import { examples } from "./context.js";
import { CliExit, UsageError } from "./errors.js";
import { registerImage } from "./image.js";
import { registerLogin } from "./login.js";
import { registerPublish } from "./publish.js";
import { registerOs, registerTemplate } from "./template.js";

/** The one line a failure prints (after `kiln: `). */
function failureLine(err: unknown): string {
  if (err instanceof KilnApiError) {
    if (err.status === 401) return `${err.message} (check your credentials: kiln login, or KILN_USER/KILN_PASSWORD)`;
    return err.message;
  }
  if (isKilnError(err) || err instanceof Error) return err.message;
  return String(err);
}

/** The whole command tree (also walked by the completion scripts and the help tests). */
export function createProgram(): Command {
  const program = new Command();
  program
    .name("kiln")
    .description("Kiln turns software bundles into reproducible container images (UForge-compatible API and CLI)")
    .option("--debug", "print stack traces on errors, and each request made")
    .exitOverride()
    .showHelpAfterError("(add --help for usage)")
    // Usage errors read like every other failure: `kiln: <what went wrong>` (commander says `error:`).
    .configureOutput({ writeErr: (s) => process.stderr.write(s), outputError: (s, write) => write(s.replace(/^error: /, "kiln: ")) })
    .configureHelp({ showGlobalOptions: true })
    .addHelpText(
      "after",
      `
Examples:
  printf '%s' "$PASSWORD" | kiln login --url http://127.0.0.1:8080 --user alice --password-stdin
  kiln bundle create --file bundle.yml
  kiln template create --bundle 1 --os "Debian 12 x86_64"
  kiln image generate --template 1 --format Docker --entrypoint '["/opt/hello/bin/hello"]' --wait
  kiln image download --id 1
  kiln image publish --id 1 --account 1 --namespace team --repository hello --tag 1.0 --wait

Every command that talks to a server takes --profile NAME and --json; KILN_URL, KILN_USER and
KILN_PASSWORD override the profile. Exit status: 0 success, 1 failure, 2 bad usage.`,
    );

  program
    .command("serve")
    .description("run the Kiln API server (configured by KILN_* environment variables and kiln.yaml)")
    .option("--role <role>", "all (the default: one process does everything), api (serves the API, runs no jobs) or worker (runs jobs; needs KILN_DATABASE_URL)")
    .addHelpText(
      "after",
      examples(
        "kiln serve",
        "KILN_HOST=0.0.0.0 KILN_PORT=8080 KILN_DATA_DIR=/var/lib/kiln kiln serve",
        "KILN_DATABASE_URL=postgres://kiln@db/kiln kiln serve --role worker",
      ),
    )
    .action(async (opts: { role?: string }) => {
      const { serve } = await import("../server/serve.js");
      await serve(process.env, opts.role === undefined ? {} : { role: opts.role });
    });

  registerBuild(program);
  registerLogin(program);
  registerBundle(program);
  registerTemplate(program);
  registerImage(program);
  registerPublish(program);
  registerAccount(program);
  registerOs(program);
  registerCompletion(program);
  return program;
}

export async function main(argv: string[]): Promise<number> {
  // `kiln image list | head -1`: a reader that stops early is not an error.
  process.stdout.on("error", (err: NodeJS.ErrnoException) => {
    if (err.code === "EPIPE") process.exit(0);
    throw err;
  });
  const program = createProgram();
  try {
    await program.parseAsync(argv);
    return typeof process.exitCode === "number" ? process.exitCode : 0;
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.code === "commander.helpDisplayed" || err.code === "commander.version") return 0;
      return err.exitCode === 0 ? 0 : 2;
    }
    if (err instanceof CliExit) {
      if (err.message) process.stderr.write(`kiln: ${err.message}\n`);
      return err.code;
    }
    const debug = program.opts().debug === true;
    if (debug && err instanceof Error) process.stderr.write(`${err.stack ?? err.message}\n`);
    // One line: a message that draws a caret on more lines (restriction rules) keeps its first.
    else process.stderr.write(`kiln: ${failureLine(err).split("\n")[0]!.trim()}\n`);
    if (err instanceof UsageError && !debug) process.stderr.write("(add --help for usage)\n");
    return err instanceof UsageError ? 2 : 1;
  }
}
