/**
 * How a command ends other than by success: a `UsageError` is the user's command line being
 * wrong (exit 2, like commander's own errors), a `CliExit` ends with a chosen code after the
 * command has said what it had to (130 after Ctrl-C cancelled a build). Anything else thrown is a
 * failure (exit 1) and is printed as one line.
 */

/** The command line is wrong: exit code 2. */
export class UsageError extends Error {
  override readonly name = "UsageError";
}

/** Ends the command with `code`; `message`, when given, is printed as the error line. */
export class CliExit extends Error {
  override readonly name = "CliExit";
  constructor(
    readonly code: number,
    message = "",
  ) {
    super(message);
  }
}

/**
 * The server answers a cancel of a finished job with its unchanged status (as UForge's page
 * says); the command line still tells the user that nothing was cancelled, and fails.
 */
export function nothingToCancel(what: string, status: { cancelled?: boolean; complete?: boolean; error?: boolean }): void {
  if (status.cancelled !== true && (status.complete === true || status.error === true)) {
    throw new CliExit(1, `${what} has already ${status.complete ? "completed" : "failed"}; there is nothing to cancel`);
  }
}
