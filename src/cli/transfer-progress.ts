/**
 * Progress of bytes moving (uploads, downloads): a bar with sizes on a terminal, and on a log a
 * line at most every two seconds plus one at the end, so CI output stays short.
 */
import { createRequire } from "node:module";
import type cliProgressType from "cli-progress";
import type { TransferProgress } from "../sdk/index.js";
import { bytes } from "./output.js";

export interface TransferReporter {
  update(progress: TransferProgress): void;
  /** Ends the bar (or writes the last line). */
  done(): void;
}

export function transferReporter(stream: NodeJS.WriteStream, label: string): TransferReporter {
  if (stream.isTTY) {
    // Loaded only for a terminal (a log, or -q, has no use for it).
    const cliProgress = createRequire(import.meta.url)("cli-progress") as typeof cliProgressType;
    const bar = new cliProgress.SingleBar(
      { stream, format: " {bar} {percentage}% | {done} of {size} | {label}", hideCursor: true, clearOnComplete: false, barsize: 30 },
      cliProgress.Presets.shades_classic,
    );
    let started = false;
    return {
      update(p) {
        const total = p.total ?? 0;
        if (!started) {
          bar.start(Math.max(total, 1), 0, { label, done: bytes(0), size: p.total === undefined ? "?" : bytes(total) });
          started = true;
        }
        bar.update(total > 0 ? p.loaded : 0, { done: bytes(p.loaded) });
      },
      done: () => {
        if (started) bar.stop();
      },
    };
  }
  let lastAt = Date.now();
  let last: TransferProgress | undefined;
  const line = (p: TransferProgress): string => `${label}: ${p.total ? `${Math.floor((p.loaded / p.total) * 100)}% ` : ""}(${bytes(p.loaded)}${p.total !== undefined ? ` of ${bytes(p.total)}` : ""})`;
  return {
    update(p) {
      last = p;
      const now = Date.now();
      if (now - lastAt < 2000) return;
      lastAt = now;
      stream.write(`${line(p)}\n`);
    },
    done() {
      if (last) stream.write(`${line(last)}\n`);
    },
  };
}
