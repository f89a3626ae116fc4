#!/bin/sh
# Runs COMMAND in a new, private network namespace (needs root: unshare
# --net). Nothing started inside can reach, or be reached from, any other
# network; whatever COMMAND leaves running dies with its last process.
#
# Inside there are two interfaces: the loopback (127.0.0.1, where the
# servers under test listen and announce their ICE candidates), and one end
# of a veth pair, jsfu0, with 10.255.255.1/30 (its peer, jsfu1, is up
# without an address and also stays in the namespace). The veth exists for
# Chromium: it never gathers candidates on a loopback interface, and with
# only `lo` it gathers none at all. Given jsfu0, its host candidate is
# 10.255.255.1, and its checks to 127.0.0.1 are delivered locally. Outside
# such a namespace Chromium would pick the machine's real address instead.
#
# The veth gets no IPv6 (its link-local address would appear a second or
# two later, after duplicate address detection, and Chromium would abort
# every request in flight with ERR_NETWORK_CHANGED), and the script waits
# until both ends are up before it starts COMMAND, so that nothing about
# the network changes while COMMAND runs.
#
#   ./netns-run.sh COMMAND [ARGS...]
set -eu
if [ "$#" -lt 1 ]; then
  echo "usage: $0 COMMAND [ARGS...]" >&2
  exit 2
fi
exec unshare --net --fork -- sh -c '
  set -e
  ip link set lo up
  v6=/proc/sys/net/ipv6/conf/default/disable_ipv6
  if [ -e "$v6" ]; then echo 1 >"$v6"; fi
  ip link add jsfu0 type veth peer name jsfu1
  ip addr add 10.255.255.1/30 dev jsfu0
  ip link set jsfu0 up
  ip link set jsfu1 up
  i=0
  until ip -o link show jsfu0 | grep -q "state UP" && ip -o link show jsfu1 | grep -q "state UP"; do
    i=$((i + 1))
    if [ "$i" -gt 100 ]; then
      echo "netns-run: the veth pair did not come up" >&2
      exit 1
    fi
    sleep 0.05
  done
  exec "$@"' netns-run "$@"
