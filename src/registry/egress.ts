/**
 * Where a registry client may connect when a *user* chose the registry (a cloud account's
 * `endpointUrl`): never to Kiln's own machine or its neighbours' link-local services — loopback,
 * link-local (169.254.0.0/16 is every cloud's metadata service; fe80::/10), the unspecified
 * addresses (0.0.0.0/8, ::, which reach the local machine) and the addresses of Kiln's own
 * interfaces — unless the operator lists them in KILN_PUBLISH_ALLOW (hosts, `host:port` or
 * CIDRs). Registries the operator configures (a blob store) are not guarded.
 *
 * The check runs on the address a connection is about to use, after DNS resolution, for every
 * new connection the client opens — the registry's own, its token service's, an upload location
 * it redirects to — so a name that resolves to 127.0.0.1, or a registry that points its client
 * at 169.254.169.254, is refused before any packet leaves. A refusal says what kind of address it
 * was (not which), and the transport then reports any failure to connect only as "could not reach
 * the registry", so that publication cannot serve as a port scanner.
 */
import { BlockList, isIP } from "node:net";
import { networkInterfaces } from "node:os";
import { KilnError } from "../domain/errors.js";

/** One entry of KILN_PUBLISH_ALLOW. */
export type AllowEntry =
  | { kind: "cidr"; text: string; network: string; prefix: number; family: "ipv4" | "ipv6" }
  | { kind: "host"; text: string; host: string; port: number | undefined };

/** Decides whether a connection may be opened. */
export interface EgressPolicy {
  /**
   * Throws a {@link KilnError} (`registryFailed`) when `address` (what `host` resolved to) may not
   * be connected to on `port`.
   */
  check(host: string, address: string, port: number): void;
}

/** `::ffff:127.0.0.1` → `127.0.0.1`; brackets and zone ids dropped. */
export function plainAddress(address: string): string {
  let a = address.replace(/^\[|\]$/g, "").replace(/%.*$/, "");
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(a);
  if (mapped) a = mapped[1]!;
  return a.toLowerCase();
}

function family(address: string): "ipv4" | "ipv6" | undefined {
  const v = isIP(address);
  return v === 4 ? "ipv4" : v === 6 ? "ipv6" : undefined;
}

/** Parses KILN_PUBLISH_ALLOW (`127.0.0.1:5000, registry.lan, 10.0.0.0/8, [::1]:5000`). */
export function parseAllowList(text: string | undefined, what = "KILN_PUBLISH_ALLOW"): AllowEntry[] {
  if (text === undefined || text.trim() === "") return [];
  return text
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean)
    .map((entry): AllowEntry => {
      const cidr = /^(.+)\/(\d{1,3})$/.exec(entry);
      if (cidr) {
        const network = plainAddress(cidr[1]!);
        const fam = family(network);
        const prefix = Number(cidr[2]);
        if (!fam || prefix > (fam === "ipv4" ? 32 : 128)) throw new KilnError("badRequest", `${what}: "${entry}" is not a valid CIDR`);
        return { kind: "cidr", text: entry, network, prefix, family: fam };
      }
      const bracketed = /^\[([0-9a-fA-F:.]+)\](?::(\d{1,5}))?$/.exec(entry);
      if (bracketed) return { kind: "host", text: entry, host: plainAddress(bracketed[1]!), port: portOf(bracketed[2], entry, what) };
      if (family(entry) === "ipv6") return { kind: "host", text: entry, host: plainAddress(entry), port: undefined };
      const hostPort = /^([A-Za-z0-9.-]+)(?::(\d{1,5}))?$/.exec(entry);
      if (!hostPort) throw new KilnError("badRequest", `${what}: "${entry}" is neither a host, a host:port nor a CIDR`);
      return { kind: "host", text: entry, host: plainAddress(hostPort[1]!), port: portOf(hostPort[2], entry, what) };
    });
}

function portOf(raw: string | undefined, entry: string, what: string): number | undefined {
  if (raw === undefined) return undefined;
  const port = Number(raw);
  if (port < 1 || port > 65535) throw new KilnError("badRequest", `${what}: "${entry}" has no valid port`);
  return port;
}

/** Ranges no user-chosen registry may reach, with how a refusal names them. */
const FORBIDDEN: Array<{ what: string; ranges: Array<[string, number, "ipv4" | "ipv6"]> }> = [
  { what: "a loopback address", ranges: [["127.0.0.0", 8, "ipv4"], ["::1", 128, "ipv6"]] },
  { what: "a link-local address", ranges: [["169.254.0.0", 16, "ipv4"], ["fe80::", 10, "ipv6"]] },
  { what: "an unspecified address", ranges: [["0.0.0.0", 8, "ipv4"], ["::", 128, "ipv6"]] },
];

function blockList(ranges: Array<[string, number, "ipv4" | "ipv6"]>): BlockList {
  const list = new BlockList();
  for (const [network, prefix, fam] of ranges) list.addSubnet(network, prefix, fam);
  return list;
}

const FORBIDDEN_LISTS = FORBIDDEN.map((f) => ({ what: f.what, list: blockList(f.ranges) }));

/** The addresses of this machine's interfaces (they may change while Kiln runs: read each time). */
function ownAddresses(): Set<string> {
  const out = new Set<string>();
  for (const list of Object.values(networkInterfaces())) for (const i of list ?? []) out.add(plainAddress(i.address));
  return out;
}

/** The policy for registries users choose: the forbidden kinds of address, except what `allow` lists. */
export function publicationEgress(allow: readonly AllowEntry[], own: () => Set<string> = ownAddresses): EgressPolicy {
  const allowed = new BlockList();
  for (const e of allow) if (e.kind === "cidr") allowed.addSubnet(e.network, e.prefix, e.family);
  const hosts = allow.filter((e): e is Extract<AllowEntry, { kind: "host" }> => e.kind === "host");
  return {
    check(host, rawAddress, port) {
      const address = plainAddress(rawAddress);
      const fam = family(address);
      if (!fam) throw refused(host, port, "it resolves to something that is not an IP address");
      const name = plainAddress(host);
      if (allowed.check(address, fam)) return;
      if (hosts.some((h) => (h.host === name || h.host === address) && (h.port === undefined || h.port === port))) return;
      const forbidden = FORBIDDEN_LISTS.find((f) => f.list.check(address, fam));
      const is = isIP(name) ? "it is" : "it resolves to";
      if (forbidden) throw refused(host, port, `${is} ${forbidden.what}`);
      if (own().has(address)) throw refused(host, port, `${is} an address of the Kiln server itself`);
    },
  };
}

function refused(host: string, port: number, what: string): KilnError {
  const where = `${host.includes(":") && !host.startsWith("[") ? `[${host}]` : host}:${port}`;
  return new KilnError(
    "registryFailed",
    `publication to ${where} is refused: ${what}, which Kiln does not publish to unless the server's KILN_PUBLISH_ALLOW lists it`,
  );
}
