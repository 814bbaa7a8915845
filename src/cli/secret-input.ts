/**
 * Secrets read from standard input (`--password-stdin`, `--token-stdin`, `--secret-stdin`): the
 * whole input, one trailing newline removed (as `echo` adds), never echoed back.
 */
import { UsageError } from "./errors.js";

const LIMIT = 64 * 1024;

export async function readSecret(what: string): Promise<string> {
  if (process.stdin.isTTY) process.stderr.write(`${what} (then Ctrl-D): `);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of process.stdin) {
    size += (chunk as Buffer).length;
    if (size > LIMIT) throw new UsageError(`the ${what} on standard input is longer than ${LIMIT} bytes`);
    chunks.push(chunk as Buffer);
  }
  const text = Buffer.concat(chunks).toString("utf8").replace(/\r?\n$/, "");
  if (text === "") throw new UsageError(`no ${what} on standard input`);
  return text;
}
