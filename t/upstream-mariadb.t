#!/bin/bash
# SPDX-License-Identifier: MIT
# Two real MariaDB servers behind one service (balance: first, the mysql
# check), in a namespace of their own so that they see the relay host
# from a non-loopback address (the host cache, and max_connect_errors,
# apply only there):
#  - clients from a user's namespace reach the primary;
#  - the mysql check is polite: it completes a login, refused or not,
#    instead of leaving in the middle of the handshake; with
#    max_connect_errors=5 and a check every 200 ms the relay host is never
#    blocked on the primary (where the daemon's user does not exist: one
#    "Access denied" a check); on the replica, where it exists without a
#    password, the checks log in and QUIT, and Aborted_connects stays 0;
#  - the primary is shut down while a client loop runs: every query after
#    the shutdown is answered by the replica (none fails but those in
#    flight at the moment of the kill); the primary comes back and, after
#    rise good checks, gets the clients again.
. "${top_srcdir:-$(dirname "$0")/..}/t/lib.sh"
: "${MARIADBD:=/usr/sbin/mariadbd}"
: "${NSRELAYCTL:=$top_builddir/nsrelayctl}"
[ -x "$MARIADBD" ] && command -v mariadb-install-db >/dev/null &&
	command -v mariadb >/dev/null ||
	skip_all "MariaDB not installed (apt-get install mariadb-server)"
id mysql >/dev/null 2>&1 || skip_all "no user mysql (mariadb-server makes it)"
tap_init

pool_claim I0
DB_HOST=100.$((64 + I0 / 256)).$((I0 % 256)).1
DB_ADDR=100.$((64 + I0 / 256)).$((I0 % 256)).2
netns_new DBNS
netns_new NS
VETH=nsrum$$
link_adopt "$VETH"
ip link add "$VETH" type veth peer name veth0 netns "$DBNS" &&
ip addr add "$DB_HOST/30" dev "$VETH" && ip link set "$VETH" up &&
ip -n "$DBNS" addr add "$DB_ADDR/30" dev veth0 &&
ip -n "$DBNS" link set veth0 up || bail "cannot wire $DBNS"

chmod 0711 "$T"
mkdir "$T/db1" "$T/run1" "$T/run2" && chown mysql: "$T/db1" "$T/run1" "$T/run2" ||
	bail "cannot make the datadirs"
mariadb-install-db --no-defaults --datadir="$T/db1" --user=mysql \
	--auth-root-authentication-method=socket --skip-test-db \
	--innodb-log-file-size=16M >"$T/install.log" 2>&1 ||
	bail "mariadb-install-db failed: $(tail -3 "$T/install.log")"
cp -a "$T/db1" "$T/db2" || bail "cannot copy the datadir"

start_db() {	# start_db N PORT
	start_bg "db$1" ip netns exec "$DBNS" "$MARIADBD" --no-defaults \
		--datadir="$T/db$1" --user=mysql --socket="$T/run$1/s.sock" \
		--port="$2" --bind-address="$DB_ADDR" \
		--pid-file="$T/run$1/pid" --log-error="$T/run$1/error.log" \
		--skip-log-bin --skip-name-resolve --innodb-buffer-pool-size=16M \
		--innodb-log-file-size=16M --max-connect-errors=5 \
		--tmpdir="$T/run$1"
}
sql() {	# sql N STATEMENTS: as root over the server's socket
	mariadb --no-defaults -S "$T/run$1/s.sock" -u root -N -e "$2"
}
db_up() { [ -S "$T/run$1/s.sock" ] && sql "$1" 'SELECT 1' >/dev/null 2>&1; }
start_db 1 3306
start_db 2 3307
wait_for 60 db_up 1 && wait_for 60 db_up 2 ||
	bail "mariadbd did not start: $(tail -3 "$T/run1/error.log" "$T/run2/error.log")"
for n in 1 2; do
	sql "$n" "CREATE USER 'app'@'%' IDENTIFIED BY 'app'" || bail "no user app"
done
# the daemon runs as nobody: on the replica that user exists, no password
sql 2 "CREATE USER 'nobody'@'%'" || bail "no user nobody"
pass "two MariaDB servers in $DBNS at $DB_ADDR:3306 and :3307"

conf_begin "$T/db.yaml" "$NS"
conf_text <<YAML
services:
  mysql:
    listen: "127.0.0.1:3306"
    upstream: ["$DB_ADDR:3306", "$DB_ADDR:3307"]
    balance: first
    check: { protocol: mysql, interval: 200ms, timeout: 150ms, rise: 2, fall: 2 }
YAML
CONF_LISTEN=(127.0.0.1:3306)
daemon_up "$CONF"

port_of() {	# a query through the relay, from NS: the server's port
	ip netns exec "$NS" mariadb --no-defaults -h 127.0.0.1 -P 3306 -u app \
		-papp --connect-timeout=5 -N -e 'SELECT @@port' 2>&1
}
is "$(port_of)" 3306 "a client from the namespace reaches the primary"

ctl() { "$NSRELAYCTL" -s "$T/control.sock" "$@"; }
checks_of() {	# checks_of N: checks of server N (1, 2) so far
	ctl stats --json | "$PYTHON" -c 'import json, sys; d = json.load(sys.stdin); print([u["checks"] for s in d["services"] for u in s["upstreams"]]['"$1"' - 1])'
}
thirty() { [ "$(checks_of 1)" -ge 30 ] && [ "$(checks_of 2)" -ge 30 ]; }
check_within 20 "30 checks of each server" thirty
is "$(port_of)" 3306 \
	"... with max_connect_errors=5, the relay host is not blocked on the primary"
blocked=$(grep -c "blocked because of many connection errors" "$T/run1/error.log" || true)
is "$blocked" 0 "... and the primary never logged it blocked"
is "$(sql 2 "SHOW GLOBAL STATUS LIKE 'Aborted_connects'" | awk '{print $2}')" 0 \
	"the replica, where the daemon's user exists: no aborted connection"
diag "the primary (no such user): $(grep -c "Access denied for user 'nobody'" "$T/run1/error.log") lines 'Access denied', Aborted_connects $(sql 1 "SHOW GLOBAL STATUS LIKE 'Aborted_connects'" | awk '{print $2}') after $(checks_of 1) checks (access denied, not a handshake error)"

# a client loop while the primary goes down and comes back
cat >"$T/loop.sh" <<SH
while [ ! -e "$T/stop" ]; do
	t=\$(date +%s.%N)
	r=\$(mariadb --no-defaults -h 127.0.0.1 -P 3306 -u app -papp \
		--connect-timeout=5 -N -e 'SELECT @@port' 2>&1 | tr '\n' ' ')
	echo "\$t \$r"
done
SH
start_bg loop ip netns exec "$NS" bash "$T/loop.sh"
answered() { grep -q " $1 $" "$T/loop.out"; }
check_within 10 "the loop's queries are answered" answered 3306
kill_at=$(date +%s.%N)
kill -TERM "$(cat "$T/run1/pid")"
check_within 30 "primary shut down: queries are answered by the replica" answered 3307
wait_for 30 _gone "$db1_pid"
first=$(awk -v k="$kill_at" '$1 > k && $2 == 3307 { print $1; exit }' "$T/loop.out")
diag "the first answer of the replica came $(echo "($first - $kill_at) * 1000" | bc | cut -d. -f1) ms after the primary was told to stop"
cut_at=$(date +%s.%N)
n_after=$(awk -v k="$cut_at" '$1 > k' "$T/loop.out" | wc -l)
start_db 1 3306
wait_for 60 db_up 1 || bail "the primary did not start again"
back_at=$(date +%s.%N)
back() { awk -v k="$back_at" '$1 > k && $2 == 3306' "$T/loop.out" | grep -q .; }
check_within 10 "the primary back: after rise good checks it gets the queries again" back
touch "$T/stop"
bg_wait 15 loop >/dev/null
total=$(wc -l <"$T/loop.out")
failed=$(awk '$2 != 3306 && $2 != 3307' "$T/loop.out" | wc -l)
late=$(awk -v k="$cut_at" '$1 > k && $2 != 3306 && $2 != 3307' "$T/loop.out" | wc -l)
diag "$total queries, $failed failed: $(awk '$2 != 3306 && $2 != 3307' "$T/loop.out" | head -3)"
cmp_ok "$failed" -le 2 "at most the queries in flight at the shutdown failed"
is "$late" 0 "none failed once the replica answered (after the failover, through the primary's return)"
daemon_alive
ok $? "the daemon is alive"
done_testing
