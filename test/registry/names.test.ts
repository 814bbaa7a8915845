/**
 * Registry endpoints, repository names and tags: what is accepted, how it is normalised, and the
 * rule an error names.
 */
import { describe, expect, test } from "vitest";
import { KilnError } from "../../src/domain/errors.js";
import { assertTag, cloudId, normaliseRepository, parseRegistryEndpoint, registeringName } from "../../src/registry/names.js";

function errorOf(fn: () => unknown): KilnError {
  try {
    fn();
  } catch (err) {
    if (err instanceof KilnError) return err;
    throw err;
  }
  throw new Error("no error");
}

describe("parseRegistryEndpoint", () => {
  test.each([
    ["registry.example.com", "https://registry.example.com", "registry.example.com", false],
    ["registry.example.com:5000", "https://registry.example.com:5000", "registry.example.com:5000", false],
    ["https://Registry.Example.com/", "https://registry.example.com", "registry.example.com", false],
    ["https://registry.example.com:443", "https://registry.example.com", "registry.example.com", false],
    ["https://registry.example.com/v2/", "https://registry.example.com", "registry.example.com", false],
    ["http://127.0.0.1:5000", "http://127.0.0.1:5000", "127.0.0.1:5000", true],
    ["  ghcr.io  ", "https://ghcr.io", "ghcr.io", false],
    ["[::1]:5000", "https://[::1]:5000", "[::1]:5000", false],
    ["default-route-openshift-image-registry.apps.example.com", "https://default-route-openshift-image-registry.apps.example.com", "default-route-openshift-image-registry.apps.example.com", false],
  ])("%s → %s", (input, baseUrl, name, insecure) => {
    const e = parseRegistryEndpoint(input);
    expect(e).toMatchObject({ baseUrl, name, host: name, insecure, dockerHub: false });
  });

  test.each(["docker.io", "index.docker.io", "https://registry-1.docker.io", "registry.hub.docker.com"])("%s is Docker Hub", (input) => {
    expect(parseRegistryEndpoint(input)).toEqual({ baseUrl: "https://registry-1.docker.io", host: "registry-1.docker.io", name: "docker.io", insecure: false, dockerHub: true });
  });

  test.each([
    ["", /empty/],
    ["ftp://registry.example.com", /must use https:\/\//],
    ["https://registry.example.com/some/path", /must not have a path/],
    ["https://registry.example.com/?x=1", /query or fragment/],
    ["http://docker.io", /only reachable over https/],
    ["https://bad host", /not a URL/],
  ])("%j is refused", (input, rule) => {
    const err = errorOf(() => parseRegistryEndpoint(input));
    expect(err.kind).toBe("invalidField");
    expect(err.message).toMatch(rule);
  });

  test("credentials in the URL are refused without being repeated", () => {
    const err = errorOf(() => parseRegistryEndpoint("https://alice:hunter22@registry.example.com"));
    expect(err.kind).toBe("invalidField");
    expect(err.message).toMatch(/must not contain credentials/);
    expect(err.message).not.toContain("hunter22");
    const other = errorOf(() => parseRegistryEndpoint("https://alice:hunter22@registry.example.com/path"));
    expect(other.message).not.toContain("hunter22");
  });
});

describe("normaliseRepository", () => {
  const local = parseRegistryEndpoint("http://127.0.0.1:5000");
  const hub = parseRegistryEndpoint("docker.io");

  test.each(["kiln", "kiln/app", "a/b/c/d", "my-project/my_app", "ns/app.v2", "ns/a__b", "ns/a---b", "0/9"])("%s is valid", (name) => {
    expect(normaliseRepository(local, name)).toBe(name);
  });

  test.each([
    ["Kiln/App", /lower-case/],
    ["kiln/-app", /starting and ending with a letter or digit/],
    ["kiln/app-", /starting and ending/],
    ["kiln/a___b", /separated by/],
    ["kiln//app", /empty component/],
    ["/kiln", /empty component/],
    ["kiln/", /empty component/],
    ["kiln/a..b", /separated by/],
    ["kiln/app:tag", /invalid/],
    ["../etc", /invalid/],
    ["", /empty/],
  ])("%j is refused", (name, rule) => {
    const err = errorOf(() => normaliseRepository(local, name));
    expect(err.kind).toBe("invalidField");
    expect(err.message).toMatch(rule);
  });

  test("the whole reference name is limited to 255 characters", () => {
    const room = 255 - "127.0.0.1:5000/".length;
    expect(normaliseRepository(local, "a".repeat(room))).toHaveLength(room);
    expect(errorOf(() => normaliseRepository(local, "a".repeat(room + 1))).message).toMatch(/must not exceed 255/);
  });

  test("Docker Hub puts one-component names under library/", () => {
    expect(normaliseRepository(hub, "debian")).toBe("library/debian");
    expect(normaliseRepository(hub, "kiln/app")).toBe("kiln/app");
  });
});

describe("assertTag", () => {
  test.each(["latest", "v1.2.3", "1", "_x", "A-b_c.d", "a".repeat(128)])("%s is valid", (tag) => {
    expect(assertTag(tag)).toBe(tag);
  });
  test.each(["", ".hidden", "-x", "a/b", "a:b", "a".repeat(129), "é"])("%j is refused", (tag) => {
    const err = errorOf(() => assertTag(tag));
    expect(err.kind).toBe("invalidField");
    expect(err.message).toMatch(/1 to 128 letters/);
  });
});

test("cloudId and registeringName", () => {
  const e = parseRegistryEndpoint("docker.io");
  const digest = `sha256:${"ab".repeat(32)}`;
  expect(cloudId(e, "library/debian", digest)).toBe(`docker.io/library/debian@${digest}`);
  expect(registeringName(e, "kiln/app", "v1")).toBe("docker.io/kiln/app:v1");
});
