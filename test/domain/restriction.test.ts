import { describe, expect, it } from "vitest";
import { allowsDistribution, evaluateRule, parseRestrictionRule } from "../../src/domain/restriction.js";
import { KilnError } from "../../src/domain/errors.js";

const debian = { family: "linux", pkgType: "deb", name: "Debian", version: "12", arch: "x86_64" };
const centos = { family: "linux", pkgType: "rpm", name: "CentOS", version: "7", arch: "x86_64" };
const docker = { name: "Docker", type: "container" };
const openshift = { name: "OpenShift", type: "container" };

function evalOn(rule: string, dist: Record<string, string>, fmt: Record<string, string>): boolean {
  return evaluateRule(parseRestrictionRule(rule), { Distribution: dist, TargetFormat: fmt });
}

describe("restriction rules", () => {
  it("evaluates the README's example", () => {
    const rule = "Distribution#name=Debian && TargetFormat#type=container";
    expect(evalOn(rule, debian, docker)).toBe(true);
    expect(evalOn(rule, centos, docker)).toBe(false);
    expect(evalOn(rule, debian, { name: "KVM", type: "virtual" })).toBe(false);
  });

  it("gives && precedence over || and honours parentheses and negation", () => {
    expect(evalOn("Distribution#name=CentOS || Distribution#name=Debian && TargetFormat#name=OpenShift", debian, docker)).toBe(false);
    expect(evalOn("(Distribution#name=CentOS || Distribution#name=Debian) && TargetFormat#name!=OpenShift", debian, docker)).toBe(true);
    expect(evalOn("(Distribution#name=CentOS || Distribution#name=Debian) && TargetFormat#name!=OpenShift", debian, openshift)).toBe(false);
    expect(evalOn("!(TargetFormat#name=Docker)", debian, docker)).toBe(false);
  });

  it("compares without case and with * wildcards and quoted values", () => {
    expect(evalOn("Distribution#name=debian", debian, docker)).toBe(true);
    expect(evalOn("Distribution#version=1*", debian, docker)).toBe(true);
    expect(evalOn("Distribution#version=7*", debian, docker)).toBe(false);
    expect(evalOn("TargetFormat#name='Docker'", debian, docker)).toBe(true);
  });

  it("allows a distribution when some format satisfies the rule", () => {
    const rule = parseRestrictionRule("Distribution#name=Debian && TargetFormat#name=OpenShift");
    expect(allowsDistribution(rule, debian, [docker, openshift])).toBe(true);
    expect(allowsDistribution(rule, debian, [docker])).toBe(false);
    expect(allowsDistribution(undefined, centos, [docker])).toBe(true);
  });

  it.each([
    ["Distribution#name=Debian &&", 28, "expected Distribution or TargetFormat"],
    ["Distribution#colour=red", 14, 'unknown field "colour"'],
    ["Distribution#name Debian", 19, 'expected "=" or "!="'],
    ["(Distribution#name=Debian", 26, 'expected ")"'],
    ["Distribution#name=Debian)", 25, 'unexpected ")"'],
    ["Distribution#name=\"Debian", 19, "unterminated quoted value"],
    ["Platform#name=x", 1, "expected Distribution or TargetFormat"],
    ["Distribution#name=Debian & TargetFormat#type=container", 26, 'unexpected character "&"'],
  ])("refuses %j with the position of the error", (rule, pos, what) => {
    try {
      parseRestrictionRule(rule);
      expect.unreachable("the rule should not parse");
    } catch (err) {
      expect(err).toBeInstanceOf(KilnError);
      expect((err as KilnError).status).toBe(400);
      expect((err as KilnError).message).toContain(`position ${pos}`);
      expect((err as KilnError).message).toContain(what);
    }
  });

  it("treats an empty rule as no restriction", () => {
    expect(parseRestrictionRule("   ")).toBeUndefined();
    expect(evaluateRule(undefined, {})).toBe(true);
  });
});
