/**
 * `waitFor`'s polling rule on its own (no server): the interval grows while the status stands
 * still, falls back as soon as it moves, never exceeds its ceiling, and an abort stops the wait.
 */
import { describe, expect, it } from "vitest";
import { KilnAbortError, statusUriOf, type OpStatus } from "../../src/sdk/index.js";
import { pollStatus } from "../../src/sdk/wait.js";

describe("pollStatus", () => {
  it("backs off while nothing changes and starts again when the status moves", async () => {
    // 6 polls at 10%, then 50% (moves), 3 polls at 50%, then complete.
    const script: OpStatus[] = [...Array(6).fill({ percentage: 10 }), { percentage: 50 }, ...Array(3).fill({ percentage: 50 }), { percentage: 100, complete: true }];
    const at: number[] = [];
    let i = 0;
    const final = await pollStatus(
      async () => {
        at.push(performance.now());
        return script[i++]!;
      },
      "job",
      { intervalMs: 20, factor: 2, maxIntervalMs: 150 },
    );
    expect(final.complete).toBe(true);
    expect(i).toBe(script.length);
    const gaps = at.slice(1).map((t, k) => t - at[k]!);
    // Growing gaps while stuck at 10% (20, 40, 80, 150, 150 with the ceiling)...
    expect(gaps[1]!).toBeGreaterThan(gaps[0]! * 1.5);
    expect(gaps[2]!).toBeGreaterThan(gaps[1]! * 1.5);
    expect(Math.max(...gaps)).toBeLessThan(150 + 60);
    // ...and the first interval again right after the move to 50%.
    expect(gaps[6]!).toBeLessThan(gaps[5]! / 2);
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
