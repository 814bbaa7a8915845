/**
 * OpenSSL's subject hash and `openssl rehash`, and the Java trust store, checked against OpenSSL
 * itself on certificates made here with awkward names: mixed case and runs of blanks (which the
 * canonical form folds), non-ASCII UTF-8, multi-valued RDNs, two certificates with one subject
 * (a hash collision) and one certificate under two names (a duplicate rehash skips).
 */
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, test } from "vitest";
import { rehash } from "../../../src/rootfs/fixups/ca-certificates.js";
import { hashtableOrder, jksKeystore, readJks } from "../../../src/rootfs/fixups/java-cacerts.js";
import { pemBlocks, subjectHash } from "../../../src/rootfs/fixups/x509.js";

const dir = mkdtempSync(path.join(os.tmpdir(), "kiln-x509-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A self-signed certificate with this subject (openssl -subj syntax; `+` joins a multi-valued RDN). */
function cert(name: string, subject: string, extra: string[] = []): string {
  const file = path.join(dir, `${name}.pem`);
  execFileSync("openssl", ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "1", "-subj", subject, "-keyout", path.join(dir, `${name}.key`), "-out", file, ...extra], { stdio: "ignore" });
  return file;
}

const openssl = (file: string): string => execFileSync("openssl", ["x509", "-hash", "-noout", "-in", file], { encoding: "utf8" }).trim();
const ours = (file: string): string => subjectHash(pemBlocks(readFileSync(file, "utf8"))[0]!.der);

describe("the subject hash", () => {
  test("is OpenSSL's for names that its canonical form changes", () => {
    const files = [
      cert("plain", "/CN=Kiln Test Root"),
      cert("case-and-blanks", "/C=FR/O=  ACME   Corp  /OU=Build\tTeam/CN=MiXeD CaSe   CA"),
      cert("utf8", "/C=DE/O=Grüße GmbH/CN=Größte Prüfstelle  Ä", ["-utf8"]),
      cert("multi-rdn", "/O=Kiln/OU=b+CN=a/serialNumber=0042"),
      cert("printable", "/C=US/ST=  New   York /L=NYC/O=Example, Inc./CN=*.example.org"),
      cert("email", "/CN=Mail CA/emailAddress=CA@Example.ORG"),
    ];
    for (const f of files) expect(ours(f), path.basename(f)).toBe(openssl(f));
  });

  test("rehash links like `openssl rehash`: collisions numbered in name order, duplicates skipped, bundles and keys ignored", () => {
    const certs = path.join(dir, "certs");
    mkdirSync(certs);
    const a = cert("same-subject-a", "/CN=Colliding Subject");
    const b = cert("same-subject-b", "/CN=Colliding Subject");
    const c = cert("other", "/CN=Other");
    writeFileSync(path.join(certs, "zz-first.pem"), readFileSync(b));
    writeFileSync(path.join(certs, "aa-second.crt"), readFileSync(a));
    symlinkSync(c, path.join(certs, "other.pem"));
    writeFileSync(path.join(certs, "dup-of-other.cer"), readFileSync(c));
    writeFileSync(path.join(certs, "bundle.pem"), Buffer.concat([readFileSync(a), readFileSync(c)]));
    writeFileSync(path.join(certs, "readme.txt"), readFileSync(c));
    const files = readdirSync(certs).map((name) => ({ name, text: readFileSync(path.join(certs, name), "latin1") }));
    execFileSync("openssl", ["rehash", certs], { stdio: "ignore" });
    const theirs = readdirSync(certs)
      .filter((n) => /^[0-9a-f]{8}\.[0-9]+$/.test(n))
      .map((n) => [n, readlinkSync(path.join(certs, n))])
      .sort();
    expect(theirs.length).toBe(3);
    expect(rehash(files)).toEqual(theirs);
  });
});

describe("the Java trust store", () => {
  test("a JKS keystore that reads back, with the digest keytool checks", () => {
    const der = pemBlocks(readFileSync(cert("java", "/CN=Java Test"), "utf8"))[0]!.der;
    const store = jksKeystore([{ alias: "debian:Java_Test.pem", der }], "changeit", new Date(Date.UTC(2025, 0, 1)));
    expect(store.readUInt32BE(0)).toBe(0xfeedfeed);
    expect(store.readUInt32BE(4)).toBe(2);
    expect([...readJks(store)]).toEqual([["debian:java_test.pem", der]]);
    // The trailer is SHA-1(password as UTF-16BE, "Mighty Aphrodite", body): a store keytool accepts.
    const body = store.subarray(0, store.length - 20);
    const pass = Buffer.from("changeit".split("").flatMap((c) => [0, c.charCodeAt(0)]));
    expect(store.subarray(store.length - 20)).toEqual(createHash("sha1").update(pass).update("Mighty Aphrodite").update(body).digest());
  });

  test("entries come in java.util.Hashtable's order (buckets from the end, newest first, after rehashes)", () => {
    // By hand: "a".hashCode() = 97 → bucket 97 % 11 = 9, "b" → 10, "c" → 0; enumerated from 10 down.
    expect(hashtableOrder(["a", "b", "c"])).toEqual(["b", "a", "c"]);
    // Same bucket (11 apart: 97 and 108, "a" and "l"): the newer first.
    expect(hashtableOrder(["a", "l"])).toEqual(["l", "a"]);
    const many = Array.from({ length: 20 }, (_, i) => `debian:cert-${i}.pem`);
    expect(new Set(hashtableOrder(many))).toEqual(new Set(many));
    expect(hashtableOrder(many)).not.toEqual(many);
  });
});
