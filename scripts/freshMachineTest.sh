#!/usr/bin/env bash
# Runs a command (default: `npm test`) as on a machine with Node alone: Chromium, nginx, tinyproxy and
# python3 are hidden behind /dev/null bind mounts, in a private mount namespace that only this command
# sees (the machine keeps them). Needs root. Each suite that needs one of them should skip with one line
# naming what to install; with CI=true they are required and the run fails.
#
#   sudo scripts/freshMachineTest.sh                        # npm test, expect "skipped: ..." lines, exit 0
#   sudo CI=true scripts/freshMachineTest.sh                # the same, required: exit 1, naming what is missing
#   sudo scripts/freshMachineTest.sh npx vitest run test/staticServers.test.ts
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "${FRESH_MACHINE_NAMESPACE:-}" != "$$" ]; then
  # Into a mount namespace of its own (mounts made there never reach the machine), then on below.
  exec unshare --mount --propagation private bash -c 'export FRESH_MACHINE_NAMESPACE=$$; exec bash "$0" "$@"' "$0" "$@"
fi

declare -A hidden=()
hide() {
  local real
  real=$(readlink -f "$1")
  [ -n "${hidden[$real]:-}" ] && return 0
  mount --bind /dev/null "$real"
  hidden[$real]=$1
}
# Every copy a test could launch: each one on PATH (pyenv's shims too) and Debian's /usr/bin/chromium.
IFS=: read -ra path_dirs <<<"$PATH"
for program in chromium nginx tinyproxy python3; do
  for dir in "${path_dirs[@]}"; do
    if [ -e "$dir/$program" ]; then hide "$dir/$program"; fi
  done
done
if [ -e /usr/bin/chromium ]; then hide /usr/bin/chromium; fi

for check in 'chromium --version' '/usr/bin/chromium --version' 'nginx -v' 'tinyproxy -v' 'python3 --version'; do
  if $check >/dev/null 2>&1; then
    echo "freshMachineTest: '$check' still runs; cannot hide it" >&2
    exit 1
  fi
done
echo "freshMachineTest: hidden ${!hidden[*]}"

if [ $# -eq 0 ]; then set -- npm test; fi
exec "$@"
