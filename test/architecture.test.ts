/**
 * The shape of src/: data flows one way (design.md), so no room imports a room above it, and no
 * module reaches itself again through runtime imports (an import cycle makes module evaluation
 * order matter, and the first module to load sees the other half undefined).
 */
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";

const SRC = path.resolve(import.meta.dirname, "../src");

interface Edge {
  to: string;
  /** `import type` / `export type`: erased at compile time. */
  typeOnly: boolean;
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) return sourceFiles(p);
    return e.name.endsWith(".ts") ? [p] : [];
  });
}

/** Every relative import and re-export of each module, by path relative to src/. */
function importGraph(): Map<string, Edge[]> {
  const graph = new Map<string, Edge[]>();
  const statement = /^\s*(import|export)\s+(type\s+)?(?:[^;]*?\sfrom\s+)?["'](\.[^"']+)["']/gm;
  for (const file of sourceFiles(SRC)) {
    const text = readFileSync(file, "utf8");
    const edges: Edge[] = [];
    for (const m of text.matchAll(statement)) {
      const target = path.resolve(path.dirname(file), m[3]!.replace(/\.js$/, ".ts"));
      edges.push({ to: path.relative(SRC, target), typeOnly: m[2] !== undefined });
    }
    // Dynamic imports load at run time too.
    for (const m of text.matchAll(/\bimport\(\s*["'](\.[^"']+)["']\s*\)/g)) {
      edges.push({ to: path.relative(SRC, path.resolve(path.dirname(file), m[1]!.replace(/\.js$/, ".ts"))), typeOnly: false });
    }
    graph.set(path.relative(SRC, file), edges);
  }
  return graph;
}

const graph = importGraph();
const room = (file: string): string => file.split(path.sep)[0]!;

describe("src/", () => {
  it("reads its modules", () => {
    expect(graph.size).toBeGreaterThan(100);
    expect(graph.get(path.join("api", "library.ts"))!.some((e) => e.to === path.join("server", "http.ts"))).toBe(true);
  });

  it("has no runtime import cycle", () => {
    const state = new Map<string, "visiting" | "done">();
    const cycles: string[] = [];
    const visit = (file: string, trail: string[]): void => {
      if (state.get(file) === "done") return;
      if (state.get(file) === "visiting") {
        cycles.push([...trail.slice(trail.indexOf(file)), file].join(" -> "));
        return;
      }
      state.set(file, "visiting");
      for (const e of graph.get(file) ?? []) if (!e.typeOnly) visit(e.to, [...trail, file]);
      state.set(file, "done");
    };
    for (const file of graph.keys()) visit(file, []);
    expect(cycles).toEqual([]);
  });

  it("has no arrow pointing up: lower rooms import neither the server, the API nor the library", () => {
    const lower = ["domain", "wire", "store", "blobs", "jobs", "debian", "rootfs", "oci", "registry", "builder"];
    const upper = ["server", "api", "library", "cli"];
    const offending: string[] = [];
    for (const [file, edges] of graph) {
      if (!lower.includes(room(file))) continue;
      for (const e of edges) if (upper.includes(room(e.to))) offending.push(`${file} -> ${e.to}`);
    }
    expect(offending).toEqual([]);
  });

  it("keeps the library below the HTTP layer", () => {
    const offending: string[] = [];
    for (const [file, edges] of graph) {
      if (room(file) !== "library") continue;
      for (const e of edges) if (["server", "api", "cli"].includes(room(e.to))) offending.push(`${file} -> ${e.to}`);
    }
    expect(offending).toEqual([]);
  });
});
