/**
 * `kiln completion bash|zsh`: shell completion scripts, written from the command tree itself so
 * they cannot drift from the commands: command and subcommand names, each command's options,
 * files after options that take a file, and the few options with a fixed set of values.
 */
import type { Command } from "commander";
import { UsageError } from "./errors.js";

/** Options whose value is a file or directory path. */
const FILE_OPTIONS = ["--file", "--output", "--config", "--oci", "--docker-archive", "--deb"];
/** Options whose values are known. */
const VALUES: Record<string, string[]> = { "--format": ["Docker", "OpenShift"], "--type": ["docker", "openshift"], "--compression": ["gzip", "zstd"] };

interface Node {
  name: string;
  description: string;
  options: Array<{ flag: string; description: string }>;
  children: Node[];
}

function tree(cmd: Command): Node {
  const options = cmd.options.filter((o) => o.long).map((o) => ({ flag: o.long!, description: o.description }));
  options.push({ flag: "--help", description: "show help" });
  return { name: cmd.name(), description: cmd.description(), options, children: cmd.commands.map(tree) };
}

function bashWords(words: string[]): string {
  return words.join(" ");
}

function bashScript(root: Node): string {
  const leafOptions = (n: Node): string => `COMPREPLY=( $(compgen -W "${bashWords(n.options.map((o) => o.flag))}" -- "$cur") )`;
  const cases = root.children
    .map((c) => {
      if (c.children.length === 0) {
        const positional = c.name === "completion" ? `\n      if [[ $COMP_CWORD -eq 2 && "$cur" != -* ]]; then COMPREPLY=( $(compgen -W "bash zsh" -- "$cur") ); return; fi` : "";
        return `    ${c.name})${positional}\n      ${leafOptions(c)} ;;`;
      }
      const subs = c.children.map((s) => `        ${s.name}) ${leafOptions(s)} ;;`).join("\n");
      return `    ${c.name})\n      if [[ $COMP_CWORD -eq 2 ]]; then COMPREPLY=( $(compgen -W "${bashWords(c.children.map((s) => s.name))}" -- "$cur") ); return; fi\n      case "$sub" in\n${subs}\n      esac ;;`;
    })
    .join("\n");
  const values = Object.entries(VALUES)
    .map(([flag, vs]) => `    ${flag}) COMPREPLY=( $(compgen -W "${bashWords(vs)}" -- "$cur") ); return ;;`)
    .join("\n");
  return `# bash completion for kiln. Load it with:  source <(kiln completion bash)
# or install it:  kiln completion bash > /etc/bash_completion.d/kiln
_kiln() {
  local cur prev cmd sub
  cur="\${COMP_WORDS[COMP_CWORD]}"
  prev="\${COMP_WORDS[COMP_CWORD-1]}"
  cmd="\${COMP_WORDS[1]}"
  sub="\${COMP_WORDS[2]}"
  COMPREPLY=()
  if [[ $COMP_CWORD -eq 1 ]]; then
    COMPREPLY=( $(compgen -W "${bashWords([...root.children.map((c) => c.name), "--help", "--debug"])}" -- "$cur") )
    return
  fi
  case "$prev" in
    ${FILE_OPTIONS.join("|")}) COMPREPLY=( $(compgen -f -- "$cur") ); return ;;
${values}
  esac
  case "$cmd" in
${cases}
  esac
}
complete -o default -F _kiln kiln
`;
}

/** Quotes a string for zsh inside single quotes. */
function zq(s: string): string {
  return `'${s.replace(/'/g, "'\\''")}'`;
}

function zshItems(items: Array<{ name: string; description: string }>): string {
  return items.map((i) => zq(`${i.name.replace(/:/g, "\\:")}:${i.description}`)).join(" ");
}

function zshScript(root: Node): string {
  const options = (n: Node): string => `items=( ${zshItems(n.options.map((o) => ({ name: o.flag, description: o.description })))} )`;
  const cases = root.children
    .map((c) => {
      if (c.children.length === 0) {
        const positional = c.name === "completion" ? `\n      if (( CURRENT == 3 )) && [[ $PREFIX != -* ]]; then compadd bash zsh; return; fi` : "";
        return `    ${c.name})${positional}\n      ${options(c)} ;;`;
      }
      const subs = c.children.map((s) => `        ${s.name}) ${options(s)} ;;`).join("\n");
      return `    ${c.name})\n      if (( CURRENT == 3 )); then\n        items=( ${zshItems(c.children)} )\n        _describe -t commands ${zq(`kiln ${c.name} command`)} items\n        return\n      fi\n      case $sub in\n${subs}\n      esac ;;`;
    })
    .join("\n");
  const values = Object.entries(VALUES)
    .map(([flag, vs]) => `    ${flag}) compadd ${vs.join(" ")}; return ;;`)
    .join("\n");
  return `#compdef kiln
# zsh completion for kiln. Load it with:  source <(kiln completion zsh)
# or install it in your $fpath:  kiln completion zsh > "\${fpath[1]}/_kiln"
_kiln() {
  local -a items
  local cmd=$words[2] sub=$words[3]
  if (( CURRENT == 2 )); then
    items=( ${zshItems(root.children)} )
    _describe -t commands 'kiln command' items
    return
  fi
  case $words[CURRENT-1] in
    ${FILE_OPTIONS.join("|")}) _files; return ;;
${values}
  esac
  items=()
  case $cmd in
${cases}
  esac
  (( \${#items} )) && _describe -t options 'option' items
}
if [[ $funcstack[1] == _kiln ]]; then
  _kiln "$@"
else
  compdef _kiln kiln
fi
`;
}

export function registerCompletion(program: Command): void {
  program
    .command("completion")
    .description("print a shell completion script (bash or zsh)")
    .argument("<shell>", "bash or zsh")
    .addHelpText(
      "after",
      `
Examples:
  source <(kiln completion bash)                      # this shell
  kiln completion bash > /etc/bash_completion.d/kiln  # every bash
  source <(kiln completion zsh)                       # zsh (after compinit)`,
    )
    .action((shell: string) => {
      const root = tree(program);
      if (shell === "bash") process.stdout.write(bashScript(root));
      else if (shell === "zsh") process.stdout.write(zshScript(root));
      else throw new UsageError(`kiln completion supports bash and zsh, not "${shell}"`);
    });
}
