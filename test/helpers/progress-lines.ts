/** The plain progress lines a command prints when stderr is not a terminal: `[ 42%] message`. */
export interface ProgressLine {
  pct: number;
  message: string;
}

export function progressLines(stderr: string): ProgressLine[] {
  return [...stderr.matchAll(/^\[\s*(\d+)%\] (.+)$/gm)].map((l) => ({ pct: Number(l[1]), message: l[2]! }));
}

/** True when the percentages never go down. */
export function onlyGrows(lines: ProgressLine[]): boolean {
  return lines.every((l, i) => i === 0 || l.pct >= lines[i - 1]!.pct);
}
