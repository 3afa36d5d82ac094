#!/bin/bash
# SPDX-License-Identifier: MIT
# Provision and deprovision racing: 100 interleaved provision/deprovision
# calls for two users from five concurrent control clients (per user one
# issuing its commands in sequence and one racing it on the same user, and
# one going back and forth between both users).  Every call is answered ok;
# once all are answered, the kernel state of each user (namespace file and
# host veth, both present or both absent; after a deprovision, the veth
# within 10 s, as the kernel tears the namespace down) matches the call the
# daemon answered last (its log gives the order) and stays so (no repair by
# the link monitor after a deprovision was answered).  Then calls queued
# behind a running one, sent in a known order, must each wait for the one
# before: the state follows the last.  Then one more call per user, sent
# after everything else was answered, and the state must follow it.
. "${top_srcdir:-$(dirname "$0")/..}/t/lib.sh"
tap_init
command -v useradd >/dev/null || skip_all "useradd not found"
command -v socat >/dev/null || skip_all "socat not found"

# two throwaway users; their indexes and uids (pool_claim) are this
# test's alone
pool_claim I0 UB
U0=$((UB + I0))
pre="hxp-$$-"
users=("hxp$$a" "hxp$$b")
for k in 0 1; do
	user_add "${users[k]}" $((U0 + k))
	netns_adopt "$pre${users[k]}"
	link_adopt "hxp$((I0 + k))"
done

ctl=$T/control.sock
start_server echo echo
conf_begin "$T/race.yaml" --all "$pre*"
conf_service echo "127.0.0.1:$echo_port" 127.0.0.1:7000
conf_text <<EOF
provision:
  uid_base: $UB
  namespace: "$pre%u"
  host_interface: "hxp%i"
  control: $ctl
EOF
daemon_up -d "nsrelayd started" "$CONF"

# race.py SOCK DLOG HOLD SEED NSPREFIX IFPREFIX I0 USER...: the run; prints
#   answer CLIENT SEQ USER VERB ANSWER   every answer, in the order received
#   burst USER VERB                      the verb done last in the burst (the
#                                        daemon's log has the order in which
#                                        it answered; the clients' threads
#                                        may see their answers in another)
#   state USER PHASE ok|bad DETAIL       the kernel state over 2 s
#   final USER VERB ANSWER
cat >"$T/race.py" <<'PY'
import os, random, re, socket, subprocess, sys, threading, time

sock, dlog, hold, seed, nspre, ifpre, i0 = sys.argv[1:8]
users = sys.argv[8:]
rnd = random.Random(int(seed))
lock = threading.Lock()
log = []			# (order, t_ns, client, seq, user, verb, answer)

def conn():
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(60)
    s.connect(sock)
    return s.makefile("rwb", buffering=0), s

def client(name, cmds, pause):
    f, s = conn()
    r = random.Random(name)
    for seq, (user, verb) in enumerate(cmds):
        f.write(("%s %s\n" % (verb, user)).encode())
        a = f.readline().decode().rstrip("\n")
        with lock:
            log.append((len(log), time.monotonic_ns(), name, seq, user, verb, a or "<EOF>"))
        if pause:
            time.sleep(r.random() * pause)
    s.close()

def verb():
    return rnd.choice(("provision", "deprovision"))

plans = {}
for u in users:				# per user: in sequence, and a racer
    plans["seq-" + u] = ([(u, verb()) for _ in range(20)], 0.02)
    plans["race-" + u] = ([(u, verb()) for _ in range(20)], 0.005)
plans["both"] = ([(rnd.choice(users), verb()) for _ in range(20)], 0.01)
threads = [threading.Thread(target=client, args=(n, c, p))
           for n, (c, p) in plans.items()]
for t in threads:
    t.start()
for t in threads:
    t.join()
for e in log:
    print("answer", *e[2:])

def state(u):
    ns = os.path.exists("/run/netns/" + nspre + u)
    link = os.path.exists("/sys/class/net/%s%d" % (ifpre, int(i0) + users.index(u)))
    return ns, link

def check(phase, want):
    """the state of every user is WANT[user] for 2 s; after a deprovision
    the file is gone at once, but the host veth goes with the kernel's
    teardown of the namespace: it must be gone within 10 s, then stay so
    for 2 s"""
    bad = {}
    since = {}                      # u: when its state was first right
    start = time.monotonic()
    while True:
        now = time.monotonic()
        for u in users:
            if u in bad:
                continue
            ns, link = state(u)
            w = want[u] == "provision"
            if (ns, link) == (w, w):
                since.setdefault(u, now)
                continue
            if u not in since and not w and not ns and now - start < 10:
                continue            # the veth is on its way out
            bad[u] = "after %s: namespace %s, host veth %s" % (
                want[u], "present" if ns else "absent",
                "present" if link else "absent")
        if all(u in bad or (u in since and now - since[u] >= 2)
               for u in users):
            break
        time.sleep(0.05)
    for u in users:
        print("state", u, phase, "bad" if u in bad else "ok", bad.get(u, ""))

def logged(pattern):
    """the daemon's log lines matching PATTERN"""
    with open(dlog, errors="replace") as f:
        return [l for l in f if re.search(pattern, l)]

def until(cond, secs):
    end = time.monotonic() + secs
    while not cond() and time.monotonic() < end:
        time.sleep(0.01)
    return cond()

want = {}
for u in users:
    # each job is logged before its answers are sent
    done = logged(r"ns \S+: (de)?provisioned for %s$" % re.escape(u))
    want[u] = "deprovision" if done and "deprovisioned" in done[-1] \
        else "provision"
    print("burst", u, want[u])
check("burst", want)
# queued behind one another: "deprovision" and "provision" come from fresh
# clients, each sent once the daemon has logged that it read the one
# before.  Each must wait for the job before it, never join a job of the
# other verb: the last one sent is answered last and decides the state.
# The first time, a bind mount at HOLD holds the namespace: the deprovision
# is answered once the file is gone, but the provision after it waits 2 s
# (until the veth of the held namespace is deleted), whatever the machine's
# speed, while "deprovision" and "provision" queue behind it; the second
# time, the kernel takes the veth in tens of ms.
def one(u, v, out):
    f, s = conn()
    f.write(("%s %s\n" % (v, u)).encode())
    out.append((v, f.readline().decode().rstrip("\n")))
    s.close()
rounds = [["deprovision", "provision", "deprovision", "provision"],
          ["deprovision", "provision", "deprovision"]]
for u in users:
    for rnd_, seq in enumerate(rounds):
        out = []
        one(u, "provision", out)
        if rnd_ == 0:
            subprocess.run(["mount", "--bind", "/run/netns/" + nspre + u,
                            hold], check=True)
        ts = []
        read = r"provision %s: (runs now|queued|joins)" % re.escape(u)
        unread = []
        for v in seq:
            n0 = len(logged(read))
            ts.append(threading.Thread(target=one, args=(u, v, out)))
            ts[-1].start()
            if not until(lambda: len(logged(read)) > n0, 10):
                unread.append(v)
        for t in ts:
            t.join()
        # after a deprovision, the file is gone at the answer, the veth
        # goes with the namespace
        w = seq[-1] == "provision"
        until(lambda: state(u) == (w, w), 10)
        ns, link = state(u)
        if rnd_ == 0:
            subprocess.run(["umount", hold], check=True)
        print("queued", u, rnd_,
              "bad: %s not read within 10 s" % ", ".join(unread) if unread
              else "ok" if (ns, link) == (w, w) else
              "bad: after %s: namespace %s, host veth %s" % (seq[-1], ns, link),
              "|", "; ".join(a for _, a in out))
    want[u] = "deprovision"
check("queued", want)
# one more command each, after everything was answered
f, s = conn()
for k, u in enumerate(users):
    v = ("deprovision", "provision")[(int(seed) + k) % 2]
    f.write(("%s %s\n" % (v, u)).encode())
    a = f.readline().decode().rstrip("\n")
    print("final", u, v, a)
    want[u] = v
s.close()
check("final", want)
PY

seed=$((RANDOM % 1000))
diag "seed $seed"
: >"$T/hold"
mount_adopt "$T/hold"
out=$("$PYTHON" "$T/race.py" "$ctl" "$DLOG" "$T/hold" "$seed" "$pre" hxp "$I0" "${users[@]}") ||
	bail "race.py failed: $out"
daemon_alive || bail "nsrelayd exited during the race"
n=$(grep -c '^answer ' <<<"$out")
is "$n" 100 "100 calls answered"
bad=$(grep '^answer ' <<<"$out" | grep -v -E '^answer \S+ [0-9]+ (\S+) (provision|deprovision) ok \1 ' || true)
is "$bad" "" "every call answered ok with its user and namespace"
for u in "${users[@]}"; do
	n=$(grep -cE "^answer \S+ [0-9]+ $u (provision|deprovision) " <<<"$out")
	diag "$u: $n calls, $(grep "^burst $u " <<<"$out")"
	like "$(grep "^state $u burst " <<<"$out")" "^state $u burst ok" \
		"$u: after the burst, the kernel state is that of the call answered last, for 2 s"
	q=$(grep "^queued $u " <<<"$out")
	diag "$q"
	is "$(grep -o '| .*' <<<"$q" | tr ';' '\n' | grep -cv "ok $u $pre$u")" 0 \
		"$u: deprovision, provision, ... queued behind one another (twice): all ok"
	is "$(grep -c "^queued $u [0-9] ok " <<<"$q")" 2 \
		"$u: ... and each time the state is that of the last one"
	like "$(grep "^state $u queued " <<<"$out")" "^state $u queued ok" \
		"$u: ... and stays so, for 2 s"
	like "$(grep "^final $u " <<<"$out")" "^final $u \S+ ok $u $pre$u\$" \
		"$u: one more call after all were answered: ok"
	like "$(grep "^state $u final " <<<"$out")" "^state $u final ok" \
		"$u: ... and the kernel state follows it, for 2 s"
done
is "$(log_count 'provisioning [^ ]+ again')" 0 \
	"no link monitor repair: only deprovisioning deleted links"
check "the daemon still serves" daemon_alive
for u in "${users[@]}"; do
	echo "deprovision $u" | timeout 30 socat -t 30 - "UNIX-CONNECT:$ctl" >/dev/null
done
stop_daemon
is "$DSTATUS" 0 "nsrelayd exits 0 on SIGTERM"
done_testing
