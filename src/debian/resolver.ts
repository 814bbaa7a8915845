/**
 * Dependency resolution: which packages of a repository (plus the user's own `.deb` files) an
 * image needs, so that every `Pre-Depends` and `Depends` is met and no `Conflicts` or `Breaks`
 * holds between two of them. Recommends are not followed by default (like debootstrap and apko);
 * `recommends: true` follows them the way apt does by default: each recommendation that can be
 * installed is, one that cannot is skipped.
 *
 * The search is depth first: the requested names in order, each followed by its dependencies
 * (Pre-Depends, then Depends, in the order written), with chronological backtracking over the
 * choice points (alternatives, versions, providers) and a bound on the attempts. Choices, in
 * order, for a group not already met by a chosen package:
 *
 *   0. a package the user asked for (or a local one), when it is a candidate;
 *   1. alternatives in the order written (`a | b` tries `a` first);
 *   2. for one alternative, the real package of that name, highest version first;
 *   3. then the packages providing it, by Priority (required, important, standard, optional,
 *      extra), then name, then highest version — so a virtual name resolves the same way
 *      whatever order the index lists its providers in.
 *
 * A package whose dependency no package in the universe can meet is marked uninstallable and
 * the search jumps back to where it was chosen, which keeps a hopeless branch from being
 * explored once per unrelated choice made after it.
 */
import { KilnError } from "../domain/errors.js";
import { packageLabel } from "./package.js";
import { formatRelationGroup, parseRelationField } from "./relations.js";
import type { BinaryPackage, Relation } from "./types.js";
import { compareVersions, satisfiesVersion } from "./version.js";

/** What to resolve. */
export interface ResolveRequest {
  /** Package names, optionally with a version relation or alternatives (`libfoo (>= 2)`, `a | b`). */
  names: string[];
  /** The user's own packages: always installed, and the only candidates for their names. */
  localDebs?: BinaryPackage[];
  /** Debian architecture of the image (`amd64`); packages of other architectures (but `all`) are ignored. */
  arch: string;
  /** Also install Recommends, as apt does unless told `--no-install-recommends`. */
  recommends?: boolean;
}

/** Candidate attempts before the search gives up (each is cheap; real resolutions need a few hundred). */
const MAX_ATTEMPTS = 20_000;

const PRIORITY_RANK: Record<string, number> = { required: 0, important: 1, standard: 2, optional: 3, extra: 4 };

function priorityRank(p: BinaryPackage): number {
  return PRIORITY_RANK[p.priority ?? ""] ?? 5;
}

interface Provider {
  pkg: BinaryPackage;
  version: string | undefined;
}

/** A dependency group to meet, and who needs it (undefined: the request itself). */
interface Task {
  group: Relation[];
  from: BinaryPackage | undefined;
  field: "pre-depends on" | "depends on";
  /** For a requested group, the text the user wrote. */
  requested?: string;
}

/** Why a package is in the solution. */
interface Reason {
  parent: BinaryPackage | undefined;
  /** The parent's dependency that pulled it in, or the request text. */
  via: string;
  field: Task["field"];
  local: boolean;
}

interface ConflictEdge {
  from: BinaryPackage;
  rel: Relation;
  kind: "conflicts with" | "breaks";
}

/**
 * The groups still to meet, as an immutable list: choosing a package puts its dependencies in
 * front of the rest (depth first), and going back to a choice point is just taking its list again.
 */
type Agenda = { task: Task; next: Agenda } | undefined;

/** A choice point: the task, what remains after it, and the candidates tried so far. */
interface Frame {
  task: Task;
  rest: Agenda;
  candidates: BinaryPackage[];
  next: number;
  current: BinaryPackage | undefined;
}

/** Why an alternative has no candidate; "chosen" is the only reason a later choice could undo. */
type Shortfall = "missing" | "version" | "arch" | "chosen" | "broken";

function fail(message: string): never {
  throw new KilnError("resolveFailed", message);
}

/** Whether a package's architecture meets a relation's qualifier, as dpkg's `deparchsatisfied`. */
function archSatisfies(pkg: BinaryPackage, rel: Relation, native: string): boolean {
  const q = rel.archQualifier;
  if (q === undefined) return pkg.architecture === native || pkg.architecture === "all" || pkg.multiArch === "foreign";
  // `python3:any` is met only by a package that declares itself usable by any architecture.
  if (q === "any") return pkg.multiArch === "allowed";
  const pkgArch = pkg.architecture === "all" ? native : pkg.architecture;
  return pkgArch === (q === "native" ? native : q);
}

function versionSatisfies(version: string, rel: Relation): boolean {
  return rel.op === undefined || rel.version === undefined || satisfiesVersion(version, rel.op, rel.version);
}

/** dpkg's rule for virtual packages: an unversioned Provides never meets a versioned relation. */
function providedSatisfies(version: string | undefined, rel: Relation): boolean {
  if (rel.op === undefined) return true;
  return version !== undefined && versionSatisfies(version, rel);
}

/** Whether a Conflicts/Breaks relation of another package hits `target` (any architecture). */
function conflictHits(rel: Relation, target: BinaryPackage): boolean {
  if (rel.name === target.name && versionSatisfies(target.version, rel)) return true;
  return target.provides.some((p) => p.name === rel.name && providedSatisfies(p.version, rel));
}

function compareCandidates(a: BinaryPackage, b: BinaryPackage, native: string): number {
  return (
    -compareVersions(a.version, b.version) ||
    // Same version twice (two components, or amd64 and all): prefer the native build, then a
    // stable order that does not depend on the index order.
    Number(b.architecture === native) - Number(a.architecture === native) ||
    cmp(a.architecture, b.architecture) ||
    cmp(a.filename ?? "", b.filename ?? "") ||
    cmp(a.sha256 ?? "", b.sha256 ?? "")
  );
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** The universe of one architecture, indexed: by name (best first) and by provided name. */
interface UniverseIndex {
  byName: Map<string, BinaryPackage[]>;
  providers: Map<string, Provider[]>;
  /** Names that exist only for other architectures (to say "not for amd64"). */
  otherArch: Map<string, string>;
}

function compareProviders(a: Provider, b: Provider, native: string): number {
  return priorityRank(a.pkg) - priorityRank(b.pkg) || cmp(a.pkg.name, b.pkg.name) || compareCandidates(a.pkg, b.pkg, native);
}

function indexPackages(packages: readonly BinaryPackage[], native: string): UniverseIndex {
  const byName = new Map<string, BinaryPackage[]>();
  const providers = new Map<string, Provider[]>();
  const otherArch = new Map<string, string>();
  for (const p of packages) {
    if (p.architecture !== native && p.architecture !== "all") {
      if (!otherArch.has(p.name)) otherArch.set(p.name, p.architecture);
      continue;
    }
    const list = byName.get(p.name);
    if (list) list.push(p);
    else byName.set(p.name, [p]);
    for (const prov of p.provides) {
      const provs = providers.get(prov.name);
      const entry = { pkg: p, version: prov.version };
      if (provs) provs.push(entry);
      else providers.set(prov.name, [entry]);
    }
  }
  for (const name of byName.keys()) otherArch.delete(name);
  for (const list of byName.values()) list.sort((a, b) => compareCandidates(a, b, native));
  for (const list of providers.values()) list.sort((a, b) => compareProviders(a, b, native));
  return { byName, providers, otherArch };
}

/**
 * Indexing Debian's 64k packages costs more than resolving an image from them, and a server
 * resolves many images against the same (immutable) package list: keep the index as long as
 * the list lives.
 */
const indexCache = new WeakMap<readonly BinaryPackage[], Map<string, UniverseIndex>>();

function universeIndex(universe: readonly BinaryPackage[], native: string): UniverseIndex {
  let perArch = indexCache.get(universe);
  if (!perArch) {
    perArch = new Map();
    indexCache.set(universe, perArch);
  }
  let index = perArch.get(native);
  if (!index) {
    index = indexPackages(universe, native);
    perArch.set(native, index);
  }
  return index;
}

class Resolver {
  private readonly universe: UniverseIndex;
  /** The local packages, indexed the same way; they hide universe packages of their names. */
  private readonly localIndex: UniverseIndex;
  private readonly localNames: Set<string>;

  private readonly chosen = new Map<string, BinaryPackage>();
  private readonly providedBy = new Map<string, BinaryPackage[]>();
  private readonly conflictIndex = new Map<string, ConflictEdge[]>();
  private readonly reasons = new Map<BinaryPackage, Reason>();
  /** Names the user asked for (and local packages): preferred wherever they are a candidate. */
  private readonly requested = new Set<string>();
  /** Packages that can never be installed, with why. */
  private readonly broken = new Map<BinaryPackage, string>();
  private readonly failures: string[] = [];

  constructor(
    universe: readonly BinaryPackage[],
    private readonly local: readonly BinaryPackage[],
    private readonly native: string,
  ) {
    this.universe = universeIndex(universe, native);
    this.localIndex = indexPackages(local, native);
    this.localNames = new Set(local.map((p) => p.name));
  }

  /** Packages named `name`, best first. */
  private real(name: string): readonly BinaryPackage[] {
    return this.localIndex.byName.get(name) ?? this.universe.byName.get(name) ?? [];
  }

  /** Packages providing `name`, in preference order. */
  private providersOf(name: string): readonly Provider[] {
    const fromUniverse = this.universe.providers.get(name) ?? [];
    if (this.local.length === 0) return fromUniverse;
    const merged = [...(this.localIndex.providers.get(name) ?? []), ...fromUniverse.filter((p) => !this.localNames.has(p.pkg.name))];
    return merged.sort((a, b) => compareProviders(a, b, this.native));
  }

  // ---- the state, with undo ----

  private choose(pkg: BinaryPackage, reason: Reason): void {
    this.chosen.set(pkg.name, pkg);
    this.reasons.set(pkg, reason);
    for (const prov of pkg.provides) {
      const list = this.providedBy.get(prov.name);
      if (list) list.push(pkg);
      else this.providedBy.set(prov.name, [pkg]);
    }
    for (const [field, kind] of [
      [pkg.conflicts, "conflicts with"],
      [pkg.breaks, "breaks"],
    ] as const) {
      for (const group of field) {
        for (const rel of group) {
          const list = this.conflictIndex.get(rel.name);
          const edge = { from: pkg, rel, kind };
          if (list) list.push(edge);
          else this.conflictIndex.set(rel.name, [edge]);
        }
      }
    }
  }

  /** `pkg`'s Pre-Depends, then Depends. */
  private tasksOf(pkg: BinaryPackage): Task[] {
    return [
      ...pkg.preDepends.map((group): Task => ({ group, from: pkg, field: "pre-depends on" })),
      ...pkg.depends.map((group): Task => ({ group, from: pkg, field: "depends on" })),
    ];
  }

  /** Undoes the latest {@link choose} (choices are undone in reverse order). */
  private unchoose(pkg: BinaryPackage): void {
    this.chosen.delete(pkg.name);
    this.reasons.delete(pkg);
    for (const prov of pkg.provides) this.providedBy.get(prov.name)?.pop();
    for (const field of [pkg.conflicts, pkg.breaks]) {
      for (const group of field) for (const rel of group) this.conflictIndex.get(rel.name)?.pop();
    }
  }

  // ---- questions about the state ----

  private satisfier(group: readonly Relation[]): BinaryPackage | undefined {
    for (const rel of group) {
      const c = this.chosen.get(rel.name);
      if (c && archSatisfies(c, rel, this.native) && versionSatisfies(c.version, rel)) return c;
      const provs = this.providedBy.get(rel.name);
      if (provs) {
        for (const p of provs) {
          if (!archSatisfies(p, rel, this.native)) continue;
          if (p.provides.some((x) => x.name === rel.name && providedSatisfies(x.version, rel))) return p;
        }
      }
    }
    return undefined;
  }

  /** A chosen package that `pkg` conflicts with or breaks, or that conflicts with or breaks `pkg`. */
  private conflictOf(pkg: BinaryPackage): { other: BinaryPackage; edge: ConflictEdge } | undefined {
    for (const [field, kind] of [
      [pkg.conflicts, "conflicts with"],
      [pkg.breaks, "breaks"],
    ] as const) {
      for (const group of field) {
        for (const rel of group) {
          const real = this.chosen.get(rel.name);
          if (real && real !== pkg && conflictHits(rel, real)) return { other: real, edge: { from: pkg, rel, kind } };
          for (const p of this.providedBy.get(rel.name) ?? []) {
            if (p !== pkg && conflictHits(rel, p)) return { other: p, edge: { from: pkg, rel, kind } };
          }
        }
      }
    }
    for (const name of [pkg.name, ...pkg.provides.map((p) => p.name)]) {
      for (const edge of this.conflictIndex.get(name) ?? []) {
        if (edge.from !== pkg && conflictHits(edge.rel, pkg)) return { other: edge.from, edge };
      }
    }
    return undefined;
  }

  /** Candidates for a task, best first; `dynamic` when some were only ruled out by earlier choices. */
  private candidatesFor(task: Task): { candidates: BinaryPackage[]; dynamic: boolean } {
    const out: BinaryPackage[] = [];
    let dynamic = false;
    for (const rel of task.group) {
      for (const p of this.real(rel.name)) {
        if (!archSatisfies(p, rel, this.native) || !versionSatisfies(p.version, rel)) continue;
        const c = this.chosen.get(p.name);
        if (c && c !== p) {
          dynamic = true;
          continue;
        }
        if (!this.broken.has(p) && !out.includes(p)) out.push(p);
      }
      for (const { pkg, version } of this.providersOf(rel.name)) {
        if (pkg.name === rel.name || !archSatisfies(pkg, rel, this.native) || !providedSatisfies(version, rel)) continue;
        const c = this.chosen.get(pkg.name);
        if (c && c !== pkg) {
          dynamic = true;
          continue;
        }
        if (!this.broken.has(pkg) && !out.includes(pkg)) out.push(pkg);
      }
    }
    // What the user asked for wins over the written order (`a | b` with b requested takes b).
    const preferred = out.filter((p) => this.requested.has(p.name));
    const candidates = preferred.length === 0 || preferred.length === out.length ? out : [...preferred, ...out.filter((p) => !this.requested.has(p.name))];
    return { candidates, dynamic };
  }

  // ---- messages ----

  private requiredBy(pkg: BinaryPackage): string {
    const r = this.reasons.get(pkg);
    if (!r || r.local) return "a local package";
    return r.parent ? `required by ${packageLabel(r.parent)}` : "requested";
  }

  /** What the user asked for that led to `pkg`, and the steps from it down to `pkg`. */
  private ancestry(pkg: BinaryPackage): { root: string; steps: string[] } {
    const steps: string[] = [];
    let root = pkg.name;
    let cur = pkg;
    for (let guard = 0; guard < 100_000; guard++) {
      const r = this.reasons.get(cur);
      if (!r) break;
      if (!r.parent) {
        root = r.local ? `${cur.name} (a local package)` : r.via;
        break;
      }
      steps.push(`${packageLabel(r.parent)} ${r.field} ${r.via}`);
      cur = r.parent;
    }
    return { root, steps: steps.reverse() };
  }

  /** `cannot install <root>: <step>; ...; <clause>` for a problem met while working on `task`. */
  private message(task: Task, clause: string): string {
    if (!task.from) return `cannot install ${task.requested}: ${clause}`;
    const { root, steps } = this.ancestry(task.from);
    return `cannot install ${root}: ${[...steps, clause].join("; ")}`;
  }

  /** Why no package meets `task`'s group, as the last step of a chain, and the kinds of reasons. */
  private explain(task: Task): { clause: string; kinds: Set<Shortfall>; brokenCandidate: BinaryPackage | undefined } {
    const parts: string[] = [];
    const kinds = new Set<Shortfall>();
    let brokenCandidate: BinaryPackage | undefined;
    const single = task.group.length === 1;
    for (const rel of task.group) {
      const real = this.real(rel.name);
      const provs = this.providersOf(rel.name).filter((p) => p.pkg.name !== rel.name);
      const inArch = real.filter((p) => archSatisfies(p, rel, this.native));
      const matching = [
        ...inArch.filter((p) => versionSatisfies(p.version, rel)),
        ...provs.filter((p) => archSatisfies(p.pkg, rel, this.native) && providedSatisfies(p.version, rel)).map((p) => p.pkg),
      ];
      const brokenOnes = matching.filter((p) => this.broken.has(p));
      // Name the alternative in each clause only when there are several.
      const who = single ? "" : `${rel.name} `;
      if (matching.some((p) => this.chosen.get(p.name) !== undefined && this.chosen.get(p.name) !== p)) {
        const c = matching.map((p) => this.chosen.get(p.name)!).find((x) => x !== undefined)!;
        kinds.add("chosen");
        parts.push(`${packageLabel(c)} is already selected (${this.requiredBy(c)})`);
      } else if (brokenOnes.length > 0) {
        kinds.add("broken");
        brokenCandidate ??= brokenOnes[0];
        parts.push(`${brokenOnes.map(packageLabel).join(", ")} cannot be installed`);
      } else if (inArch.length > 0) {
        kinds.add("version");
        const versions = [...new Set(inArch.map((p) => p.version))];
        parts.push(`only ${who}${versions.join(", ")} ${versions.length === 1 ? "is" : "are"} available`);
      } else if (real.length > 0) {
        kinds.add("arch");
        parts.push(
          rel.archQualifier === "any"
            ? `${packageLabel(real[0]!)} is not Multi-Arch: allowed, so it cannot satisfy ${rel.name}:any`
            : `${rel.name} is not available for ${rel.archQualifier && rel.archQualifier !== "native" ? rel.archQualifier : this.native}`,
        );
      } else if (provs.length > 0) {
        kinds.add("version");
        const offers = provs.map((p) => (p.version ? `${p.pkg.name} provides ${rel.name} ${p.version}` : `${p.pkg.name} provides it without a version`));
        parts.push(`no provider of ${rel.name} matches (${offers.join(", ")})`);
      } else if (this.universe.otherArch.has(rel.name) && !this.localNames.has(rel.name)) {
        kinds.add("arch");
        parts.push(`${rel.name} exists only for ${this.universe.otherArch.get(rel.name)}, not ${this.native}`);
      } else {
        kinds.add("missing");
        parts.push(`no package provides ${rel.name}`);
      }
    }
    const group = formatRelationGroup(task.group);
    let clause: string;
    if (!task.from) clause = parts.join(" and ");
    else if (single && kinds.has("missing")) clause = `${packageLabel(task.from)} ${task.field} ${group}, which no package provides`;
    else if (single) clause = `${packageLabel(task.from)} ${task.field} ${group} but ${parts[0]}`;
    else clause = `${packageLabel(task.from)} ${task.field} ${group}, but ${parts.join(" and ")}`;
    return { clause, kinds, brokenCandidate };
  }

  private conflictClause(pkg: BinaryPackage, hit: { other: BinaryPackage; edge: ConflictEdge }): string {
    const { other, edge } = hit;
    return edge.from === pkg
      ? `${packageLabel(pkg)} ${edge.kind} ${packageLabel(other)} (${this.requiredBy(other)})`
      : `${packageLabel(other)} (${this.requiredBy(other)}) ${edge.kind} ${packageLabel(pkg)}`;
  }

  private conflictMessage(task: Task, pkg: BinaryPackage, hit: { other: BinaryPackage; edge: ConflictEdge }): string {
    const clause = this.conflictClause(pkg, hit);
    if (!task.from) return `cannot install ${task.requested}: ${clause}`;
    return this.message(task, `${packageLabel(task.from)} ${task.field} ${formatRelationGroup(task.group)}; ${clause}`);
  }

  private record(message: string): void {
    if (!this.failures.includes(message)) this.failures.push(message);
  }

  private finalError(): never {
    const [first, ...others] = this.failures;
    if (first === undefined) fail("cannot resolve the requested packages");
    fail(others.length === 0 ? first : `${first} (other attempts failed too: ${others.slice(0, 2).join("; ")})`);
  }

  // ---- the search ----

  run(requests: Task[]): BinaryPackage[] {
    for (const t of requests) for (const rel of t.group) this.requested.add(rel.name);
    for (const pkg of this.local) {
      this.requested.add(pkg.name);
      const hit = this.conflictOf(pkg);
      if (hit) fail(`cannot install ${pkg.name} (a local package): ${this.conflictClause(pkg, hit)}`);
      this.choose(pkg, { parent: undefined, via: pkg.name, field: "depends on", local: true });
    }
    // The local packages' dependencies after the requests: a request may settle an alternative.
    let agenda: Agenda = prepend([...requests, ...this.local.flatMap((p) => this.tasksOf(p))], undefined);

    const stack: Frame[] = [];
    let attempts = 0;
    for (;;) {
      while (agenda && this.satisfier(agenda.task.group)) agenda = agenda.next;
      if (!agenda) return this.order();
      const task = agenda.task;
      const { candidates, dynamic } = this.candidatesFor(task);
      if (candidates.length > 0) {
        stack.push({ task, rest: agenda.next, candidates, next: 0, current: undefined });
      } else {
        const { clause, kinds, brokenCandidate } = this.explain(task);
        const message = this.message(task, clause);
        const onlyBroken = kinds.size === 1 && kinds.has("broken");
        // A group that fails because its candidates are uninstallable repeats a problem
        // recorded (with its own chain) when they were found to be so.
        if (!onlyBroken) this.record(message);
        if (!dynamic && !kinds.has("chosen")) {
          // Nothing in the universe can meet this group: no other choice elsewhere will help.
          if (!task.from) {
            if (onlyBroken && brokenCandidate) fail(`cannot install ${task.requested}: ${this.broken.get(brokenCandidate)}`);
            fail(message);
          }
          if (this.reasons.get(task.from)?.local) fail(message);
          this.broken.set(task.from, message.replace(/^cannot install [^:]*: /, ""));
          // Back-jump to where that package was chosen: the choices made since cannot fix it.
          while (stack.length > 0 && stack[stack.length - 1]!.current !== task.from) {
            const f = stack.pop()!;
            if (f.current) this.unchoose(f.current);
          }
        }
      }
      // Try the next candidate of the innermost choice point, backtracking as they run out.
      for (;;) {
        const f = stack[stack.length - 1];
        if (!f) this.finalError();
        if (f.current) {
          this.unchoose(f.current);
          f.current = undefined;
        }
        let picked: BinaryPackage | undefined;
        while (f.next < f.candidates.length) {
          const c = f.candidates[f.next++]!;
          if (++attempts > MAX_ATTEMPTS) {
            fail(`gave up after ${MAX_ATTEMPTS} attempts to find a consistent set of packages; first problem: ${this.failures[0] ?? "none recorded"}`);
          }
          if (this.broken.has(c)) continue;
          const hit = this.conflictOf(c);
          if (hit) {
            this.record(this.conflictMessage(f.task, c, hit));
            continue;
          }
          picked = c;
          break;
        }
        if (picked) {
          this.choose(picked, this.reasonFor(f.task));
          f.current = picked;
          agenda = prepend(this.tasksOf(picked), f.rest);
          break;
        }
        stack.pop();
      }
    }
  }

  private reasonFor(task: Task): Reason {
    return task.from
      ? { parent: task.from, via: formatRelationGroup(task.group), field: task.field, local: false }
      : { parent: undefined, via: task.requested ?? formatRelationGroup(task.group), field: task.field, local: false };
  }

  /**
   * The chosen packages in install order: a package after what it (pre-)depends on, cycles kept
   * together, ties broken by name — the same set always comes out in the same order.
   */
  private order(): BinaryPackage[] {
    const pkgs = [...this.chosen.values()].sort((a, b) => cmp(a.name, b.name));
    const index = new Map(pkgs.map((p, i) => [p, i]));
    const deps: number[][] = pkgs.map((p) => {
      const out = new Set<number>();
      for (const group of [...p.preDepends, ...p.depends]) {
        const s = this.satisfier(group);
        if (s && s !== p) out.add(index.get(s)!);
      }
      return [...out].sort((a, b) => a - b);
    });
    const comp = stronglyConnected(deps);
    const count = Math.max(-1, ...comp) + 1;
    // Edges between components: a component waits for those its members depend on.
    const waitsOn = Array.from({ length: count }, () => new Set<number>());
    const feeds = Array.from({ length: count }, () => new Set<number>());
    const members: number[][] = Array.from({ length: count }, () => []);
    pkgs.forEach((_, i) => members[comp[i]!]!.push(i));
    deps.forEach((ds, i) => {
      for (const d of ds) {
        if (comp[d] !== comp[i]) {
          waitsOn[comp[i]!]!.add(comp[d]!);
          feeds[comp[d]!]!.add(comp[i]!);
        }
      }
    });
    // Kahn's algorithm, always taking the ready component whose first name sorts first.
    const ready = members.map((m, c) => c).filter((c) => waitsOn[c]!.size === 0);
    const pending = waitsOn.map((s) => s.size);
    const out: BinaryPackage[] = [];
    const firstOf = (c: number) => members[c]![0]!;
    while (ready.length > 0) {
      ready.sort((a, b) => firstOf(a) - firstOf(b));
      const c = ready.shift()!;
      for (const i of members[c]!) out.push(pkgs[i]!);
      for (const n of feeds[c]!) if (--pending[n]! === 0) ready.push(n);
    }
    return out;
  }
}

function prepend(tasks: readonly Task[], rest: Agenda): Agenda {
  let out = rest;
  for (let i = tasks.length - 1; i >= 0; i--) out = { task: tasks[i]!, next: out };
  return out;
}

/** Tarjan's algorithm, iterative (dependency chains can be deep); returns a component id per node. */
function stronglyConnected(edges: number[][]): number[] {
  const n = edges.length;
  const indexOf = new Array<number>(n).fill(-1);
  const low = new Array<number>(n).fill(0);
  const onStack = new Array<boolean>(n).fill(false);
  const comp = new Array<number>(n).fill(-1);
  const stack: number[] = [];
  let counter = 0;
  let comps = 0;
  for (let start = 0; start < n; start++) {
    if (indexOf[start] !== -1) continue;
    const work: Array<[node: number, edge: number]> = [[start, 0]];
    indexOf[start] = low[start] = counter++;
    stack.push(start);
    onStack[start] = true;
    while (work.length > 0) {
      const top = work[work.length - 1]!;
      const [v, e] = top;
      if (e < edges[v]!.length) {
        top[1]++;
        const w = edges[v]![e]!;
        if (indexOf[w] === -1) {
          indexOf[w] = low[w] = counter++;
          stack.push(w);
          onStack[w] = true;
          work.push([w, 0]);
        } else if (onStack[w]) {
          low[v] = Math.min(low[v]!, indexOf[w]!);
        }
        continue;
      }
      work.pop();
      if (work.length > 0) {
        const parent = work[work.length - 1]![0];
        low[parent] = Math.min(low[parent]!, low[v]!);
      }
      if (low[v] === indexOf[v]) {
        for (;;) {
          const w = stack.pop()!;
          onStack[w] = false;
          comp[w] = comps;
          if (w === v) break;
        }
        comps++;
      }
    }
  }
  return comp;
}

/**
 * Resolves the packages to install: the requested names, the local `.deb` files, and everything
 * their `Pre-Depends` and `Depends` need, with no `Conflicts` or `Breaks` between any two.
 * Deterministic: the same universe (in any order) and request give the same list, in install
 * order (dependencies first where there is no cycle, ties by name).
 * @throws KilnError `resolveFailed` whose message names the chain that failed, e.g.
 *   `cannot install app: app 1.0 depends on libfoo (>= 2) but only 1.4 is available`.
 */
export function resolvePackages(universe: readonly BinaryPackage[], request: ResolveRequest): BinaryPackage[] {
  if (request.recommends) return resolveWithRecommends(universe, request);
  const local = request.localDebs ?? [];
  const seen = new Set<string>();
  for (const p of local) {
    if (seen.has(p.name)) fail(`two local packages are named ${p.name}`);
    seen.add(p.name);
    if (p.architecture !== request.arch && p.architecture !== "all") {
      fail(`cannot install ${p.name} (a local package): it is built for ${p.architecture}, not ${request.arch}`);
    }
  }
  const tasks: Task[] = request.names.map((text) => {
    let field;
    try {
      field = parseRelationField(text, { arch: request.arch });
    } catch (err) {
      throw new KilnError("badRequest", `cannot install "${text}": ${(err as Error).message}`, { cause: err });
    }
    if (field.length !== 1) throw new KilnError("badRequest", `cannot install "${text}": give one package (with an optional version) per name`);
    return { group: field[0]!, from: undefined, field: "depends on", requested: text.trim() };
  });
  return new Resolver(universe, local, request.arch).run(tasks);
}

/**
 * apt's default: the packages and their dependencies, then every Recommends of the result that is
 * not met yet, each added as if requested when the whole still resolves (skipped when it does
 * not, as apt skips a recommendation it cannot install), until nothing more can be added.
 * Recommendations are taken in install order, each package's in the order written.
 */
function resolveWithRecommends(universe: readonly BinaryPackage[], request: ResolveRequest): BinaryPackage[] {
  const base = { ...request, recommends: false };
  const accepted: string[] = [];
  const tried = new Set<string>();
  let result = resolvePackages(universe, base);
  for (let changed = true; changed; ) {
    changed = false;
    for (const p of result) {
      for (const group of p.recommends) {
        if (metBy(result, group, request.arch)) continue;
        const text = formatRelationGroup(group);
        if (tried.has(text)) continue;
        tried.add(text);
        try {
          result = resolvePackages(universe, { ...base, names: [...request.names, ...accepted, text] });
          accepted.push(text);
          changed = true;
          break;
        } catch (err) {
          if (!(err instanceof KilnError) || err.kind !== "resolveFailed") throw err;
        }
      }
      if (changed) break;
    }
  }
  return result;
}

/** Whether a relation group is met by one of `pkgs` (by name or by what they provide). */
function metBy(pkgs: readonly BinaryPackage[], group: readonly Relation[], native: string): boolean {
  return group.some((rel) =>
    pkgs.some(
      (p) =>
        archSatisfies(p, rel, native) &&
        ((p.name === rel.name && versionSatisfies(p.version, rel)) || p.provides.some((v) => v.name === rel.name && providedSatisfies(v.version, rel))),
    ),
  );
}
