#!/bin/sh
# Runs COMMAND in a new, private network namespace whose only interface is
# the loopback, brought up first. Needs root (unshare --net).
#
# Chromium uses a loopback address for ICE only when it has no other
# interface, so the browser tests run the server AND the browser inside one
# such namespace. Whatever COMMAND leaves running dies with the namespace's
# last process.
#
#   ./netns-run.sh COMMAND [ARGS...]
set -eu
if [ "$#" -lt 1 ]; then
  echo "usage: $0 COMMAND [ARGS...]" >&2
  exit 2
fi
exec unshare --net --fork -- sh -c 'ip link set lo up && exec "$@"' netns-run "$@"
