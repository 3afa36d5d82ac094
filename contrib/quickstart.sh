#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Quick start, as root on Debian 12: install the dependencies, build
# nsrelayd, create a demo namespace and a demo SMTP-like service on the
# host's 127.0.0.1:2525, and run nsrelayd in the foreground so that
#   ip netns exec nsrelay-demo socat - TCP:127.0.0.1:25
# (in another terminal) talks to the host's service from inside the
# namespace.  Ctrl-C stops it and removes the demo namespace.
#
# Environment (all optional):
#   NSRELAY_DEMO_NS    name of the demo namespace (default nsrelay-demo)
#   NSRELAY_DEMO_PORT  host port of the demo service (default 2525)
#   NSRELAYD           an nsrelayd already built: use it, install and build
#                      nothing
set -euo pipefail
cd "$(dirname "$0")/.."
ns=${NSRELAY_DEMO_NS:-nsrelay-demo}
port=${NSRELAY_DEMO_PORT:-2525}

if [ -n "${NSRELAYD:-}" ]; then
	daemon=$NSRELAYD
else
	bash .ci/deps
	[ -x configure ] || autoreconf -fi
	mkdir -p build
	(cd build && { [ -f Makefile ] || ../configure -q; } && make -j2 nsrelayd)
	daemon=$PWD/build/nsrelayd
fi

# What this script made, for the clean-up; it runs on any exit (Ctrl-C,
# SIGTERM, an error), every step whatever the ones before did.
work= up= relay= made_ns=
cleanup() {
	set +e
	trap - EXIT INT TERM HUP
	if [ -n "$relay" ]; then
		kill -TERM "$relay" 2>/dev/null
		wait "$relay" 2>/dev/null
	fi
	if [ -n "$up" ]; then
		kill -TERM "$up" 2>/dev/null
		wait "$up" 2>/dev/null
	fi
	[ -z "$made_ns" ] || ip netns del "$ns" 2>/dev/null
	[ -z "$work" ] || rm -rf "$work"
	return 0
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

work=$(mktemp -d /tmp/nsrelay-demo.XXXXXX)
ip netns add "$ns"
made_ns=1
ip -n "$ns" link set lo up

# the demo upstream speaks first, as SMTP does, then echoes
socat "TCP-LISTEN:$port,bind=127.0.0.1,reuseaddr,fork" \
	SYSTEM:'echo 220 demo.host ESMTP - the host seen through nsrelay; cat' &
up=$!

cat > "$work/nsrelay.yaml" <<YAML
user: nobody
namespaces:
  names: [$ns]
services:
  smtp:
    listen: ["127.0.0.1:25", "[::1]:25"]
    upstream: "127.0.0.1:$port"
YAML
cat <<MSG

  nsrelayd is starting.  In another terminal, from inside the namespace:
      ip netns exec $ns socat - TCP:127.0.0.1:25
      ip netns exec $ns socat - TCP6:[::1]:25
  Ctrl-C here stops it and removes the demo namespace.

MSG
# In the background and waited for, so that a signal to this script alone
# (not only Ctrl-C, which reaches nsrelayd too) ends it and cleans up.
"$daemon" -f -v -c "$work/nsrelay.yaml" &
relay=$!
wait "$relay"
