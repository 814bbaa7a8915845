/**
 * Just enough X.509 for `/etc/ssl/certs`: PEM blocks, the subject name of a certificate, and
 * OpenSSL's subject-name hash (`openssl x509 -hash`, the `<hash>.0` link names `openssl rehash`
 * makes), computed without running OpenSSL.
 *
 * The hash (OpenSSL 1.0+, `X509_NAME_hash_ex`) is the first four bytes, little endian, of the
 * SHA-1 of the name's canonical encoding (crypto/x509/x_name.c, `x509_name_canon`): each RDN's
 * SET re-encoded in DER with every string value that OpenSSL canonicalises (UTF8String,
 * PrintableString, T61String, IA5String, VisibleString, BMPString, UniversalString) converted
 * to UTF-8, stripped of leading and trailing white space, inner runs of white space collapsed to
 * one space, ASCII letters lowered, and encoded as a UTF8String; other values kept as they are;
 * the SETs concatenated without the outer SEQUENCE.
 */
import { createHash } from "node:crypto";

interface Tlv {
  tag: number;
  /** Offset of the first content byte, and of the byte after the element. */
  start: number;
  end: number;
  /** Offset of the tag byte. */
  head: number;
}

function readTlv(b: Buffer, at: number): Tlv {
  if (at + 2 > b.length) throw new Error("truncated DER");
  const tag = b[at]!;
  if ((tag & 0x1f) === 0x1f) throw new Error("multi-byte DER tags are not used in certificates");
  let len = b[at + 1]!;
  let start = at + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0 || n > 4 || start + n > b.length) throw new Error("bad DER length");
    len = 0;
    for (let k = 0; k < n; k++) len = len * 256 + b[start + k]!;
    start += n;
  }
  if (start + len > b.length) throw new Error("truncated DER");
  return { tag, start, end: start + len, head: at };
}

function children(b: Buffer, parent: Tlv): Tlv[] {
  const out: Tlv[] = [];
  for (let at = parent.start; at < parent.end; ) {
    const t = readTlv(b, at);
    out.push(t);
    at = t.end;
  }
  return out;
}

/** DER length bytes. */
function derLength(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const bytes: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

function der(tag: number, content: Buffer): Buffer {
  return Buffer.concat([Buffer.from([tag]), derLength(content.length), content]);
}

/** The DER bytes of a certificate's subject Name (tbsCertificate's sixth field, or fifth without a version). */
export function subjectName(cert: Buffer): Buffer {
  const outer = readTlv(cert, 0);
  const tbs = children(cert, outer)[0]!;
  const fields = children(cert, tbs);
  const first = fields[0]!.tag === 0xa0 ? 1 : 0;
  const subject = fields[first + 4];
  if (!subject || subject.tag !== 0x30) throw new Error("no subject name");
  return cert.subarray(subject.head, subject.end);
}

const UTF8 = 0x0c;
const CANONICAL = new Set([0x0c, 0x13, 0x14, 0x16, 0x1a, 0x1e, 0x1c]); // UTF8, Printable, T61, IA5, Visible, BMP, Universal

function toUtf8(tag: number, v: Buffer): Buffer {
  switch (tag) {
    case 0x1e: {
      // BMPString: UCS-2 big endian.
      let s = "";
      for (let k = 0; k + 1 < v.length; k += 2) s += String.fromCharCode(v.readUInt16BE(k));
      return Buffer.from(s, "utf8");
    }
    case 0x1c: {
      let s = "";
      for (let k = 0; k + 3 < v.length; k += 4) s += String.fromCodePoint(v.readUInt32BE(k));
      return Buffer.from(s, "utf8");
    }
    case 0x14:
      // T61String: OpenSSL reads it byte for byte as Latin-1.
      return Buffer.from(v.toString("latin1"), "utf8");
    default:
      return Buffer.from(v);
  }
}

const isSpace = (c: number): boolean => c === 0x20 || (c >= 0x09 && c <= 0x0d);

/** OpenSSL's `asn1_string_canon` on UTF-8 bytes. */
function canonicalString(s: Buffer): Buffer {
  let from = 0;
  let to = s.length;
  while (from < to && isSpace(s[from]!)) from++;
  while (to > from && isSpace(s[to - 1]!)) to--;
  const out: number[] = [];
  for (let i = from; i < to; ) {
    const c = s[i]!;
    if (c >= 0x80) {
      out.push(c);
      i++;
    } else if (isSpace(c)) {
      out.push(0x20);
      while (i < to && isSpace(s[i]!)) i++;
    } else {
      out.push(c >= 0x41 && c <= 0x5a ? c + 32 : c);
      i++;
    }
  }
  return Buffer.from(out);
}

/** The canonical encoding of a Name's DER bytes. */
export function canonicalName(name: Buffer): Buffer {
  const seq = readTlv(name, 0);
  const sets: Buffer[] = [];
  for (const rdn of children(name, seq)) {
    const entries: Buffer[] = [];
    for (const atv of children(name, rdn)) {
      const [oid, value] = children(name, atv);
      if (!oid || !value) throw new Error("bad attribute in a name");
      const raw = name.subarray(value.start, value.end);
      const v = CANONICAL.has(value.tag) ? der(UTF8, canonicalString(toUtf8(value.tag, raw))) : name.subarray(value.head, value.end);
      entries.push(der(0x30, Buffer.concat([name.subarray(oid.head, oid.end), v])));
    }
    // DER orders a SET OF by its elements' encodings.
    entries.sort(Buffer.compare);
    sets.push(der(0x31, Buffer.concat(entries)));
  }
  return Buffer.concat(sets);
}

/** `openssl x509 -hash` of a certificate (DER), as 8 lowercase hex digits. */
export function subjectHash(cert: Buffer): string {
  const md = createHash("sha1").update(canonicalName(subjectName(cert))).digest();
  const n = (md[0]! | (md[1]! << 8) | (md[2]! << 16) | (md[3]! << 24)) >>> 0;
  return n.toString(16).padStart(8, "0");
}

/** The PEM blocks of a text: their labels and decoded bytes. */
export function pemBlocks(text: string): Array<{ label: string; der: Buffer }> {
  const out: Array<{ label: string; der: Buffer }> = [];
  const re = /-----BEGIN ([A-Z0-9 ]+)-----\r?\n([\s\S]*?)-----END \1-----/g;
  for (const m of text.matchAll(re)) {
    const body = m[2]!.replace(/^[A-Za-z-]+:.*$/gm, "").replace(/\s+/g, "");
    out.push({ label: m[1]!, der: Buffer.from(body, "base64") });
  }
  return out;
}
