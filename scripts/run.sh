#!/usr/bin/env bash
# The README's first command: install what is missing, build, and run
# spamsink with its embedded defaults (port 25 on 127.0.0.1 and ::1, the API
# on 127.0.0.1:8025). Extra arguments are passed to spamsink, e.g.
#   scripts/run.sh --listen 127.0.0.1:2525
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh
args=()
if [[ $(id -u) -eq 0 ]]; then
  # Bind port 25 as root, then run as nobody with a state directory it owns.
  install -d -o nobody -g nogroup -m 0750 /var/lib/spamsink
  args=(--user nobody --db /var/lib/spamsink/spamsink.db)
fi
echo "spamsink: starting (Ctrl-C stops it); try: build/smtpsend -n 100" >&2
exec build/spamsink "${args[@]}" "$@"
