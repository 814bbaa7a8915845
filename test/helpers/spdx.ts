/**
 * Validation of SBOMs against the SPDX 2.3 JSON schema (vendored in test/fixtures/spdx/ from
 * the specification's v2.3 tag), with ajv: what an SPDX consumer would check first.
 */
import { readFileSync } from "node:fs";
import path from "node:path";
import { Ajv } from "ajv";
import { ROOT } from "./global-setup.js";

const schema = JSON.parse(readFileSync(path.join(ROOT, "test/fixtures/spdx/spdx-2.3-schema.json"), "utf8")) as object;
// The schema uses "deprecated" and "$comment", which ajv's strict mode would refuse as unknown.
const validate = new Ajv({ strict: false, allErrors: true }).compile(schema);

/** The schema violations of a document (`[]` when it is valid SPDX 2.3 JSON). */
export function validateSpdx(doc: unknown): string[] {
  if (validate(doc)) return [];
  return (validate.errors ?? []).map((e) => `${e.instancePath || "/"} ${e.message ?? "is invalid"}`);
}
