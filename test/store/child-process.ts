/**
 * Runs the store in other Node processes, to test what only separate processes can show (two
 * SQLite connections in one process block each other: better-sqlite3 waits synchronously).
 * The store's sources are transpiled as they are, without type checking, into a temporary
 * directory whose node_modules points at the project's.
 */
import { execFile } from "node:child_process";
import { mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import ts from "typescript";

const ROOT = path.resolve(import.meta.dirname, "../..");
/** The sources the store needs at run time (its own folder and the domain it imports from). */
const SOURCES = ["src/store", "src/domain"];

async function tsFiles(rel: string): Promise<string[]> {
  if (rel.endsWith(".ts")) return [rel];
  const entries = await readdir(path.join(ROOT, rel), { withFileTypes: true });
  const nested = await Promise.all(
    entries.map((e) => (e.isDirectory() ? tsFiles(path.join(rel, e.name)) : Promise.resolve(e.name.endsWith(".ts") ? [path.join(rel, e.name)] : []))),
  );
  return nested.flat();
}

export interface ChildStoreKit {
  /** Runs `script` (an ES module body with `openStore` in scope, argv in `args`) in a new process. */
  run(script: string, args: string[]): Promise<{ stdout: string; stderr: string }>;
  dispose(): Promise<void>;
}

export async function childStoreKit(): Promise<ChildStoreKit> {
  const dir = await mkdtemp(path.join(tmpdir(), "kiln-store-child-"));
  await writeFile(path.join(dir, "package.json"), JSON.stringify({ type: "module" }));
  await symlink(path.join(ROOT, "node_modules"), path.join(dir, "node_modules"), "dir");
  for (const rel of (await Promise.all(SOURCES.map(tsFiles))).flat()) {
    const out = path.join(dir, rel.replace(/\.ts$/, ".js"));
    await mkdir(path.dirname(out), { recursive: true });
    const source = await readFile(path.join(ROOT, rel), "utf8");
    const js = ts.transpileModule(source, {
      compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022, verbatimModuleSyntax: true },
    }).outputText;
    await writeFile(out, js);
  }
  let n = 0;
  return {
    async run(script, args) {
      const file = path.join(dir, `script-${n++}.mjs`);
      await writeFile(file, `import { openStore } from "./src/store/store.js";\nconst args = process.argv.slice(2);\n${script}\n`);
      return promisify(execFile)(process.execPath, [file, ...args], { timeout: 30_000 });
    },
    dispose: () => rm(dir, { recursive: true, force: true }),
  };
}
