import { describe, expect, it } from "vitest";
import { KilnError } from "../../src/domain/errors.js";
import type { ErrorKind } from "../../src/domain/errors.js";
import { decode, encode } from "../../src/wire/index.js";
import { assertValidXml } from "../helpers/xsd.js";
import { containerTemplate, credAccountDocker, samples, status } from "./samples.js";

function expectRefused(kind: ErrorKind, run: () => unknown, message?: RegExp): void {
  let caught: unknown;
  try {
    run();
  } catch (err) {
    caught = err;
  }
  expect(caught).toBeInstanceOf(KilnError);
  expect((caught as KilnError).kind).toBe(kind);
  if (message) expect((caught as KilnError).message).toMatch(message);
}

describe("JSON encoding", () => {
  it("is one object without a root wrapper, fields in declaration order, lists as arrays", () => {
    const json = encode("containerTemplates", { containerTemplates: [{ uri: "t/1", dbId: 1 }, { dbId: 2 }], total: 2 }, "json");
    expect(json).toBe('{"total":2,"containerTemplates":[{"dbId":1,"uri":"t/1"},{"dbId":2}]}');
  });

  it("writes dates as ISO strings and xsiType for polymorphic objects", () => {
    const json = JSON.parse(encode("credAccounts", { total: 1, credAccounts: [credAccountDocker] }, "json")) as { credAccounts: Array<Record<string, unknown>> };
    const account = json.credAccounts[0]!;
    expect(account.xsiType).toBe("CredAccountDocker");
    expect(account.created).toBe("2026-03-01T09:30:00.000Z");
    expect(account.endpointUrl).toBe("http://127.0.0.1:5000");
    expect(Object.keys(account)).toEqual(["xsiType", "created", "dbId", "lastModified", "name", "uri", "targetPlatform", "endpointUrl", "login", "password"]);
  });

  it("omits null, undefined and unknown keys, and escapes strings", () => {
    expect(encode("mySoftware", { name: 'a "b"\n', version: null, description: undefined, colour: "red" } as object, "json")).toBe('{"name":"a \\"b\\"\\n"}');
  });

  it("spells non-finite floats as xs:float does, since JSON has no Infinity or NaN", async () => {
    expect(encode("galleryTemplate", { rating: 4.5 }, "json")).toBe('{"rating":4.5}');
    expect(encode("galleryTemplate", { rating: Infinity }, "json")).toBe('{"rating":"INF"}');
    expect(decode("galleryTemplate", '{"rating":"-INF"}', "json").value).toEqual({ rating: -Infinity });
    const xml = encode("galleryTemplate", { rating: Number.NaN }, "xml");
    expect(xml).toContain("<rating>NaN</rating>");
    await assertValidXml(xml);
    expect(decode("galleryTemplate", xml, "xml").value).toEqual({ rating: Number.NaN });
  });

  it("carries the same fields as the XML form", () => {
    for (const [root, value] of samples) {
      const fromXml = decode(root, encode(root, value, "xml"), "xml").value;
      const fromJson = decode(root, encode(root, value, "json"), "json").value;
      expect(fromJson).toEqual(fromXml);
    }
  });
});

describe("JSON decoding", () => {
  it.each(samples.map(([root, value], i) => [`${root} #${i}`, root, value] as const))("%s round-trips through JSON", (_label, root, value) => {
    expect(decode(root, encode(root, value, "json"), "json")).toEqual({ root, value });
  });

  it("reads a client's body, mirroring the README's XML examples", async () => {
    const body = JSON.stringify({
      xsiType: "PublishImageDocker",
      credAccount: { xsiType: "CredAccountDocker", uri: "users/alice/accounts/2" },
      namespace: "alice",
      repositoryName: "hello",
      tagName: "1.0",
      somethingNew: { nested: true },
    });
    const { value } = decode("publishImage", Buffer.from(body), "json");
    expect(value).toEqual({
      xsiType: "PublishImageDocker",
      credAccount: { xsiType: "CredAccountDocker", uri: "users/alice/accounts/2" },
      namespace: "alice",
      repositoryName: "hello",
      tagName: "1.0",
    });
    // What came in as JSON goes out as valid XML.
    await assertValidXml(encode("publishImage", value, "xml"));
  });

  it("reads dates with a zone offset and numbers as numbers", () => {
    const { value } = decode("status", '{"eta":"2026-03-02T18:46:00+01:00","percentage":42,"complete":false}', "json");
    expect(value).toEqual({ eta: status.eta, percentage: 42, complete: false });
  });

  it("reads null as absent", () => {
    expect(decode("image", '{"name":null,"compress":true}', "json").value).toEqual({ compress: true });
  });

  it("does not read fields from Object.prototype", () => {
    // `constructor` and friends are not UForge fields, but a field must never come from the prototype.
    expect(decode("image", "{}", "json").value).toEqual({});
    expect(decode("image", '{"__proto__":{"compress":true}}', "json").value).toEqual({});
  });

  it("chooses among several roots by xsiType, then by the fields used", () => {
    expect(decode(["containerTemplate", "uforgeError"], '{"statusCode":404,"requestUri":"/x"}', "json").root).toBe("uforgeError");
    expect(decode(["containerTemplate", "uforgeError"], '{"uri":"t/1"}', "json").root).toBe("containerTemplate");
    expect(decode(["image", "credAccount"], '{"xsiType":"CredAccountDocker","name":"n"}', "json").root).toBe("credAccount");
  });

  describe("refuses what the XML decoder refuses", () => {
    const cases: Array<[string, ErrorKind, string, string, RegExp]> = [
      ["malformed JSON", "malformedBody", "image", '{"compress": tru', /malformed JSON/],
      ["trailing garbage", "malformedBody", "image", '{"compress": true} x', /malformed JSON/],

      ["an array body", "wrongRoot", "image", "[1,2]", /expected a JSON object for <ns0:image>, got an array/],
      ["a string body", "wrongRoot", "image", '"image"', /got "image"/],
      ["a boolean given as a string", "invalidField", "image", '{"compress":"maybe"}', /^image\.compress: "maybe" is not a boolean$/],
      ["a boolean given as a string 'true'", "invalidField", "image", '{"compress":"true"}', /image\.compress: "true" is not a boolean/],
      ["a long given as a string", "invalidField", "image", '{"dbId":"7"}', /image\.dbId: "7" is not a long/],
      ["a fractional long", "invalidField", "image", '{"dbId":7.5}', /image\.dbId: 7.5 is not a long/],
      ["an int out of range", "invalidField", "image", '{"ebsVolumeSize":3000000000}', /is not an int/],
      ["a date that is not ISO", "invalidField", "image", '{"created":"March 1st"}', /image\.created: "March 1st" is not a dateTime/],
      ["a date as a number", "invalidField", "image", '{"created":1700000000000}', /image\.created: 1700000000000 is not a dateTime/],
      ["an enumeration", "invalidField", "containerTemplate", '{"distribution":{"arch":"sparc"}}', /containerTemplate\.distribution\.arch: "sparc" is not one of/],
      ["a string where an object is declared", "invalidField", "containerTemplate", '{"distribution":"Debian"}', /containerTemplate\.distribution: "Debian" is not a Distribution object/],
      ["an object where a list is declared", "invalidField", "containerTemplates", '{"containerTemplates":{"dbId":1}}', /containerTemplates\.containerTemplates: an object is not a list/],
      ["a bad list item", "invalidField", "containerTemplates", '{"containerTemplates":[{},{"dbId":"x"}]}', /containerTemplates\.containerTemplates\[1\]\.dbId: "x" is not a long/],
      ["a null list item", "invalidField", "containerTemplates", '{"containerTemplates":[null]}', /containerTemplates\.containerTemplates\[0\]: null is not a ContainerTemplate object/],
      ["a control character XML cannot carry", "invalidField", "image", '{"name":"a\\u0001b"}', /image\.name: contains U\+0001/],
      ["an abstract type without xsiType", "invalidField", "credAccount", '{"name":"x"}', /credAccount: CredAccount is abstract/],
      ["an unknown xsiType", "invalidField", "credAccount", '{"xsiType":"CredAccountMainframe"}', /unknown type "CredAccountMainframe"/],
      ["an xsiType that is not a subtype", "invalidField", "image", '{"xsiType":"CredAccountDocker"}', /type CredAccountDocker is not a Image/],
      ["an xsiType naming an abstract type", "invalidField", "image", '{"xsiType":"PublishImage"}', /type PublishImage is abstract/],
      ["a non-string xsiType", "invalidField", "credAccount", '{"xsiType":7}', /xsiType 7 is not a type name/],
    ];
    it.each(cases)("%s", (_label, kind, root, body, message) => {
      expectRefused(kind, () => decode(root, body, "json"), message);
    });

    it("invalid UTF-8", () => {
      expectRefused("malformedBody", () => decode("image", Buffer.from([0x7b, 0x22, 0xc3, 0x28, 0x22, 0x7d]), "json"), /not valid UTF-8/);
    });

    it("caps nesting depth", () => {
      let nested = "{}";
      for (let i = 0; i < 80; i++) nested = `{"subCategories":[${nested}]}`;
      expectRefused("malformedBody", () => decode("category", nested, "json"), /deeper than 64/);
    });
  });
});
