/**
 * Secrets read from standard input (`--password-stdin`, `--token-stdin`, `--secret-stdin`): from
 * a pipe, the whole input with one trailing newline removed (as `echo` adds); typed on a
 * terminal, one line read with echo off. Never echoed, never logged.
 */
import { CliExit, UsageError } from "./errors.js";

const LIMIT = 64 * 1024;

/** One line typed on the terminal, without echo (Enter ends it, Ctrl-C aborts, Backspace erases). */
function readHidden(prompt: string): Promise<string> {
  const stdin = process.stdin;
  return new Promise((resolve, reject) => {
    process.stderr.write(prompt);
    let text = "";
    const done = (err?: Error): void => {
      stdin.setRawMode(false);
      stdin.pause();
      stdin.off("data", onData);
      process.stderr.write("\n");
      if (err) reject(err);
      else resolve(text);
    };
    const onData = (chunk: Buffer): void => {
      for (const ch of chunk.toString("utf8")) {
        if (ch === "\r" || ch === "\n" || ch === "\u0004") return done();
        if (ch === "\u0003") return done(new CliExit(130, "interrupted"));
        if (ch === "\u007f" || ch === "\b") text = text.slice(0, -1);
        else if (text.length < LIMIT) text += ch;
      }
    };
    stdin.setRawMode(true);
    stdin.resume();
    stdin.on("data", onData);
  });
}

export async function readSecret(what: string): Promise<string> {
  let text: string;
  if (process.stdin.isTTY) {
    text = await readHidden(`${what}: `);
  } else {
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of process.stdin) {
      size += (chunk as Buffer).length;
      if (size > LIMIT) throw new UsageError(`the ${what} on standard input is longer than ${LIMIT} bytes`);
      chunks.push(chunk as Buffer);
    }
    text = Buffer.concat(chunks).toString("utf8").replace(/\r?\n$/, "");
  }
  if (text === "") throw new UsageError(`no ${what} on standard input`);
  return text;
}
