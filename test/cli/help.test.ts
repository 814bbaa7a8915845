/**
 * The command tree in-process: every command's help has examples, every command that talks to a
 * server takes --profile and --json, and the shell completion names every command.
 */
import type { Command } from "commander";
import { describe, expect, it } from "vitest";
import { createProgram } from "../../src/cli/main.js";

function leaves(cmd: Command, prefix: string[] = []): Array<{ path: string[]; cmd: Command }> {
  if (cmd.commands.length === 0) return [{ path: prefix, cmd }];
  return cmd.commands.filter((c) => c.name() !== "help").flatMap((c) => leaves(c, [...prefix, c.name()]));
}

function helpOf(cmd: Command): string {
  let out = "";
  cmd.configureOutput({ writeOut: (s) => (out += s), writeErr: (s) => (out += s) });
  cmd.outputHelp();
  return out;
}

/** Commands that need no server. */
const LOCAL = new Set(["serve", "build", "login", "logout", "bundle validate", "completion"]);

describe("the command tree", () => {
  const program = createProgram();
  const all = leaves(program);

  it("has the commands of the issue", () => {
    const names = all.map((l) => l.path.join(" "));
    for (const c of [
      "login",
      "bundle create",
      "bundle validate",
      "bundle list",
      "bundle info",
      "bundle delete",
      "bundle clone",
      "template create",
      "template list",
      "template delete",
      "image generate",
      "image list",
      "image info",
      "image status",
      "image cancel",
      "image delete",
      "image pkgs",
      "image download",
      "image publish",
      "account create",
      "account list",
      "account delete",
      "publish list",
      "publish status",
      "publish cancel",
      "publish delete",
      "completion",
      "serve",
      "build",
    ]) {
      expect(names).toContain(c);
    }
  });

  it.each(all.map((l) => [l.path.join(" "), l.cmd] as const))("kiln %s --help has examples", (name, cmd) => {
    const help = helpOf(cmd);
    expect(help, name).toMatch(/\nExamples?:\n {2}\S/);
    if (!LOCAL.has(name)) {
      expect(help, name).toContain("--profile <name>");
      expect(help, name).toContain("--json");
    }
  });
});
