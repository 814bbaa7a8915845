/**
 * `waitFor`'s polling rule on its own (no server): the interval grows while the status stands
 * still, falls back as soon as it moves, never exceeds its ceiling, and an abort stops the wait.
 */
import { describe, expect, it, vi } from "vitest";
import { KilnAbortError, statusUriOf, type OpStatus } from "../../src/sdk/index.js";
import { pollStatus } from "../../src/sdk/wait.js";

describe("pollStatus", () => {
  it("backs off while nothing changes and starts again when the status moves", async () => {
    // The clock is faked, so the gaps are the intervals the rule chose, not the machine's load.
    vi.useFakeTimers();
    try {
      // 6 polls at 10%, then 50% (moves), 3 polls at 50%, then complete.
      const script: OpStatus[] = [...Array(6).fill({ percentage: 10 }), { percentage: 50 }, ...Array(3).fill({ percentage: 50 }), { percentage: 100, complete: true }];
      const at: number[] = [];
      let i = 0;
      const wait = pollStatus(
        async () => {
          at.push(Date.now());
          return script[i++]!;
        },
        "job",
        { intervalMs: 20, factor: 2, maxIntervalMs: 150 },
      );
      await vi.runAllTimersAsync();
      const final = await wait;
      expect(final.complete).toBe(true);
      expect(i).toBe(script.length);
      const gaps = at.slice(1).map((t, k) => t - at[k]!);
      // Doubling while stuck at 10%, up to the ceiling; the first interval again once it moves.
      expect(gaps).toEqual([20, 40, 80, 150, 150, 150, 20, 40, 80, 150]);
    } finally {
      vi.useRealTimers();
    }
  });

  it("gives up at its timeout, naming the last status", async () => {
    vi.useFakeTimers();
    try {
      let polls = 0;
      const wait = pollStatus(
        async () => {
          polls++;
          return { percentage: 42, message: "Downloading 3/88 packages" };
        },
        "image 7",
        { intervalMs: 100, factor: 1, timeoutMs: 1000 },
      );
      const outcome = expect(wait).rejects.toThrow("image 7 did not finish in 1 s (last status: 42% Downloading 3/88 packages)");
      await vi.runAllTimersAsync();
      await outcome;
      expect(polls).toBe(11);
    } finally {
      vi.useRealTimers();
    }
  });

  it("stops on an abort with a KilnAbortError", async () => {
    const controller = new AbortController();
    let polls = 0;
    const wait = pollStatus(
      async () => {
        if (++polls === 3) controller.abort();
        return { percentage: 1 };
      },
      "job",
      { intervalMs: 5, signal: controller.signal },
    );
    await expect(wait).rejects.toBeInstanceOf(KilnAbortError);
    expect(polls).toBe(3);
  });

  it("finds the status URI of an image, a status and a bare URI", () => {
    expect(statusUriOf({ statusUri: "users/a/x/status", uri: "users/a/x" })).toBe("users/a/x/status");
    expect(statusUriOf("users/a/mysoftware/1/templates/2/images/3")).toBe("users/a/mysoftware/1/templates/2/images/3/status");
    expect(statusUriOf({ uri: "users/a/mysoftware/1/templates/2/images/3/status" })).toBe("users/a/mysoftware/1/templates/2/images/3/status");
  });
});
