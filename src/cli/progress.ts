/**
 * Progress on a terminal: a live bar with the phase message when the stream is a TTY, plain
 * lines (one per new message, at most one every half second) when it is not — CI logs stay
 * readable.
 */
import { createRequire } from "node:module";
import type cliProgressType from "cli-progress";

export interface ProgressReporter {
  /** `fraction` 0–1; `message` what is happening now. */
  update(fraction: number, message: string): void;
  done(): void;
}

export function progressReporter(stream: NodeJS.WriteStream): ProgressReporter {
  if (stream.isTTY) {
    // Loaded only for a terminal (a log, or -q, has no use for it).
    const cliProgress = createRequire(import.meta.url)("cli-progress") as typeof cliProgressType;
    const bar = new cliProgress.SingleBar(
      { stream, format: " {bar} {percentage}% | {message}", hideCursor: true, clearOnComplete: false, barsize: 30, etaBuffer: 20 },
      cliProgress.Presets.shades_classic,
    );
    bar.start(100, 0, { message: "starting" });
    return {
      update: (fraction, message) => bar.update(Math.round(fraction * 100), { message }),
      done: () => bar.stop(),
    };
  }
  let last = "";
  let lastAt = 0;
  return {
    update(fraction, message) {
      const phase = message.replace(/\d+\/\d+.*$/, "");
      const now = Date.now();
      if (phase === last && now - lastAt < 500) return;
      if (message === last) return;
      last = phase;
      lastAt = now;
      stream.write(`[${String(Math.round(fraction * 100)).padStart(3)}%] ${message}\n`);
    },
    done() {},
  };
}
