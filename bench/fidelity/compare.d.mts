// Types of compare.mjs, for the tests that use it.
export interface TreeEntry {
  /** find's %y: f, d, l, c, b, p, s. */
  type: string;
  mode: string;
  owner: string;
  link: string;
  hash: string;
  xattrs: string;
}
export interface Difference {
  path: string;
  kind: string;
  theirs?: TreeEntry;
  ours?: TreeEntry;
}
export interface ReportEntry {
  package: string;
  script: string;
  outcome: string;
  effect: string;
}
export interface Category {
  name: string;
  reason: string;
  paths: string[];
}
/** Control-file fields (`names`) left out of the comparison of the files at `paths`. */
export interface FieldCategory extends Category {
  names: string[];
}
export interface ClockedFormat extends Category {
  format: "jks";
}
export function loadHarmless(): { categories: Category[]; unordered: Category[]; fields: FieldCategory[]; clocked?: ClockedFormat[] };
export function withoutJksClocks(bytes: Buffer): Buffer;
export function globRe(glob: string): RegExp;
export function matchesAny(globs: readonly string[], p: string, e?: TreeEntry): boolean;
export function scanTree(root: string, unordered?: Category[], fields?: FieldCategory[], clocked?: ClockedFormat[]): Map<string, TreeEntry>;
export function compareTrees(ref: Map<string, TreeEntry>, ours: Map<string, TreeEntry>): Difference[];
export function classify(
  diffs: Difference[],
  report: { scripts: ReportEntry[] },
  pathsOf: (e: ReportEntry) => readonly string[],
  harmless?: Category[],
): { harmless: Array<Difference & { category: string }>; explained: Array<Difference & { by: ReportEntry }>; unexplained: Difference[] };
