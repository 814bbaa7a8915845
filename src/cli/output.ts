/**
 * What commands print: aligned tables and key/value blocks for people, the API's JSON as-is
 * (pretty) for scripts, and byte sizes people read.
 */

/** A value as a table cell. */
export type Cell = string | number | boolean | undefined | null;

function cell(v: Cell): string {
  if (v === undefined || v === null || v === "") return "-";
  return String(v).replace(/[\r\n\t]+/g, " ");
}

/** Columns padded to their widest cell; the last column is not padded. */
export function table(headers: string[], rows: Cell[][]): string {
  const text = [headers, ...rows.map((r) => r.map(cell))];
  const widths = headers.map((_, i) => Math.max(...text.map((r) => (r[i] ?? "").length)));
  return text.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join("  ").trimEnd()).join("\n");
}

/** `key: value` lines with the values aligned; empty values are left out. */
export function details(pairs: Array<[string, Cell]>): string {
  const shown = pairs.filter(([, v]) => v !== undefined && v !== null && v !== "");
  const width = Math.max(0, ...shown.map(([k]) => k.length));
  return shown.map(([k, v]) => `${`${k}:`.padEnd(width + 1)} ${cell(v)}`).join("\n");
}

/** `1.5 MiB`. */
export function bytes(n: number | undefined): string {
  if (n === undefined || !Number.isFinite(n)) return "";
  if (n < 1024) return `${n} B`;
  const units = ["KiB", "MiB", "GiB", "TiB"];
  let v = n / 1024;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${v.toFixed(v < 10 ? 1 : 0)} ${units[u]}`;
}

/** Writes a line to standard output. */
export function say(line = ""): void {
  process.stdout.write(`${line}\n`);
}

/** Writes a line to standard error (notes and progress, never data). */
export function note(line: string): void {
  process.stderr.write(`${line}\n`);
}

/** Prints an API answer for scripts: the JSON exactly as received, indented. */
export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value ?? null, null, 2)}\n`);
}

/** The short form of an OpStatus: `complete`, `error: ...`, `running 42% resolving packages`. */
export function statusText(s: { complete?: boolean; error?: boolean; cancelled?: boolean; percentage?: number; message?: string; errorMessage?: string } | undefined): string {
  if (!s) return "";
  if (s.complete) return "complete";
  if (s.error) return `error${s.errorMessage ? `: ${s.errorMessage}` : ""}`;
  if (s.cancelled) return "cancelled";
  const pct = `${Math.round(s.percentage ?? 0)}%`;
  return s.message && s.message !== "queued" && s.message !== "running" ? `${pct} ${s.message}` : `${s.message ?? "running"} ${pct}`;
}

/** The last numeric segment of a URI: `users/a/mysoftware/3/templates/7` → 7. */
export function idIn(uri: string | undefined, segment: string): number | undefined {
  if (!uri) return undefined;
  const m = new RegExp(`(?:^|/)${segment}/(\\d+)(?=/|$)`).exec(uri);
  return m ? Number(m[1]) : undefined;
}
