/**
 * The study per release: the programs every release shares (common.ts) and the release's own
 * scripts and claims. A release's own program rules come first, so it can override a common one.
 */
import { BOOKWORM_CLAIMS, BOOKWORM_SCRIPTS } from "./bookworm.js";
import { COMMON_PROGRAMS } from "./common.js";
import { TRIXIE_CLAIMS, TRIXIE_SCRIPTS } from "./trixie.js";
import type { CommandClaim, ProgramRule, ScriptName, ScriptStudy, Study, Verdict } from "./types.js";

export type { CommandClaim, ProgramRule, ScriptName, ScriptStudy, Study, Verdict } from "./types.js";

/** Releases with a study. */
export const STUDIED_RELEASES = ["bookworm", "trixie"] as const;

export function studyFor(release: string): Study {
  switch (release) {
    case "bookworm":
      return { release, programs: COMMON_PROGRAMS, claims: BOOKWORM_CLAIMS, scripts: BOOKWORM_SCRIPTS };
    case "trixie":
      // bookworm's pins still hold for the scripts whose text did not change (a pin matches only
      // the exact text it was made for).
      return { release, programs: COMMON_PROGRAMS, claims: [...TRIXIE_CLAIMS, ...BOOKWORM_CLAIMS], scripts: [...TRIXIE_SCRIPTS, ...BOOKWORM_SCRIPTS] };
    default:
      // A release nobody studied yet: the common programs only; every script is interpreted and
      // whatever it does that the interpreter does not know is reported.
      return { release, programs: COMMON_PROGRAMS, claims: [], scripts: [] };
  }
}

function matches(rule: ProgramRule, name: string, argv: readonly string[]): boolean {
  const byName = typeof rule.program === "string" ? rule.program === name : rule.program.test(name);
  return byName && (rule.args === undefined || rule.args.test(argv.slice(1).join(" ")));
}

/** The study's verdict on a command of a package's script: a claim first, then a program rule. */
export function verdictFor(study: Study, pkg: string, script: ScriptName, argv: readonly string[], name: string): Verdict | undefined {
  const claim = study.claims.find((c: CommandClaim) => c.package === pkg && (c.script === undefined || c.script === script) && matches(c, name, argv));
  return claim ?? study.programs.find((r) => matches(r, name, argv));
}

/** The study of a whole script, if its text is the one studied. */
export function scriptStudyFor(study: Study, pkg: string, script: ScriptName, sha256: string): ScriptStudy | undefined {
  return study.scripts.find((s) => s.package === pkg && s.script === script && s.sha256.includes(sha256.slice(0, 16)));
}

/**
 * The paths a report entry's effect leaves in a real installation (for the fidelity harness):
 * from the rule, claim or script study whose effect text it carries.
 */
export function pathsFor(study: Study, pkg: string, effect: string): readonly string[] {
  const base = effect.replace(/ \(only if .*\)$/s, "");
  for (const s of study.scripts) if (s.package === pkg) for (const v of s.effects) if (v.effect === base && v.paths) return v.paths;
  for (const c of study.claims) if (c.package === pkg && c.effect === base && c.paths) return c.paths;
  for (const r of study.programs) if (r.effect === base && r.paths) return r.paths;
  return [];
}
