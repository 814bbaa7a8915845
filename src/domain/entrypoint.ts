/**
 * An image's entrypoint, in exec form: a JSON array of strings (`["/usr/sbin/nginx", "-g",
 * "daemon off;"]`), as Docker's `ENTRYPOINT [...]` and the image config's `Entrypoint` take it.
 */
import { fail } from "./errors.js";

const EXAMPLE = '["/opt/hello/bin/hello", "--verbose"]';

export function parseEntrypoint(text: string): string[] {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    fail("invalidField", `image.entrypoint must be a JSON array of strings (exec form), e.g. ${EXAMPLE}; got ${JSON.stringify(text)}`);
  }
  if (!Array.isArray(value) || value.length === 0 || !value.every((v) => typeof v === "string")) {
    fail("invalidField", `image.entrypoint must be a non-empty JSON array of strings (exec form), e.g. ${EXAMPLE}; got ${text}`);
  }
  const args = value as string[];
  if (args[0]!.trim() === "") fail("invalidField", "image.entrypoint: the program (first element) must not be empty");
  if (args.some((a) => a.includes("\0"))) fail("invalidField", "image.entrypoint must not contain NUL characters");
  return args;
}
