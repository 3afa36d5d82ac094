#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Quick start, as root on Debian 12: install the dependencies, build
# nsrelayd, create a demo namespace and a demo SMTP-like service on the
# host's 127.0.0.1:2525, and run nsrelayd in the foreground so that
#   ip netns exec nsrelay-demo socat - TCP:127.0.0.1:25
# (in another terminal) talks to the host's service from inside the
# namespace.  Ctrl-C stops it and removes the demo namespace.
set -euo pipefail
cd "$(dirname "$0")/.."
bash .ci/deps
[ -x configure ] || autoreconf -fi
mkdir -p build && cd build
[ -f Makefile ] || ../configure -q
make -j2 nsrelayd

ns=nsrelay-demo
work=$(mktemp -d /tmp/nsrelay-demo.XXXXXX)
cleanup() {
	[ -n "${up:-}" ] && kill "$up" 2>/dev/null
	ip netns del "$ns" 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT
ip netns add "$ns"
ip -n "$ns" link set lo up

# the demo upstream speaks first, as SMTP does, then echoes
socat TCP-LISTEN:2525,bind=127.0.0.1,reuseaddr,fork \
	SYSTEM:'echo 220 demo.host ESMTP - the host seen through nsrelay; cat' &
up=$!

cat > "$work/nsrelay.yaml" <<YAML
user: nobody
namespaces:
  names: [$ns]
services:
  smtp:
    listen: ["127.0.0.1:25", "[::1]:25"]
    upstream: "127.0.0.1:2525"
YAML
cat <<MSG

  nsrelayd is starting.  In another terminal, from inside the namespace:
      ip netns exec $ns socat - TCP:127.0.0.1:25
      ip netns exec $ns socat - TCP6:[::1]:25
  Ctrl-C here stops it and removes the demo namespace.

MSG
./nsrelayd -f -v -c "$work/nsrelay.yaml"
