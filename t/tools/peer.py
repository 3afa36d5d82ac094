#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""peer.py - test servers and clients for nsrelay's integration tests.

Python 3.9+ standard library only.  Usage: peer.py SUBCOMMAND [options].
Sizes accept suffixes: 4096, 64k/64KiB, 16M/16MiB, 1G/1GiB (powers of 2).
Every socket operation has a timeout (--timeout, default 10 s), so a broken
relay fails a test instead of hanging it.  Exit status: 0 success, 1 the
check failed (reason on stderr as "FAIL: ..."), 2 usage error.

Data streams are deterministic: "stream SEED" is the byte sequence produced
by random.Random(SEED) in fixed 64 KiB blocks, so a sender and a verifier in
different processes agree on every byte without exchanging it.

SERVERS: peer.py serve KIND [options]
  (on the host, or inside a namespace with `ip netns exec`)
  Common options: --host ADDR (default 127.0.0.1; "::1" for IPv6)
                  --port N (default 0 = ephemeral)
                  --unix PATH [--mode 0666]   (unix socket instead of TCP)
  Once listening they print "PORT\\n" (TCP) or "ready\\n" (unix) on stdout,
  flush, and then serve any number of connections (one thread each) until
  killed.  Per-connection reports go to stdout, one line each.

  echo                 echo everything; on EOF, shut down writing and close.
  greet [--text T]     send "T\\n" (default "hello from upstream") on accept,
                       then echo.
  source --bytes N [--seed S] [--rate BYTES_PER_S] [--progress FILE]
                       send N bytes of stream S (default 1), then close
                       (FIN).  --progress: FILE holds the number of bytes
                       handed to the kernel so far (atomically rewritten at
                       most every 20 ms, and at the end).
  slowsource           = source; the name the backpressure test uses.
  rst-after --bytes N [--seed S] [--delay SECS]
                       send N bytes of stream S, wait SECS (default 0.3),
                       then close with SO_LINGER {1, 0}: a TCP RST.
  sink                 read to EOF; print "NBYTES SHA256HEX"; close.
  watch                echo; when the client side ends print "eof N" or
                       "reset N" (N bytes received).
  sinkwatch [--seed S] read (never write); when the client side ends print
                       "eof N" or "reset N" (N bytes received; with --seed
                       they must be a prefix of stream S).
  halfclose-reply --bytes N [--seed S] [--pieces K --interval SECS]
                       read to EOF, then reply "SHA256HEX NBYTES\\n" for what
                       it received, followed by N bytes of stream S (in K
                       pieces SECS apart, default 1 piece), then close.
  sendfirst --bytes N [--seed S]
                       send N bytes of stream S, shutdown(SHUT_WR), then read
                       to EOF and print "NBYTES SHA256HEX" of what it got.
  silent               read and discard; never write, never close.
  mysql [--text V]     greet as a MySQL server does: an initial handshake
                       packet (protocol 10, server version V); then if the
                       client logs in, print "login USER", answer OK, and
                       print "quit" on a COM_QUIT; print "closed" at EOF.
  mysql-error [--text T]  an error packet 1040 (T, default "Too many
                       connections") instead of a handshake, then close.
  blackhole            listen, never accept, keep the accept queue full:
                       connects to it hang (for connect timeouts).
  peercred             (use with --unix) on accept write
                       "uid=U gid=G pid=P\\n" from SO_PEERCRED, then close.

CLIENTS: peer.py KIND [options]
  (run inside a namespace: ip netns exec NS python3 peer.py KIND ...)
  Common options: --host ADDR (default 127.0.0.1)  --port N (required)
                  --timeout SECS (per operation, default 10)
  echo --bytes N [--seed S]
                       send N bytes while concurrently reading the echo;
                       compare SHA-256 of both directions.
  greet [--expect T]   connect, send nothing, expect the line T.
  mysql [--expect V]   connect, read the MySQL handshake packet, print
                       "server V" (its version), fail if not V.
  abort [--bytes N]    send N bytes, read their echo, close with a reset.
  readline             connect, send nothing, print the first line received.
  chatter [--count N] [--interval SECS]
                       send "ping I\n" N times (default 8), SECS apart
                       (default 0.3), each time waiting for its echo; fails
                       if the connection is closed meanwhile.
  concurrent --n N [--bytes B]
                       open N connections at once, then send a distinct
                       B-byte message (default 4096) on each and check each
                       echo.
  fetch --bytes N [--seed S]
                       send nothing; read to EOF; the data must be exactly
                       N bytes of stream S and end in a clean EOF.
  drain [--min-bytes N]
                       read until the connection is closed (EOF or reset);
                       prints "eof|reset NBYTES after SECS"; fails on timeout
                       (then --timeout is the total bound).
  expect-reset [--seed S] [--send DATA] [--go-file FILE [--max-wait SECS]]
                       read until closed; success only if recv() raised
                       ECONNRESET (a clean EOF fails).  If --seed is given
                       the bytes received must be a prefix of stream S.
                       --go-file: print "connected", then read nothing
                       until FILE exists (at most --max-wait, default 60 s;
                       the relay's buffers fill meanwhile), then read.
                       --rcvbuf N: SO_RCVBUF N before connecting (the
                       kernel's buffer for this client is then N bytes
                       or so, not what autotuning would grow it to).
  upload --bytes N [--seed S] [--rate BYTES_PER_S] [--progress FILE]
                       send N bytes of stream S at that rate, then
                       shutdown(SHUT_WR) and wait for the peer to close;
                       prints "sent N" or, when the peer cuts it, "cut
                       after N" (reset or broken pipe: both succeed).
  expect-close --within SECS [--not-before SECS] [--send DATA] [--shutdown]
               [--reset]
                       connect (optionally send DATA, optionally
                       shutdown(SHUT_WR)), then wait until the peer closes
                       (EOF or reset; a reset while connecting or sending
                       counts).  Fails if that takes longer than --within
                       (from before the connect), or happens before
                       --not-before.  --reset: only ECONNRESET counts, a
                       clean EOF fails.
  halfclose --bytes N --reply-bytes M [--seed S] [--reply-seed R]
                       send N bytes of stream S, shutdown(SHUT_WR), then
                       expect "SHA NBYTES\\n" matching what was sent,
                       followed by exactly M bytes of stream R and EOF.
  late-send --expect-bytes N --bytes M [--seed S] [--send-seed S2]
                       read to EOF expecting N bytes of stream S, only then
                       send M bytes of stream S2 and shutdown(SHUT_WR); wait
                       for the peer to close.  Prints "NBYTES SHA256HEX" of
                       what it sent (compare with sendfirst's report).
  slowread --bytes N --go-file FILE [--seed S] [--max-wait SECS]
                       connect, send nothing, read nothing until FILE exists
                       (polled every 50 ms, at most --max-wait, default 60),
                       then drain: exactly N bytes of stream S then EOF.
                       Prints "connected" on stdout once connected.
  hold --n K [--connect-wait SECS] [--max-life SECS]
                       open K connections at once (non-blocking connects,
                       bounded by --connect-wait, default 5) and keep them
                       open until SIGTERM/SIGINT/SIGHUP (or --max-life,
                       default 120 s).  Prints "connected C failed F" once
                       the connects have settled.

HOST-SIDE TOOLS
  placement --pid PID [--netns-dir DIR] --ns NAME... [--expect NAME=ADDR...]
            [--threads]
                       fetch every listening TCP socket of process PID with
                       pidfd_getfd(2), ask its network namespace with
                       ioctl(SIOCGSKNS), and compare with DIR/NAME (default
                       /run/netns).  Prints "listener NS ADDR" per socket.
                       Fails if a listener is in the host's namespace or in
                       one not named by --ns, or if an --expect'ed
                       (namespace, address) pair has no listener.
                       --threads: also every thread of PID must be in this
                       process's (the host's) network namespace.
  freeport [--host ADDR]
                       print a TCP port that nothing listens on right now.
"""

import argparse
import ctypes
import errno
import fcntl
import hashlib
import os
import random
import select
import signal
import socket
import struct
import sys
import threading
import time

BLOCK = 65536


def die(msg):
    sys.stderr.write("FAIL: %s\n" % msg)
    sys.stderr.flush()
    sys.exit(1)


def say(msg):
    sys.stdout.write(msg + "\n")
    sys.stdout.flush()


def parse_size(text):
    t = text.strip().lower()
    mult = 1
    for suffix, m in (("kib", 1 << 10), ("mib", 1 << 20), ("gib", 1 << 30),
                      ("k", 1 << 10), ("m", 1 << 20), ("g", 1 << 30),
                      ("b", 1)):
        if t.endswith(suffix):
            t = t[: -len(suffix)]
            mult = m
            break
    try:
        return int(t) * mult
    except ValueError:
        raise argparse.ArgumentTypeError("bad size %r" % text)


class Stream:
    """Deterministic byte stream: random.Random(seed), fixed 64 KiB blocks."""

    def __init__(self, seed):
        self.rng = random.Random(seed)
        self.buf = b""
        self.pos = 0

    def read(self, n):
        out = []
        while n > 0:
            if self.pos >= len(self.buf):
                self.buf = self.rng.randbytes(BLOCK)
                self.pos = 0
            take = min(n, len(self.buf) - self.pos)
            out.append(self.buf[self.pos:self.pos + take])
            self.pos += take
            n -= take
        return b"".join(out)


def stream_sha(seed, n):
    st = Stream(seed)
    h = hashlib.sha256()
    while n > 0:
        k = min(n, 1 << 20)
        h.update(st.read(k))
        n -= k
    return h.hexdigest()


def family_of(host):
    return socket.AF_INET6 if ":" in host else socket.AF_INET


# ---------------------------------------------------------------- servers

def serve(args, handler):
    if handler is None:         # blackhole
        return serve_blackhole(args)
    if args.unix:
        try:
            os.unlink(args.unix)
        except FileNotFoundError:
            pass
        ls = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        ls.bind(args.unix)
        os.chmod(args.unix, int(args.mode, 8))
        ls.listen(1024)
        say("ready")
    else:
        ls = socket.socket(family_of(args.host), socket.SOCK_STREAM)
        ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        ls.bind((args.host, args.port))
        ls.listen(1024)
        say(str(ls.getsockname()[1]))

    def run(conn):
        try:
            conn.settimeout(None)
            handler(conn, args)
        except OSError as e:
            sys.stderr.write("%s: connection: %s\n" % (args.cmd, e))
            sys.stderr.flush()
        finally:
            try:
                conn.close()
            except OSError:
                pass

    while True:
        conn, _ = ls.accept()
        threading.Thread(target=run, args=(conn,), daemon=True).start()


def serve_blackhole(args):
    """Listen with a backlog of 0, never accept, and fill the queue with
    connections of our own: further SYNs are dropped, so a connect to this
    port hangs as it would to a host that does not answer."""
    fam = family_of(args.host)
    ls = socket.socket(fam, socket.SOCK_STREAM)
    ls.bind((args.host, args.port))
    ls.listen(0)
    port = ls.getsockname()[1]
    fill = []
    for _ in range(4):
        c = socket.socket(fam, socket.SOCK_STREAM)
        c.setblocking(False)
        c.connect_ex((args.host, port))
        fill.append(c)
    say(str(port))
    threading.Event().wait()


def do_echo(conn, args):
    while True:
        data = conn.recv(BLOCK)
        if not data:
            break
        conn.sendall(data)
    conn.shutdown(socket.SHUT_WR)


def srv_greet(conn, args):
    conn.sendall(args.text.encode() + b"\n")
    do_echo(conn, args)


class Progress:
    def __init__(self, path):
        self.path = path
        self.last = 0.0

    def update(self, n, force=False):
        if not self.path:
            return
        now = time.monotonic()
        if not force and now - self.last < 0.02:
            return
        self.last = now
        tmp = "%s.%d.tmp" % (self.path, threading.get_ident())
        with open(tmp, "w") as f:
            f.write("%d\n" % n)
        os.replace(tmp, self.path)


def send_stream(conn, args, progress=None):
    st = Stream(args.seed)
    left = args.bytes
    sent = 0
    start = time.monotonic()
    pending = b""
    while left > 0 or pending:
        if not pending:
            pending = st.read(min(left, BLOCK))
            left -= len(pending)
        if getattr(args, "rate", 0):
            ahead = sent / args.rate - (time.monotonic() - start)
            if ahead > 0:
                time.sleep(min(ahead, 0.1))
                continue
        n = conn.send(pending)
        pending = pending[n:]
        sent += n
        if progress:
            progress.update(sent)
    if progress:
        progress.update(sent, force=True)
    return sent


def srv_source(conn, args):
    send_stream(conn, args, Progress(args.progress))
    conn.shutdown(socket.SHUT_WR)


def srv_rst_after(conn, args):
    send_stream(conn, args)
    time.sleep(args.delay)
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


def read_all(conn, h=None):
    n = 0
    while True:
        data = conn.recv(BLOCK)
        if not data:
            return n
        n += len(data)
        if h:
            h.update(data)


def srv_sink(conn, args):
    h = hashlib.sha256()
    n = read_all(conn, h)
    say("%d %s" % (n, h.hexdigest()))
    conn.shutdown(socket.SHUT_WR)


def srv_watch(conn, args):
    """Echo, and report how the client side ended: "eof N" or "reset N"."""
    n = 0
    try:
        while True:
            data = conn.recv(BLOCK)
            if not data:
                say("eof %d" % n)
                return
            n += len(data)
            conn.sendall(data)
    except ConnectionResetError:
        say("reset %d" % n)


def srv_sinkwatch(conn, args):
    st = Stream(args.seed) if args.seed_given else None
    n = 0
    try:
        while True:
            data = conn.recv(BLOCK)
            if not data:
                say("eof %d" % n)
                return
            if st is not None and data != st.read(len(data)):
                say("bad %d" % n)
                return
            n += len(data)
    except ConnectionResetError:
        say("reset %d" % n)


def srv_halfclose_reply(conn, args):
    h = hashlib.sha256()
    n = read_all(conn, h)
    conn.sendall(("%s %d\n" % (h.hexdigest(), n)).encode())
    st = Stream(args.seed)
    pieces = max(1, args.pieces)
    left = args.bytes
    for i in range(pieces):
        k = left // (pieces - i)
        sent = 0
        while sent < k:
            chunk = st.read(min(BLOCK, k - sent))
            conn.sendall(chunk)
            sent += len(chunk)
        left -= k
        if i + 1 < pieces:
            time.sleep(args.interval)
    conn.shutdown(socket.SHUT_WR)


def srv_sendfirst(conn, args):
    send_stream(conn, args)
    conn.shutdown(socket.SHUT_WR)
    h = hashlib.sha256()
    n = read_all(conn, h)
    say("%d %s" % (n, h.hexdigest()))


def srv_silent(conn, args):
    try:
        read_all(conn)
    except OSError:
        pass
    threading.Event().wait()    # keep the socket open forever


def mysql_packet(seq, payload):
    n = len(payload)
    return bytes([n & 0xff, (n >> 8) & 0xff, n >> 16, seq]) + payload


def mysql_read_packet(conn):
    head = b""
    while len(head) < 4:
        data = conn.recv(4 - len(head))
        if not data:
            return None, None
        head += data
    n = head[0] | head[1] << 8 | head[2] << 16
    body = b""
    while len(body) < n:
        data = conn.recv(n - len(body))
        if not data:
            return None, None
        body += data
    return head[3], body


def srv_mysql(conn, args):
    version = args.text if args.text != "hello from upstream" else \
        "10.11.6-MariaDB-peer"
    hs = (b"\x0a" + version.encode() + b"\x00" + struct.pack("<I", 7) +
          b"abcdefgh\x00" + struct.pack("<H", 0xf7fe) + b"\x21" +
          struct.pack("<H", 2) + struct.pack("<H", 0x81bf) + b"\x15" +
          b"\x00" * 10 + b"ijklmnopqrst\x00" + b"mysql_native_password\x00")
    conn.sendall(mysql_packet(0, hs))
    while True:
        seq, body = mysql_read_packet(conn)
        if body is None:
            say("closed")
            return
        if seq == 1 and len(body) >= 33:
            user = body[32:].split(b"\x00", 1)[0].decode(errors="replace")
            say("login %s" % user)
            conn.sendall(mysql_packet(2, b"\x00\x00\x00\x02\x00\x00\x00"))
        elif seq == 0 and body[:1] == b"\x01":
            say("quit")
        else:
            say("packet %d %r" % (seq, body[:16]))


def srv_mysql_error(conn, args):
    text = args.text if args.text != "hello from upstream" else \
        "Too many connections"
    conn.sendall(mysql_packet(0, b"\xff" + struct.pack("<H", 1040) +
                              text.encode()))
    conn.shutdown(socket.SHUT_WR)
    read_all(conn)


def cli_mysql(args):
    s = connect(args)
    head = b""
    while len(head) < 4:
        head += recv(s, 4 - len(head), "handshake header")
    n = head[0] | head[1] << 8 | head[2] << 16
    body = b""
    while len(body) < n:
        body += recv(s, n - len(body), "handshake")
    if body[:1] != b"\x0a":
        die("not a handshake: %r" % body[:32])
    version = body[1:].split(b"\x00", 1)[0].decode(errors="replace")
    if args.expect and version != args.expect:
        die("server %r, expected %r" % (version, args.expect))
    say("server %s" % version)


def srv_peercred(conn, args):
    cred = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED,
                           struct.calcsize("3i"))
    pid, uid, gid = struct.unpack("3i", cred)
    conn.sendall(("uid=%d gid=%d pid=%d\n" % (uid, gid, pid)).encode())
    conn.shutdown(socket.SHUT_WR)


SERVERS = {
    "echo": do_echo,
    "greet": srv_greet,
    "source": srv_source,
    "slowsource": srv_source,
    "rst-after": srv_rst_after,
    "sink": srv_sink,
    "watch": srv_watch,
    "sinkwatch": srv_sinkwatch,
    "halfclose-reply": srv_halfclose_reply,
    "sendfirst": srv_sendfirst,
    "silent": srv_silent,
    "mysql": srv_mysql,
    "mysql-error": srv_mysql_error,
    "peercred": srv_peercred,
    "blackhole": None,
}

# ---------------------------------------------------------------- clients


def connect(args, timeout=None, reset_ok=False, rcvbuf=0):
    """Connect with a timeout.  With reset_ok, a connection reset while
    connecting (the relay accepted and reset it at once) returns None.
    RCVBUF: SO_RCVBUF before the connect (the window is set then)."""
    s = socket.socket(family_of(args.host), socket.SOCK_STREAM)
    if rcvbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.settimeout(timeout if timeout is not None else args.timeout)
    try:
        s.connect((args.host, args.port))
    except ConnectionResetError as e:
        if reset_ok:
            s.close()
            return None
        die("connect to %s port %d: %s" % (args.host, args.port, e))
    except OSError as e:
        die("connect to %s port %d: %s" % (args.host, args.port, e))
    return s


def recv(s, n, what="recv"):
    try:
        return s.recv(n)
    except socket.timeout:
        die("%s: timed out" % what)
    except OSError as e:
        die("%s: %s" % (what, e))


def expect_stream_eof(s, seed, nbytes, what):
    """Read exactly nbytes of stream seed, then a clean EOF."""
    st = Stream(seed)
    got = 0
    while True:
        data = recv(s, 1 << 18, what)
        if not data:
            break
        if got + len(data) > nbytes:
            die("%s: more than the %d bytes expected" % (what, nbytes))
        if data != st.read(len(data)):
            die("%s: data differs from stream %s within bytes %d..%d"
                % (what, seed, got, got + len(data)))
        got += len(data)
    if got != nbytes:
        die("%s: EOF after %d bytes, expected %d" % (what, got, nbytes))
    return got


def cli_echo(args):
    s = connect(args)
    h_out = hashlib.sha256()
    err = []

    def sender():
        st = Stream(args.seed)
        left = args.bytes
        try:
            while left > 0:
                chunk = st.read(min(left, BLOCK))
                s.sendall(chunk)
                h_out.update(chunk)
                left -= len(chunk)
        except OSError as e:
            err.append("send: %s" % e)

    t = threading.Thread(target=sender, daemon=True)
    t.start()
    h_in = hashlib.sha256()
    got = 0
    while got < args.bytes:
        data = recv(s, 1 << 18, "echo recv after %d bytes" % got)
        if not data:
            die("EOF after %d of %d echoed bytes" % (got, args.bytes))
        got += len(data)
        h_in.update(data)
    t.join(args.timeout)
    if err:
        die(err[0])
    if t.is_alive():
        die("sender did not finish")
    if got != args.bytes:
        die("received %d bytes, sent %d" % (got, args.bytes))
    if h_in.hexdigest() != h_out.hexdigest():
        die("sha256 mismatch: sent %s received %s"
            % (h_out.hexdigest(), h_in.hexdigest()))
    say("echo ok %d bytes sha256 %s" % (got, h_in.hexdigest()))


def read_line(s, what, limit=4096):
    buf = b""
    while not buf.endswith(b"\n"):
        data = recv(s, 1, what)
        if not data:
            die("%s: EOF after %r" % (what, buf))
        buf += data
        if len(buf) > limit:
            die("%s: line too long" % what)
    return buf[:-1].decode(errors="replace")


def cli_greet(args):
    s = connect(args)
    line = read_line(s, "greeting")
    if line != args.expect:
        die("greeting %r, expected %r" % (line, args.expect))
    say("greeting %r" % line)


def cli_readline(args):
    s = connect(args)
    say(read_line(s, "line"))


def cli_chatter(args):
    s = connect(args)
    t0 = time.monotonic()
    for i in range(args.count):
        if i:
            time.sleep(args.interval)
        msg = ("ping %d\n" % i).encode()
        try:
            s.sendall(msg)
        except OSError as e:
            die("send %d after %.2fs: %s" % (i, time.monotonic() - t0, e))
        got = b""
        while len(got) < len(msg):
            data = recv(s, 4096, "echo %d" % i)
            if not data:
                die("closed after %.2fs, at message %d"
                    % (time.monotonic() - t0, i))
            got += data
        if got != msg:
            die("echo %d differs: %r" % (i, got))
    say("%d messages over %.2fs ok" % (args.count, time.monotonic() - t0))


def cli_concurrent(args):
    socks = []
    for i in range(args.n):
        socks.append(connect(args))
    msgs = []
    for i, s in enumerate(socks):
        m = ("conn %d\n" % i).encode() + Stream(1000 + i).read(args.bytes)
        msgs.append(m)
        try:
            s.sendall(m)
        except OSError as e:
            die("connection %d: send: %s" % (i, e))
    for i, s in enumerate(socks):
        buf = b""
        while len(buf) < len(msgs[i]):
            data = recv(s, 65536, "connection %d recv" % i)
            if not data:
                die("connection %d: EOF after %d of %d bytes"
                    % (i, len(buf), len(msgs[i])))
            buf += data
        if buf != msgs[i]:
            die("connection %d: echo differs" % i)
    for s in socks:
        s.close()
    say("%d connections ok" % args.n)


def cli_fetch(args):
    s = connect(args)
    n = expect_stream_eof(s, args.seed, args.bytes, "fetch")
    say("fetch ok %d bytes then EOF" % n)


def wait_closed(s, deadline, seed=None):
    """Read until EOF/reset.  Returns (kind, nbytes); kind None on timeout."""
    st = Stream(seed) if seed is not None else None
    n = 0
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return None, n
        s.settimeout(left)
        try:
            data = s.recv(1 << 18)
        except socket.timeout:
            return None, n
        except ConnectionResetError:
            return "reset", n
        except OSError as e:
            return "error %s" % e, n
        if not data:
            return "eof", n
        if st is not None and data != st.read(len(data)):
            die("data differs from stream %s within bytes %d..%d"
                % (seed, n, n + len(data)))
        n += len(data)


def cli_drain(args):
    s = connect(args)
    t0 = time.monotonic()
    kind, n = wait_closed(s, t0 + args.timeout)
    el = time.monotonic() - t0
    if kind is None:
        die("still open after %.2fs (%d bytes read)" % (el, n))
    if n < args.min_bytes:
        die("%s after only %d bytes (min %d)" % (kind, n, args.min_bytes))
    say("%s %d after %.2fs" % (kind, n, el))


def cli_abort(args):
    """Send N bytes, read their echo, then close with a reset (SO_LINGER 0)."""
    s = connect(args)
    msg = Stream(args.seed).read(args.bytes)
    s.sendall(msg)
    got = 0
    while got < len(msg):
        data = recv(s, BLOCK, "echo")
        if not data:
            die("closed after %d of %d echoed bytes" % (got, len(msg)))
        got += len(data)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                 struct.pack("ii", 1, 0))
    s.close()
    say("aborted after %d bytes" % got)


def wait_go_file(path, max_wait):
    deadline = time.monotonic() + max_wait
    while not os.path.exists(path):
        if time.monotonic() > deadline:
            die("go file %s did not appear" % path)
        time.sleep(0.05)


def cli_expect_reset(args):
    s = connect(args, reset_ok=True, rcvbuf=args.rcvbuf)
    if s is None:
        say("reset while connecting")
        return
    if args.send:
        s.sendall(args.send.encode())
    if args.go_file:
        say("connected")
        wait_go_file(args.go_file, args.max_wait)
    t0 = time.monotonic()
    kind, n = wait_closed(s, t0 + args.timeout, args.seed)
    if kind != "reset":
        die("expected ECONNRESET, got %s after %d bytes"
            % (kind or "timeout", n))
    say("reset after %d bytes, %.2fs" % (n, time.monotonic() - t0))


def cli_upload(args):
    s = connect(args)
    st = Stream(args.seed)
    progress = Progress(args.progress)
    sent = 0
    start = time.monotonic()
    try:
        while sent < args.bytes:
            if args.rate:
                ahead = sent / args.rate - (time.monotonic() - start)
                if ahead > 0:
                    time.sleep(min(ahead, 0.1))
                    continue
            chunk = st.read(min(args.bytes - sent, 16384))
            s.sendall(chunk)
            sent += len(chunk)
            progress.update(sent)
        s.shutdown(socket.SHUT_WR)
    except (ConnectionResetError, BrokenPipeError):
        say("cut after %d" % sent)
        return
    progress.update(sent, force=True)
    kind, n = wait_closed(s, time.monotonic() + args.timeout)
    if kind is None:
        die("not closed after sending %d bytes" % sent)
    say("sent %d" % sent)


def cli_expect_close(args):
    t0 = time.monotonic()
    s = connect(args, reset_ok=True)
    if s is None:
        kind, n = "reset while connecting", 0
    else:
        kind = None
        try:
            if args.send:
                s.sendall(args.send.encode())
            if args.shutdown:
                s.shutdown(socket.SHUT_WR)
        except ConnectionResetError as e:
            kind, n = "reset while sending (%s)" % e, 0
        except BrokenPipeError as e:
            kind, n = "closed while sending (%s)" % e, 0
        except OSError as e:
            die("send/shutdown: %s" % e)
        if kind is None:
            kind, n = wait_closed(s, t0 + args.within + 2)
    el = time.monotonic() - t0
    if kind is None:
        die("connection still open after %.2fs" % el)
    if el > args.within:
        die("closed (%s) after %.2fs, bound %.2fs" % (kind, el, args.within))
    if el < args.not_before:
        die("closed (%s) after %.2fs, before %.2fs"
            % (kind, el, args.not_before))
    if args.reset and not kind.startswith("reset"):
        die("expected ECONNRESET, got %s after %.2fs" % (kind, el))
    say("closed (%s, %d bytes read) after %.2fs" % (kind, n, el))


def send_hashed(s, seed, nbytes, what):
    """Send NBYTES of stream SEED on S; returns their SHA-256 object."""
    st = Stream(seed)
    h = hashlib.sha256()
    left = nbytes
    while left > 0:
        chunk = st.read(min(left, BLOCK))
        try:
            s.sendall(chunk)
        except OSError as e:
            die("%s: %s" % (what, e))
        h.update(chunk)
        left -= len(chunk)
    return h


def cli_halfclose(args):
    s = connect(args)
    h = send_hashed(s, args.seed, args.bytes, "send")
    s.shutdown(socket.SHUT_WR)
    line = read_line(s, "reply header")
    want = "%s %d" % (h.hexdigest(), args.bytes)
    if line != want:
        die("upstream saw %r, sent %r" % (line, want))
    n = expect_stream_eof(s, args.reply_seed, args.reply_bytes, "reply")
    say("halfclose ok: sent %d, received %d then EOF" % (args.bytes, n))


def cli_late_send(args):
    s = connect(args)
    expect_stream_eof(s, args.seed, args.expect_bytes, "upstream data")
    h = send_hashed(s, args.send_seed, args.bytes, "send after upstream EOF")
    s.shutdown(socket.SHUT_WR)
    kind, n = wait_closed(s, time.monotonic() + args.timeout)
    if kind is None:
        die("not closed after sending")
    say("%d %s" % (args.bytes, h.hexdigest()))


def cli_slowread(args):
    s = connect(args)
    say("connected")
    wait_go_file(args.go_file, args.max_wait)
    n = expect_stream_eof(s, args.seed, args.bytes, "drain")
    say("slowread ok %d bytes then EOF" % n)


def cli_hold(args):
    socks = []
    for _ in range(args.n):
        s = socket.socket(family_of(args.host), socket.SOCK_STREAM)
        s.setblocking(False)
        err = s.connect_ex((args.host, args.port))
        if err not in (0, errno.EINPROGRESS):
            s.close()
            continue
        socks.append(s)
    deadline = time.monotonic() + args.connect_wait
    pending = set(socks)
    ok = []
    while pending and time.monotonic() < deadline:
        _, w, _ = select.select([], list(pending), [], 0.1)
        for s in w:
            pending.discard(s)
            if s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0:
                ok.append(s)
            else:
                s.close()
    for s in pending:
        s.close()
    say("connected %d failed %d" % (len(ok), args.n - len(ok)))
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, lambda *a: stop.set())
    stop.wait(args.max_life)
    for s in ok:
        s.close()


# ---------------------------------------------------------------- host tools

SYS_pidfd_getfd = 438
SIOCGSKNS = 0x894C


def cli_placement(args):
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    nsdir = args.netns_dir
    inode_of = {}
    for name in args.ns:
        st = os.stat(os.path.join(nsdir, name))
        inode_of[(st.st_dev, st.st_ino)] = name
    host = os.stat("/proc/self/ns/net")
    inode_of.setdefault((host.st_dev, host.st_ino), "HOST")
    problems = []
    if args.threads:
        tdir = "/proc/%d/task" % args.pid
        for tid in sorted(os.listdir(tdir)):
            st = os.stat(os.path.join(tdir, tid, "ns", "net"))
            if (st.st_dev, st.st_ino) != (host.st_dev, host.st_ino):
                problems.append("thread %s is in netns %s (%s), not the host's"
                                % (tid, st.st_ino,
                                   inode_of.get((st.st_dev, st.st_ino), "?")))
            else:
                say("thread %s host" % tid)
    pidfd = os.pidfd_open(args.pid)
    found = set()
    fddir = "/proc/%d/fd" % args.pid
    for fdname in sorted(os.listdir(fddir), key=int):
        try:
            link = os.readlink(os.path.join(fddir, fdname))
        except FileNotFoundError:
            continue
        if not link.startswith("socket:"):
            continue
        fd = libc.syscall(SYS_pidfd_getfd, pidfd, int(fdname), 0)
        if fd < 0:
            e = ctypes.get_errno()
            if e == errno.EBADF:
                continue
            die("pidfd_getfd(%s): %s" % (fdname, os.strerror(e)))
        try:
            s = socket.socket(fileno=fd)
        except OSError:
            os.close(fd)
            continue
        try:
            if s.family not in (socket.AF_INET, socket.AF_INET6) \
                    or s.type != socket.SOCK_STREAM \
                    or not s.getsockopt(socket.SOL_SOCKET,
                                        socket.SO_ACCEPTCONN):
                continue
            addr = s.getsockname()
            if s.family == socket.AF_INET6:
                text = "[%s]:%d" % (addr[0], addr[1])
            else:
                text = "%s:%d" % (addr[0], addr[1])
            nsfd = fcntl.ioctl(s.fileno(), SIOCGSKNS)
            try:
                st = os.fstat(nsfd)
            finally:
                os.close(nsfd)
            where = inode_of.get((st.st_dev, st.st_ino),
                                 "unknown-netns-%d" % st.st_ino)
            say("listener fd %s %s %s" % (fdname, where, text))
            if where == "HOST" or where.startswith("unknown"):
                problems.append("listener fd %s %s is in %s"
                                % (fdname, text, where))
            found.add("%s=%s" % (where, text))
        finally:
            s.close()
    for want in args.expect:
        if want not in found:
            problems.append("no listener %s" % want)
    if problems:
        die("; ".join(problems))
    say("placement ok: %d listeners" % len(found))


def cli_freeport(args):
    s = socket.socket(family_of(args.host), socket.SOCK_STREAM)
    s.bind((args.host, 0))
    say(str(s.getsockname()[1]))
    s.close()


# ---------------------------------------------------------------- main

def main():
    p = argparse.ArgumentParser(
        description="nsrelay test peers (see the module docstring)")
    sub = p.add_subparsers(dest="cmd", required=True)

    # Servers and clients share names ("echo", "greet"): servers are
    # "peer.py serve KIND ...", clients "peer.py KIND ...".
    p.add_argument("--version", action="version", version="peer.py 1")

    srv = sub.add_parser("serve", help="run a server: peer.py serve KIND ...")
    srv.add_argument("kind", choices=sorted(SERVERS))
    srv.add_argument("--host", default="127.0.0.1")
    srv.add_argument("--port", type=int, default=0)
    srv.add_argument("--unix")
    srv.add_argument("--mode", default="0666")
    srv.add_argument("--bytes", type=parse_size, default=0)
    srv.add_argument("--seed", type=int)
    srv.add_argument("--rate", type=parse_size, default=0)
    srv.add_argument("--progress")
    srv.add_argument("--delay", type=float, default=0.3)
    srv.add_argument("--text", default="hello from upstream")
    srv.add_argument("--pieces", type=int, default=1)
    srv.add_argument("--interval", type=float, default=0.0)

    def client(name, **kw):
        c = sub.add_parser(name, **kw)
        c.add_argument("--host", default="127.0.0.1")
        c.add_argument("--port", type=int, required=True)
        c.add_argument("--timeout", type=float, default=10.0)
        return c

    c = client("echo")
    c.add_argument("--bytes", type=parse_size, default=65536)
    c.add_argument("--seed", type=int, default=7)
    c = client("greet")
    c.add_argument("--expect", default="hello from upstream")
    c = client("readline")
    c = client("mysql")
    c.add_argument("--expect")
    c = client("chatter")
    c.add_argument("--count", type=int, default=8)
    c.add_argument("--interval", type=float, default=0.3)
    c = client("concurrent")
    c.add_argument("--n", type=int, default=200)
    c.add_argument("--bytes", type=parse_size, default=4096)
    c = client("fetch")
    c.add_argument("--bytes", type=parse_size, required=True)
    c.add_argument("--seed", type=int, default=1)
    c = client("drain")
    c.add_argument("--min-bytes", type=parse_size, default=0)
    c = client("abort")
    c.add_argument("--bytes", type=parse_size, default=4096)
    c.add_argument("--seed", type=int, default=3)
    c = client("expect-reset")
    c.add_argument("--seed", type=int)
    c.add_argument("--send")
    c.add_argument("--go-file")
    c.add_argument("--max-wait", type=float, default=60.0)
    c.add_argument("--rcvbuf", type=parse_size, default=0)
    c = client("upload")
    c.add_argument("--bytes", type=parse_size, required=True)
    c.add_argument("--seed", type=int, default=1)
    c.add_argument("--rate", type=parse_size, default=0)
    c.add_argument("--progress")
    c = client("expect-close")
    c.add_argument("--within", type=float, required=True)
    c.add_argument("--not-before", type=float, default=0.0)
    c.add_argument("--send")
    c.add_argument("--shutdown", action="store_true")
    c.add_argument("--reset", action="store_true")
    c = client("halfclose")
    c.add_argument("--bytes", type=parse_size, required=True)
    c.add_argument("--reply-bytes", type=parse_size, required=True)
    c.add_argument("--seed", type=int, default=5)
    c.add_argument("--reply-seed", type=int, default=1)
    c = client("late-send")
    c.add_argument("--expect-bytes", type=parse_size, required=True)
    c.add_argument("--bytes", type=parse_size, required=True)
    c.add_argument("--seed", type=int, default=1)
    c.add_argument("--send-seed", type=int, default=9)
    c = client("slowread")
    c.add_argument("--bytes", type=parse_size, required=True)
    c.add_argument("--seed", type=int, default=1)
    c.add_argument("--go-file", required=True)
    c.add_argument("--max-wait", type=float, default=60.0)
    c = client("hold")
    c.add_argument("--n", type=int, required=True)
    c.add_argument("--connect-wait", type=float, default=5.0)
    c.add_argument("--max-life", type=float, default=120.0)

    c = sub.add_parser("placement")
    c.add_argument("--pid", type=int, required=True)
    c.add_argument("--netns-dir", default="/run/netns")
    c.add_argument("--ns", action="append", default=[])
    c.add_argument("--expect", action="append", default=[])
    c.add_argument("--threads", action="store_true")
    c = sub.add_parser("freeport")
    c.add_argument("--host", default="127.0.0.1")

    args = p.parse_args()
    if args.cmd == "serve":
        args.seed_given = args.seed is not None
        if args.seed is None:
            args.seed = 1
        args.cmd = args.kind
        try:
            serve(args, SERVERS[args.kind])
        except KeyboardInterrupt:
            pass
        return
    {
        "echo": cli_echo, "greet": cli_greet, "readline": cli_readline,
        "chatter": cli_chatter, "concurrent": cli_concurrent,
        "fetch": cli_fetch, "drain": cli_drain,
        "abort": cli_abort, "expect-reset": cli_expect_reset, "expect-close": cli_expect_close,
        "halfclose": cli_halfclose, "late-send": cli_late_send,
        "slowread": cli_slowread, "hold": cli_hold, "upload": cli_upload,
        "placement": cli_placement, "freeport": cli_freeport,
        "mysql": cli_mysql,
    }[args.cmd](args)


if __name__ == "__main__":
    main()
