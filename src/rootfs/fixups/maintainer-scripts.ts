/**
 * Every package's maintainer scripts, as dpkg would run them at first installation — through
 * the interpreter (script/), never on the host: each `preinst install` in install order, then
 * each `postinst configure` (with its `config` script first, when it uses debconf), then the
 * triggers the installation activated (`postinst triggered`). Scripts a dedicated fix-up
 * replaces are taken from the study (study/) instead.
 *
 * What the scripts do to the tree (files, directories, links, owners, modes, capabilities,
 * accounts, statoverrides) is this fix-up's result; `update-alternatives` and `add-shell` calls
 * are recorded for the alternatives and shells fix-ups, which run next. Every effect goes to the
 * report with its outcome (emulated, not-needed, unreproduced): every package that has a
 * maintainer script or a trigger appears in it.
 */
import { createHash } from "node:crypto";
import type { Fixup, FixupContext, InstalledPackage } from "../types.js";
import { controlText, type FixupOptions } from "./options.js";
import { ACCOUNT_TOOLS } from "./script/accounts-tools.js";
import { DPKG_TOOLS, type RecordedCalls } from "./script/dpkg-tools.js";
import { FILE_TOOLS } from "./script/files.js";
import { Interpreter, type CommandDecision, type ScriptHost, type Tool } from "./script/interpret.js";
import { Debconf, MISC_TOOLS } from "./script/misc-tools.js";
import { OverlayFs } from "./script/overlay.js";
import { parseScript, ShellSyntaxError } from "./script/parse.js";
import { TEXT_TOOLS } from "./script/text-tools.js";
import { isUnknown, Sink, Unknown, type Status } from "./script/values.js";
import { scriptStudyFor, studyFor, verdictFor, type ScriptName, type Study } from "./study/index.js";

/** One line of the build report: what Kiln did about one effect of one script. */
export interface ScriptReportEntry {
  package: string;
  script: ScriptName;
  outcome: "emulated" | "not-needed" | "unreproduced";
  effect: string;
}

const TOOLS: ReadonlyMap<string, Tool> = new Map([...FILE_TOOLS, ...TEXT_TOOLS, ...DPKG_TOOLS, ...ACCOUNT_TOOLS, ...MISC_TOOLS]);

/** Largest shell file of the tree a script may source (`. /usr/share/foo/helpers`). */
const MAX_SOURCED = 256 * 1024;

const CONFMODULE = "/usr/share/debconf/confmodule";

/** How deep scripts may run scripts of the tree. */
const MAX_EXEC_DEPTH = 8;

/** The state the maintainer-scripts fix-up shares with the fix-ups that replay its calls. */
export class ScriptRun {
  readonly calls: RecordedCalls = { alternatives: [], shells: [], triggers: new Set() };
  readonly study: Study;
  constructor(release: string) {
    this.study = studyFor(release);
  }
}

/** The environment dpkg and an unattended apt give maintainer scripts. */
function scriptEnv(p: InstalledPackage, script: string, dpkgVersion: string | undefined): Record<string, string> {
  return {
    DPKG_MAINTSCRIPT_NAME: script,
    DPKG_MAINTSCRIPT_PACKAGE: p.pkg.name,
    DPKG_MAINTSCRIPT_ARCH: p.pkg.architecture,
    DPKG_MAINTSCRIPT_PACKAGE_REFCOUNT: "1",
    DPKG_ROOT: "",
    DPKG_ADMINDIR: "/var/lib/dpkg",
    ...(dpkgVersion ? { DPKG_RUNNING_VERSION: dpkgVersion } : {}),
    DEBIAN_FRONTEND: "noninteractive",
    DEBCONF_NONINTERACTIVE_SEEN: "true",
    PATH: "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    HOME: "/root",
    LC_ALL: "C.UTF-8",
    IFS: " \t\n",
  };
}

/** The interpreter a shebang names, when it is a POSIX shell. */
function shellOf(text: string): { ok: boolean; errexit: boolean; interpreter: string } {
  const m = /^#!\s*(\S+)([^\n]*)/.exec(text);
  if (!m) return { ok: true, errexit: false, interpreter: "/bin/sh" };
  const ok = /^\/(usr\/)?bin\/(sh|dash|bash)$/.test(m[1]!);
  return { ok, errexit: /(^|\s)-[a-z]*e/.test(m[2]!), interpreter: m[1]! };
}

/** The maintainer-scripts fix-up; `run` is shared with the alternatives and shells fix-ups. */
export function maintainerScriptsFixup(run: ScriptRun, options: FixupOptions = {}): Fixup {
  return {
    name: "maintainer-scripts",
    replaces: "every package's preinst, config and postinst at first installation, and the triggers they activate",
    async apply(ctx: FixupContext) {
      const fs = new OverlayFs(ctx.fs);
      const entries: ScriptReportEntry[] = [];
      const configRan = new Set<string>();
      const dpkgVersion = ctx.packages.find((p) => p.pkg.name === "dpkg")?.pkg.version;
      const host: ScriptHost = {
        fs,
        calls: run.calls,
        debconf: new Debconf(ctx.packages),
        packages: ctx.packages,
        arch: ctx.arch,
        clock: ctx.clock,
        tools: TOOLS,
        decide(pkg, script, argv, name): CommandDecision | undefined {
          return verdictFor(run.study, pkg, script as ScriptName, argv, name);
        },
        source(sh, path, args) {
          if (path === CONFMODULE) {
            return (async (): Promise<Status> => {
              // Sourced by a postinst, the confmodule first runs the package's config script.
              const config = controlText(sh.pkg, "config");
              if (sh.script === "postinst" && config !== undefined && !configRan.has(sh.pkg.pkg.name)) {
                configRan.add(sh.pkg.pkg.name);
                await runScript(sh.pkg, "config", config, ["configure", ""]);
              }
              return 0;
            })();
          }
          const e = fs.stat(path, sh.cwd);
          if (e?.type !== "file" || (e.content?.size ?? 0) > MAX_SOURCED) return undefined;
          return (async (): Promise<Status> => {
            const text = (await fs.readFile(path, sh.cwd)).toString("utf8");
            let list;
            try {
              list = parseScript(text);
            } catch (err) {
              if (!(err instanceof ShellSyntaxError)) throw err;
              sh.unreproduced(`reads and runs ${path}, which Kiln cannot read (${err.message})`);
              return new Unknown(`. ${path}`);
            }
            const saved = sh.positional;
            if (args.length > 0) sh.positional = args;
            try {
              return await sh.runList(list, new Sink("discard"), undefined);
            } finally {
              sh.positional = saved;
            }
          })();
        },
      };

      let depth = 0;
      host.execute = async (sh, path, argv, out, stdin) => {
        const e = fs.stat(path, sh.cwd);
        if (e?.type !== "file" || (e.content?.size ?? 0) > MAX_SOURCED || depth >= MAX_EXEC_DEPTH) return undefined;
        const text = (await fs.readFile(path, sh.cwd)).toString("utf8");
        const shell = shellOf(text);
        // Only files that say they are shell scripts: a binary or a Perl program is not guessed at.
        if (!text.startsWith("#!") || !shell.ok) return undefined;
        let list;
        try {
          list = parseScript(text);
        } catch (err) {
          if (!(err instanceof ShellSyntaxError)) throw err;
          return undefined;
        }
        const child = new Interpreter(host, sh.pkg, sh.script, argv.slice(1), sh.env);
        child.vars.set("0", path);
        child.errexit = shell.errexit;
        child.uncertain.push(...sh.uncertain);
        depth++;
        try {
          const status = await child.run(list, out, stdin);
          for (const r of child.records) sh.record(r.outcome, r.effect);
          return status;
        } finally {
          depth--;
        }
      };

      const record = (p: InstalledPackage, script: ScriptName, outcome: ScriptReportEntry["outcome"], effect: string): void => {
        if (!entries.some((e) => e.package === p.pkg.name && e.script === script && e.outcome === outcome && e.effect === effect)) entries.push({ package: p.pkg.name, script, outcome, effect });
      };

      const runScript = async (p: InstalledPackage, script: ScriptName, text: string, args: string[]): Promise<void> => {
        const sha = createHash("sha256").update(text).digest("hex");
        const studied = scriptStudyFor(run.study, p.pkg.name, script, sha);
        if (studied) {
          for (const v of studied.effects) record(p, script, v.outcome, v.effect);
          return;
        }
        const shell = shellOf(text);
        if (!shell.ok) {
          record(p, script, "unreproduced", `a ${shell.interpreter} script, which Kiln does not interpret`);
          return;
        }
        let list;
        try {
          list = parseScript(text);
        } catch (err) {
          if (!(err instanceof ShellSyntaxError)) throw err;
          record(p, script, "unreproduced", `a script Kiln cannot read (${err.message})`);
          return;
        }
        const sh = new Interpreter(host, p, script, args, scriptEnv(p, script === "triggers" ? "postinst" : script, dpkgVersion));
        sh.errexit = shell.errexit;
        const status = await sh.run(list);
        for (const r of sh.records) record(p, script, r.outcome, r.effect);
        if (isUnknown(status) && sh.records.length === 0) record(p, script, "unreproduced", `its outcome depends on something Kiln cannot know (${status.why})`);
        if (!entries.some((e) => e.package === p.pkg.name && e.script === script)) record(p, script, "not-needed", "nothing to do at first installation");
      };

      // Unpacking: every preinst, in install order.
      for (const p of ctx.packages) {
        const text = controlText(p, "preinst");
        if (text !== undefined) await runScript(p, "preinst", text, ["install"]);
      }
      // Configuring: every postinst (config first when the package has one).
      for (const p of ctx.packages) {
        const text = controlText(p, "postinst");
        const config = controlText(p, "config");
        if (text !== undefined) await runScript(p, "postinst", text, ["configure", ""]);
        if (config !== undefined && !configRan.has(p.pkg.name)) {
          // A config script the postinst did not reach through debconf still runs (dpkg-preconfigure).
          configRan.add(p.pkg.name);
          await runScript(p, "config", config, ["configure", ""]);
        }
      }
      // Triggers, once every package is configured.
      await runTriggers(ctx.packages, run.calls, (p, names) => runScript(p, "triggers", controlText(p, "postinst") ?? "", ["triggered", names.join(" ")]), record);
      // Scripts that only run on removal.
      for (const p of ctx.packages) {
        for (const s of ["prerm", "postrm"] as const) {
          if (p.controlFiles.has(s)) record(p, s, "not-needed", "runs only when the package is removed or upgraded");
        }
      }
      options.report?.push(...entries);
      return fs.result();
    },
  };
}

/** A package's trigger interests and activations, from its `triggers` control member. */
function triggerLines(p: InstalledPackage): { interests: string[]; activates: string[] } {
  const interests: string[] = [];
  const activates: string[] = [];
  for (const raw of (controlText(p, "triggers") ?? "").split("\n")) {
    const m = /^\s*(interest|interest-await|interest-noawait|activate|activate-await|activate-noawait)\s+(\S+)/.exec(raw.replace(/#.*$/, ""));
    if (!m) continue;
    (m[1]!.startsWith("interest") ? interests : activates).push(m[2]!);
  }
  return { interests, activates };
}

/**
 * Decides which trigger runs the installation would make: a named trigger is activated by
 * `dpkg-trigger` in a script or an `activate` line of another package; a file trigger by another
 * package shipping a path under it. Each interested package then runs `postinst triggered` once
 * with the names activated for it.
 */
async function runTriggers(
  packages: readonly InstalledPackage[],
  calls: RecordedCalls,
  run: (p: InstalledPackage, names: string[]) => Promise<void>,
  record: (p: InstalledPackage, script: ScriptName, outcome: ScriptReportEntry["outcome"], effect: string) => void,
): Promise<void> {
  const activated = new Set(calls.triggers);
  const interested = new Map<string, string[]>();
  for (const p of packages) {
    const { interests, activates } = triggerLines(p);
    for (const a of activates) activated.add(a);
    for (const i of interests) interested.set(i, [...(interested.get(i) ?? []), p.pkg.name]);
  }
  for (const p of packages) {
    const { interests, activates } = triggerLines(p);
    if (interests.length > 0 || activates.length === 0) continue;
    for (const a of activates) {
      const who = interested.get(a);
      record(p, "triggers", who ? "emulated" : "not-needed", who ? `activates the trigger ${a}, run by ${who.join(", ")}` : `activates the trigger ${a}, which no package of this image is interested in`);
    }
  }
  for (const p of packages) {
    const { interests } = triggerLines(p);
    if (interests.length === 0) continue;
    const names = interests.filter((i) => {
      if (!i.startsWith("/")) return activated.has(i);
      const prefix = i.endsWith("/") ? i : `${i}/`;
      return packages.some((q) => q !== p && q.files.some((f) => f === i || f.startsWith(prefix)));
    });
    if (names.length === 0) {
      record(p, "triggers", "not-needed", `not activated in this image (interests: ${interests.join(", ")})`);
      continue;
    }
    await run(p, names);
  }
}
