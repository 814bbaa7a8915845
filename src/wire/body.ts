/** What both decoders do to a request body before reading it. */
import { fail } from "../domain/errors.js";

/** Deeper documents are refused: no UForge object nests anywhere near this. */
export const MAX_DEPTH = 64;

const utf8 = new TextDecoder("utf-8", { fatal: true });

/** The body as text: UTF-8 only (what every UForge client sends), a leading BOM dropped. */
export function bodyText(body: string | Buffer): string {
  if (typeof body === "string") return body.charCodeAt(0) === 0xfeff ? body.slice(1) : body;
  try {
    return utf8.decode(body); // drops a BOM; refuses invalid sequences instead of guessing
  } catch (err) {
    return fail("malformedBody", "the body is not valid UTF-8", { cause: err });
  }
}
