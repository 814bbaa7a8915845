/**
 * What every command that talks to a server shares: the `--profile` and `--json` options, the
 * client built from the profile (closed when the command ends), `--debug` request logging, and
 * the parsing of ids.
 */
import { InvalidArgumentError, type Command } from "commander";
import { KilnClient } from "../sdk/index.js";
import { connectionOptions } from "./profiles.js";

/** The options `addCommonOptions` adds. */
export interface CommonOptions {
  profile?: string;
  json?: boolean;
}

/** Adds `--profile NAME` and `--json` to a command. */
export function addCommonOptions(cmd: Command): Command {
  return cmd.option("--profile <name>", "the saved profile to use (default: $KILN_PROFILE, else \"default\")").option("--json", "print the API's JSON instead of a table (for scripts)");
}

/** The "Examples:" block of a command's help. */
export function examples(...lines: string[]): string {
  return `\nExample${lines.length > 1 ? "s" : ""}:\n${lines.map((l) => `  ${l}`).join("\n")}`;
}

/** A positive integer option value (`--id 12`). */
export function positiveInt(value: string): number {
  if (!/^[1-9][0-9]{0,15}$/.test(value.trim())) throw new InvalidArgumentError("expected a positive integer id");
  return Number(value.trim());
}

/** Whether `--debug` was given (a program-wide option). */
export function debugEnabled(cmd: Command): boolean {
  return cmd.optsWithGlobals<{ debug?: boolean }>().debug === true;
}

/**
 * Runs `fn` with a client for the command's profile and closes it after. With `--debug`, each
 * request is logged to standard error (method, URL with secrets masked, status, time).
 */
export async function withClient<T>(cmd: Command, opts: CommonOptions, fn: (client: KilnClient) => Promise<T>): Promise<T> {
  const debug = debugEnabled(cmd);
  const client = new KilnClient({
    ...(await connectionOptions(opts.profile)),
    userAgent: "kiln-cli",
    ...(debug ? { onResponse: (e) => process.stderr.write(`debug: ${e.method} ${e.url} -> ${e.status} (${e.ms} ms)\n`) } : {}),
  });
  try {
    return await fn(client);
  } finally {
    client.close();
  }
}
