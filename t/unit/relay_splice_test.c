/* SPDX-License-Identifier: MIT */
/* relay_splice_test: the relay's two byte paths (splice(2) through a pooled
 * pipe, and copy), over TCP on 127.0.0.1, no daemon.
 *
 * How it works
 *
 * The helpers of relay_test.c (the relay's contract: sockets, the loop,
 * the byte pattern, the TAP points) are included as they are; its main()
 * is renamed and not run.  Each case makes its own relay set, so that the
 * environment switches read by relay_set_new() (NSRELAY_COPY_ONLY,
 * NSRELAY_PIPES) apply to it, and reads relay_get_stats() afterwards to
 * tell which path the bytes took.  Cases: both ways at once with
 * half-close on the splice path and the copy path; a byte leaves in the
 * loop turn it arrived in; backpressure holds one pipe at most; a pool of
 * one pipe, held by a stalled connection, makes the next connection copy;
 * a reset with bytes still in a pipe reaches the other side as a reset;
 * a unix-socket upstream copies; no pipe is held once the bytes are gone.
 */
#define main relay_contract_main
int relay_contract_main(void);
#include "t/unit/relay_test.c"
#undef main

/* A set of its own, with the environment ENV ("NAME=VALUE" or NULL). */
static void set_with(const char *env)
{
	unsetenv("NSRELAY_COPY_ONLY");
	unsetenv("NSRELAY_PIPES");
	if (env)
		putenv((char *)env);
	set = relay_set_new(base, shortage_cb, NULL);
	if (!set) {
		printf("Bail out! relay_set_new failed\n");
		exit(1);
	}
}

static void set_done(void)
{
	relay_set_free(set);
	set = NULL;
}

static unsigned pipes_in_use(void)
{
	struct relay_stats st;

	relay_get_stats(set, &st);
	return st.pipes - st.pipes_free;
}

/* Both ways at once over TCP, then the client ends first; every byte
 * checked, counters exact, and the path taken as asked for. */
static void t_both_ways(const char *env, bool splice)
{
	const char *path = splice ? "splice" : "copy";
	const uint64_t n_in = 6 * MiB + 77, n_out = 9 * MiB + 5;
	struct tx to_up = { 51, 0, n_in }, to_cl = { 52, 0, n_out };
	struct rx at_up, at_cl;
	struct relay_stats st;
	struct upstream up;
	struct origin o;
	int c, u;
	int64_t end;

	set_with(env);
	upstream_tcp(&up);
	origin_init(&o, &up.addr, 60000, 60000);
	rx_init(&at_up, 51);
	rx_init(&at_cl, 52);
	start(&o, &up, &c, &u, true, false);
	if (!ok(u >= 0, "%s: upstream connection arrives", path))
		goto out;
	end = now_ms() + WAIT_MS;
	while (now_ms() < end && (at_up.got < to_up.total ||
				  at_cl.got < to_cl.total)) {
		tx_write(c, &to_up);
		tx_write(u, &to_cl);
		turn();
		rx_read(u, &at_up);
		rx_read(c, &at_cl);
	}
	if (!ok(at_up.got == n_in && at_up.bad < 0 && at_cl.got == n_out &&
		at_cl.bad < 0, "%s: %llu + %llu bytes both ways at once, "
		"byte-exact", path, (unsigned long long)n_in,
		(unsigned long long)n_out))
		note("to upstream %llu (bad at %lld), to client %llu (bad at "
		     "%lld)", (unsigned long long)at_up.got,
		     (long long)at_up.bad, (unsigned long long)at_cl.got,
		     (long long)at_cl.bad);
	/* the client ends; the upstream answers a little more, then ends */
	shutdown(c, SHUT_WR);
	rx_to_end(u, &at_up);
	ok(at_up.end == 1 && at_up.got == n_in,
	   "%s: the client's EOF reaches the upstream after its bytes (%s)",
	   path, end_name(at_up.end));
	to_cl.total += MiB;
	end = now_ms() + WAIT_MS;
	while ((to_cl.sent < to_cl.total || at_cl.got < to_cl.total) &&
	       now_ms() < end) {
		tx_write(u, &to_cl);
		turn();
		rx_read(c, &at_cl);
	}
	shutdown(u, SHUT_WR);
	rx_to_end(c, &at_cl);
	ok(at_cl.end == 1 && at_cl.got == to_cl.total && at_cl.bad < 0,
	   "%s: half-closed, the other way flows on to its EOF (%llu bytes, "
	   "%s)", path, (unsigned long long)at_cl.got, end_name(at_cl.end));
	turn_until(&o.calls);
	ok(o.calls == 1 && o.why == RELAY_CLOSE_DONE &&
	   o.o.cnt->bytes_in == n_in && o.o.cnt->bytes_out == to_cl.total,
	   "%s: closed once (done), byte counters exact", path);
	relay_get_stats(set, &st);
	diag("%s: %llu bytes spliced, %llu copied, %u pipes open", path,
	     (unsigned long long)st.spliced, (unsigned long long)st.copied,
	     st.pipes);
	if (splice)
		ok(st.spliced >= (n_in + n_out) / 2,
		   "splice: most bytes went through a pipe (%llu)",
		   (unsigned long long)st.spliced);
	else
		ok(st.spliced == 0 && st.pipes == 0 &&
		   st.copied == n_in + to_cl.total,
		   "copy: no pipe, every byte copied (%llu spliced, %llu "
		   "copied)", (unsigned long long)st.spliced,
		   (unsigned long long)st.copied);
	is_int(pipes_in_use(), 0, "%s: no pipe held once the bytes are gone",
	       path);
	close(c);
	close(u);
out:
	upstream_free(&up);
	set_done();
}

/* A message leaves in the loop turn it arrived in, both ways. */
static void t_same_turn(const char *env, const char *path)
{
	struct upstream up;
	struct origin o;
	int c, u, n;
	char b[64];

	set_with(env);
	upstream_tcp(&up);
	origin_init(&o, &up.addr, 60000, 60000);
	start(&o, &up, &c, &u, true, false);
	if (!ok(u >= 0, "%s, one turn: upstream connection arrives", path))
		goto out;
	for (int k = 0; k < 5; k++)	/* settle: connect completes */
		turn();
	memset(b, 'q', sizeof(b));
	n = 0;
	for (int k = 0; k < 20; k++) {
		(void)!write(c, b, sizeof(b));
		turn();
		n += inq(u) == (int)sizeof(b);
		(void)!read(u, b, sizeof(b));
		(void)!write(u, b, sizeof(b));
		turn();
		n += inq(c) == (int)sizeof(b);
		(void)!read(c, b, sizeof(b));
	}
	is_int(n, 40, "%s: 40 of 40 64-byte messages left in the loop turn "
	       "they arrived in", path);
	close(c);
	close(u);
	turn_until(&o.calls);
out:
	upstream_free(&up);
	set_done();
}

/* The client reads the first MiB, so that the relay sees a bulk transfer
 * (a copy read fills its whole chunk) and goes on by splice. */
static void into_bulk(int c, int u, struct tx *tx, struct rx *rx)
{
	for (int64_t end = now_ms() + WAIT_MS;
	     rx->got < MiB && now_ms() < end;) {
		tx_write(u, tx);
		turn();
		rx_read(c, rx);
	}
}

/* The client stops reading: on the splice path the relay holds one pipe
 * at most; then every byte arrives.  Tiny socket buffers between the relay
 * and the client, so that what the relay holds is not hidden in its send
 * queue. */
static void t_splice_backpressure(void)
{
	struct tx tx = { 61, 0, 64 * MiB };
	struct rx rx;
	struct upstream up;
	struct origin o;
	struct relay_stats st;
	uint64_t held;
	int c, u, still = 0;
	int64_t end;

	set_with(NULL);
	upstream_tcp(&up);
	origin_init(&o, &up.addr, 60000, 60000);
	rx_init(&rx, 61);
	start(&o, &up, &c, &u, true, true);
	if (!ok(u >= 0, "splice backpressure: upstream connection arrives"))
		goto out;
	into_bulk(c, u, &tx, &rx);
	end = now_ms() + WAIT_MS;
	while (tx.sent < tx.total && still < 100 && now_ms() < end) {
		still = tx_write(u, &tx) ? 0 : still + 1;
		turn();
	}
	relay_get_stats(set, &st);
	held = o.o.cnt->bytes_out - rx.got - (uint64_t)inq(c);
	diag("splice backpressure: upstream wrote %llu, relay read %llu, %d "
	     "in the client's socket, %llu held (pipes open: %u)",
	     (unsigned long long)tx.sent,
	     (unsigned long long)o.o.cnt->bytes_out, inq(c),
	     (unsigned long long)held, st.pipes);
	ok(tx.sent < tx.total, "splice backpressure: the upstream is blocked");
	ok(held <= RELAY_HIGH_WATER + 65536 && st.spliced > 0,
	   "splice backpressure: the relay holds one pipe at most (%llu "
	   "bytes)", (unsigned long long)held);
	end = now_ms() + WAIT_MS;
	tx.total = tx.sent + MiB;
	while ((tx.sent < tx.total || rx.got < tx.total) && now_ms() < end) {
		tx_write(u, &tx);
		turn();
		rx_read(c, &rx);
	}
	shutdown(u, SHUT_WR);
	rx_to_end(c, &rx);
	ok(rx.end == 1 && rx.got == tx.total && rx.bad < 0,
	   "splice backpressure: reading resumes, all %llu bytes, then EOF",
	   (unsigned long long)tx.total);
	close(c);
	close(u);
	turn_until(&o.calls);
out:
	upstream_free(&up);
	set_done();
}

/* A pool of one pipe: a stalled connection holds it (bytes in it for a
 * client that does not read), so the next connection copies; both
 * streams stay exact.  Then a reset of the stalled upstream resets its
 * client, whose bytes were still in the pipe. */
static void t_pool_exhausted(void)
{
	struct tx txa = { 71, 0, 64 * MiB }, txb = { 72, 0, 4 * MiB };
	struct rx rxa, rxb;
	struct upstream up;
	struct origin oa, ob;
	struct relay_stats st;
	int ca, ua, cb, ub, still = 0;
	int64_t end;

	set_with("NSRELAY_PIPES=1");
	upstream_tcp(&up);
	origin_init(&oa, &up.addr, 60000, 60000);
	origin_init(&ob, &up.addr, 60000, 60000);
	rx_init(&rxa, 71);
	rx_init(&rxb, 72);
	start(&oa, &up, &ca, &ua, true, true);
	start(&ob, &up, &cb, &ub, true, false);
	if (!ok(ua >= 0 && ub >= 0, "pool of one: two connections up"))
		goto out;
	into_bulk(ca, ua, &txa, &rxa);
	end = now_ms() + WAIT_MS;
	while (still < 100 && now_ms() < end) {
		still = tx_write(ua, &txa) ? 0 : still + 1;
		turn();
	}
	is_int(pipes_in_use(), 1, "pool of one: the stalled connection holds "
	       "the pipe");
	end = now_ms() + WAIT_MS;
	while ((txb.sent < txb.total || rxb.got < txb.total) &&
	       now_ms() < end) {
		tx_write(ub, &txb);
		turn();
		rx_read(cb, &rxb);
	}
	relay_get_stats(set, &st);
	ok(rxb.got == txb.total && rxb.bad < 0 && st.pipe_misses > 0 &&
	   st.copied >= txb.total,
	   "pool of one: the other connection copies, byte-exact (%llu "
	   "bytes, %llu misses, %llu copied)", (unsigned long long)rxb.got,
	   (unsigned long long)st.pipe_misses,
	   (unsigned long long)st.copied);
	/* the stalled upstream resets: its client must see a reset */
	reset_close(ua);
	rx_to_end(ca, &rxa);
	ok(rxa.end == -ECONNRESET && rxa.bad < 0,
	   "pool of one: the upstream's reset reaches the client as a reset "
	   "(%s after %llu bytes)", end_name(rxa.end),
	   (unsigned long long)rxa.got);
	turn_until(&oa.calls);
	ok(oa.calls == 1 && oa.why == RELAY_CLOSE_UPSTREAM_RESET,
	   "pool of one: closed once, upstream-reset");
	close(ca);
	close(cb);
	close(ub);
	turn_until(&ob.calls);
	is_int(pipes_in_use(), 0, "pool of one: no pipe held at the end");
out:
	upstream_free(&up);
	set_done();
}

/* A unix-socket upstream copies. */
static void t_unix_copies(void)
{
	struct tx tx = { 81, 0, 2 * MiB };
	struct rx rx;
	struct upstream up;
	struct origin o;
	struct relay_stats st;
	int c, u;

	set_with(NULL);
	upstream_unix(&up, "copy");
	origin_init(&o, &up.addr, 60000, 60000);
	rx_init(&rx, 81);
	start(&o, &up, &c, &u, true, false);
	if (!ok(u >= 0, "unix upstream: connection arrives"))
		goto out;
	for (int64_t end = now_ms() + WAIT_MS;
	     (tx.sent < tx.total || rx.got < tx.total) && now_ms() < end;) {
		tx_write(u, &tx);
		turn();
		rx_read(c, &rx);
	}
	relay_get_stats(set, &st);
	ok(rx.got == tx.total && rx.bad < 0 && st.spliced == 0,
	   "unix upstream: copied, byte-exact (%llu spliced)",
	   (unsigned long long)st.spliced);
	close(c);
	close(u);
	turn_until(&o.calls);
out:
	upstream_free(&up);
	set_done();
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	log_init(getenv("RELAY_TEST_VERBOSE") != NULL, false);
	if (!mkdtemp(tmpdir)) {
		printf("Bail out! mkdtemp: %s\n", strerror(errno));
		return 1;
	}
	base = event_base_new();
	if (!base) {
		printf("Bail out! event_base_new failed\n");
		return 1;
	}
	t_both_ways(NULL, true);
	t_both_ways("NSRELAY_COPY_ONLY=1", false);
	t_same_turn(NULL, "splice");
	t_same_turn("NSRELAY_COPY_ONLY=1", "copy");
	t_splice_backpressure();
	t_pool_exhausted();
	t_unix_copies();
	is_int(shortages, 0, "no descriptor shortage reported");
	event_base_free(base);
	rmdir(tmpdir);
	return done_testing();
}
