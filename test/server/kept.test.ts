/**
 * What the answer and login caches rest on: a value is answered only while the store's
 * generation has not moved since the reads it came from began, and the cache stays bounded.
 */
import { describe, expect, it } from "vitest";
import { KeptWhileUnchanged } from "../../src/server/kept.js";

describe("KeptWhileUnchanged", () => {
  it("keeps nothing from a store other processes write to (PostgreSQL)", async () => {
    const kept = new KeptWhileUnchanged<string>({ generation: 0, dialect: "postgres" }, 10);
    expect(await kept.compute("a", async () => "alice")).toBe("alice");
    expect(kept.get("a")).toBeUndefined();
  });

  it("answers a value until the store changes", async () => {
    const store = { generation: 0, dialect: "sqlite" as const };
    const kept = new KeptWhileUnchanged<string>(store, 10);
    expect(await kept.compute("a", async () => "alice")).toBe("alice");
    expect(kept.get("a")).toBe("alice");
    store.generation++;
    expect(kept.get("a")).toBeUndefined();
  });

  it("does not answer a value whose reads a write interrupted", async () => {
    const store = { generation: 0, dialect: "sqlite" as const };
    const kept = new KeptWhileUnchanged<string>(store, 10);
    const value = await kept.compute("a", async () => {
      store.generation++; // a write lands while the value is being computed
      return "old alice";
    });
    expect(value).toBe("old alice");
    expect(kept.get("a")).toBeUndefined();
  });

  it("forgets the oldest entry past its capacity", () => {
    const kept = new KeptWhileUnchanged<number>({ generation: 0, dialect: "sqlite" as const }, 2);
    kept.set("a", 1, 0);
    kept.set("b", 2, 0);
    kept.set("b", 3, 0); // a new value for a kept key evicts nothing
    expect([kept.get("a"), kept.get("b")]).toEqual([1, 3]);
    kept.set("c", 4, 0);
    expect([kept.get("a"), kept.get("b"), kept.get("c")]).toEqual([undefined, 3, 4]);
  });
});
