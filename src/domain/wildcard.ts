/**
 * `*` wildcards matched without case, in time linear in the pattern and the text.
 *
 * A regular expression (`*` → `.*`) backtracks: with many stars and a text that does not match
 * it tries every way to share the text among them, which a 74-character rule made take seconds
 * (issue 10). Here the pieces between stars are found left to right, each at its first place
 * (leftmost is always right for `*`-only patterns: a later place can only leave less text for the
 * pieces after it), with a Knuth–Morris–Pratt search that never re-reads a character of the text.
 */

/** A piece between stars and its KMP failure table. */
interface Piece {
  text: string;
  fail: Int32Array;
}

function piece(text: string): Piece {
  const fail = new Int32Array(text.length);
  for (let i = 1, k = 0; i < text.length; i++) {
    while (k > 0 && text[i] !== text[k]) k = fail[k - 1]!;
    if (text[i] === text[k]) k++;
    fail[i] = k;
  }
  return { text, fail };
}

/** Counts the character comparisons of a match, so that a test can bound them. */
export interface MatchSteps {
  steps: number;
}

export class Wildcard {
  private readonly exact: string | undefined;
  private readonly head: string;
  private readonly tail: string;
  private readonly middle: Piece[];

  constructor(pattern: string) {
    const parts = pattern.toLowerCase().split("*");
    if (parts.length === 1) {
      this.exact = parts[0]!;
      this.head = this.tail = "";
      this.middle = [];
      return;
    }
    this.head = parts[0]!;
    this.tail = parts[parts.length - 1]!;
    this.middle = parts.slice(1, -1).filter((p) => p !== "").map(piece);
  }

  test(value: string, count: MatchSteps = { steps: 0 }): boolean {
    const text = value.toLowerCase();
    if (this.exact !== undefined) {
      count.steps += text.length;
      return text === this.exact;
    }
    const { head, tail } = this;
    if (text.length < head.length + tail.length) return false;
    count.steps += head.length + tail.length;
    if (!text.startsWith(head) || !text.endsWith(tail)) return false;
    // The middle pieces must fit, in order and without overlap, between head and tail.
    let from = head.length;
    const end = text.length - tail.length;
    for (const p of this.middle) {
      const at = find(p, text, from, end, count);
      if (at < 0) return false;
      from = at + p.text.length;
    }
    return true;
  }
}

/** First index ≥ `from` where `p` occurs wholly before `end`, or -1. */
function find(p: Piece, text: string, from: number, end: number, count: MatchSteps): number {
  const { text: needle, fail } = p;
  let k = 0;
  for (let i = from; i < end; i++) {
    count.steps++;
    while (k > 0 && text[i] !== needle[k]) {
      k = fail[k - 1]!;
      count.steps++;
    }
    if (text[i] === needle[k]) k++;
    if (k === needle.length) return i - needle.length + 1;
  }
  return -1;
}
