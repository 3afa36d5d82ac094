#!/bin/bash
# SPDX-License-Identifier: MIT
# nsrelayd's command line: --check on good and bad files (errors as
# FILE:LINE:COL: KEYPATH: message; tags, unsafe templates, a FIFO),
# --version, --help, a missing -c file.
. "${top_srcdir:-$(dirname "$0")/..}/t/lib.sh"
tap_init --no-netns

# run_d OUTVAR CMD...: run with a bound; OUTVAR gets stdout+stderr; $? kept.
run_d() {
	local __v=$1 __out __st
	shift
	__out=$(timeout 10 "$@" 2>&1)
	__st=$?
	printf -v "$__v" '%s' "$__out"
	return "$__st"
}

# --- the shipped example is valid.  It runs as user "nsrelay", which a test
# machine may lack: that is the host's business, a warning, not an error.
example=$top_srcdir/contrib/nsrelay.yaml
run_d out "$NSRELAYD" --check -c "$example"
st=$?
is "$st" 0 "--check accepts contrib/nsrelay.yaml" || diag "$out"

# --- a port out of range, at a known line and column
f=$T/port.yaml
cat >"$f" <<'EOF'
user: nobody
services:
  x:
    listen:
      - 127.0.0.1:7000
      - 127.0.0.1:70000
    upstream: "127.0.0.1:25"
EOF
run_d out "$NSRELAYD" --check -c "$f"
st=$?
is "$st" 1 "--check exits 1 on port 70000"
want="$f:6:9: services.x.listen[1]: port 70000 out of range"
if grep -qF -- "$want" <<<"$out"; then
	pass "error names FILE:LINE:COL and the key path"
else
	fail "error names FILE:LINE:COL and the key path" \
		"expected a line containing: $want" "got:" "$out"
fi

# --- several errors in one file: every one is reported
f=$T/multi.yaml
cat >"$f" <<'EOF'
user: nobody
defaults:
  idle_timeout: 5 parsecs
services:
  a:
    listen: ["127.0.0.1:7000"]
    upstream: "300.1.2.3:25"
  b:
    listen: ["127.0.0.1:7001"]
    upstream: "127.0.0.1:25"
    fin_timeout: soon
EOF
run_d out "$NSRELAYD" --check -c "$f"
st=$?
is "$st" 1 "--check exits 1 on a file with three errors"
missing=
for re in "defaults\\.idle_timeout" "services\\.a\\.upstream" \
	"services\\.b\\.fin_timeout"; do
	case $re in
	defaults*) line=3 ;;
	services\\.a*) line=7 ;;
	*) line=11 ;;
	esac
	grep -Eq -- "$f:$line:[0-9]+: $re: ." <<<"$out" ||
		missing="$missing ${re//\\/} (line $line)"
done
if [ -z "$missing" ]; then
	pass "every error reported as FILE:LINE:COL: KEYPATH: message"
else
	fail "every error reported as FILE:LINE:COL: KEYPATH: message" \
		"missing:$missing" "got:" "$out"
fi

# --- a service without an upstream
f=$T/noup.yaml
cat >"$f" <<'EOF'
user: nobody
services:
  x:
    listen: ["127.0.0.1:7000"]
EOF
run_d out "$NSRELAYD" --check -c "$f"
st=$?
is "$st" 1 "--check exits 1 on a service without upstream"
like "$out" "$f:[0-9]+:[0-9]+: services\\.x.*upstream" \
	"missing upstream reported with its position"

# --- YAML syntax error
f=$T/syntax.yaml
printf 'user: nobody\nservices: [unclosed\n  x: {\n' >"$f"
run_d out "$NSRELAYD" --check -c "$f"
st=$?
is "$st" 1 "--check exits 1 on a YAML syntax error"
like "$out" "$f:[0-9]+:[0-9]+: " "syntax error reported as FILE:LINE:COL"

# --- provisioning pools and templates are checked by --check too
f=$T/prov.yaml
cat >"$f" <<'EOF'
services:
  s:
    listen: "127.0.0.1:1"
    upstream: "127.0.0.1:2"
provision:
  ipv4_pool: 100.64.0.0/33
  ipv6_pool: "fd75::/64"
  host_interface: "vvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvv%u"
  namespace: "%q"
EOF
run_d out "$NSRELAYD" --check -c "$f"
st=$?
is "$st" 1 "--check exits 1 on bad provisioning pools and templates"
is "$(grep -c ": provision\.[a-z0-9_]*: bad value" <<<"$out")" 4 \
	"each reported as FILE:LINE:COL: provision.KEY" || diag "$out"
like "$out" "$f:6:14: provision\.ipv4_pool: bad value \"100\.64\.0\.0/33\"" \
	"the IPv4 pool's position and value"

# --- refused by --check, each with its position: YAML tags, root as a
# provisioned user, a namespace template that climbs out of the netns dir
f=$T/refuse.yaml
cat >"$f" <<'EOF'
services: !!python/object:os.system
  s:
    listen: "127.0.0.1:1"
    upstream: "127.0.0.1:2"
provision:
  users: [root]
  namespace: "../../etc/%u"
EOF
run_d out "$NSRELAYD" --check -c "$f"
st=$?
is "$st" 1 "--check exits 1 on a tag, root, a template with '/'"
for want in \
	"$f:1:11: services: tags are not supported" \
	"$f:6:11: provision.users[0]: \"root\" is refused" \
	"$f:7:14: provision.namespace: bad value \"../../etc/%u\""; do
	if grep -qF -- "$want" <<<"$out"; then
		pass "reported: ${want#"$f:"}"
	else
		fail "reported: ${want#"$f:"}" "got:" "$out"
	fi
done

# --- limits, shutdown_grace, control, metrics, provision.removed: each bad
# value with its position; provision.control, the old name of control.path,
# may not say something else
f=$T/keys.yaml
cat >"$f" <<'EOF'
limits: { connections_per_second: 100, burst: 0 }
shutdown_grace: soon
control: { path: /run/a.sock, mode: "0666" }
metrics: { listen: "unix:/run/m.sock" }
services:
  s: { listen: "127.0.0.1:1", upstream: "127.0.0.1:2" }
provision:
  control: /run/b.sock
  removed: forget
EOF
run_d out "$NSRELAYD" --check -c "$f"
st=$?
is "$st" 1 "--check exits 1 on bad limits, grace, control, metrics, removed"
is "$(grep -c "^$f:" <<<"$out")" 6 "  six errors" || diag "$out"
for want in \
	"$f:1:47: limits.burst: must be at least 1 when connections_per_second is not 0" \
	"$f:2:17: shutdown_grace: bad duration \"soon\": expected a number and a unit, e.g. 5s or 1h30m" \
	"$f:3:37: control.mode: bad mode \"0666\": must not give others any access (for a group, set control.group and 0660)" \
	"$f:4:20: metrics.listen: unix sockets are not allowed here" \
	"$f:8:12: provision.control: \"/run/b.sock\" differs from control.path \"/run/a.sock\" at 3:18 (provision.control is its old name: give only control.path)" \
	"$f:9:12: provision.removed: expected keep or deprovision, not \"forget\""; do
	if grep -qxF -- "$want" <<<"$out"; then
		pass "reported: ${want#"$f:"}"
	else
		fail "reported: ${want#"$f:"}" "got:" "$out"
	fi
done

# --- and the same keys, well formed, pass
f=$T/keys-ok.yaml
cat >"$f" <<'EOF'
user: nobody
limits: { connections_per_namespace: 0, connections_per_second: 10 }
shutdown_grace: 0
control: { path: /run/a.sock, group: nogroup, mode: "0660" }
metrics: { listen: "127.0.0.1:9543" }
services:
  s:
    listen: "127.0.0.1:1"
    upstream: "127.0.0.1:2"
    limits: { connections_per_namespace: 8 }
provision:
  control: /run/a.sock
  removed: deprovision
EOF
run_d out "$NSRELAYD" --check -c "$f"
st=$?
is "$st" 0 "--check accepts limits, grace 0, control, metrics, removed" ||
	diag "$out"

# --- a FIFO is refused at once (reading it would wait for a writer)
f=$T/fifo.yaml
mkfifo "$f"
run_d out "$NSRELAYD" --check -c "$f"
st=$?
is "$st" 1 "--check on a FIFO exits 1 without waiting" || diag "$out"
like "$out" "$f: not a regular file" "  as not a regular file"

# --- --version, --help, bad option
run_d out "$NSRELAYD" --version
st=$?
is "$st" 0 "--version exits 0"
like "$out" "[0-9]+\\.[0-9]+" "--version prints a version number"
run_d out "$NSRELAYD" --help
st=$?
is "$st" 0 "--help exits 0"
like "$out" "-c" "--help mentions -c"
run_d out "$NSRELAYD" --no-such-option
st=$?
if [ "$st" != 0 ] && [ "$st" != 124 ]; then
	pass "an unknown option is refused (status $st)"
else
	fail "an unknown option is refused" "status $st" "$out"
fi

# --- missing configuration file
f=$T/does-not-exist.yaml
run_d out "$NSRELAYD" --check -c "$f"
st=$?
if [ "$st" != 0 ] && [ "$st" != 124 ] && grep -qF -- "$f" <<<"$out"; then
	pass "--check on a missing file fails naming it"
else
	fail "--check on a missing file fails naming it" "status $st" "$out"
fi
run_d out "$NSRELAYD" -f -c "$f"
st=$?
if [ "$st" != 0 ] && [ "$st" != 124 ] && grep -qF -- "$f" <<<"$out"; then
	pass "starting with a missing file fails naming it"
else
	fail "starting with a missing file fails naming it" "status $st" "$out"
fi

done_testing
