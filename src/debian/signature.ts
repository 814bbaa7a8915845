/**
 * OpenPGP checks of a repository's `InRelease` (clearsigned) or `Release` + `Release.gpg`
 * (detached), against the keyring a distribution is configured with — the one thing that makes
 * every hash below it trustworthy.
 */
import { readdir, readFile, stat } from "node:fs/promises";
import path from "node:path";
import type * as openpgp from "openpgp";
import { KilnError } from "../domain/errors.js";

/** openpgp is large: loaded on first use, so builds from an unsigned local mirror never pay for it. */
const pgp = (): Promise<typeof openpgp> => import("openpgp");

/** The public keys of a keyring file (or directory of them), with where they came from. */
export interface Keyring {
  readonly source: string;
  readonly keys: openpgp.Key[];
}

/** A verified text and the fingerprint of the key whose signature verified. */
export interface VerifiedText {
  text: string;
  fingerprint: string;
}

const keyringCache = new Map<string, { stamp: string; keyring: Promise<Keyring> }>();

async function readKeyFile(file: string): Promise<openpgp.Key[]> {
  const bytes = await readFile(file);
  const head = bytes.subarray(0, 64).toString("latin1");
  if (head.includes("-----BEGIN PGP")) return (await pgp()).readKeys({ armoredKeys: bytes.toString("utf8") });
  // GnuPG's own keybox format is not OpenPGP; apt cannot read it either.
  if (bytes.length >= 12 && bytes.subarray(8, 12).toString("latin1") === "KBXf") {
    throw new Error("it is a GnuPG keybox, not an OpenPGP keyring (export it with gpg --export)");
  }
  return (await pgp()).readKeys({ binaryKeys: new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength) });
}

/**
 * Loads a keyring: a binary OpenPGP key file (`debian-archive-keyring.gpg`), an armored one
 * (`.asc`), or a directory of such files (like apt's `trusted.gpg.d`). Kept in memory until the
 * file changes.
 * @throws KilnError `repositoryFailed` when the keyring is missing, unreadable or empty.
 */
export async function loadKeyring(file: string): Promise<Keyring> {
  let st;
  try {
    st = await stat(file);
  } catch (err) {
    throw new KilnError("repositoryFailed", `cannot read keyring ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { cause: err });
  }
  const stamp = `${st.mtimeMs}:${st.size}:${st.isDirectory()}`;
  const hit = keyringCache.get(file);
  if (hit && hit.stamp === stamp) return hit.keyring;
  const keyring = (async (): Promise<Keyring> => {
    try {
      let keys: openpgp.Key[];
      if (st.isDirectory()) {
        const names = (await readdir(file)).filter((n) => n.endsWith(".gpg") || n.endsWith(".asc")).sort();
        keys = (await Promise.all(names.map((n) => readKeyFile(path.join(file, n))))).flat();
      } else {
        keys = await readKeyFile(file);
      }
      if (keys.length === 0) throw new Error("it holds no public key");
      return { source: file, keys };
    } catch (err) {
      throw new KilnError("repositoryFailed", `cannot use keyring ${file}: ${(err as Error).message}`, { cause: err });
    }
  })();
  keyringCache.set(file, { stamp, keyring });
  keyring.catch(() => keyringCache.delete(file));
  return keyring;
}

/** The fingerprint of the keyring's key (or subkey) with this key id. */
function fingerprintOf(keyring: Keyring, keyID: openpgp.KeyID): string {
  for (const key of keyring.keys) {
    const sub = key.getKeys(keyID)[0];
    if (sub) return sub.getFingerprint().toUpperCase();
  }
  return keyID.toHex().toUpperCase();
}

/** Resolves when at least one signature verifies; otherwise explains the first failure. */
async function firstGoodSignature(
  signatures: ReadonlyArray<{ keyID: openpgp.KeyID; verified: Promise<true> }>,
  keyring: Keyring,
  what: string,
): Promise<string> {
  if (signatures.length === 0) throw new KilnError("integrityFailed", `${what} carries no signature`);
  const problems: string[] = [];
  for (const sig of signatures) {
    try {
      await sig.verified;
      return fingerprintOf(keyring, sig.keyID);
    } catch (err) {
      const id = sig.keyID.toHex().toUpperCase();
      const known = keyring.keys.some((k) => k.getKeys(sig.keyID).length > 0);
      problems.push(known ? `the signature by key ${id} is invalid (${(err as Error).message})` : `it is signed by key ${id}, which is not in keyring ${keyring.source}`);
    }
  }
  throw new KilnError("integrityFailed", `${what} does not verify: ${problems.join("; ")}`);
}

/**
 * Verifies a clearsigned document (`InRelease`) and returns the signed text only — never the
 * bytes around the signature block, which an attacker could add to.
 * @throws KilnError `integrityFailed` when no signature by a key of the keyring verifies.
 */
export async function verifyClearsigned(document: string, keyring: Keyring, what: string): Promise<VerifiedText> {
  let message;
  try {
    message = await (await pgp()).readCleartextMessage({ cleartextMessage: document });
  } catch (err) {
    throw new KilnError("integrityFailed", `${what} is not a clearsigned OpenPGP message: ${(err as Error).message}`, { cause: err });
  }
  let result;
  try {
    result = await (await pgp()).verify({ message, verificationKeys: keyring.keys });
  } catch (err) {
    throw new KilnError("integrityFailed", `${what} cannot be verified: ${(err as Error).message}`, { cause: err });
  }
  const fingerprint = await firstGoodSignature(result.signatures, keyring, what);
  return { text: result.data, fingerprint };
}

/**
 * Verifies a detached signature (`Release.gpg`, armored or binary) over exact bytes.
 * @throws KilnError `integrityFailed` when no signature by a key of the keyring verifies.
 */
export async function verifyDetached(data: Uint8Array, signature: Uint8Array, keyring: Keyring, what: string): Promise<string> {
  let sig;
  try {
    const head = Buffer.from(signature.subarray(0, 64)).toString("latin1");
    sig = head.includes("-----BEGIN PGP")
      ? await (await pgp()).readSignature({ armoredSignature: Buffer.from(signature).toString("utf8") })
      : await (await pgp()).readSignature({ binarySignature: signature });
  } catch (err) {
    throw new KilnError("integrityFailed", `${what}: the detached signature cannot be read: ${(err as Error).message}`, { cause: err });
  }
  let result;
  try {
    const message = await (await pgp()).createMessage({ binary: data });
    result = await (await pgp()).verify({ message, signature: sig, verificationKeys: keyring.keys, format: "binary" });
  } catch (err) {
    throw new KilnError("integrityFailed", `${what} cannot be verified: ${(err as Error).message}`, { cause: err });
  }
  return firstGoodSignature(result.signatures, keyring, what);
}

/**
 * The text of a clearsigned document without checking it, for a distribution configured with
 * `keyring: none` whose mirror only has an `InRelease`.
 */
export async function unverifiedCleartext(document: string): Promise<string> {
  if (!document.startsWith("-----BEGIN PGP SIGNED MESSAGE-----")) return document;
  try {
    const message = await (await pgp()).readCleartextMessage({ cleartextMessage: document });
    return message.getText();
  } catch (err) {
    throw new KilnError("repositoryFailed", `InRelease is not a readable clearsigned message: ${(err as Error).message}`, { cause: err });
  }
}
