#!/bin/bash
# herdctl's bash completion (completion/herdctl): it parses, completes
# commands, image verbs and signal names, and asks `herdctl status` for
# component names (a stub herdctl on PATH prints a table).
#   tests/package/completion_test.sh SOURCE_DIR
set -euo pipefail
src=$1
bash -n "$src/completion/herdctl"
stub=$(mktemp -d)
trap 'rm -rf "$stub"' EXIT
cat > "$stub/herdctl" <<'STUB'
#!/bin/sh
printf 'NAME  STATE  PID\netcd  ready  12\nvictoria-metrics  ready  13\n\nLast errors:\n  x: y\n'
STUB
chmod +x "$stub/herdctl"
PATH="$stub:$PATH"
# shellcheck source=/dev/null
source "$src/completion/herdctl"

complete_line() {  # the words; the last one is being completed
  COMP_WORDS=("$@")
  COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
  COMPREPLY=()
  _herdctl
  echo "${COMPREPLY[*]}"
}

expect() {
  local got=$1 want=$2
  [ "$got" = "$want" ] || { echo "completion: got '$got', want '$want'" >&2; exit 1; }
}

expect "$(complete_line herdctl st)" "status start stop"
expect "$(complete_line herdctl image p)" "pull prune"
expect "$(complete_line herdctl kill -s H)" "HUP"
expect "$(complete_line herdctl restart "")" "etcd victoria-metrics"
expect "$(complete_line herdctl --socket /x logs v)" "victoria-metrics"
expect "$(complete_line herdctl logs etcd --f)" "--follow"
echo "completion: ok"
