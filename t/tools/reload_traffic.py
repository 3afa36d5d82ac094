#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""reload_traffic.py - continuous traffic through nsrelayd while it reloads.

Python 3.9+ standard library only.  Used by t/reload.t.

  reload_traffic.py serve [--host ADDR] [--port N]
      An echo server that accounts for every connection: it reads, hashes
      and echoes; at the client's EOF it shuts down writing and prints
      "conn ID NBYTES SHA256 eof" (or "reset" when the connection died
      instead), ID being the first line the client sent ("id ID").
      Prints its port first.

  reload_traffic.py clients --port N --n K --stop-file F [--host ADDR]
                            [--tag T] [--chunk BYTES] [--interval SECS]
                            [--probe] [--timeout SECS]
      K connections, each sending chunks of its own pseudo-random stream
      and reading their echo, one chunk in flight at a time, until F
      exists; then each shuts down writing and reads to EOF.  Prints
      "connected K" once all are up, then per connection
      "conn T-I sent N SHA recv N SHA maxgap MS" and at the end
      "ok K connections" or "FAIL: ..." lines (exit 1).  A connection is
      cut if it gets a reset, an early EOF, or nothing for --timeout (10 s).
      MS is the longest wait for an echo, in milliseconds.
      --probe: meanwhile a thread opens a fresh connection every 10 ms,
      sends a line and reads its echo; prints "probes N refused R failed F".
"""

import argparse
import hashlib
import os
import random
import socket
import sys
import threading
import time


def say(msg):
    sys.stdout.write(msg + "\n")
    sys.stdout.flush()


def family_of(host):
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def serve(args):
    ls = socket.socket(family_of(args.host), socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((args.host, args.port))
    ls.listen(1024)
    say(str(ls.getsockname()[1]))
    lock = threading.Lock()

    def run(conn):
        h = hashlib.sha256()
        n = 0
        ident = None
        head = b""
        how = "eof"
        try:
            while True:
                data = conn.recv(65536)
                if not data:
                    break
                h.update(data)
                n += len(data)
                if ident is None:
                    head += data
                    if b"\n" in head:
                        ident = head.split(b"\n", 1)[0].decode(
                            errors="replace").replace("id ", "", 1)
                conn.sendall(data)
            conn.shutdown(socket.SHUT_WR)
        except OSError:
            how = "reset"
        finally:
            conn.close()
        with lock:
            say("conn %s %d %s %s" % (ident, n, h.hexdigest(), how))

    while True:
        conn, _ = ls.accept()
        threading.Thread(target=run, args=(conn,), daemon=True).start()


class Conn:
    def __init__(self, tag, i, args):
        self.name = "%s-%d" % (tag, i)
        self.rng = random.Random("%s/%d" % (tag, i))
        self.args = args
        self.sent = hashlib.sha256()
        self.recvd = hashlib.sha256()
        self.nsent = 0
        self.nrecv = 0
        self.maxgap = 0.0
        self.error = None
        self.s = socket.create_connection((args.host, args.port),
                                          timeout=args.timeout)

    def send(self, data):
        self.s.sendall(data)
        self.sent.update(data)
        self.nsent += len(data)

    def read_until(self, n):
        t0 = time.monotonic()
        while self.nrecv < n:
            data = self.s.recv(65536)
            if not data:
                raise OSError("EOF after %d of %d bytes" % (self.nrecv, n))
            self.recvd.update(data)
            self.nrecv += len(data)
        self.maxgap = max(self.maxgap, time.monotonic() - t0)

    def run(self, stop_file):
        try:
            self.send(("id %s\n" % self.name).encode())
            while not os.path.exists(stop_file):
                k = self.rng.randint(1, self.args.chunk)
                self.send(self.rng.randbytes(k))
                self.read_until(self.nsent)
                time.sleep(self.args.interval)
            self.s.shutdown(socket.SHUT_WR)
            self.read_until(self.nsent)
            if self.s.recv(1):
                raise OSError("more bytes than were sent")
        except OSError as e:        # a reset, a timeout, an early EOF
            self.error = str(e) or type(e).__name__
        finally:
            self.s.close()


def probe(args, stop_file, out):
    n = refused = failed = 0
    while not os.path.exists(stop_file):
        n += 1
        try:
            s = socket.create_connection((args.host, args.port),
                                         timeout=args.timeout)
            s.sendall(b"id probe\nping\n")
            got = b""
            while len(got) < 14:
                data = s.recv(64)
                if not data:
                    break
                got += data
            s.close()
            if got != b"id probe\nping\n":
                failed += 1
        except ConnectionRefusedError:
            refused += 1
        except OSError:
            failed += 1
        time.sleep(0.01)
    out.extend([n, refused, failed])


def clients(args):
    conns = [Conn(args.tag, i, args) for i in range(args.n)]
    say("connected %d" % len(conns))
    threads = [threading.Thread(target=c.run, args=(args.stop_file,))
               for c in conns]
    res = []
    if args.probe:
        threads.append(threading.Thread(target=probe,
                                        args=(args, args.stop_file, res)))
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    bad = 0
    for c in conns:
        say("conn %s sent %d %s recv %d %s maxgap %d" % (
            c.name, c.nsent, c.sent.hexdigest(), c.nrecv,
            c.recvd.hexdigest(), c.maxgap * 1000))
        if c.error:
            say("FAIL: %s: %s" % (c.name, c.error))
            bad += 1
        elif c.sent.digest() != c.recvd.digest():
            say("FAIL: %s: echo differs" % c.name)
            bad += 1
    if args.probe:
        say("probes %d refused %d failed %d" % tuple(res))
    if bad:
        sys.exit(1)
    say("ok %d connections" % len(conns))


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("serve")
    c.add_argument("--host", default="127.0.0.1")
    c.add_argument("--port", type=int, default=0)
    c = sub.add_parser("clients")
    c.add_argument("--host", default="127.0.0.1")
    c.add_argument("--port", type=int, required=True)
    c.add_argument("--n", type=int, default=50)
    c.add_argument("--tag", default="c")
    c.add_argument("--stop-file", required=True)
    c.add_argument("--chunk", type=int, default=16384)
    c.add_argument("--interval", type=float, default=0.02)
    c.add_argument("--timeout", type=float, default=10.0)
    c.add_argument("--probe", action="store_true")
    args = p.parse_args()
    {"serve": serve, "clients": clients}[args.cmd](args)


if __name__ == "__main__":
    main()
