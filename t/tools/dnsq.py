#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""dnsq.py - DNS load and check tool for nsrelay's UDP tests.

Python 3.9+ standard library only.  Run it where the clients are, e.g.
`ip netns exec NS python3 t/tools/dnsq.py query ...`.  The server is
127.0.0.53 port 53 unless --server/--port say otherwise; --name defaults
to db.internal, --type to A.

dnsq.py query --server ADDR --port N --name NAME [--type A|TXT]
              (--expect ADDR | --expect-len N) [--count Q] [--ports P]
              [--window W] [--retries R] [--timeout-ms T] [--edns SIZE]
              [--rate QPS] [--max-time SECS]
    Q queries for NAME (default 1000) from P UDP sockets (default 10; each
    its own source port, connected to the server), W outstanding at a time
    (default 64).  Each query has a random id, unique among the queries
    (among those of its socket when Q > 65536).  A query not answered
    within T ms (default 1000) is sent again, with the same id on the same
    socket, up to R times (default 3).  An answer must come to the socket
    the query left from, with an id outstanding there, QR set, RCODE 0, TC
    clear, the question asked, and the expected answer: an A record with
    ADDR (--expect), or TXT records whose strings are N bytes in all
    (--expect-len); otherwise it is "wrong".  A second answer to a query
    already answered (the answer to a retry) is a "dup", not wrong.
    --edns SIZE adds an OPT record offering SIZE bytes (answers above 512
    bytes then come over UDP).  --rate QPS: new queries begin at most QPS a
    second (default: as fast as the window allows).  --max-time: what is
    still unanswered then is lost (default 120 s).  Prints one JSON line:
      {"sent", "datagrams", "answered", "wrong", "lost", "retries", "dups",
       "errors", "p50_ms", "p99_ms", "max_ms", "elapsed_ms"}
    (sent: queries; datagrams: with the retries; lost: unanswered after
    every retry; errors: send/receive errors such as ECONNREFUSED; the
    latencies run from a query's first send to its right answer; with
    wrong answers, "why" counts their most common reasons).
    Exit 0 only if every query was answered right; 1 otherwise.

dnsq.py flood --server ADDR --port N [--count N] [--ports P]
              [--name NAME] [--type A|TXT] [--junk SIZE] [--rate DPS]
    N datagrams (default 100000) as fast as it can (or DPS a second),
    round robin over P sockets (default 100, each its own source port, a
    few more descriptors than P are asked for), never waiting for
    answers: valid queries for NAME with changing ids, or with --junk
    SIZE random bytes each.  With P = N every datagram has its own source
    port (a port scan).  Prints one JSON line {"sent", "errors",
    "elapsed_ms"}; exit 0.

Exit status 2: usage error.
"""

import argparse
import collections
import json
import os
import random
import resource
import select
import socket
import struct
import sys
import time

QTYPES = {"A": 1, "TXT": 16, "AAAA": 28}


def family_of(addr):
    return socket.AF_INET6 if ":" in addr else socket.AF_INET


def encode_name(name):
    out = b""
    for label in name.rstrip(".").split("."):
        if label:
            b = label.encode("ascii")
            out += bytes([len(b)]) + b
    return out + b"\0"


def build_query(name, qtype, edns):
    """The query without its id (2 bytes to put in front), and its
    question section."""
    question = encode_name(name) + struct.pack(">HH", qtype, 1)
    arcount = 1 if edns else 0
    head = struct.pack(">HHHHH", 0x0100, 1, 0, 0, arcount)	# RD
    body = head + question
    if edns:
        body += b"\0" + struct.pack(">HHIH", 41, edns, 0, 0)
    return body, question


def raise_nofile(n):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= n:
        return
    want = n if hard == resource.RLIM_INFINITY else max(n, hard)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (n, want))
    except (ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(n, hard), hard))


def open_sockets(server, port, n):
    raise_nofile(n + 64)
    fam = family_of(server)
    socks = []
    for _ in range(n):
        s = socket.socket(fam, socket.SOCK_DGRAM)
        s.connect((server, port))
        s.setblocking(False)
        socks.append(s)
    return socks


def skip_name(msg, i):
    """Offset after the (possibly compressed) name at i."""
    while True:
        n = msg[i]
        if n == 0:
            return i + 1
        if n & 0xC0 == 0xC0:
            return i + 2
        i += 1 + n


def check_answer(msg, question, qtype, expect_addr, expect_len):
    """None if MSG answers QUESTION as expected, else the reason."""
    if len(msg) < 12:
        return "short message"
    flags, qd, an = struct.unpack(">HHH", msg[2:8])
    if not flags & 0x8000:
        return "QR clear"
    if flags & 0x0200:
        return "truncated (TC)"
    if flags & 0x000F:
        return "rcode %d" % (flags & 0x000F)
    if qd != 1:
        return "qdcount %d" % qd
    q = msg[12:12 + len(question)]
    if q.lower() != question.lower():
        return "another question"
    i = 12 + len(question)
    addrs, txt_len = [], 0
    try:
        for _ in range(an):
            i = skip_name(msg, i)
            rtype, rclass, _ttl, rdlen = struct.unpack(">HHIH", msg[i:i + 10])
            i += 10
            rdata = msg[i:i + rdlen]
            if len(rdata) != rdlen:
                return "short record"
            i += rdlen
            if rtype == 1 and rdlen == 4:
                addrs.append(socket.inet_ntop(socket.AF_INET, rdata))
            elif rtype == 28 and rdlen == 16:
                addrs.append(socket.inet_ntop(socket.AF_INET6, rdata))
            elif rtype == 16:
                j = 0
                while j < rdlen:
                    txt_len += rdata[j]
                    j += 1 + rdata[j]
    except (IndexError, struct.error):
        return "malformed answer"
    if expect_addr is not None and expect_addr not in addrs:
        return "no record %s (got %s)" % (expect_addr, addrs)
    if expect_len is not None and txt_len != expect_len:
        return "TXT length %d, not %d" % (txt_len, expect_len)
    return None


def percentile(sorted_ms, p):
    if not sorted_ms:
        return None
    k = min(len(sorted_ms) - 1, max(0, int(round(p / 100.0 * len(sorted_ms) + 0.5)) - 1))
    return round(sorted_ms[k], 3)


def cmd_query(a):
    qtype = QTYPES[a.type]
    body, question = build_query(a.name, qtype, a.edns)
    socks = open_sockets(a.server, a.port, a.ports)
    by_fd = {s.fileno(): k for k, s in enumerate(socks)}
    rng = random.Random()
    # ids: unique over the run, or over each socket's queries
    if a.count <= 65536:
        ids = rng.sample(range(65536), a.count)
    else:
        per = {}
        ids = []
        for n in range(a.count):
            k = n % a.ports
            if k not in per:
                per[k] = rng.sample(range(65536), 65536)
            ids.append(per[k].pop())
    timeout = a.timeout_ms / 1000.0
    # per socket: id -> [query index, first send time, attempts]
    out = [dict() for _ in socks]
    done = [dict() for _ in socks]		# answered ids (for dups)
    timers = collections.deque()		# (deadline, sock, id, attempt)
    lat = []
    st = dict(sent=0, datagrams=0, answered=0, wrong=0, lost=0, retries=0,
              dups=0, errors=0)
    reasons = collections.Counter()
    poll = select.poll()
    for s in socks:
        poll.register(s.fileno(), select.POLLIN)
    nxt = 0
    outstanding = 0
    t_start = time.monotonic()
    t_end = t_start + a.max_time

    def send(k, qid):
        try:
            socks[k].send(struct.pack(">H", qid) + body)
        except OSError:
            st["errors"] += 1
        st["datagrams"] += 1

    def receive(k):
        nonlocal outstanding
        s = socks[k]
        while True:
            try:
                msg = s.recv(65535)
            except BlockingIOError:
                return
            except OSError:
                st["errors"] += 1	# e.g. ECONNREFUSED after an ICMP error
                continue
            now = time.monotonic()
            if len(msg) < 2:
                st["wrong"] += 1
                reasons["short message"] += 1
                continue
            qid = struct.unpack(">H", msg[:2])[0]
            ent = out[k].pop(qid, None)
            if ent is None:
                if qid in done[k]:
                    st["dups"] += 1
                else:
                    st["wrong"] += 1
                    reasons["unknown id"] += 1
                continue
            why = check_answer(msg, question, qtype, a.expect, a.expect_len)
            done[k][qid] = True
            outstanding -= 1
            if why is None:
                st["answered"] += 1
                lat.append((now - ent[1]) * 1000.0)
            else:
                st["wrong"] += 1
                reasons[why] += 1

    while nxt < a.count or outstanding:
        now = time.monotonic()
        if now > t_end:
            break
        while outstanding < a.window and nxt < a.count:
            if a.rate and now < t_start + nxt / a.rate:
                break
            k = nxt % a.ports
            qid = ids[nxt]
            out[k][qid] = [nxt, now, 0]
            send(k, qid)
            st["sent"] += 1
            outstanding += 1
            timers.append((now + timeout, k, qid, 0))
            nxt += 1
        # expired timers: retry or give up
        while timers and timers[0][0] <= now:
            _, k, qid, att = timers.popleft()
            ent = out[k].get(qid)
            if ent is None or ent[2] != att:
                continue
            if att < a.retries:
                ent[2] = att + 1
                st["retries"] += 1
                send(k, qid)
                timers.append((now + timeout, k, qid, att + 1))
            else:
                del out[k][qid]
                st["lost"] += 1
                outstanding -= 1
        if not (nxt < a.count or outstanding):
            break
        wait = (timers[0][0] - now) if timers else 0.05
        if a.rate and nxt < a.count and outstanding < a.window:
            wait = min(wait, t_start + nxt / a.rate - now)
        wait = max(0.0, min(wait, t_end - now))
        for fd, _ev in poll.poll(int(wait * 1000) + 1):
            receive(by_fd[fd])
    # anything still outstanding at max-time is lost
    for k in range(len(socks)):
        st["lost"] += len(out[k])
    lat.sort()
    st["p50_ms"] = percentile(lat, 50)
    st["p99_ms"] = percentile(lat, 99)
    st["max_ms"] = round(lat[-1], 3) if lat else None
    st["elapsed_ms"] = round((time.monotonic() - t_start) * 1000.0, 1)
    if reasons:
        st["why"] = dict(reasons.most_common(5))
    print(json.dumps(st), flush=True)
    good = st["answered"] == a.count and st["wrong"] == 0
    return 0 if good else 1


def cmd_flood(a):
    socks = open_sockets(a.server, a.port, a.ports)
    sends = [s.send for s in socks]
    errors = 0
    if a.junk is not None:
        pool = [os.urandom(a.junk) for _ in range(64)]
    else:
        body, _q = build_query(a.name, QTYPES[a.type], 0)
        msg = bytearray(2 + len(body))
        msg[2:] = body
        pack = struct.Struct(">H").pack_into
    # batches of what the rate allows in a millisecond (all at once
    # without a rate)
    batch = max(1, int(a.rate / 1000)) if a.rate else a.count
    t0 = time.monotonic()
    n = 0
    while n < a.count:
        if a.rate:
            ahead = t0 + n / a.rate - time.monotonic()
            if ahead > 0:
                time.sleep(ahead)
        end = min(a.count, n + batch)
        if a.junk is not None:
            for i in range(n, end):
                try:
                    sends[i % a.ports](pool[i & 63])
                except OSError:
                    errors += 1
        else:
            for i in range(n, end):
                pack(msg, 0, i & 0xFFFF)
                try:
                    sends[i % a.ports](msg)
                except OSError:
                    errors += 1
        n = end
    ms = (time.monotonic() - t0) * 1000.0
    print(json.dumps({"sent": a.count - errors, "errors": errors,
                      "elapsed_ms": round(ms, 1)}), flush=True)
    return 0


def main():
    p = argparse.ArgumentParser(description="DNS load and check tool")
    sub = p.add_subparsers(dest="cmd", required=True)

    def common(c):
        c.add_argument("--server", default="127.0.0.53")
        c.add_argument("--port", type=int, default=53)
        c.add_argument("--ports", type=int, default=None)
        c.add_argument("--count", type=int, default=None)
        c.add_argument("--name", default="db.internal")
        c.add_argument("--type", default="A", choices=sorted(QTYPES))
        c.add_argument("--rate", type=float, default=0.0)

    q = sub.add_parser("query")
    common(q)
    g = q.add_mutually_exclusive_group(required=True)
    g.add_argument("--expect", help="an address the answer must hold")
    g.add_argument("--expect-len", type=int,
                   help="the TXT strings' total length")
    q.add_argument("--window", type=int, default=64)
    q.add_argument("--retries", type=int, default=3)
    q.add_argument("--timeout-ms", type=float, default=1000.0)
    q.add_argument("--edns", type=int, default=0)
    q.add_argument("--max-time", type=float, default=120.0)

    f = sub.add_parser("flood")
    common(f)
    f.add_argument("--junk", type=int, default=None, metavar="SIZE")

    a = p.parse_args()
    if a.cmd == "query":
        a.count = 1000 if a.count is None else a.count
        a.ports = 10 if a.ports is None else a.ports
    else:
        a.count = 100000 if a.count is None else a.count
        a.ports = 100 if a.ports is None else a.ports
    if a.count < 1 or a.ports < 1 or (a.cmd == "query" and a.window < 1):
        p.error("--count, --ports and --window must be at least 1")
    if a.cmd == "query":
        return cmd_query(a)
    return cmd_flood(a)


if __name__ == "__main__":
    sys.exit(main())
