/**
 * Programs whose treatment does not depend on the release: how the interpreter answers a
 * maintainer script that calls them, wherever it does. Programs Kiln reproduces generically
 * (`mkdir`, `adduser`, `update-alternatives`, `setcap`, `dpkg-statoverride`, ...) are tools of
 * the interpreter (fixups/script/), not rules here: a rule is for what is not needed in an image,
 * what a dedicated fix-up does for every package at once, and what Kiln does not reproduce.
 */
import type { ProgramRule } from "./types.js";

const SERVICE = "starts, stops or reloads a service: nothing runs while an image is built, and the container runtime starts what the image's entrypoint says";

export const COMMON_PROGRAMS: readonly ProgramRule[] = [
  // ---- not needed in a container image --------------------------------------------------------
  {
    program: "deb-systemd-helper",
    outcome: "not-needed",
    effect: "enables systemd units (links under /etc/systemd/system, state under /var/lib/systemd): no systemd runs in a container; an image that adds systemd enables its units itself",
    paths: ["etc/systemd/system/**", "etc/systemd/user/*.wants/**", "var/lib/systemd/deb-systemd-helper-enabled/**", "var/lib/systemd/deb-systemd-user-helper-enabled/**"],
    // `was-enabled`, `debian-installed`: nothing was enabled before a first installation.
    status: 1,
    args: /(^|\s)(was-enabled|debian-installed|is-enabled)(\s|$)/,
  },
  {
    program: "deb-systemd-helper",
    outcome: "not-needed",
    effect: "enables systemd units (links under /etc/systemd/system, state under /var/lib/systemd): no systemd runs in a container; an image that adds systemd enables its units itself",
    paths: ["etc/systemd/system/**", "etc/systemd/user/*.wants/**", "var/lib/systemd/deb-systemd-helper-enabled/**", "var/lib/systemd/deb-systemd-user-helper-enabled/**"],
  },
  { program: "deb-systemd-invoke", outcome: "not-needed", effect: SERVICE },
  { program: "systemctl", outcome: "not-needed", effect: SERVICE },
  // `invoke-rc.d NAME status` answers "not running" (status 3, LSB), like policy-rc.d in a chroot.
  { program: "invoke-rc.d", args: /(^|\s)status(\s|$)/, outcome: "not-needed", effect: SERVICE, status: 3 },
  { program: "invoke-rc.d", outcome: "not-needed", effect: SERVICE },
  { program: "service", outcome: "not-needed", effect: SERVICE },
  { program: "start-stop-daemon", outcome: "not-needed", effect: SERVICE },
  { program: "telinit", outcome: "not-needed", effect: SERVICE },
  {
    program: "update-rc.d",
    outcome: "not-needed",
    effect: "links SysV init scripts into /etc/rc?.d: a container image has no init system; a VM image needs them",
    paths: ["etc/rc[0-6S].d/**"],
  },
  { program: "systemd-tmpfiles", outcome: "not-needed", effect: "creates runtime files and directories at boot (systemd-tmpfiles): not part of an image" },
  {
    program: "aa-status",
    outcome: "not-needed",
    effect: "asks whether AppArmor is enabled, to load the package's profile: no profile is loaded while an image is built; the container runtime applies its own",
    status: 1,
  },
  { program: "apparmor_parser", outcome: "not-needed", effect: "loads an AppArmor profile into the running kernel: not part of an image" },
  {
    program: "ss",
    outcome: "not-needed",
    effect: "lists the build machine's listening sockets (is a port taken?), to decide whether to start a server: nothing listens while an image is built",
    output: "",
  },
  {
    program: "df",
    outcome: "not-needed",
    effect: "measures the free space of the build machine's disk: the image gets the space of whatever runs it",
    output: "",
  },
  { program: "update-initramfs", outcome: "not-needed", effect: "rebuilds an initramfs: a container image has no kernel" },
  { program: "update-menus", outcome: "not-needed", effect: "updates desktop menus (menu is not installed)" },
  { program: /^py3?clean$/, outcome: "not-needed", effect: "removes byte-compiled Python files, which an image being built does not have" },
  { program: "ischroot", outcome: "not-needed", effect: "asks whether it runs in a chroot", status: 0 },
  { program: "mountpoint", args: /(^|\s)\/proc\/?$/, outcome: "not-needed", effect: "checks that /proc is mounted, as it is while packages are installed", status: 0 },

  // ---- done once for every package by a dedicated fix-up --------------------------------------
  { program: "ldconfig", outcome: "emulated", by: "ldconfig", effect: "rebuilds /etc/ld.so.cache (fix-up ldconfig, once every package is in)" },
  { program: "update-shells", outcome: "emulated", by: "shells", effect: "updates /etc/shells from the packages' shells.d (fix-up shells)" },
  { program: "shadowconfig", outcome: "emulated", by: "accounts", effect: "turns shadow passwords on: /etc/shadow, /etc/gshadow (fix-up accounts)" },
  { program: "pam-auth-update", outcome: "emulated", by: "pam-auth-update", effect: "writes /etc/pam.d/common-* from /usr/share/pam-configs (fix-up pam-auth-update)" },
  {
    program: "update-ca-certificates",
    outcome: "emulated",
    by: "ca-certificates",
    effect: "builds /etc/ssl/certs: a link per certificate, the hash links and ca-certificates.crt (fix-up ca-certificates)",
  },

  // ---- not reproduced: reported ---------------------------------------------------------------
  {
    program: /^(py3compile|pycompile|python3(\.[0-9]+)?)$/,
    args: /py_?compile|^-p |^-V |\/usr\/share\/python3|\/usr\/lib\/python3/,
    outcome: "unreproduced",
    effect: "byte-compiles Python modules (.pyc files under __pycache__); Python compiles them at first import instead, and writes them where it may",
    paths: ["**/__pycache__", "**/__pycache__/**", "**/*.pyc"],
  },
  {
    program: "fc-cache",
    outcome: "unreproduced",
    effect: "builds fontconfig's font caches (/var/cache/fontconfig); fontconfig scans the fonts at first use instead",
    paths: ["var/cache/fontconfig/**", "var/log/fontconfig.log"],
  },
  {
    program: "update-mime-database",
    outcome: "unreproduced",
    effect: "builds the shared MIME-info database (/usr/share/mime) from /usr/share/mime/packages",
    paths: ["usr/share/mime/**"],
  },
  {
    program: "glib-compile-schemas",
    outcome: "unreproduced",
    effect: "compiles GSettings schemas (/usr/share/glib-2.0/schemas/gschemas.compiled)",
    paths: ["usr/share/glib-2.0/schemas/gschemas.compiled"],
  },
  {
    program: "gio-querymodules",
    outcome: "unreproduced",
    effect: "builds the GIO module cache (giomodule.cache)",
    paths: ["usr/lib/*/gio/modules/giomodule.cache"],
  },
  {
    program: "make-ssl-cert",
    outcome: "unreproduced",
    effect: "generates the snakeoil TLS key and certificate: a private key must not be baked into an image (run make-ssl-cert in the container, or bring your own)",
    paths: ["etc/ssl/private/ssl-cert-snakeoil.key", "etc/ssl/certs/ssl-cert-snakeoil.pem", "->ssl-cert-snakeoil.pem"],
  },
  {
    program: "pg_createcluster",
    outcome: "unreproduced",
    effect:
      "creates a PostgreSQL database cluster (initdb: its data under /var/lib/postgresql, its configuration under /etc/postgresql, its log): create it when the container starts, as the official images' entrypoints do",
    paths: ["etc/postgresql/*", "etc/postgresql/*/**", "var/lib/postgresql/*", "var/lib/postgresql/*/**", "var/log/postgresql/postgresql-*.log"],
  },
  {
    program: "pg_updateaptconfig",
    outcome: "unreproduced",
    effect:
      "tells apt never to auto-remove the PostgreSQL versions that have a cluster (/etc/apt/apt.conf.d/02autoremove-postgresql), which follows the cluster pg_createcluster would create",
    paths: ["etc/apt/apt.conf.d/02autoremove-postgresql"],
  },
  {
    program: "pg_updatedicts",
    outcome: "unreproduced",
    effect: "links the installed hunspell and myspell dictionaries for PostgreSQL's full-text search (/var/cache/postgresql/dicts, tsearch_data links): rerun pg_updatedicts after adding dictionaries",
    paths: ["var/cache/postgresql", "var/cache/postgresql/**", "usr/share/postgresql/*/tsearch_data/*.dict", "usr/share/postgresql/*/tsearch_data/*.affix"],
  },
  {
    program: "pg_checksystem",
    outcome: "not-needed",
    effect: "warns about disks with write caching that endangers PostgreSQL's data: a property of the machine the container runs on, not of the image",
  },
  {
    program: "pg_lsclusters",
    outcome: "emulated",
    effect: "lists the PostgreSQL clusters: none in the image Kiln builds (creating one is unreproduced, see pg_createcluster)",
    output: "",
  },
  {
    program: "pam_getenv",
    outcome: "emulated",
    effect: "reads a variable of PAM's environment (/etc/environment, /etc/security/pam_env.conf): a new image sets none",
    output: "",
  },
  {
    program: /^(bash|sh|mysql_install_db|mariadb-install-db)$/,
    args: /(^|\s|\/)(mysql_install_db|mariadb-install-db)(\s|$)/,
    outcome: "unreproduced",
    effect: "initializes the MariaDB/MySQL data directory (/var/lib/mysql, by running the server in bootstrap mode): initialize it when the container starts, as the official images' entrypoints do",
    paths: ["var/lib/mysql/**"],
  },
  {
    program: /^php(query|enmod|dismod)$/,
    outcome: "unreproduced",
    effect:
      "enables the package's PHP modules for each SAPI (/etc/php/VERSION/SAPI/conf.d links, /var/lib/php/modules state): Kiln does not reproduce it yet; run phpenmod for the modules you need in a build step of your image",
    paths: ["etc/php/*/*/conf.d/*.ini", "var/lib/php/modules", "var/lib/php/modules/**"],
    output: "",
  },
  {
    program: "perl",
    outcome: "unreproduced",
    effect: "runs a Perl program Kiln does not interpret",
  },
  {
    program: "apt-config",
    outcome: "unreproduced",
    effect: "asks apt for its configuration",
  },
];
