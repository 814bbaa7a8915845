# Drives a real interactive zsh on a pseudo-terminal (zsh/zpty), as a person would: each
# argument after the script is typed at the prompt, followed by TAB, and the line as completion
# left it is printed, one per argument ("NONE" if zsh never showed it).
#
#   zsh -f zsh-complete.zsh COMPLETION_SCRIPT 'kiln ima' 'kiln image gen' ...
#
# `kiln` itself is a no-op function in that shell: only the completion is exercised. A widget
# bound to ^X prints the buffer behind a marker the echo of its own definition cannot contain.
zmodload zsh/zpty
script=$1; shift
zpty z 'zsh -f -i'
zpty -w z 'PS1="> "; unsetopt beep; autoload -U compinit; compinit -u -D; source '${(q)script}'; kiln() { :; }'
zpty -w z 'show() { print -r -- "@@$((6*7))@@<$BUFFER>"; BUFFER=; zle send-break }; zle -N show; bindkey "^X" show'
for input in "$@"; do
  zpty -w -n z "$input"$'\t\x18'
  out=
  for i in {1..200}; do
    zpty -r -t z line && out+=$line
    [[ $out == *@@42@@\<*\>* ]] && break
    sleep 0.05
  done
  if [[ $out =~ '@@42@@<([^>]*)>' ]]; then print -r -- "$match[1]"; else print -r -- NONE; fi
done
zpty -d z
