/**
 * Encryption at rest for the secrets Kiln must be able to read back (registry passwords and
 * tokens, API-key secrets used to check signatures): AES-256-GCM with a random 96-bit nonce per
 * value. The key comes from `KILN_SECRET_KEY` (any string; stretched with SHA-256 — or 64 hex /
 * 44 base64 characters used as is), else from `<dataDir>/secret.key`, created with mode 0600 on
 * first start.
 */
import { createCipheriv, createDecipheriv, createHash, randomBytes } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import path from "node:path";
import { KilnError } from "../domain/errors.js";

const VERSION = "v1";

export class SecretBox {
  private constructor(private readonly key: Buffer) {}

  /** A box from the configured key, or from (a new) key file in the data directory. */
  static fromConfig(secretKey: string | undefined, dataDir: string): SecretBox {
    if (secretKey) return new SecretBox(deriveKey(secretKey));
    const file = path.join(dataDir, "secret.key");
    if (!existsSync(file)) {
      mkdirSync(dataDir, { recursive: true });
      writeFileSync(file, randomBytes(32).toString("base64") + "\n", { mode: 0o600, flag: "wx" });
    }
    const mode = statSync(file).mode & 0o777;
    if (mode & 0o077) chmodSync(file, 0o600);
    return new SecretBox(deriveKey(readFileSync(file, "utf8").trim()));
  }

  static fromKey(key: Buffer): SecretBox {
    if (key.length !== 32) throw new Error("a SecretBox key is 32 bytes");
    return new SecretBox(key);
  }

  encrypt(plain: string): string {
    const iv = randomBytes(12);
    const cipher = createCipheriv("aes-256-gcm", this.key, iv);
    const data = Buffer.concat([cipher.update(plain, "utf8"), cipher.final()]);
    return `${VERSION}:${iv.toString("base64")}:${cipher.getAuthTag().toString("base64")}:${data.toString("base64")}`;
  }

  decrypt(sealed: string): string {
    const [version, ivB64, tagB64, dataB64] = sealed.split(":");
    if (version !== VERSION || !ivB64 || !tagB64 || dataB64 === undefined) {
      throw new KilnError("internal", "a stored secret has an unknown format");
    }
    try {
      const decipher = createDecipheriv("aes-256-gcm", this.key, Buffer.from(ivB64, "base64"));
      decipher.setAuthTag(Buffer.from(tagB64, "base64"));
      return Buffer.concat([decipher.update(Buffer.from(dataB64, "base64")), decipher.final()]).toString("utf8");
    } catch (err) {
      throw new KilnError("internal", "a stored secret cannot be decrypted: was KILN_SECRET_KEY changed?", { cause: err });
    }
  }
}

function deriveKey(material: string): Buffer {
  if (/^[0-9a-f]{64}$/i.test(material)) return Buffer.from(material, "hex");
  if (/^[A-Za-z0-9+/]{43}=$/.test(material)) return Buffer.from(material, "base64");
  return createHash("sha256").update(material, "utf8").digest();
}
