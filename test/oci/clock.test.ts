import { describe, expect, test } from "vitest";
import { buildClock } from "../../src/oci/clock.js";

describe("buildClock", () => {
  test("SOURCE_DATE_EPOCH wins over the packages' dates", () => {
    expect(buildClock({ sourceDateEpoch: "1700000000", candidates: [new Date("2030-01-01T00:00:00Z")] }).toISOString()).toBe("2023-11-14T22:13:20.000Z");
  });
  test("else the newest package date, in whole seconds; else the epoch", () => {
    const dates = [new Date("2023-05-01T10:00:00.750Z"), new Date("2024-02-03T04:05:06.999Z"), new Date("2022-01-01T00:00:00Z")];
    expect(buildClock({ sourceDateEpoch: undefined, candidates: dates }).toISOString()).toBe("2024-02-03T04:05:06.000Z");
    expect(buildClock({ sourceDateEpoch: "", candidates: [] }).getTime()).toBe(0);
  });
  test.each(["-1", "1.5", "now", "1e9", "99999999999999"])("a malformed SOURCE_DATE_EPOCH %s is refused", (raw) => {
    expect(() => buildClock({ sourceDateEpoch: raw })).toThrow(/SOURCE_DATE_EPOCH/);
  });
});
