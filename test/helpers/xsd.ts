/**
 * `assertValidXml(body)`: validates an XML body against UForge's schema with the real xmllint.
 *
 * One `xmllint --schema` run costs ~55 ms, most of it compiling the 12 000-line XSD, and the
 * suite validates every XML body it receives. So each test process keeps one xmllint warm: it is
 * started on a list of named pipes and validates them one after the other, each pipe carrying one
 * body, so the schema is compiled once per few hundred bodies. A small `sh` wrapper kills xmllint
 * and removes the pipes when this process goes away (its stdin closes), even if it is killed, so
 * no xmllint outlives the test run.
 *
 * xmllint prints "<file> validates" or "<file> fails to validate" after a document it could
 * parse, but nothing after a parser error; those are recognised by their "parser error" line.
 */
import { execFile, execFileSync, spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { closeSync, constants, mkdtempSync, openSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";

export const XSD_PATH = path.resolve(import.meta.dirname, "../../spec/uforge/uforge.xsd");

/** Bodies one warm xmllint validates before a fresh one takes over. */
const PIPES_PER_PROCESS = 256;
/** How long a parser error's context lines may trail its first line. */
const PARSER_ERROR_SETTLE_MS = 15;
const ANSWER_TIMEOUT_MS = 15_000;

interface Pending {
  lines: string[];
  resolve: (lines: string[] | null) => void;
  reject: (err: Error) => void;
  settle?: NodeJS.Timeout;
}

class WarmXmllint {
  readonly #dir: string;
  readonly #pipes: string[];
  readonly #child: ChildProcess;
  readonly #pending = new Map<number, Pending>();
  #next = 0;
  #current = -1;
  #buffered = "";
  #dead: Error | undefined;
  /** Bodies are written strictly one after the other: xmllint opens the pipes in order. */
  #queue: Promise<unknown> = Promise.resolve();

  constructor() {
    this.#dir = mkdtempSync(path.join(os.tmpdir(), "kiln-xmllint-"));
    this.#pipes = Array.from({ length: PIPES_PER_PROCESS }, (_, i) => path.join(this.#dir, String(i)));
    execFileSync("mkfifo", this.#pipes);
    // $0 = the pipes' directory, $1 = the schema, then the pipes. `read` returns when this
    // process closes stdin or dies; the wrapper then stops xmllint and removes the pipes.
    const script = 'dir=$0; xsd=$1; shift; xmllint --noout --schema "$xsd" "$@" & pid=$!; read _ignored; kill $pid 2>/dev/null; rm -rf "$dir"';
    this.#child = spawn("sh", ["-c", script, this.#dir, XSD_PATH, ...this.#pipes], { stdio: ["pipe", "ignore", "pipe"] });
    this.#child.stderr!.setEncoding("utf8");
    this.#child.stderr!.on("data", (chunk: string) => this.#onOutput(chunk));
    this.#child.on("exit", () => this.#fail(new Error("xmllint exited")));
    this.#child.on("error", (err) => this.#fail(err));
    // Neither the process nor its pipes may keep a finished test process alive.
    this.#child.unref();
    (this.#child.stdin as unknown as { unref?: () => void }).unref?.();
    (this.#child.stderr as unknown as { unref?: () => void }).unref?.();
  }

  get exhausted(): boolean {
    return this.#next >= this.#pipes.length || this.#dead !== undefined;
  }

  /** xmllint's messages for `body` (empty when it validates). */
  validate(body: string): Promise<string[]> {
    const index = this.#next++;
    const answer = new Promise<string[] | null>((resolve, reject) => this.#pending.set(index, { lines: [], resolve, reject }));
    const run = async (): Promise<string[]> => {
      if (this.#dead) throw this.#dead;
      this.#current = index;
      await writeFile(this.#pipes[index]!, body);
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error("xmllint did not answer")), ANSWER_TIMEOUT_MS);
      });
      try {
        const lines = await Promise.race([answer, timeout]);
        return (lines ?? []).map((l) => l.split(this.#pipes[index]!).join("body"));
      } finally {
        clearTimeout(timer);
      }
    };
    const result = this.#queue.then(run, run);
    this.#queue = result.catch(() => undefined);
    return result;
  }

  #onOutput(chunk: string): void {
    this.#buffered += chunk;
    let nl: number;
    while ((nl = this.#buffered.indexOf("\n")) >= 0) {
      const line = this.#buffered.slice(0, nl);
      this.#buffered = this.#buffered.slice(nl + 1);
      this.#onLine(line);
    }
  }

  #onLine(line: string): void {
    // A line naming a pipe belongs to that body; others (context, caret) to the current one.
    const named = line.startsWith(`${this.#dir}/`) ? /^\d+/.exec(line.slice(this.#dir.length + 1)) : null;
    const index = named !== null ? Number(named[0]) : this.#current;
    const pending = this.#pending.get(index);
    if (pending === undefined) return;
    const file = this.#pipes[index]!;
    if (line === `${file} validates`) return this.#finish(index, null);
    if (line === `${file} fails to validate` || line.startsWith(`${file} validation generated`)) {
      return this.#finish(index, pending.lines.length > 0 ? pending.lines : [line]);
    }
    pending.lines.push(line);
    if (/: parser error :/.test(line) || pending.settle !== undefined) {
      clearTimeout(pending.settle);
      pending.settle = setTimeout(() => this.#finish(index, pending.lines), PARSER_ERROR_SETTLE_MS);
    }
  }

  #finish(index: number, lines: string[] | null): void {
    const pending = this.#pending.get(index);
    if (pending === undefined) return;
    clearTimeout(pending.settle);
    this.#pending.delete(index);
    pending.resolve(lines);
  }

  #fail(err: Error): void {
    if (this.#dead) return;
    this.#dead = err;
    for (const pending of this.#pending.values()) pending.reject(err);
    this.#pending.clear();
    // A write blocked on opening a pipe nobody will read is released by opening its read end.
    if (this.#current >= 0 && this.#current < this.#pipes.length) {
      try {
        closeSync(openSync(this.#pipes[this.#current]!, constants.O_RDONLY | constants.O_NONBLOCK));
      } catch {
        // already gone
      }
    }
    this.dispose();
  }

  /**
   * Closing the wrapper's stdin makes it stop xmllint and remove the pipes. Killing the wrapper
   * instead would orphan an xmllint blocked opening its next pipe.
   */
  dispose(): void {
    this.#child.stdin?.destroy();
  }
}

let warm: WarmXmllint | undefined;
process.once("exit", () => warm?.dispose());

/** One-shot xmllint: the fallback when the warm process is not usable. */
function xmllintOnce(body: string): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const child = execFile("xmllint", ["--noout", "--schema", XSD_PATH, "-"], { encoding: "utf8" }, (err, _stdout, stderr) => {
      if (err && typeof err.code !== "number") return reject(err);
      const lines = stderr.split("\n").filter((l) => l !== "" && l !== "- validates");
      resolve(err ? lines.map((l) => l.replace(/^-(?=[: ])/, "body")) : []);
    });
    child.stdin!.end(body);
  });
}

/** xmllint's messages for an XML body validated against uforge.xsd (empty when valid). */
export async function xmllintMessages(body: string): Promise<string[]> {
  if (warm === undefined || warm.exhausted) {
    warm?.dispose();
    warm = new WarmXmllint();
  }
  try {
    return await warm.validate(body);
  } catch {
    warm?.dispose();
    warm = undefined;
    return xmllintOnce(body);
  }
}

/**
 * Throws (with xmllint's own messages) unless `body` validates against spec/uforge/uforge.xsd.
 * Call it on every XML body a test receives from the server.
 */
export async function assertValidXml(body: string): Promise<void> {
  const messages = await xmllintMessages(body);
  if (messages.length > 0) {
    const excerpt = body.length > 2000 ? `${body.slice(0, 2000)}…` : body;
    throw new Error(`XML body does not validate against uforge.xsd:\n${messages.join("\n")}\n--- body ---\n${excerpt}`);
  }
}
