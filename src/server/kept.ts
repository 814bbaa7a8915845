/**
 * State derived from reads of the store (an answer, a login), kept while the store has not
 * changed: every write moves `store.generation`, and an entry made at another generation is
 * no longer answered. Bounded: past `capacity` entries, the oldest goes.
 *
 * Only a store that one process owns can be watched this way: on PostgreSQL, other processes (more
 * API processes behind a load balancer, the workers) write without moving this process's
 * generation, so a kept login would outlive a password change or a disabled account and a kept
 * answer its object's update. There nothing is kept.
 */
import type { Store } from "../store/types.js";

export class KeptWhileUnchanged<V> {
  private readonly entries = new Map<string, { generation: number; value: V }>();

  constructor(
    private readonly store: Pick<Store, "generation" | "dialect">,
    private readonly capacity: number,
  ) {}

  /** The value kept under `key`, if the store has not changed since it was made. */
  get(key: string): V | undefined {
    if (this.store.dialect !== "sqlite") return undefined;
    const kept = this.entries.get(key);
    return kept && kept.generation === this.store.generation ? kept.value : undefined;
  }

  /** The generation to stamp a value with: take it before the reads the value comes from. */
  stamp(): number {
    return this.store.generation;
  }

  /** Keeps `value`, made from reads that began at `generation` (a write since makes it stale at once). */
  set(key: string, value: V, generation: number): void {
    if (this.store.dialect !== "sqlite") return;
    if (this.entries.size >= this.capacity && !this.entries.has(key)) this.entries.delete(this.entries.keys().next().value!);
    this.entries.set(key, { generation, value });
  }

  /** Computes a value from the store and keeps it. */
  async compute(key: string, compute: () => Promise<V>): Promise<V> {
    const generation = this.stamp();
    const value = await compute();
    this.set(key, value, generation);
    return value;
  }
}
