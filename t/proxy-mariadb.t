#!/bin/bash
# SPDX-License-Identifier: MIT
# proxy_protocol against a real MariaDB (proxy_protocol_networks =
# localhost,127.0.0.1): two namespaces nsrelayd provisioned, A and B, reach
# the same server through the same relay, over TCP (v2) and over its unix
# socket (v1); the server takes each namespace's own address as the
# client's: USER() and CURRENT_USER() name app@<A's address> from A and
# app@<B's address> from B, and each gets only its own grants.  A third
# namespace, not provisioned, is seen as 127.0.0.1 and has no account.
# The mysql health check, sent with PROXY UNKNOWN / LOCAL, keeps the
# server up.
. "${top_srcdir:-$(dirname "$0")/..}/t/lib.sh"
: "${MARIADBD:=/usr/sbin/mariadbd}"
: "${NSRELAYCTL:=$top_builddir/nsrelayctl}"
[ -x "$MARIADBD" ] && command -v mariadb-install-db >/dev/null &&
	command -v mariadb >/dev/null ||
	skip_all "MariaDB not installed (apt-get install mariadb-server)"
id mysql >/dev/null 2>&1 || skip_all "no user mysql (mariadb-server makes it)"
tap_init

chmod 0711 "$T"
mkdir "$T/db" "$T/run" && chown mysql: "$T/db" "$T/run" && chmod 0755 "$T/run" ||
	bail "cannot make the datadir"
mariadb-install-db --no-defaults --datadir="$T/db" --user=mysql \
	--auth-root-authentication-method=socket --skip-test-db \
	--innodb-log-file-size=16M >"$T/install.log" 2>&1 ||
	bail "mariadb-install-db failed: $(tail -3 "$T/install.log")"
port=$("$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
start_bg db "$MARIADBD" --no-defaults --datadir="$T/db" --user=mysql \
	--socket="$T/run/s.sock" --port="$port" --bind-address=127.0.0.1 \
	--pid-file="$T/run/pid" --log-error="$T/run/error.log" \
	--skip-log-bin --skip-name-resolve --innodb-buffer-pool-size=16M \
	--innodb-log-file-size=16M --tmpdir="$T/run" \
	--proxy-protocol-networks=localhost,127.0.0.1
sql() { mariadb --no-defaults -S "$T/run/s.sock" -u root -N -e "$1"; }
db_up() { [ -S "$T/run/s.sock" ] && sql 'SELECT 1' >/dev/null 2>&1; }
wait_for 60 db_up || bail "mariadbd did not start: $(tail -3 "$T/run/error.log")"

pool_claim B UB
pre="nspm-$$-"
ua=nspma$$
ub=nspmb$$
user_add "$ua" $((UB + B))
user_add "$ub" $((UB + B + 1))
netns_adopt "$pre$ua"
netns_adopt "$pre$ub"
link_adopt "npm$B"
link_adopt "npm$((B + 1))"
A=$(pool_v4 "$B" 2)
Bq=$(pool_v4 $((B + 1)) 2)
other="${pre}other"
netns_adopt "$other"
netns_create "$other"

sql "CREATE DATABASE a; CREATE DATABASE b;
     CREATE USER 'app'@'$A' IDENTIFIED BY 'app';
     CREATE USER 'app'@'$Bq' IDENTIFIED BY 'app';
     GRANT ALL ON a.* TO 'app'@'$A'; GRANT ALL ON b.* TO 'app'@'$Bq';
     CREATE USER 'nobody'@'127.0.0.1'; CREATE USER 'nobody'@'localhost'" ||
	bail "cannot create the accounts"
pass "MariaDB with proxy_protocol_networks on 127.0.0.1:$port and its socket"

conf_begin "$T/db.yaml" --control none --all "$pre*"
conf_text <<EOF
services:
  tcp:
    listen: "127.0.0.1:3306"
    upstream: "127.0.0.1:$port"
    proxy_protocol: v2
    check: { protocol: mysql, interval: 300ms }
  sock:
    listen: "127.0.0.1:3307"
    upstream: "unix:$T/run/s.sock"
    proxy_protocol: v1
    check: { protocol: mysql, interval: 300ms }
control:
  path: $T/control.sock
provision:
  users: [$ua, $ub]
  uid_base: $UB
  namespace: "$pre%u"
  host_interface: "npm%i"
EOF
start_daemon "$CONF"
for ns in "$pre$ua" "$pre$ub" "$other"; do
	check_within 20 "$ns is served" wait_listening "$ns" 127.0.0.1:3307 1
done

q() {	# q NS PORT DB SQL
	in_ns "$1" mariadb --no-defaults -h 127.0.0.1 -P "$2" -u app -papp \
		--connect-timeout=5 ${3:+-D "$3"} -N -B -e "$4" 2>&1
}
who='SELECT CONCAT(USER(), " ", CURRENT_USER())'
is "$(q "$pre$ua" 3306 "" "$who")" "app@$A app@$A" \
	"TCP, v2: from A, USER() and CURRENT_USER() are A's address"
is "$(q "$pre$ub" 3306 "" "$who")" "app@$Bq app@$Bq" \
	"TCP, v2: from B, B's address"
is "$(q "$pre$ua" 3307 "" "$who")" "app@$A app@$A" \
	"unix socket, v1: from A, A's address"
is "$(q "$pre$ub" 3307 "" "$who")" "app@$Bq app@$Bq" \
	"unix socket, v1: from B, B's address"
is "$(q "$pre$ua" 3306 a 'SELECT DATABASE()')" a "A uses its database"
like "$(q "$pre$ua" 3306 b 'SELECT DATABASE()')" "Access denied for user 'app'@'$A' to database 'b'" \
	"... and not B's"
like "$(q "$pre$ub" 3307 a 'SELECT DATABASE()')" "Access denied for user 'app'@'$Bq' to database 'a'" \
	"B does not use A's"
like "$(q "$other" 3306 "" "$who")" "Access denied for user 'app'@'127.0.0.1'" \
	"a namespace not provisioned: its client's 127.0.0.1, no account"
up() { "$NSRELAYCTL" -s "$T/control.sock" stats --json |
	jq -e '[.services[].upstreams[] | select(.checks >= 5 and .state == "up")] | length == 2' >/dev/null; }
check_within 10 "the mysql checks with PROXY UNKNOWN and LOCAL keep both servers up" up
stop_daemon
is "$DSTATUS" 0 "nsrelayd exits 0"
kill -TERM "$(cat "$T/run/pid")"
wait_for 30 _gone "$db_pid"
done_testing
