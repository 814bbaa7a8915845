import { describe, expect, it } from "vitest";
import { imageFileName, registeringName } from "../../src/domain/image-names.js";
import { normaliseRepoTag } from "../../src/oci/docker-archive.js";

describe("image names", () => {
  it.each([
    [{ name: "hello", version: "1.0" }, "hello:1.0"],
    [{ name: "My App", version: "2.0 beta" }, "my-app:2.0-beta"],
    [{ name: "a..b__c", version: null }, "a-b-c:latest"],
    [{ name: "--Weird!!Name--", version: "-1" }, "weird-name:1"],
    [{ name: "日本", version: "1" }, "image:1"],
  ])("%j registers as %s, a valid docker reference", (img, expected) => {
    const name = registeringName(img);
    expect(name).toBe(expected);
    expect(normaliseRepoTag(name)).toBe(name);
  });

  it("names the download file after the image and its format", () => {
    expect(imageFileName({ name: "hello", version: "1.0", formatId: 1 })).toBe("hello-1.0-docker.tar.gz");
    expect(imageFileName({ name: "hello", version: null, formatId: 2 })).toBe("hello-latest-openshift.tar.gz");
  });
});
