import { describe, expect, it } from "vitest";
import { KilnError } from "../../src/domain/errors.js";
import { matchFiql, parseFiql } from "../../src/domain/fiql.js";

function refusal(text: string): string {
  try {
    parseFiql(text);
  } catch (err) {
    expect(err).toBeInstanceOf(KilnError);
    expect((err as KilnError).status).toBe(400);
    return (err as Error).message;
  }
  throw new Error(`${text} was accepted`);
}

const bundle = { name: "nginx", version: "1.0", size: 42, created: new Date("2024-05-01T00:00:00Z"), targetFormat: { name: "Docker" } };
const matches = (q: string, item: object = bundle): boolean => matchFiql(parseFiql(q), (path) => path.split(".").reduce<unknown>((v, k) => (v as Record<string, unknown> | undefined)?.[k], item));

describe("FIQL", () => {
  it("reads the forms UForge's documents and hammr send", () => {
    expect(parseFiql("name=='nginx';version=='1.0'")).toMatchObject({
      kind: "and",
      items: [
        { selector: "name", operator: "==", value: "nginx", at: 1, valueAt: 7 },
        { selector: "version", operator: "==", value: "1.0", at: 15 },
      ],
    });
    expect(parseFiql("name==bash")).toMatchObject({ selector: "name", value: "bash", wildcard: false });
    expect(parseFiql("name=='*nginx*'")).toMatchObject({ value: "*nginx*", wildcard: true });
    expect(parseFiql("targetFormat.name=='x'")).toMatchObject({ selector: "targetFormat.name" });
    expect(parseFiql('name=="it\\"s"')).toMatchObject({ value: 'it"s' });
    expect(parseFiql("name=='a,b;c'")).toMatchObject({ value: "a,b;c" });
  });

  it("binds ; tighter than , and groups with parentheses", () => {
    expect(parseFiql("a==1,b==2;c==3")).toMatchObject({ kind: "or", items: [{ selector: "a" }, { kind: "and" }] });
    expect(parseFiql("(a==1,b==2);c==3")).toMatchObject({ kind: "and", items: [{ kind: "or" }, { selector: "c" }] });
    expect(matches("name==apache,name==nginx;version=='1.0'")).toBe(true);
    expect(matches("(name==apache,name==nginx);version=='2.0'")).toBe(false);
  });

  it("matches ==, != and wildcards without case, numbers and dates by value", () => {
    expect(matches("name=='NGINX'")).toBe(true);
    expect(matches("name==ngin")).toBe(false);
    expect(matches("name==*gin*")).toBe(true);
    expect(matches("name==ng*x")).toBe(true);
    expect(matches("name==*a*")).toBe(false);
    expect(matches("name!=*a*")).toBe(true);
    expect(matches("description!=x")).toBe(true);
    expect(matches("description==x")).toBe(false);
    expect(matches("size==42;size=gt=41;size=lt=43;size=ge=42;size=le=42")).toBe(true);
    expect(matches("size=gt=42")).toBe(false);
    expect(matches("created=ge=2024-05-01T00:00:00Z;created=lt=2024-05-02")).toBe(true);
    expect(matches("targetFormat.name==docker")).toBe(true);
  });

  it("matches many wildcards against a long text (a backtracking regular expression would not finish)", () => {
    expect(matches(`name=='${"*a".repeat(40)}*b'`, { name: "a".repeat(20_000) })).toBe(false);
    expect(matches(`name=='${"*a".repeat(40)}*b'`, { name: `${"a".repeat(20_000)}b` })).toBe(true);
  });

  it("refuses malformed queries with the position of the fault", () => {
    expect(refusal("name")).toMatch(/at character 5: expected an operator/);
    expect(refusal("name=='nginx'version=='1'")).toMatch(/at character 14: expected "," or ";"/);
    expect(refusal("name==")).toMatch(/at character 7: expected a value after "name=="/);
    expect(refusal("name=='nginx")).toMatch(/at character 7: the quoted value is not closed/);
    expect(refusal("(name=='*nginx*'")).toMatch(/at character 17: the parenthesis opened at character 1 is not closed/);
    expect(refusal("name==a;")).toMatch(/at character 9: expected a field name, got the end/);
    expect(refusal("name=gt=*x")).toMatch(/at character 9: wildcards \(\*\) only go with == and !=/);
    expect(refusal("1name==x")).toMatch(/at character 1: expected a field name/);
    expect(refusal("name==a'b")).toMatch(/at character 8: a quote/);
    expect(() => matches("size==big")).toThrow(/size is a number, got "big" \(query character 7\)/);
  });
});
