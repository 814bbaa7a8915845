/**
 * An interpreter of maintainer scripts over a virtual tree: it walks a script's syntax tree the
 * way `sh` would run it at first installation (`postinst configure` with no old version), and
 * for every command it meets decides, from the study (study/), whether Kiln reproduces its
 * effect (and does it, in the {@link OverlayFs}), whether the effect is not needed in an image,
 * or whether it is not reproduced — which is reported, never silently dropped.
 *
 * What the script learns from the image is computed: `[ -e /etc/foo ]`, `getent passwd redis`,
 * `command -v setcap`, `dpkg --compare-versions "$2" lt 1.2` (the empty old version), debconf's
 * default answers, `stat -c %a /usr/local`. What it would learn from the running machine or from
 * a program Kiln does not model is {@link Unknown}. A condition that depends on an unknown runs
 * its branches "uncertainly": their effects are reported as unreproduced (with the condition),
 * never applied — Kiln does not guess which branch a real installation would take.
 *
 * Shell semantics kept: `set -e` (a failing command outside a condition ends the script, which
 * is reported), functions with `local` and `return`, positional parameters, `$?`, `break N` and
 * `continue N`, subshells that keep their variables to themselves, redirections to files (a
 * script writing `/etc/foo` through `cat > /etc/foo <<EOF` writes it), here-documents, globs
 * expanded against the tree.
 */
import type { InstalledPackage } from "../../types.js";
import { BUILTINS } from "./builtins.js";
import type { RecordedCalls } from "./dpkg-tools.js";
import type { Debconf } from "./misc-tools.js";
import { shown, writeTextFile } from "./files.js";
import type { OverlayFs } from "./overlay.js";
import { parseScript, type AndOr, type Command, type List, type Part, type Pipeline, type Redirect, type SimpleCommand, type Word } from "./parse.js";
import { concat, firstUnknown, globRegExp, hasGlob, Input, isUnknown, Sink, unescapePattern, Unknown, type Status, type Value } from "./values.js";

export { Sink } from "./values.js";

/** How Kiln treats one effect of a script. */
export type Outcome = "emulated" | "not-needed" | "unreproduced";

/** One effect of a script run, as the report lists it. */
export interface ScriptRecord {
  outcome: Outcome;
  effect: string;
}

/** What a command implementation gets. */
export interface Invocation {
  /** Expanded arguments, the program name (as written) first. */
  argv: string[];
  /** The program name without its directory. */
  name: string;
  /** The rest of the standard input, read (and so consumed) on first use; undefined for a terminal. */
  readonly stdin: Value | undefined;
  /** The standard input itself, for `read`, which takes one line at a time. */
  input: Input | undefined;
  out: Sink;
  sh: Interpreter;
  /** The command as written, for messages. */
  text: string;
}

export type Tool = (inv: Invocation) => Status | Promise<Status>;

/** A rule from the study that decides a command before any tool does (see study/types.ts). */
export interface CommandDecision {
  outcome: Outcome;
  effect: string;
  /** Exit status the script sees (default 0). */
  status?: number;
  /** Its output, when the study knows it (else the output is unknown). */
  output?: string;
}

/** What stays the same across every script of one image. */
export interface ScriptHost {
  fs: OverlayFs;
  /** Calls other fix-ups replay (alternatives, shells) and triggers activated, in order. */
  calls: RecordedCalls;
  /** Debconf's answers (shared by every script, as the real database is). */
  debconf: Debconf;
  packages: readonly InstalledPackage[];
  arch: string;
  clock: Date;
  /** Programs Kiln implements, by name. */
  tools: ReadonlyMap<string, Tool>;
  /**
   * The study's verdict on a command of this package's script, if it has one (claims per
   * package, then rules per program); undefined lets the tools decide.
   */
  decide(pkg: string, script: string, argv: readonly string[], name: string): CommandDecision | undefined;
  /** The interpreter for a shell file of the tree a script sources (`.`), if Kiln follows it. */
  source(sh: Interpreter, path: string, args: string[]): Promise<Status> | undefined;
  /**
   * Runs a shell script of the tree a script executes (`/usr/share/foo/helper args`, `sh file`),
   * interpreted as a child shell; undefined when it is not one Kiln reads.
   */
  execute?(sh: Interpreter, path: string, argv: readonly string[], out: Sink, stdin: Input | undefined): Promise<Status | undefined>;
}


/** Compound commands whose status `set -e` judges by the command that ended them (see statusExempt). */
const EXEMPTION_KEEPING: ReadonlySet<string> = new Set(["group", "if", "for", "while", "until", "case"]);

class ExitSignal {
  constructor(readonly status: Status) {}
}
class ReturnSignal {
  constructor(readonly status: Status) {}
}
class LoopSignal {
  constructor(
    readonly kind: "break" | "continue",
    public levels: number,
  ) {}
}

const MAX_LOOP = 10_000;
const MAX_DEPTH = 100;
export const PATH = ["usr/local/sbin", "usr/local/bin", "usr/sbin", "usr/bin", "sbin", "bin"];

/** One script run: the state `sh` would have. */
export class Interpreter {
  readonly vars = new Map<string, Value>();
  positional: Value[];
  readonly functions = new Map<string, Command>();
  errexit = false;
  /**
   * Whether the status of the and-or list that ran last is a failure `set -e` ignored (a
   * non-final command of `&&`/`||`, a `!` pipeline): a compound command (`if`, `{ }`, a loop,
   * `case`) that ends on such a status does not end the script either, as dash and bash go on
   * after `if true; then which restorecon && restorecon /x; fi`. A function call or a subshell
   * does (dash).
   */
  private statusExempt = false;
  cwd = "";
  umask = 0o022;
  lastStatus: Status = 0;
  /** Why the current commands may not run at all (conditions Kiln cannot decide). */
  readonly uncertain: string[] = [];
  private conditionDepth = 0;
  /** Inside `$(...)`: a failure under `set -e` ends the substitution only. */
  private substitutionDepth = 0;
  private callDepth = 0;
  private locals: Array<Map<string, Value | undefined>> = [];
  readonly records: ScriptRecord[] = [];
  /** Line of the command being run (for messages). */
  line = 0;

  constructor(
    readonly host: ScriptHost,
    /** The package whose script this is. */
    readonly pkg: InstalledPackage,
    /** `postinst`, `preinst`, `config`, `triggers` (a `postinst triggered` run). */
    readonly script: string,
    args: string[],
    /** The environment the script started with (a script it runs gets the same). */
    readonly env: Record<string, string>,
  ) {
    this.positional = args;
    for (const [k, v] of Object.entries(env)) this.vars.set(k, v);
  }

  get fs(): OverlayFs {
    return this.host.fs;
  }

  // ---- records -------------------------------------------------------------------------------

  /** Records an effect; `apply` makes it happen when the command surely runs. */
  async emulate(effect: string, apply: () => void | Promise<void>): Promise<void> {
    if (this.uncertain.length > 0) {
      this.record("unreproduced", `${effect} (only if ${this.uncertain[this.uncertain.length - 1]}, which is not known at build time)`);
      return;
    }
    await apply();
    this.record("emulated", effect);
  }

  notNeeded(effect: string): void {
    this.record("not-needed", effect);
  }

  unreproduced(effect: string): void {
    this.record("unreproduced", this.uncertain.length > 0 ? `${effect} (only if ${this.uncertain[this.uncertain.length - 1]})` : effect);
  }

  record(outcome: Outcome, effect: string): void {
    if (!this.records.some((r) => r.outcome === outcome && r.effect === effect)) this.records.push({ outcome, effect });
  }

  // ---- variables -----------------------------------------------------------------------------

  getVar(name: string): Value {
    if (/^[0-9]+$/.test(name)) {
      const n = Number(name);
      if (n === 0) return this.vars.get("0") ?? this.script;
      return this.positional[n - 1] ?? "";
    }
    switch (name) {
      case "?":
        return isUnknown(this.lastStatus) ? this.lastStatus : String(this.lastStatus);
      case "#":
        return String(this.positional.length);
      case "@":
      case "*": {
        const u = firstUnknown(this.positional);
        return u ?? (this.positional as string[]).join(" ");
      }
      case "-":
        return this.errexit ? "e" : "";
      case "$":
      case "!":
        return new Unknown(`the process id ($${name})`);
      default:
        return this.vars.get(name) ?? "";
    }
  }

  isSet(name: string): boolean {
    if (/^[0-9]+$/.test(name)) return Number(name) === 0 || Number(name) <= this.positional.length;
    if (["?", "#", "@", "*", "-", "$", "!"].includes(name)) return true;
    return this.vars.has(name);
  }

  setVar(name: string, value: Value): void {
    this.vars.set(name, this.uncertain.length > 0 ? new Unknown(`${name} is set only if ${this.uncertain[this.uncertain.length - 1]}`) : value);
  }

  unsetVar(name: string): void {
    if (this.uncertain.length > 0) this.vars.set(name, new Unknown(`${name} is unset only if ${this.uncertain[this.uncertain.length - 1]}`));
    else this.vars.delete(name);
  }

  /** `local name`: restored when the function returns. */
  makeLocal(name: string): void {
    const frame = this.locals[this.locals.length - 1];
    if (!frame || frame.has(name)) return;
    frame.set(name, this.vars.get(name));
  }

  // ---- running -------------------------------------------------------------------------------

  /** Runs a whole script; returns its exit status. */
  async run(list: List, out: Sink = new Sink("discard"), stdin?: Input): Promise<Status> {
    try {
      return await this.runList(list, out, stdin);
    } catch (err) {
      if (err instanceof ExitSignal) return err.status;
      if (err instanceof ReturnSignal) return err.status;
      if (err instanceof LoopSignal) return this.lastStatus;
      throw err;
    }
  }

  /** Runs `fn` with the commands' effects made uncertain by `why`. */
  async uncertainly<T>(why: string, fn: () => Promise<T>): Promise<T> {
    this.uncertain.push(why);
    try {
      return await fn();
    } finally {
      this.uncertain.pop();
    }
  }

  async runList(list: List, out: Sink, stdin: Input | undefined): Promise<Status> {
    let status: Status = 0;
    for (const item of list.items) {
      status = await this.runAndOr(item.cmd, out, stdin);
      this.lastStatus = status;
    }
    return status;
  }

  private async condition(list: List, out: Sink, stdin: Input | undefined): Promise<Status> {
    this.conditionDepth++;
    try {
      return await this.runList(list, out, stdin);
    } finally {
      this.conditionDepth--;
    }
  }

  private async runAndOr(a: AndOr, out: Sink, stdin: Input | undefined): Promise<Status> {
    const hasRest = a.rest.length > 0;
    if (hasRest) this.conditionDepth++;
    let status: Status;
    try {
      status = await this.runPipeline(a.first, out, stdin);
    } finally {
      if (hasRest) this.conditionDepth--;
    }
    let lastNegated = a.first.negate;
    // `set -e` looks only at the last pipeline of an and-or list, and only if it ran.
    let lastRan = a.rest.length === 0;
    for (let k = 0; k < a.rest.length; k++) {
      const { op, pipeline } = a.rest[k]!;
      const last = k === a.rest.length - 1;
      this.lastStatus = status;
      const runIt = async (): Promise<Status> => {
        if (!last) this.conditionDepth++;
        try {
          return await this.runPipeline(pipeline, out, stdin);
        } finally {
          if (!last) this.conditionDepth--;
        }
      };
      if (isUnknown(status)) {
        const why = status.why;
        await this.uncertainly(`${describeCondition(op, status)}`, runIt);
        status = new Unknown(why);
      } else if ((op === "&&" && status === 0) || (op === "||" && status !== 0)) {
        status = await runIt();
        lastNegated = pipeline.negate;
        if (last) lastRan = true;
      }
    }
    const lastPipeline = lastRan ? (a.rest.length ? a.rest[a.rest.length - 1]!.pipeline : a.first) : undefined;
    const lastCommand = lastPipeline?.commands.length === 1 ? lastPipeline.commands[0]! : undefined;
    const inheritsExemption = lastCommand !== undefined && EXEMPTION_KEEPING.has(lastCommand.type) && this.statusExempt;
    this.statusExempt = !lastRan || lastNegated || inheritsExemption;
    if (this.errexit && !this.statusExempt && this.conditionDepth === 0 && typeof status === "number" && status !== 0 && this.uncertain.length === 0) {
      if (this.substitutionDepth > 0) throw new ExitSignal(status);
      this.unreproduced(`the script fails at line ${this.line} (exit status ${status}) where the real installation would go on; Kiln stops interpreting it`);
      throw new ExitSignal(status);
    }
    return status;
  }

  private async runPipeline(p: Pipeline, out: Sink, stdin: Input | undefined): Promise<Status> {
    let status: Status;
    if (p.commands.length === 1) status = await this.runCommand(p.commands[0]!, out, stdin);
    else {
      let input = stdin;
      status = 0;
      for (let k = 0; k < p.commands.length; k++) {
        const last = k === p.commands.length - 1;
        const sink = last ? out : new Sink("capture");
        // Every command of a pipeline runs in a subshell: its variables stay there.
        status = await this.subshell(() => this.runCommand(p.commands[k]!, sink, input));
        if (!last) input = new Input(sink.value());
      }
    }
    if (p.negate) return isUnknown(status) ? status : status === 0 ? 1 : 0;
    return status;
  }

  /** Runs `fn` in a subshell: variables, functions, options and directory are restored after. */
  async subshell(fn: () => Promise<Status>): Promise<Status> {
    const vars = new Map(this.vars);
    const functions = new Map(this.functions);
    const saved = { positional: this.positional, errexit: this.errexit, cwd: this.cwd, umask: this.umask };
    try {
      return await fn();
    } catch (err) {
      if (err instanceof ExitSignal) return err.status;
      throw err;
    } finally {
      this.vars.clear();
      for (const [k, v] of vars) this.vars.set(k, v);
      this.functions.clear();
      for (const [k, v] of functions) this.functions.set(k, v);
      Object.assign(this, saved);
    }
  }

  async runCommand(cmd: Command, out: Sink, stdin: Input | undefined): Promise<Status> {
    if ("line" in cmd) this.line = cmd.line;
    switch (cmd.type) {
      case "simple":
        return this.runSimple(cmd, out, stdin);
      case "function":
        if (this.uncertain.length === 0) this.functions.set(cmd.name, cmd.body);
        return 0;
      default:
        return this.withRedirects(cmd.redirects, out, stdin, (o, i) => this.runCompound(cmd, o, i));
    }
  }

  private async runCompound(cmd: Exclude<Command, SimpleCommand | { type: "function" }>, out: Sink, stdin: Input | undefined): Promise<Status> {
    switch (cmd.type) {
      case "group":
        return this.runList(cmd.body, out, stdin);
      case "subshell":
        return this.subshell(() => this.runList(cmd.body, out, stdin));
      case "if": {
        for (let b = 0; b < cmd.branches.length; b++) {
          const { cond, body } = cmd.branches[b]!;
          const s = await this.condition(cond, out, stdin);
          if (isUnknown(s)) {
            // Every branch from here on may run: none is applied, all are reported.
            const why = `${conditionText(cond)} (${s.why})`;
            await this.uncertainly(why, async () => {
              await this.runList(body, out, stdin);
              for (const later of cmd.branches.slice(b + 1)) {
                await this.condition(later.cond, out, stdin);
                await this.runList(later.body, out, stdin);
              }
              if (cmd.otherwise) await this.runList(cmd.otherwise, out, stdin);
            });
            return new Unknown(s.why);
          }
          if (s === 0) return this.runList(body, out, stdin);
        }
        return cmd.otherwise ? this.runList(cmd.otherwise, out, stdin) : 0;
      }
      case "for": {
        const words = cmd.words ? await this.expandWords(cmd.words) : firstUnknown(this.positional) ?? (this.positional as string[]);
        if (isUnknown(words)) {
          this.setVar(cmd.name, words);
          return this.uncertainly(`the values of $${cmd.name} (${words.why})`, () => this.loopBody(cmd.body, out, stdin).then((r) => r.status));
        }
        let status: Status = 0;
        for (const w of words) {
          this.setVar(cmd.name, w);
          const r = await this.loopBody(cmd.body, out, stdin);
          status = r.status;
          if (r.stop) break;
        }
        return status;
      }
      case "while":
      case "until": {
        let status: Status = 0;
        for (let n = 0; ; n++) {
          if (n > MAX_LOOP) {
            this.unreproduced(`a loop at line ${cmd.line} that does not end`);
            return new Unknown("a loop that does not end");
          }
          const c = await this.condition(cmd.cond, out, stdin);
          if (isUnknown(c)) {
            await this.uncertainly(`${conditionText(cmd.cond)} (${c.why})`, () => this.loopBody(cmd.body, out, stdin));
            return new Unknown(c.why);
          }
          if ((cmd.type === "while") !== (c === 0)) return status;
          const r = await this.loopBody(cmd.body, out, stdin);
          status = r.status;
          if (r.stop) return status;
        }
      }
      case "case": {
        const subject = await this.expandString(cmd.word);
        if (isUnknown(subject)) {
          await this.uncertainly(`the value of ${cmd.word.raw} (${subject.why})`, async () => {
            for (const item of cmd.items) await this.runList(item.body, out, stdin);
          });
          return new Unknown(subject.why);
        }
        for (const item of cmd.items) {
          for (const pw of item.patterns) {
            const pat = await this.expandPattern(pw);
            if (isUnknown(pat)) {
              await this.uncertainly(`the pattern ${pw.raw} (${pat.why})`, () => this.runList(item.body, out, stdin));
              return new Unknown(pat.why);
            }
            if (globRegExp(pat).test(subject)) return this.runList(item.body, out, stdin);
          }
        }
        return 0;
      }
    }
  }

  /** One pass of a loop body; `stop` when `break` ends the loop here. */
  private async loopBody(body: List, out: Sink, stdin: Input | undefined): Promise<{ status: Status; stop: boolean }> {
    try {
      return { status: await this.runList(body, out, stdin), stop: false };
    } catch (err) {
      if (err instanceof LoopSignal) {
        if (err.levels > 1) {
          err.levels--;
          throw err;
        }
        return { status: 0, stop: err.kind === "break" };
      }
      throw err;
    }
  }

  /** Calls a function with arguments (positional parameters and locals restored after). */
  async callFunction(body: Command, args: string[], out: Sink, stdin: Input | undefined): Promise<Status> {
    if (++this.callDepth > MAX_DEPTH) {
      this.callDepth--;
      this.unreproduced("a function that calls itself too deeply");
      return new Unknown("recursion");
    }
    const saved = this.positional;
    this.positional = args;
    this.locals.push(new Map());
    try {
      return await this.runCommand(body, out, stdin);
    } catch (err) {
      if (err instanceof ReturnSignal) return err.status;
      throw err;
    } finally {
      this.positional = saved;
      const frame = this.locals.pop()!;
      for (const [k, v] of frame) {
        if (v === undefined) this.vars.delete(k);
        else this.vars.set(k, v);
      }
      this.callDepth--;
    }
  }

  // ---- simple commands -----------------------------------------------------------------------

  private async runSimple(cmd: SimpleCommand, out: Sink, stdin: Input | undefined): Promise<Status> {
    const text = commandText(cmd);
    const argv = await this.expandWords(cmd.words);
    if (cmd.words.length === 0) {
      // Assignments only (and maybe redirections, which create files).
      let status: Status = 0;
      for (const a of cmd.assigns) {
        const v = await this.expandString(a.value);
        this.setVar(a.name, v);
      }
      if (cmd.redirects.length > 0) status = await this.withRedirects(cmd.redirects, out, stdin, async () => 0);
      // `x=$(cmd)` has the status of the substitution.
      return cmd.assigns.some((a) => a.value.parts.some((p) => p.k === "cmd")) ? this.lastSubstitution : status;
    }
    if (isUnknown(argv)) {
      const prog = await this.expandString(cmd.words[0]!);
      // Its output is unknown too: a redirection to a file reports that file.
      return this.withRedirects(cmd.redirects, out, stdin, async (o) => {
        o.write(argv);
        return this.unknownArguments(isUnknown(prog) ? undefined : prog, text, argv);
      });
    }
    if (argv.length === 0) return 0;
    const env: Record<string, Value> = {};
    for (const a of cmd.assigns) env[a.name] = await this.expandString(a.value);
    return this.withRedirects(cmd.redirects, out, stdin, (o, i) => this.invoke(argv, o, i, text, env));
  }

  /** Status of the last command substitution (for `x=$(false)`). */
  private lastSubstitution: Status = 0;

  private unknownArguments(prog: string | undefined, text: string, why: Unknown): Status {
    const name = prog === undefined ? undefined : prog.slice(prog.lastIndexOf("/") + 1);
    // A command that only answers a question has no effect to report: its answer is unknown,
    // and what depends on it is reported where it would act.
    if (name !== undefined && QUESTIONS.has(name)) return new Unknown(why.why);
    const decision = name === undefined ? undefined : this.host.decide(this.pkg.pkg.name, this.script, [prog!], name);
    if (decision && decision.outcome !== "emulated") {
      this.record(decision.outcome, decision.effect);
      return decision.status ?? 0;
    }
    this.unreproduced(`runs \`${text}\`, whose arguments are not known at build time (${why.why})`);
    return new Unknown(`the result of \`${text}\``);
  }

  /** Runs a command whose words are known. */
  async invoke(argv: string[], out: Sink, stdin: Input | undefined, text: string, env: Record<string, Value> = {}): Promise<Status> {
    const prog = argv[0]!;
    const fn = this.functions.get(prog);
    if (fn) return this.callFunction(fn, argv.slice(1), out, stdin);
    const name = prog.slice(prog.lastIndexOf("/") + 1);
    let rest: Value | undefined;
    let taken = false;
    const inv: Invocation = {
      argv,
      name,
      get stdin(): Value | undefined {
        if (!taken) {
          taken = true;
          rest = stdin?.rest();
        }
        return rest;
      },
      input: stdin,
      out,
      sh: this,
      text,
    };
    const builtin = BUILTINS[prog];
    if (builtin) return builtin(inv);
    const decision = this.host.decide(this.pkg.pkg.name, this.script, argv, name);
    if (decision) {
      this.record(decision.outcome, decision.effect);
      out.write(decision.output ?? new Unknown(`the output of \`${text}\``));
      return decision.status ?? 0;
    }
    const tool = this.host.tools.get(name);
    if (tool) return tool(inv);
    void env;
    // A shell script of the tree, run by path or through `sh FILE`: interpreted in a child shell.
    const shellFile = /^(sh|dash|bash)$/.test(name) && argv[1] !== undefined && !argv[1].startsWith("-") ? argv[1] : undefined;
    const program = shellFile ?? this.which(prog);
    if (program !== undefined && this.host.execute) {
      const status = await this.host.execute(this, program, shellFile ? argv.slice(1) : argv, out, stdin);
      if (status !== undefined) return status;
    }
    this.unreproduced(`runs \`${shown(argv)}\`, which Kiln does not know`);
    return new Unknown(`the result of \`${text}\``);
  }

  // ---- redirections --------------------------------------------------------------------------

  private async withRedirects(redirects: readonly Redirect[], out: Sink, stdin: Input | undefined, fn: (out: Sink, stdin: Input | undefined) => Promise<Status>): Promise<Status> {
    let o = out;
    let i = stdin;
    const files: Array<{ target: string; sink: Sink; append: boolean }> = [];
    for (const r of redirects) {
      const fd = r.fd ?? (r.op.startsWith("<") ? 0 : 1);
      if (r.heredoc) {
        i = new Input(r.heredoc.expand ? await this.expandHeredoc(r.heredoc.body) : r.heredoc.body);
        continue;
      }
      const target = await this.expandString(r.target);
      if (r.op === ">&" || r.op === "<&") {
        // `2>&1` sends errors where output goes: errors are never kept, so nothing changes;
        // `>&2` sends output to the error stream: it is dropped.
        if (fd === 1 && target === "2") o = new Sink("discard");
        continue;
      }
      if (fd === 2) continue;
      if (isUnknown(target)) {
        this.unreproduced(`redirects to a file whose name is not known at build time (${target.why})`);
        if (fd === 1) o = new Sink("discard");
        else i = new Input(target);
        continue;
      }
      if (r.op === "<") {
        const e = this.fs.stat(target, this.cwd);
        i = new Input(e?.type === "file" ? (await this.fs.readFile(target, this.cwd)).toString("utf8") : target === "/dev/null" ? "" : new Unknown(`${target} cannot be read`));
        continue;
      }
      if (fd !== 1) continue;
      if (target === "/dev/null") {
        o = new Sink("discard");
        continue;
      }
      const sink = new Sink("capture");
      files.push({ target, sink, append: r.op === ">>" });
      o = sink;
    }
    const status = await fn(o, i);
    for (const f of files) await writeRedirect(this, f.target, f.sink.value(), f.append);
    return status;
  }

  // ---- expansion -----------------------------------------------------------------------------

  /** Expands words into fields (splitting and globbing), or Unknown. */
  async expandWords(words: readonly Word[]): Promise<string[] | Unknown> {
    const out: string[] = [];
    for (const w of words) {
      const fields = await this.expandFields(w);
      if (isUnknown(fields)) return fields;
      out.push(...fields);
    }
    return out;
  }

  /** A word as one string, without field splitting or globbing (assignments, `case`, here-strings). */
  async expandString(w: Word): Promise<Value> {
    let s = "";
    for (const p of w.parts) {
      const v = await this.partValue(p);
      if (isUnknown(v)) return v;
      s += Array.isArray(v) ? v.join(" ") : v;
    }
    return s;
  }

  /** A word as a glob pattern (quoted characters escaped). */
  async expandPattern(w: Word): Promise<Value> {
    let s = "";
    for (const p of w.parts) {
      const v = await this.partValue(p);
      if (isUnknown(v)) return v;
      const text = Array.isArray(v) ? v.join(" ") : v;
      s += p.k === "lit" && !p.q ? text : p.q ? escapeGlob(text) : text;
    }
    return s;
  }

  private async partValue(p: Part): Promise<Value | string[]> {
    switch (p.k) {
      case "lit":
        return p.text;
      case "arith":
        return this.arithmetic(p.src);
      case "cmd":
        return this.substitute(p.body);
      case "param":
        return this.parameter(p);
    }
  }

  private async arithmetic(src: string): Promise<Value> {
    const expanded = await this.expandString({ parts: [{ k: "lit", text: src, q: true }], raw: src });
    if (isUnknown(expanded)) return expanded;
    // Only integers and + - * / %, after $var expansion; anything else is not modelled.
    const text = src.replace(/\$?([A-Za-z_][A-Za-z0-9_]*)/g, (_, n: string) => {
      const v = this.getVar(n);
      return isUnknown(v) ? "NaN" : v === "" ? "0" : v;
    });
    if (!/^[\s0-9+\-*/%()]*$/.test(text)) return new Unknown(`the arithmetic $((${src}))`);
    try {
      const n = Function(`"use strict"; return Math.trunc(${text});`)() as number;
      return Number.isFinite(n) ? String(n) : new Unknown(`the arithmetic $((${src}))`);
    } catch {
      return new Unknown(`the arithmetic $((${src}))`);
    }
  }

  /** `$(...)`: the output without trailing newlines. */
  private async substitute(body: List): Promise<Value> {
    const sink = new Sink("capture");
    this.substitutionDepth++;
    let status: Status;
    try {
      status = await this.subshell(() => this.runList(body, sink, undefined));
    } finally {
      this.substitutionDepth--;
    }
    this.lastSubstitution = status;
    const v = sink.value();
    return isUnknown(v) ? v : v.replace(/\n+$/, "");
  }

  private async parameter(p: Extract<Part, { k: "param" }>): Promise<Value | string[]> {
    if ((p.name === "@" || p.name === "*") && p.op === undefined) {
      const u = firstUnknown(this.positional);
      if (u) return u;
      return p.q && p.name === "@" ? (this.positional as string[]).slice() : (this.positional as string[]).join(" ");
    }
    const value = this.getVar(p.name);
    const set = this.isSet(p.name);
    if (p.op === undefined) return value;
    if (p.op === "len") return isUnknown(value) ? value : String([...value].length);
    const arg = async (): Promise<Value> => (p.arg ? this.expandString(p.arg) : "");
    switch (p.op) {
      case ":-":
      case "-": {
        if (isUnknown(value)) return value;
        const use = p.op === ":-" ? !set || value === "" : !set;
        return use ? arg() : value;
      }
      case ":=":
      case "=": {
        if (isUnknown(value)) return value;
        const use = p.op === ":=" ? !set || value === "" : !set;
        if (!use) return value;
        const v = await arg();
        this.setVar(p.name, v);
        return v;
      }
      case ":+":
      case "+": {
        if (isUnknown(value)) return value;
        const use = p.op === ":+" ? set && value !== "" : set;
        return use ? arg() : "";
      }
      case ":?":
      case "?": {
        if (isUnknown(value)) return value;
        const bad = p.op === ":?" ? !set || value === "" : !set;
        if (bad) {
          this.unreproduced(`stops on \${${p.name}${p.op}...}: ${p.name} is not set`);
          throw new ExitSignal(1);
        }
        return value;
      }
      default: {
        if (isUnknown(value)) return value;
        const pat = p.arg ? await this.expandPattern(p.arg) : "";
        if (isUnknown(pat)) return pat;
        return trim(value, pat, p.op);
      }
    }
  }

  /** Fields of one word. */
  private async expandFields(w: Word): Promise<string[] | Unknown> {
    // Build fields of (pattern text, glob-eligible) pieces; unquoted expansions are split.
    const fields: string[] = [];
    let cur = "";
    let have = false;
    const ifs = this.vars.has("IFS") ? this.getVar("IFS") : " \t\n";
    if (isUnknown(ifs)) return ifs;
    const splitter = ifs === "" ? undefined : new RegExp(`[${ifs.replace(/[\\\]^-]/g, "\\$&")}]+`);
    for (const p of w.parts) {
      const v = await this.partValue(p);
      if (isUnknown(v)) return v;
      if (Array.isArray(v)) {
        // "$@": one field per parameter, joined to the text around it at both ends.
        if (v.length === 0) continue;
        v.forEach((x, k) => {
          if (k > 0) {
            fields.push(cur);
            cur = "";
          }
          cur += escapeGlob(x);
          have = true;
        });
        continue;
      }
      if (p.k === "lit") {
        cur += p.q ? escapeGlob(v) : v;
        have = true;
        continue;
      }
      if (p.q) {
        cur += escapeGlob(v);
        have = true;
        continue;
      }
      if (!splitter) {
        cur += v;
        if (v !== "") have = true;
        continue;
      }
      const pieces = v.split(splitter);
      pieces.forEach((piece, k) => {
        if (k > 0) {
          if (have || cur !== "") fields.push(cur);
          cur = "";
          have = false;
        }
        cur += piece;
        if (piece !== "") have = true;
      });
    }
    if (have || cur !== "") fields.push(cur);
    const out: string[] = [];
    for (const f of fields) {
      if (hasGlob(f)) {
        const matches = this.glob(f);
        if (matches.length > 0) {
          out.push(...matches);
          continue;
        }
      }
      out.push(unescapePattern(f));
    }
    return out;
  }

  /** Pathname expansion against the tree; no match leaves the word as it is (POSIX). */
  glob(pattern: string): string[] {
    const absolute = pattern.startsWith("/");
    const comps = pattern.split("/").filter((c) => c !== "");
    let bases: string[] = [absolute ? "/" : ""];
    for (let k = 0; k < comps.length; k++) {
      const comp = comps[k]!;
      const last = k === comps.length - 1;
      const next: string[] = [];
      for (const b of bases) {
        if (!hasGlob(comp)) {
          const p = `${b}${b === "" || b.endsWith("/") ? "" : "/"}${unescapePattern(comp)}`;
          if (this.fs.lstat(p, this.cwd) || (!last && this.fs.stat(p, this.cwd))) next.push(p);
          continue;
        }
        const re = globRegExp(comp, { pathname: true });
        const dir = b === "" ? "." : b;
        for (const n of this.fs.readdir(dir, this.cwd)) {
          if (n.startsWith(".") && !comp.startsWith(".")) continue;
          if (!re.test(n)) continue;
          const p = `${b}${b === "" || b.endsWith("/") ? "" : "/"}${n}`;
          if (!last && this.fs.stat(p, this.cwd)?.type !== "dir") continue;
          next.push(p);
        }
      }
      bases = next;
      if (bases.length === 0) return [];
    }
    return bases.sort();
  }

  /** A here-document body: parameter and command expansion, no splitting. */
  private async expandHeredoc(body: string): Promise<Value> {
    // Each expansion is parsed as the inside of a double-quoted word.
    let result: Value = "";
    let rest = body;
    while (rest !== "") {
      const i = rest.search(/[$`\\]/);
      if (i < 0) {
        result = concat(result, rest);
        break;
      }
      result = concat(result, rest.slice(0, i));
      rest = rest.slice(i);
      if (rest[0] === "\\") {
        const n = rest[1];
        if (n !== undefined && "$`\\\n".includes(n)) {
          result = concat(result, n === "\n" ? "" : n);
          rest = rest.slice(2);
        } else {
          result = concat(result, "\\");
          rest = rest.slice(1);
        }
        continue;
      }
      // One expansion: parse `"<expansion>"` and take its parts.
      const m = /^\$\{[^}]*\}|^\$[A-Za-z_][A-Za-z0-9_]*|^\$[0-9@*#?$!-]|^\$\(\([^)]*\)\)|^\$\((?:[^()]|\([^()]*\))*\)|^`[^`]*`/.exec(rest);
      if (!m) {
        result = concat(result, rest[0]!);
        rest = rest.slice(1);
        continue;
      }
      const list = parseScript(`: "${m[0].replace(/"/g, '\\"')}"`);
      const word = (list.items[0]!.cmd.first.commands[0] as SimpleCommand).words[1]!;
      result = concat(result, await this.expandString(word));
      rest = rest.slice(m[0].length);
    }
    return result;
  }

  // ---- lookups -------------------------------------------------------------------------------

  /** Where `name` is found in PATH in the tree (an executable regular file), as `command -v` says. */
  which(name: string): string | undefined {
    if (name.includes("/")) {
      const e = this.fs.stat(name, this.cwd);
      return e?.type === "file" && (e.mode & 0o111) !== 0 ? name : undefined;
    }
    for (const dir of PATH) {
      const e = this.fs.stat(`/${dir}/${name}`);
      if (e?.type === "file" && (e.mode & 0o111) !== 0) return `/${dir}/${name}`;
    }
    return undefined;
  }

  // Signals for builtins.
  exit(status: Status): never {
    throw new ExitSignal(status);
  }
  return(status: Status): never {
    throw new ReturnSignal(status);
  }
  loop(kind: "break" | "continue", levels: number): never {
    throw new LoopSignal(kind, levels);
  }
  get inFunction(): boolean {
    return this.callDepth > 0;
  }
}

/** Builtins and programs that change nothing: with unknown arguments, only their answer is unknown. */
const QUESTIONS = new Set([
  "[", "test", "echo", "printf", ":", "true", "false", "command", "type", "hash", "getent", "id", "which", "basename", "dirname",
  "cut", "tr", "grep", "egrep", "fgrep", "head", "tail", "sort", "uniq", "wc", "md5sum", "sha256sum", "sha512sum", "cmp", "readlink",
  "realpath", "stat", "ls", "expr", "uname", "seq", "pidof", "pgrep", "dpkg-query", "getcap", "cat", "local", "export", "read", "shift",
]);

function escapeGlob(s: string): string {
  return s.replace(/[\\*?[\]]/g, "\\$&");
}

/** `${x#p}`, `${x##p}`, `${x%p}`, `${x%%p}`. */
function trim(value: string, pattern: string, op: "#" | "##" | "%" | "%%"): string {
  const re = globRegExp(pattern);
  if (op === "#" || op === "##") {
    const lens = [...Array(value.length + 1).keys()];
    if (op === "##") lens.reverse();
    for (const n of lens) if (re.test(value.slice(0, n))) return value.slice(n);
    return value;
  }
  const starts = [...Array(value.length + 1).keys()];
  if (op === "%") starts.reverse();
  for (const n of starts) if (re.test(value.slice(n))) return value.slice(0, n);
  return value;
}

function describeCondition(op: "&&" | "||", status: Unknown): string {
  return `${op === "&&" ? "the command before &&" : "the command before ||"} ${op === "&&" ? "succeeds" : "fails"} (${status.why})`;
}

/** The text of a condition, for messages. */
function conditionText(list: List): string {
  const first = list.items[0]?.cmd.first.commands[0];
  if (first?.type === "simple") return `\`${commandText(first)}\``;
  return "a condition";
}

/** A simple command as written (its words' raw text). */
export function commandText(cmd: SimpleCommand): string {
  return [...cmd.assigns.map((a) => `${a.name}=${a.value.raw}`), ...cmd.words.map((w) => w.raw)].join(" ");
}

/** Writes what a command sent to `> file` / `>> file`. */
async function writeRedirect(sh: Interpreter, target: string, content: Value, append: boolean): Promise<void> {
  await writeTextFile(sh, target, content, append, `writes ${target}`);
}
