/**
 * `--wait`: following a generation or a publication on the terminal. A live bar with the phase
 * message (plain lines when standard error is not a terminal); a failed job ends the command
 * with its error message. Ctrl-C on a terminal asks whether to cancel the job (yes: cancel it and
 * exit 130; no: leave it running and say how to follow it); without a terminal nobody can answer,
 * so the job is cancelled and the command exits 130.
 */
import readline from "node:readline";
import { KilnAbortError, KilnApiError, type KilnClient, type OpStatus } from "../sdk/index.js";
import { CliExit } from "./errors.js";
import { note } from "./output.js";
import { progressReporter } from "./progress.js";

export interface FollowOptions {
  client: KilnClient;
  /** The job's status URI. */
  statusUri: string;
  /** "build" or "publication": how the job is named in messages. */
  what: string;
  /** Cancels the job (DELETE .../status or .../cancel). */
  cancel: () => Promise<unknown>;
  /** The command that shows the job's status later (`kiln image status --id 5`). */
  statusCommand: string;
  /** Extra detail for a failure (`detailedErrorMsg`) is printed with --debug. */
  debug: boolean;
}

type Interrupt = "cancel" | "detach";

/** Asks on the terminal; a second Ctrl-C or end of input counts as "no". */
function ask(question: string): Promise<boolean> {
  return new Promise((resolve) => {
    const rl = readline.createInterface({ input: process.stdin, output: process.stderr, terminal: true });
    let answered = false;
    const finish = (yes: boolean): void => {
      if (answered) return;
      answered = true;
      rl.close();
      resolve(yes);
    };
    rl.on("SIGINT", () => {
      process.stderr.write("\n");
      finish(false);
    });
    rl.on("close", () => finish(false));
    rl.question(question, (answer) => finish(/^\s*y(es)?\s*$/i.test(answer)));
  });
}

/**
 * Follows the job to its end and answers its final status; throws (exit 1) if it failed or was
 * cancelled by someone else, and `CliExit` (130, or 0 when detached) after Ctrl-C.
 */
export async function followJob(options: FollowOptions): Promise<OpStatus> {
  const { client, what } = options;
  const interactive = process.stdin.isTTY === true && process.stderr.isTTY === true;
  const controller = new AbortController();
  let interrupted = false;
  const onSigint = (): void => {
    if (interrupted) return;
    interrupted = true;
    controller.abort();
  };
  process.on("SIGINT", onSigint);
  const reporter = progressReporter(process.stderr);
  let final: OpStatus;
  try {
    for (;;) {
      try {
        final = await client.waitFor(options.statusUri, {
          signal: controller.signal,
          intervalMs: 300,
          maxIntervalMs: 2000,
          onStatus: (s) => reporter.update(Math.min(1, Math.max(0, (s.percentage ?? 0) / 100)), s.message ?? ""),
        });
        break;
      } catch (err) {
        if (!(err instanceof KilnAbortError) || !interrupted) throw err;
      }
      reporter.done();
      const decision: Interrupt = interactive ? ((await ask(`\nCancel the ${what}? [y/N] `)) ? "cancel" : "detach") : "cancel";
      if (decision === "detach") {
        note(`Detached: the ${what} goes on. Follow it with: ${options.statusCommand}`);
        throw new CliExit(0);
      }
      note(`Cancelling the ${what}...`);
      try {
        await options.cancel();
      } catch (err) {
        // It ended while we asked: report how it ended instead.
        if (!(err instanceof KilnApiError && err.status === 409)) throw err;
        note(`The ${what} had already ended.`);
        final = await client.get<OpStatus>(options.statusUri);
        break;
      }
      note(`Cancelled the ${what}.`);
      throw new CliExit(130);
    }
  } finally {
    reporter.done();
    process.removeListener("SIGINT", onSigint);
  }
  if (final.error) {
    if (options.debug && final.detailedErrorMsg) note(final.detailedErrorMsg);
    throw new Error(`the ${what} failed: ${final.errorMessage ?? final.message ?? "no message"}`);
  }
  if (final.cancelled) throw new Error(`the ${what} was cancelled`);
  return final;
}
