/**
 * The `control` member of a `.deb`: one deb822 paragraph. Only what a single binary package's
 * control file needs (no PGP armour, no multiple stanzas); the repository indexes have their own
 * reader.
 */
import type { Paragraph } from "./types.js";

/** A {@link Paragraph} over fields in file order. */
export class ControlParagraph implements Paragraph {
  readonly fields: ReadonlyArray<readonly [name: string, value: string]>;
  private readonly byName: ReadonlyMap<string, string>;

  constructor(fields: ReadonlyArray<readonly [string, string]>) {
    this.fields = fields;
    const m = new Map<string, string>();
    // deb822 field names are case-insensitive; the first occurrence wins like dpkg's parser,
    // which refuses duplicates anyway.
    for (const [k, v] of fields) if (!m.has(k.toLowerCase())) m.set(k.toLowerCase(), v);
    this.byName = m;
  }

  get(name: string): string | undefined {
    return this.byName.get(name.toLowerCase());
  }
}

/**
 * Parses one control paragraph. Continuation lines (starting with a space or tab) join the
 * previous field with `\n`, without their leading space (so ` .` stays `.`, as deb822 spells an
 * empty line inside a value). Comment lines (`#`) are skipped. Throws an `Error` (the caller names the file) on a line that is not a field.
 */
export function parseControlParagraph(text: string): ControlParagraph {
  const fields: Array<[string, string]> = [];
  const lines = text.replace(/\r\n/g, "\n").split("\n");
  let seenField = false;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    if (line.startsWith("#")) continue;
    if (line.trim() === "") {
      // A blank line ends the paragraph; a control file has exactly one.
      if (seenField) {
        if (lines.slice(i + 1).some((l) => l.trim() !== "" && !l.startsWith("#"))) {
          throw new Error("control file has more than one paragraph");
        }
        break;
      }
      continue;
    }
    if (line.startsWith(" ") || line.startsWith("\t")) {
      const last = fields[fields.length - 1];
      if (!last) throw new Error(`continuation line before any field at line ${i + 1}`);
      last[1] += `\n${line.slice(1)}`;
      continue;
    }
    const colon = line.indexOf(":");
    if (colon <= 0) throw new Error(`line ${i + 1} is not a "Field: value" line`);
    const name = line.slice(0, colon);
    if (!/^[!-9;-~]+$/.test(name) || name.startsWith("-")) throw new Error(`invalid field name "${name}" at line ${i + 1}`);
    if (fields.some(([n]) => n.toLowerCase() === name.toLowerCase())) throw new Error(`duplicate field "${name}"`);
    fields.push([name, line.slice(colon + 1).trim()]);
    seenField = true;
  }
  if (fields.length === 0) throw new Error("control file is empty");
  return new ControlParagraph(fields);
}
