#!/usr/bin/env node
// The `kiln` command: a thin launcher for the compiled CLI (built by `npm install`).
import { main } from "../dist/cli/main.js";

main(process.argv).then(
  (code) => { process.exitCode = code; },
  (err) => { console.error(err instanceof Error ? err.message : String(err)); process.exitCode = 1; },
);
