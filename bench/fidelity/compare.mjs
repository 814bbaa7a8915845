// Tree comparison of the fidelity harness (run.mjs) and of the fix-up tests: every path of two
// trees with its type, mode, owner, link target, content hash and xattrs; the differences; and
// their classification — harmless (harmless.json), explained by an "unreproduced" entry of
// Kiln's report (the study maps its effect to paths), or unexplained.
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const HERE = path.dirname(fileURLToPath(import.meta.url));

/** The checked-in list of harmless categories, and the files compared record by record. */
export function loadHarmless() {
  return JSON.parse(readFileSync(path.join(HERE, "harmless.json"), "utf8"));
}

/** A glob (`**` any depth, `*` one component) as a RegExp over tree paths. */
export function globRe(glob) {
  let re = "";
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i];
    if (c === "*" && glob[i + 1] === "*") {
      re += ".*";
      i++;
    } else if (c === "*") re += "[^/]*";
    else if (c === "?") re += "[^/]";
    else if (c === "[") {
      const end = glob.indexOf("]", i);
      re += glob.slice(i, end + 1);
      i = end;
    } else re += c.replace(/[.+^${}()|\\]/g, "\\$&");
  }
  return new RegExp(`^${re}$`);
}

/** Whether a path (or, for `->` globs, the target of a link) matches one of the globs. */
export function matchesAny(globs, p, e) {
  return globs.some((g) => (g.startsWith("->") ? e?.type === "l" && globRe(g.slice(2)).test(path.basename(e.link)) : globRe(g).test(p)));
}

/**
 * A JKS trust store with its entries' creation times and its integrity digest zeroed: the JDK
 * stamps each entry with the clock of the run that made it (and the digest covers the stamps),
 * so two runs never agree on those bytes; the aliases, their order and the certificates must.
 * Anything but trusted-certificate entries is left as it is (and so compares byte for byte).
 */
export function withoutJksClocks(bytes) {
  const b = Buffer.from(bytes);
  if (b.length < 32 || b.readUInt32BE(0) !== 0xfeedfeed) return b;
  let off = 12;
  const version = b.readUInt32BE(4);
  const count = b.readUInt32BE(8);
  for (let i = 0; i < count; i++) {
    if (b.readUInt32BE(off) !== 2) return bytes;
    off += 4;
    off += 2 + b.readUInt16BE(off); // alias
    b.fill(0, off, off + 8); // creation time
    off += 8;
    if (version === 2) off += 2 + b.readUInt16BE(off); // certificate type
    off += 4 + b.readUInt32BE(off); // certificate
  }
  b.fill(0, off, off + 20); // SHA-1 over everything before
  return b;
}

/** A tree's id → name maps, from its own /etc/passwd and /etc/group. */
function accountNames(root) {
  const names = (file) => {
    const m = new Map();
    try {
      for (const line of readFileSync(path.join(root, file), "utf8").split("\n")) {
        const f = line.split(":");
        if (f.length >= 3 && !m.has(f[2])) m.set(f[2], f[0]);
      }
    } catch {
      // No such file: owners stay numeric.
    }
    return m;
  };
  return { users: names("etc/passwd"), groups: names("etc/group") };
}

/**
 * An account file with its ids replaced by the names they stand for, as a set of records: apt
 * configures packages in its own order, and the system ids scripts allocate (the first free one)
 * follow that order; what each account is — name, home, shell, groups, owner of which files —
 * does not.
 */
function normalizedAccounts(text, file, names) {
  const lines = text.split("\n").filter(Boolean).map((l) => {
    const f = l.split(":");
    if (file === "etc/passwd" && f.length >= 4) {
      f[2] = `uid(${f[0]})`;
      f[3] = `gid(${names.groups.get(f[3]) ?? f[3]})`;
    } else if (file === "etc/group" && f.length >= 3) f[2] = `gid(${f[0]})`;
    return f.join(":");
  });
  return lines.sort().join("\n");
}

/**
 * Every path of a tree but /proc and /sys: type, mode, owner (by the tree's own account names),
 * link target, content hash, xattrs.
 */
export function scanTree(root, unordered = loadHarmless().unordered, fields = loadHarmless().fields ?? [], clocked = loadHarmless().clocked ?? []) {
  const out = new Map();
  const names = accountNames(root);
  const raw = execFileSync("find", [".", "-path", "./proc", "-prune", "-o", "-path", "./sys", "-prune", "-o", "-printf", "%P\\0%y\\0%m\\0%U:%G\\0%l\\0"], { cwd: root, maxBuffer: 1 << 30 }).toString();
  const f = raw.split("\0");
  for (let i = 0; i + 4 < f.length; i += 5) {
    const [p, type, mode, owner, link] = f.slice(i, i + 5);
    if (p === "") continue;
    const [uid, gid] = owner.split(":");
    const e = { type, mode, owner: `${names.users.get(uid) ?? uid}:${names.groups.get(gid) ?? gid}`, link: type === "l" ? link : "", hash: "", xattrs: "" };
    if (type === "f") {
      let bytes = readFileSync(path.join(root, p));
      if (["etc/passwd", "etc/group", "etc/shadow", "etc/gshadow"].includes(p)) bytes = Buffer.from(normalizedAccounts(bytes.toString("utf8"), p, names));
      // Control-file fields the two references record differently are left out of the comparison.
      const dropped = fields.filter((c) => matchesAny(c.paths, p)).flatMap((c) => c.names);
      if (dropped.length) bytes = Buffer.from(bytes.toString("utf8").split("\n").filter((l) => !dropped.some((n) => l.startsWith(`${n}: `))).join("\n"));
      // Files whose records' order no reader depends on are compared record by record.
      // Stanzas by default; `lines: N`: records of N lines.
      const order = unordered.find((c) => matchesAny(c.paths, p));
      if (order?.lines) {
        const ls = bytes.toString("utf8").split("\n").filter(Boolean);
        const records = [];
        for (let k = 0; k < ls.length; k += order.lines) records.push(ls.slice(k, k + order.lines).join("\n"));
        bytes = Buffer.from(records.sort().join("\n"));
      } else if (order) bytes = Buffer.from(bytes.toString("utf8").split("\n\n").map((r) => r.trim()).filter(Boolean).sort().join("\n\n"));
      if (clocked.some((c) => c.format === "jks" && matchesAny(c.paths, p))) bytes = withoutJksClocks(bytes);
      e.hash = createHash("sha256").update(bytes).digest("hex").slice(0, 16);
    }
    out.set(p, e);
  }
  const attrs = execFileSync("getfattr", ["-R", "-h", "-d", "-m", "-", "-e", "hex", "--absolute-names", root], { maxBuffer: 1 << 30, stdio: ["ignore", "pipe", "ignore"] }).toString();
  for (const block of attrs.split("\n\n")) {
    const m = /^# file: (.*)$/m.exec(block);
    if (!m) continue;
    const p = path.relative(root, m[1]);
    const values = block.split("\n").filter((l) => !l.startsWith("#") && l.includes("=")).sort().join(" ");
    if (out.has(p) && values) out.get(p).xattrs = values;
  }
  return out;
}

/** The differences between a reference tree and Kiln's, sorted by path. */
export function compareTrees(ref, ours) {
  const diffs = [];
  for (const [p, r] of ref) {
    const o = ours.get(p);
    if (!o) {
      diffs.push({ path: p, kind: "missing", theirs: r });
      continue;
    }
    const kinds = [];
    if (o.type !== r.type) kinds.push(`type ${o.type}≠${r.type}`);
    else {
      if (o.mode !== r.mode) kinds.push(`mode ${o.mode}≠${r.mode}`);
      if (o.owner !== r.owner) kinds.push(`owner ${o.owner}≠${r.owner}`);
      if (o.link !== r.link) kinds.push(`link ${o.link}≠${r.link}`);
      if (o.hash !== r.hash) kinds.push("content");
      if (o.xattrs !== r.xattrs) kinds.push(`xattrs [${o.xattrs}]≠[${r.xattrs}]`);
    }
    if (kinds.length) diffs.push({ path: p, kind: kinds.join(", "), theirs: r, ours: o });
  }
  for (const [p, o] of ours) if (!ref.has(p)) diffs.push({ path: p, kind: "extra", ours: o });
  return diffs.sort((a, b) => (a.path < b.path ? -1 : 1));
}

/**
 * Sorts differences into harmless (a category), explained (a path an "unreproduced" report
 * entry leaves, per `pathsOf(entry)`) and unexplained.
 */
export function classify(diffs, report, pathsOf, harmless = loadHarmless().categories) {
  const explains = report.scripts.filter((e) => e.outcome === "unreproduced").map((entry) => ({ entry, paths: pathsOf(entry) }));
  const out = { harmless: [], explained: [], unexplained: [] };
  for (const d of diffs) {
    const e = d.theirs ?? d.ours;
    const category = harmless.find((c) => matchesAny(c.paths, d.path, e));
    if (category) {
      out.harmless.push({ ...d, category: category.name });
      continue;
    }
    const by = explains.find((x) => matchesAny(x.paths, d.path, e));
    if (by) out.explained.push({ ...d, by: by.entry });
    else out.unexplained.push(d);
  }
  return out;
}
