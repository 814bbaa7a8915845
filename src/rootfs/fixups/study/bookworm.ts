/**
 * The study of Debian 12 (bookworm)'s maintainer scripts: the minbase packages (debootstrap's
 * and mmdebstrap's base) and the corpus of packages most used in container images (see
 * bench/fidelity/corpus.json), with their dependency closures — every `preinst`, `postinst`,
 * `config` and trigger read, at first installation.
 *
 * Most scripts are interpreted (fixups/script/) and need nothing here: their `mkdir`, `ln -s`,
 * `chown`, `chmod`, `adduser --system`, `dpkg-statoverride`, `setcap`, `update-alternatives`,
 * `dpkg-trigger`, debconf questions and redirections are reproduced by the interpreter, and the
 * programs of common.ts have the same verdict everywhere. What is here:
 * - whole scripts a dedicated fix-up replaces (pinned to the script's sha256);
 * - commands of one package that need their own verdict.
 * The table for another release (trixie) starts from common.ts and its own list; a script whose
 * text changed between releases falls back to the interpreter by itself, because of the pin.
 */
import type { CommandClaim, ScriptStudy } from "./types.js";

const FIRST_INSTALL_ONLY_UPGRADES = "nothing at first installation: its steps act on upgrades, removals or a running system";

export const BOOKWORM_SCRIPTS: readonly ScriptStudy[] = [
  {
    package: "base-files",
    script: "postinst",
    sha256: ["9d835f80f3815b5e"],
    effects: [
      {
        outcome: "emulated",
        by: "base-files",
        effect: "root's and the system's profile, motd, /usr/local, /var/run and /var/lock links, empty wtmp/btmp/lastlog, info dir (fix-up base-files)",
      },
    ],
  },
  {
    package: "base-passwd",
    script: "preinst",
    sha256: ["47f6f8ee55faa32f"],
    effects: [{ outcome: "emulated", by: "accounts", effect: "copies /etc/passwd and /etc/group from the master files when absent (fix-up accounts)" }],
  },
  {
    package: "base-passwd",
    script: "postinst",
    sha256: ["c372532e5cba8abf"],
    effects: [{ outcome: "not-needed", effect: "update-passwd only merges changes on upgrades; the first install's files come from the preinst" }],
  },
  {
    package: "dash",
    script: "postinst",
    sha256: ["1fd7a9289596244e"],
    effects: [{ outcome: "emulated", by: "bin-sh", effect: "diverts /bin/sh and sh.1.gz and links /bin/sh to dash (fix-up bin-sh)" }],
  },
  {
    package: "libc-bin",
    script: "postinst",
    sha256: ["3daa7e3ffd429c1d"],
    effects: [
      { outcome: "emulated", by: "nsswitch", effect: "installs /etc/nsswitch.conf from the default (fix-up nsswitch)" },
      { outcome: "emulated", by: "ldconfig", effect: "runs ldconfig: /etc/ld.so.cache (fix-up ldconfig)" },
    ],
  },
  {
    package: "libc6",
    script: "preinst",
    // amd64's and arm64's: they differ only in the multiarch directory's name and in the
    // lib64/lib link a non-merged system gets, which Kiln's merged tree already has.
    sha256: ["77692462251006a8", "3db894ad8bf11f5a"],
    effects: [{ outcome: "not-needed", effect: "checks the running kernel and services to restart on upgrades: irrelevant to an image" }],
  },
  {
    package: "libc6",
    script: "postinst",
    sha256: ["21a471a4fb29dd98"],
    effects: [{ outcome: "not-needed", effect: "creates then removes /etc/ld.so.nohwcap and restarts services on upgrades: no net effect in a new image" }],
  },
  {
    package: "dpkg",
    script: "postinst",
    sha256: ["2f3d6715ff26f961"],
    effects: [
      { outcome: "not-needed", effect: FIRST_INSTALL_ONLY_UPGRADES },
      { outcome: "emulated", by: "dpkg-database", effect: "the dpkg database (fix-up dpkg-database)" },
    ],
  },
  {
    package: "libpam0g",
    script: "postinst",
    sha256: ["115eb8d446552fa6"],
    effects: [{ outcome: "not-needed", effect: "restarts services that use PAM after an upgrade" }],
  },
  {
    package: "libpam-runtime",
    script: "postinst",
    sha256: ["df5d1ba9ea9787e2"],
    effects: [{ outcome: "emulated", by: "pam-auth-update", effect: "pam-auth-update --package: /etc/pam.d/common-* and /var/lib/pam (fix-up pam-auth-update)" }],
  },
  {
    package: "tzdata",
    script: "config",
    sha256: ["069bf2cebd2b76fa"],
    effects: [{ outcome: "emulated", by: "tzdata", effect: "asks for the time zone: unattended, Etc/UTC (fix-up tzdata)" }],
  },
  {
    package: "tzdata",
    script: "postinst",
    sha256: ["8160b6fd593c0687"],
    effects: [{ outcome: "emulated", by: "tzdata", effect: "links /etc/localtime to the zone and writes /etc/timezone (fix-up tzdata)" }],
  },
  {
    package: "tzdata",
    script: "preinst",
    sha256: ["a262551f3548c288"],
    effects: [{ outcome: "not-needed", effect: FIRST_INSTALL_ONLY_UPGRADES }],
  },
  {
    package: "usr-is-merged",
    script: "preinst",
    sha256: ["727f2971fe428284"],
    effects: [{ outcome: "emulated", by: "merged-usr", effect: "refuses a system without merged /usr: Kiln's tree is merged from the start (fix-up merged-usr)" }],
  },
  {
    package: "usr-is-merged",
    script: "postinst",
    sha256: ["da90a5ff269ea58f"],
    effects: [{ outcome: "emulated", by: "merged-usr", effect: "checks merged /usr (fix-up merged-usr)" }],
  },
  {
    package: "ca-certificates",
    script: "config",
    sha256: ["6d34a25b8f7e6ff6"],
    effects: [{ outcome: "emulated", by: "ca-certificates", effect: "selects the certificates to trust: unattended, all of them (fix-up ca-certificates)" }],
  },
  {
    package: "ca-certificates",
    script: "postinst",
    sha256: ["bbad2df5d3c5e3d7"],
    effects: [
      { outcome: "emulated", by: "ca-certificates", effect: "writes /etc/ca-certificates.conf with every certificate selected, creates /usr/local/share/ca-certificates (fix-up ca-certificates)" },
      {
        outcome: "emulated",
        by: "ca-certificates",
        effect: "builds /etc/ssl/certs: a link per certificate, the hash links and ca-certificates.crt (fix-up ca-certificates)",
      },
    ],
  },
  ...(["postinst", "triggers"] as const).map(
    (script): ScriptStudy => ({
      package: "ca-certificates-java",
      script,
      sha256: ["c124604fd90c85a2"],
      effects: [
        {
          outcome: "emulated",
          by: "java-cacerts",
          effect: "builds the Java trust store /etc/ssl/certs/java/cacerts from the certificates of /etc/ssl/certs (fix-up java-cacerts, without running Java)",
        },
      ],
    }),
  ),
];

export const BOOKWORM_CLAIMS: readonly CommandClaim[] = [
  {
    package: "mariadb-server",
    script: "preinst",
    program: "awk",
    args: /exit \(\$4>1000\)/,
    outcome: "not-needed",
    effect: "checks that the build machine's disk has room for /var/lib/mysql: the image gets the space of whatever runs it",
    status: 1,
    output: "",
  },
  {
    package: "postgresql-common",
    script: "postinst",
    program: "su",
    args: /test -O \/var\/lib\/postgresql/,
    outcome: "emulated",
    effect: "asks whether postgres owns /var/lib/postgresql, which the package ships as root's: it does not, so the postinst gives it to postgres",
    status: 1,
    output: "",
  },
  {
    package: "postgresql-common",
    script: "config",
    program: "sh",
    args: /\/usr\/share\/postgresql-common\/supported-versions$/,
    outcome: "emulated",
    effect: "lists the PostgreSQL major versions bookworm supports (15), to warn about older ones installed",
    output: "15\n",
  },
  {
    package: "postgresql-15",
    script: "postinst",
    program: "pg_conftool",
    args: /create_main_cluster/,
    outcome: "emulated",
    effect: "reads create_main_cluster from /etc/postgresql-common/createcluster.conf, which leaves it unset (a main cluster is created)",
    status: 1,
    output: "",
  },
  {
    package: "postgresql-15",
    script: "postinst",
    program: "awk",
    args: /^\/\^15 \//,
    outcome: "emulated",
    effect: "picks this version's clusters from pg_lsclusters' list, which is empty in Kiln's image",
    output: "",
  },
  {
    package: "locales",
    script: "config",
    program: "awk",
    args: /LANG=/,
    outcome: "not-needed",
    effect: "reads the default LANG from /etc/environment and /etc/default/locale, which a new image does not set: no default locale",
    output: "\n",
  },
];
