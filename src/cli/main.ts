/**
 * The `kiln` command. Each subcommand lives in its own module; this file only wires them into
 * commander and turns failures into one clear line and an exit code (1 failure, 2 bad usage).
 */
import { Command, CommanderError } from "commander";
import { isKilnError } from "../domain/errors.js";
import { registerBuild } from "./build.js";

export async function main(argv: string[]): Promise<number> {
  const program = new Command();
  program
    .name("kiln")
    .description("Kiln turns software bundles into reproducible container images (UForge-compatible API and CLI)")
    .option("--debug", "print stack traces on errors")
    .exitOverride()
    .configureOutput({ writeErr: (s) => process.stderr.write(s) });

  program
    .command("serve")
    .description("run the Kiln API server (configured by KILN_* environment variables and kiln.yaml)")
    .action(async () => {
      const { serve } = await import("../server/serve.js");
      await serve();
    });

  registerBuild(program);

  try {
    await program.parseAsync(argv);
    return typeof process.exitCode === "number" ? process.exitCode : 0;
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.code === "commander.helpDisplayed" || err.code === "commander.version" || err.code === "commander.help") return 0;
      return err.exitCode === 0 ? 0 : 2;
    }
    const debug = program.opts().debug === true;
    if (debug && err instanceof Error) process.stderr.write(`${err.stack ?? err.message}\n`);
    else process.stderr.write(`kiln: ${isKilnError(err) || err instanceof Error ? err.message : String(err)}\n`);
    return 1;
  }
}
