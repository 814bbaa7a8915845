/**
 * UForge's API-key signature, and the one way Kiln changes it. A client appends
 * `apiKey=<public key>` to the URL it calls, signs the URL up to there with its secret
 * (`base64(HMAC-SHA1(secret, text))`) and appends `&signature=<urlencoded signature>` last.
 *
 * UForge signs the URL alone, whatever the method: whoever sees one signed URL (a proxy log,
 * browser history) could replay it as a `DELETE` or a `PUT`. Kiln binds a signature to its
 * method: `GET` and `HEAD` keep UForge's text (the URL), every other method signs
 * `<METHOD> <URL>` — `DELETE http://host/api/users/alice/mysoftware/3?apiKey=...`. The `uforge`
 * scheme (KILN_APIKEY_SIGNATURES=uforge) accepts the URL alone for every method again, for UForge
 * clients that sign writes that way. Shared by the server (verification) and the SDK (signing).
 */
import { createHmac } from "node:crypto";

/** How a server checks signatures of methods other than GET and HEAD. */
export type SignatureScheme = "kiln" | "uforge";

export const SIGNATURE_SCHEMES: readonly SignatureScheme[] = ["kiln", "uforge"];

/** Whether a method's signature covers the URL alone (UForge's scheme, kept for reads). */
export function signsUrlOnly(method: string): boolean {
  const m = method.toUpperCase();
  return m === "GET" || m === "HEAD";
}

/** What a client signs for `method` on `urlWithApiKey` (the URL up to and including `apiKey=...`). */
export function signedText(method: string, urlWithApiKey: string): string {
  return signsUrlOnly(method) ? urlWithApiKey : `${method.toUpperCase()} ${urlWithApiKey}`;
}

/** `base64(HMAC-SHA1(secret, text))`, before URL encoding. */
export function apiKeySignature(secret: string, text: string): Buffer {
  return createHmac("sha1", secret).update(text, "utf8").digest();
}

/**
 * Appends `&signature=` to a URL that ends with its `apiKey` parameter, the way Kiln checks it
 * for `method` (default `GET`: UForge's URL-only signature).
 */
export function signUrl(urlWithApiKey: string, secret: string, method = "GET"): string {
  const signature = apiKeySignature(secret, signedText(method, urlWithApiKey)).toString("base64");
  return `${urlWithApiKey}&signature=${encodeURIComponent(signature)}`;
}
