import { describe, expect, test } from "vitest";
import { findCommands } from "../../../src/rootfs/fixups/shell-words.js";

const ENV = { "1": "configure", "2": "", DPKG_MAINTSCRIPT_PACKAGE: "pkg", DPKG_MAINTSCRIPT_ARCH: "amd64" };

describe("findCommands", () => {
  test("joins backslash-newline continuations and drops leading keywords", () => {
    const script = `#!/bin/sh
set -e
if [ "$1" = "configure" ]; then
        update-alternatives --install /usr/bin/awk awk /usr/bin/mawk 5 \\
            --slave /usr/bin/nawk nawk /usr/bin/mawk
fi
`;
    const { commands, unresolved } = findCommands(script, ["update-alternatives"], ENV);
    expect(unresolved).toEqual([]);
    expect(commands).toEqual([{ words: ["update-alternatives", "--install", "/usr/bin/awk", "awk", "/usr/bin/mawk", "5", "--slave", "/usr/bin/nawk", "nawk", "/usr/bin/mawk"], line: 4 }]);
  });

  test("expands quotes, escapes and variables assigned earlier in the script", () => {
    const script = `pkg=$DPKG_MAINTSCRIPT_PACKAGE
prio='40'
dir="/usr/lib/$DPKG_MAINTSCRIPT_ARCH"
/usr/bin/update-alternatives --quiet --install "/usr/bin/x y" "$pkg" \${dir}/x\\ bin $prio || true
`;
    const { commands } = findCommands(script, ["update-alternatives"], ENV);
    expect(commands.map((c) => c.words)).toEqual([["update-alternatives", "--quiet", "--install", "/usr/bin/x y", "pkg", "/usr/lib/amd64/x bin", "40"]]);
  });

  test("splits unquoted expansions into fields, keeps quoted ones whole", () => {
    const script = `args="/usr/bin/a a /usr/bin/b 10"
update-alternatives --install $args
update-alternatives --install "$args"
`;
    const { commands } = findCommands(script, ["update-alternatives"], ENV);
    expect(commands.map((c) => c.words.slice(1))).toEqual([
      ["--install", "/usr/bin/a", "a", "/usr/bin/b", "10"],
      ["--install", "/usr/bin/a a /usr/bin/b 10"],
    ]);
  });

  test("reports what cannot be known without running the script", () => {
    const script = `for i in a b; do
  update-alternatives --install /usr/bin/$i $i /usr/lib/$i 10
done
update-alternatives --install /usr/bin/v v "$(readlink -f /x)" 10
update-alternatives --install /usr/bin/w w \`which w\` 10
update-alternatives --install /usr/bin/u u \${X:-/usr/bin/u1} 10
update-alternatives --install /usr/bin/g g /usr/lib/g* 10
update-alternatives --install "$@"
`;
    const { commands, unresolved } = findCommands(script, ["update-alternatives"], ENV);
    expect(commands).toEqual([]);
    expect(unresolved.map((u) => [u.line, u.reason])).toEqual([
      [2, "unknown variable $i"],
      [4, "command substitution"],
      [5, "command substitution"],
      [6, "parameter expansion ${X:-/usr/bin/u1}"],
      [7, 'unquoted glob in "/usr/lib/g*"'],
      [8, "special parameter $@"],
    ]);
  });

  test("a variable assigned from a command substitution is unknown afterwards", () => {
    const script = `target=$(dpkg-query -f '\${Version}' -W foo)
update-alternatives --install /usr/bin/t t "$target" 1
`;
    const { commands, unresolved } = findCommands(script, ["update-alternatives"], ENV);
    expect(commands).toEqual([]);
    expect(unresolved[0]!.reason).toBe("unknown variable $target");
  });

  test("ignores here-document bodies, comments and redirections", () => {
    const script = `cat > /etc/motd <<'EOF'
update-alternatives --install /usr/bin/fake fake /fake 1
EOF
cat <<-END
	add-shell /bin/fake
	END
# update-alternatives --install /usr/bin/c c /c 1
update-alternatives --install /usr/bin/r r /usr/bin/real 1 >/dev/null 2>&1
add-shell /bin/zsh </dev/null
`;
    const { commands } = findCommands(script, ["update-alternatives", "add-shell"], ENV);
    expect(commands.map((c) => c.words)).toEqual([
      ["update-alternatives", "--install", "/usr/bin/r", "r", "/usr/bin/real", "1"],
      ["add-shell", "/bin/zsh"],
    ]);
  });

  test("finds calls inside function bodies and after && / ||", () => {
    const script = `ua() {
	update-alternatives --install /usr/bin/which which /usr/bin/which.debianutils 0
}
test -x /usr/sbin/add-shell && add-shell /bin/a || true
case "$1" in
    (configure) ua ;;
esac
`;
    const { commands } = findCommands(script, ["update-alternatives", "add-shell"], ENV);
    expect(commands.map((c) => c.words[0])).toEqual(["update-alternatives", "add-shell"]);
    expect(commands[1]!.words).toEqual(["add-shell", "/bin/a"]);
  });

  test("positional parameters of a first configuration", () => {
    const { commands } = findCommands(`add-shell "/bin/$1$2"\n`, ["add-shell"], ENV);
    expect(commands[0]!.words).toEqual(["add-shell", "/bin/configure"]);
  });
});
