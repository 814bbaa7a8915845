import { describe, expect, it } from "vitest";
import { makeParagraph } from "../../src/debian/control.js";
import { packageFromParagraph } from "../../src/debian/package.js";
import { resolvePackages } from "../../src/debian/resolver.js";
import type { BinaryPackage } from "../../src/debian/types.js";
import { isKilnError } from "../../src/domain/errors.js";

/** A package of a synthetic universe: `pkg("app", "1.0", { Depends: "libfoo (>= 2)" })`. */
function pkg(name: string, version: string, fields: Record<string, string> = {}): BinaryPackage {
  const all: Record<string, string> = { Architecture: "amd64", ...fields };
  return packageFromParagraph(makeParagraph([["Package", name], ["Version", version], ...Object.entries(all)]), { eager: true });
}

function names(result: BinaryPackage[]): string[] {
  return result.map((p) => `${p.name}=${p.version}`);
}

function resolve(universe: BinaryPackage[], request: string[], localDebs?: BinaryPackage[]): string[] {
  return names(resolvePackages(universe, { names: request, arch: "amd64", ...(localDebs ? { localDebs } : {}) }));
}

function failure(universe: BinaryPackage[], request: string[], localDebs?: BinaryPackage[]): string {
  try {
    resolvePackages(universe, { names: request, arch: "amd64", ...(localDebs ? { localDebs } : {}) });
  } catch (err) {
    expect(isKilnError(err, "resolveFailed")).toBe(true);
    return (err as Error).message;
  }
  throw new Error("expected the resolution to fail");
}

/** A seeded shuffle, so a failure can be replayed. */
function shuffled<T>(list: readonly T[], seed: number): T[] {
  const out = [...list];
  let s = seed;
  for (let i = out.length - 1; i > 0; i--) {
    s = (s * 1103515245 + 12345) & 0x7fffffff;
    const j = s % (i + 1);
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

describe("versions", () => {
  const universe = [pkg("libfoo", "1.0"), pkg("libfoo", "3.0"), pkg("libfoo", "2.0"), pkg("old-app", "1", { Depends: "libfoo (<< 2.0)" })];

  it("takes the highest version when nothing constrains it", () => {
    expect(resolve(universe, ["libfoo"])).toEqual(["libfoo=3.0"]);
  });

  it("takes the highest version that satisfies a dependency", () => {
    expect(resolve(universe, ["old-app"])).toEqual(["libfoo=1.0", "old-app=1"]);
  });

  it("honours a version in the request", () => {
    expect(resolve(universe, ["libfoo (<< 3)"])).toEqual(["libfoo=2.0"]);
    expect(failure(universe, ["libfoo (>= 4)"])).toBe("cannot install libfoo (>= 4): only 3.0, 2.0, 1.0 are available");
  });

  it("names the chain when a dependency's version is not available", () => {
    const u = [pkg("app", "1.0", { Depends: "libfoo (>= 2)" }), pkg("libfoo", "1.4")];
    expect(failure(u, ["app"])).toBe("cannot install app: app 1.0 depends on libfoo (>= 2) but only 1.4 is available");
  });

  it("names every step of a longer chain", () => {
    const u = [pkg("app", "1.0", { Depends: "mid" }), pkg("mid", "2.0", { "Pre-Depends": "libfoo (>= 2)" }), pkg("libfoo", "1.4")];
    expect(failure(u, ["app"])).toBe("cannot install app: app 1.0 depends on mid; mid 2.0 pre-depends on libfoo (>= 2) but only 1.4 is available");
  });

  it("says when no package provides a dependency", () => {
    const u = [pkg("app", "1.0", { Depends: "libc6, libbar" }), pkg("libc6", "2.36")];
    expect(failure(u, ["app"])).toBe("cannot install app: app 1.0 depends on libbar, which no package provides");
    expect(failure(u, ["nothere"])).toBe("cannot install nothere: no package provides nothere");
  });

  it("backs off to a lower version when the highest one cannot be installed", () => {
    const u = [pkg("tool", "2.0", { Depends: "libgone" }), pkg("tool", "1.0"), pkg("app", "1", { Depends: "tool" })];
    expect(resolve(u, ["app"])).toEqual(["tool=1.0", "app=1"]);
  });
});

describe("dependencies", () => {
  it("follows Pre-Depends and Depends, never Recommends, and orders dependencies first", () => {
    const u = [
      pkg("app", "1", { "Pre-Depends": "base", Depends: "lib", Recommends: "extra" }),
      pkg("lib", "1", { Depends: "base" }),
      pkg("base", "1"),
      pkg("extra", "1"),
    ];
    expect(resolve(u, ["app"])).toEqual(["base=1", "lib=1", "app=1"]);
  });

  it("with recommends, adds what apt would: installable recommendations and theirs, skipping the impossible", () => {
    const u = [
      pkg("app", "1", { Depends: "lib", Recommends: "extra | other, gone, lib (>= 5)" }),
      pkg("lib", "1", { Recommends: "helper" }),
      pkg("extra", "1", { Depends: "base", Recommends: "deep" }),
      pkg("other", "1"),
      pkg("helper", "1", { Conflicts: "app" }),
      pkg("deep", "1"),
      pkg("base", "1"),
    ];
    const got = names(resolvePackages(u, { names: ["app"], arch: "amd64", recommends: true }));
    // extra (first alternative) and its own recommendation deep; gone does not exist, lib 5 neither,
    // and helper conflicts with app: skipped, as apt skips them.
    expect(got.sort()).toEqual(["app=1", "base=1", "deep=1", "extra=1", "lib=1"]);
    expect(resolve(u, ["app"])).toEqual(["lib=1", "app=1"]);
  });

  it("keeps a dependency cycle together, in name order", () => {
    const u = [pkg("zz", "1", { Depends: "aa" }), pkg("aa", "1", { Depends: "mm" }), pkg("mm", "1", { Depends: "zz, base" }), pkg("base", "1"), pkg("top", "1", { Depends: "mm" })];
    expect(resolve(u, ["top"])).toEqual(["base=1", "aa=1", "mm=1", "zz=1", "top=1"]);
  });

  it("gives the same list in the same order whatever the order of the universe", () => {
    const u = [
      pkg("app", "1", { Depends: "lib-a | lib-b, virt, tool (>= 1)" }),
      pkg("lib-a", "1", { Depends: "base" }),
      pkg("lib-b", "1"),
      pkg("prov-z", "1", { Provides: "virt", Priority: "optional" }),
      pkg("prov-y", "1", { Provides: "virt", Priority: "optional" }),
      pkg("tool", "1"),
      pkg("tool", "2", { Depends: "base (>= 1)" }),
      pkg("base", "1"),
      pkg("base", "1", { Architecture: "all" }),
    ];
    const expected = resolve(u, ["app"]);
    expect(expected).toEqual(["base=1", "lib-a=1", "prov-y=1", "tool=2", "app=1"]);
    for (let seed = 1; seed <= 8; seed++) expect(resolve(shuffled(u, seed), ["app"])).toEqual(expected);
    // The same version twice (amd64 and all): the native build wins, whatever the order.
    for (let seed = 1; seed <= 4; seed++) expect(resolvePackages(shuffled(u, seed), { names: ["base"], arch: "amd64" })[0]!.architecture).toBe("amd64");
  });
});

describe("alternatives", () => {
  const u = [pkg("app", "1", { Depends: "a | b" }), pkg("a", "1"), pkg("b", "1"), pkg("c", "1", { Depends: "b" })];

  it("takes the first alternative that can be satisfied", () => {
    expect(resolve(u, ["app"])).toEqual(["a=1", "app=1"]);
    const v = [pkg("app", "1", { Depends: "a (>= 2) | b" }), pkg("a", "1"), pkg("b", "1")];
    expect(resolve(v, ["app"])).toEqual(["b=1", "app=1"]);
  });

  it("prefers an alternative that is already chosen or requested", () => {
    expect(resolve(u, ["app", "b"])).toEqual(["b=1", "app=1"]);
    expect(resolve(u, ["c", "app"])).toEqual(["b=1", "app=1", "c=1"]);
  });

  it("explains a group none of whose alternatives can be satisfied", () => {
    const v = [pkg("app", "1.0", { Depends: "libfoo (>= 2) | libbar" }), pkg("libfoo", "1.4")];
    expect(failure(v, ["app"])).toBe("cannot install app: app 1.0 depends on libfoo (>= 2) | libbar, but only libfoo 1.4 is available and no package provides libbar");
  });
});

describe("virtual packages", () => {
  it("satisfies a dependency with a provider, preferring a real package of that name, then Priority, then name", () => {
    const u = [
      pkg("app", "1", { Depends: "awk" }),
      pkg("gawk", "1", { Provides: "awk", Priority: "optional" }),
      pkg("mawk", "1", { Provides: "awk", Priority: "required" }),
      pkg("busybox", "1", { Provides: "awk", Priority: "optional" }),
    ];
    expect(resolve(u, ["app"])).toEqual(["mawk=1", "app=1"]);
    expect(resolve([...u, pkg("awk", "1")], ["app"])).toEqual(["awk=1", "app=1"]);
    expect(resolve(u.filter((p) => p.name !== "mawk"), ["app"])).toEqual(["busybox=1", "app=1"]);
  });

  it("uses a provider that is already chosen", () => {
    const u = [pkg("app", "1", { Depends: "awk" }), pkg("gawk", "1", { Provides: "awk", Priority: "optional" }), pkg("mawk", "1", { Provides: "awk", Priority: "required" })];
    expect(resolve(u, ["gawk", "app"])).toEqual(["gawk=1", "app=1"]);
  });

  it("satisfies a versioned dependency only with a provided version that matches", () => {
    const u = [
      pkg("app", "1.0", { Depends: "libabi (>= 2)" }),
      pkg("unversioned", "9", { Provides: "libabi" }),
      pkg("old-impl", "5", { Provides: "libabi (= 1.5)" }),
    ];
    expect(failure(u, ["app"])).toBe(
      "cannot install app: app 1.0 depends on libabi (>= 2) but no provider of libabi matches (old-impl provides libabi 1.5, unversioned provides it without a version)",
    );
    expect(resolve([...u, pkg("new-impl", "1", { Provides: "libabi (= 2.1)" })], ["app"])).toEqual(["new-impl=1", "app=1.0"]);
    // An unversioned dependency takes any provider (both optional: the first by name).
    expect(resolve([pkg("app", "1", { Depends: "libabi" }), ...u.slice(1)], ["app"])).toEqual(["old-impl=5", "app=1"]);
  });
});

describe("conflicts and breaks", () => {
  it("refuses a conflict between chosen packages, naming who required them", () => {
    const u = [pkg("qux", "1.1", { Depends: "baz" }), pkg("baz", "2.0"), pkg("app", "1.0", { Conflicts: "baz" })];
    expect(failure(u, ["qux", "app"])).toBe("cannot install app: app 1.0 conflicts with baz 2.0 (required by qux 1.1)");
    // Declared the other way round.
    const v = [pkg("qux", "1.1", { Depends: "baz" }), pkg("baz", "2.0", { Breaks: "app (<< 2)" }), pkg("app", "1.0")];
    expect(failure(v, ["qux", "app"])).toBe("cannot install app: baz 2.0 (required by qux 1.1) breaks app 1.0");
  });

  it("backtracks over alternatives to avoid a conflict", () => {
    const u = [pkg("app", "1", { Depends: "impl-a | impl-b, tool" }), pkg("impl-a", "1", { Breaks: "tool (<< 3)" }), pkg("impl-b", "1"), pkg("tool", "2.0")];
    expect(resolve(u, ["app"])).toEqual(["impl-b=1", "tool=2.0", "app=1"]);
    // A Breaks whose version does not match is no conflict.
    const v = [...u.slice(0, 3), pkg("tool", "3.0")];
    expect(resolve(v, ["app"])).toEqual(["impl-a=1", "tool=3.0", "app=1"]);
  });

  it("backtracks over versions and providers, and across a conflict found deeper down", () => {
    const u = [
      pkg("app", "1", { Depends: "mta, helper" }),
      pkg("exim", "4", { Provides: "mta", Conflicts: "mta", Priority: "important", Depends: "libold" }),
      pkg("postfix", "3", { Provides: "mta", Conflicts: "mta", Priority: "optional" }),
      pkg("libold", "1"),
      pkg("helper", "2", { Conflicts: "libold" }),
    ];
    // exim (the preferred provider) pulls libold, which helper conflicts with: postfix it is.
    expect(resolve(u, ["app"])).toEqual(["helper=2", "postfix=3", "app=1"]);
  });

  it("lets a package conflict with a virtual name it provides itself, but not with another provider", () => {
    const u = [pkg("exim", "4", { Provides: "mta", Conflicts: "mta" }), pkg("postfix", "3", { Provides: "mta", Conflicts: "mta" })];
    expect(resolve(u, ["exim"])).toEqual(["exim=4"]);
    expect(failure(u, ["exim", "postfix"])).toBe("cannot install postfix: postfix 3 conflicts with exim 4 (requested)");
  });

  it("names the chain of a conflict met deep in the tree", () => {
    const u = [pkg("top", "1", { Depends: "left, right" }), pkg("left", "1", { Depends: "baz" }), pkg("baz", "2.0"), pkg("right", "1", { Depends: "app" }), pkg("app", "1.0", { Conflicts: "baz" })];
    expect(failure(u, ["top"])).toBe("cannot install top: top 1 depends on right; right 1 depends on app; app 1.0 conflicts with baz 2.0 (required by left 1)");
  });
});

describe("the search bound", () => {
  it("gives up after a bounded number of attempts on a hopeless search, naming the first problem", () => {
    // 2^16 combinations of alternatives, none of which can live with zz: chronological
    // backtracking would try them all.
    const u: BinaryPackage[] = [];
    const groups: string[] = [];
    for (let i = 0; i < 16; i++) {
      groups.push(`c${i} | d${i}`);
      u.push(pkg(`c${i}`, "1"), pkg(`d${i}`, "1"));
    }
    u.push(pkg("app", "1", { Depends: [...groups, "zz"].join(", ") }), pkg("zz", "1", { Conflicts: "c0, d0" }));
    const message = failure(u, ["app"]);
    expect(message).toBe("gave up after 20000 attempts to find a consistent set of packages; first problem: cannot install app: app 1 depends on zz; zz 1 conflicts with c0 1 (required by app 1)");
  });
});

describe("architectures", () => {
  it("uses packages of the image's architecture and all, and says when a name exists only for another", () => {
    const u = [pkg("app", "1", { Depends: "data, lib32" }), pkg("data", "1", { Architecture: "all" }), pkg("lib32", "1", { Architecture: "i386" })];
    expect(failure(u, ["app"])).toBe("cannot install app: app 1 depends on lib32 but lib32 exists only for i386, not amd64");
    expect(resolve(u, ["data"])).toEqual(["data=1"]);
  });

  it("satisfies pkg:any only with a Multi-Arch: allowed package", () => {
    const u = [pkg("tool", "1", { Depends: "python3:any" }), pkg("python3", "3.11", { "Multi-Arch": "allowed" })];
    expect(resolve(u, ["tool"])).toEqual(["python3=3.11", "tool=1"]);
    const v = [u[0]!, pkg("python3", "3.11")];
    expect(failure(v, ["tool"])).toBe("cannot install tool: tool 1 depends on python3:any but python3 3.11 is not Multi-Arch: allowed, so it cannot satisfy python3:any");
  });

  it("satisfies :native and an explicit architecture with packages of that architecture (all counts as native)", () => {
    const u = [pkg("tool", "1", { Depends: "perl:native, data:amd64" }), pkg("perl", "5", { "Multi-Arch": "allowed" }), pkg("data", "1", { Architecture: "all" })];
    expect(resolve(u, ["tool"])).toEqual(["data=1", "perl=5", "tool=1"]);
  });
});

describe("local packages", () => {
  const universe = [pkg("app", "1.0", { Depends: "libc6" }), pkg("libc6", "2.36"), pkg("libssl3", "3.0")];

  it("installs local packages always, in place of the universe's of the same name, with their dependencies", () => {
    const mine = pkg("app", "0.5", { Depends: "libssl3" });
    expect(resolve(universe, ["app (>= 1)"].slice(0, 0), [mine])).toEqual(["libssl3=3.0", "app=0.5"]);
    expect(resolve(universe, ["libc6"], [mine])).toEqual(["libc6=2.36", "libssl3=3.0", "app=0.5"]);
    // The request is met by the local package, not by the universe's higher version.
    expect(failure(universe, ["app (>= 1)"], [mine])).toBe("cannot install app (>= 1): only 0.5 is available");
  });

  it("names the local package whose dependency cannot be met, and refuses a foreign architecture", () => {
    expect(failure(universe, [], [pkg("mine", "1", { Depends: "libgone" })])).toBe("cannot install mine (a local package): mine 1 depends on libgone, which no package provides");
    expect(failure(universe, [], [pkg("mine", "1", { Architecture: "arm64" })])).toBe("cannot install mine (a local package): it is built for arm64, not amd64");
  });

  it("refuses local packages that conflict with each other", () => {
    expect(failure(universe, [], [pkg("one", "1", { Conflicts: "two" }), pkg("two", "1")])).toBe("cannot install two (a local package): one 1 (a local package) conflicts with two 1");
  });
});

describe("requests", () => {
  it("refuses what is not a package name", () => {
    let caught: unknown;
    try {
      resolvePackages([], { names: ["a, b"], arch: "amd64" });
    } catch (err) {
      caught = err;
    }
    expect(isKilnError(caught, "badRequest")).toBe(true);
    expect((caught as Error).message).toBe('cannot install "a, b": give one package (with an optional version) per name');
  });

  it("resolves nothing to nothing", () => {
    expect(resolve([pkg("a", "1")], [])).toEqual([]);
  });
});
