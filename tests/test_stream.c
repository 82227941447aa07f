/*
 * Streams (async/stream.h) over socketpairs and loopback TCP: readline,
 * readuntil and readexactly edge cases (separators split over writes, the
 * limit, end of file in the middle), cancellation and deadlines that lose
 * nothing, drain backpressure against a peer that does not read (bounded
 * memory, then progress), write_eof, close flushing the queue, abort,
 * one reader at a time, addresses; subprocess pipes as streams and
 * communicate().
 */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include <async.h>

#include "helpers.h"

/* What the tasks of one test saw; asserted after the loop returns. */
typedef struct rec {
    async_loop *loop;   /* loop under test */
    th_leaks leaks;     /* counters before the test */
    int peer;           /* the raw end of the socketpair */
    async_reader *r;    /* the stream end's reader */
    async_writer *w;    /* ... and writer */
    int rc[16];         /* return codes seen inside tasks */
    size_t n[16];       /* counts seen inside tasks */
    char s[16][128];    /* strings seen inside tasks */
} rec;

static rec R;

static int setup(void **state)
{
    (void)state;
    memset(&R, 0, sizeof(R));
    R.peer = -1;
    th_leaks_begin(&R.leaks);
    assert_int_equal(async_loop_new(&R.loop), 0);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    assert_int_equal(async_loop_free(R.loop), 0);
    th_leaks_end(&R.leaks);
    return 0;
}

/* Lets callbacks scheduled by finished tasks run (the flush tasks' done
 * callbacks release their stream). */
static int settle(void *arg, void **result)
{
    (void)arg;
    (void)result;
    for (int i = 0; i < 4; i++)
        async_sleep(0);
    return 0;
}

/* Runs fn as a task on R.loop until it finishes, then settles. */
static int run(async_fn fn, void *arg)
{
    async_task *t;
    assert_int_equal(async_loop_spawn(R.loop, &t, fn, arg, NULL), 0);
    int rc = async_loop_run_until_complete(R.loop, t, NULL);
    async_task_unref(t);
    assert_int_equal(async_loop_spawn(R.loop, &t, settle, NULL, NULL), 0);
    assert_int_equal(async_loop_run_until_complete(R.loop, t, NULL), 0);
    async_task_unref(t);
    return rc;
}

/* A socketpair: one end a stream (R.r, R.w), the other raw (R.peer). */
static int open_pair(const async_stream_opts *o)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
        return -errno;
    async_set_nonblocking(sv[1]);
    int rc = async_stream_open_fd(sv[0], o, &R.r, &R.w);
    if (rc) {
        close(sv[0]);
        close(sv[1]);
        return rc;
    }
    R.peer = sv[1];
    return 0;
}

static void close_pair(void)
{
    async_reader_free(R.r);
    async_writer_free(R.w);
    R.r = NULL;
    R.w = NULL;
    if (R.peer >= 0)
        async_close(R.peer);
    R.peer = -1;
}

/* Copies a readline/readuntil result into R.s[i]. */
static void keep(int i, const char *data, size_t len)
{
    size_t n = len < sizeof(R.s[i]) - 1 ? len : sizeof(R.s[i]) - 1;
    memcpy(R.s[i], data, n);
    R.s[i][n] = '\0';
    R.n[i] = len;
}

/* Writes the NULL-terminated pieces to the raw end, one write each, with
 * a loop iteration between them so they arrive separately, then closes it
 * if `eof`. */
typedef struct feed {
    const char *const *pieces; /* what to send */
    bool eof;                  /* shut the raw end down afterwards */
} feed;

static int feeder(void *arg, void **result)
{
    (void)result;
    const feed *f = arg;
    for (size_t i = 0; f->pieces[i]; i++) {
        async_write_all(R.peer, f->pieces[i], strlen(f->pieces[i]));
        async_sleep(ASYNC_MSEC);
    }
    if (f->eof)
        shutdown(R.peer, SHUT_WR);
    return 0;
}

static async_task *start_feeder(const feed *f)
{
    async_task *t = NULL;
    async_spawn(&t, feeder, (void *)f);
    return t;
}

/* ---- readline -------------------------------------------------------------- */

static int readline_main(void *arg, void **result)
{
    (void)arg;
    (void)result;
    static const char *const pieces[] = {"hel", "lo\nwor", "ld\n", "\n",
                                         "tail", NULL};
    static const feed f = {pieces, true};
    if ((R.rc[15] = open_pair(NULL)))
        return 0;
    async_task *t = start_feeder(&f);
    for (int i = 0; i < 5; i++) {
        const char *d;
        size_t len;
        R.rc[i] = async_reader_readline(R.r, &d, &len, ASYNC_NO_DEADLINE);
        keep(i, d ? d : "", len);
    }
    R.rc[5] = async_reader_at_eof(R.r);
    async_task_await(t, NULL);
    async_task_unref(t);
    close_pair();
    return 0;
}

static void test_readline(void **state)
{
    (void)state;
    assert_int_equal(run(readline_main, NULL), 0);
    assert_int_equal(R.rc[15], 0);
    const char *want[] = {"hello\n", "world\n", "\n", "tail", ""};
    for (int i = 0; i < 5; i++) {
        assert_int_equal(R.rc[i], 0);
        assert_string_equal(R.s[i], want[i]);
    }
    assert_int_equal(R.rc[5], 1);
}

/* ---- readuntil: split separator, EOF in the middle -------------------------- */

static int readuntil_main(void *arg, void **result)
{
    (void)arg;
    (void)result;
    /* The separator "\r\n\r\n" arrives in three pieces. */
    static const char *const pieces[] = {"GET / HTTP/1.0\r", "\n\r", "\nbo",
                                         "dy-without-sep", NULL};
    static const feed f = {pieces, true};
    if ((R.rc[15] = open_pair(NULL)))
        return 0;
    async_task *t = start_feeder(&f);
    const char *d;
    size_t len;
    R.rc[0] = async_reader_readuntil(R.r, "\r\n\r\n", 4, &d, &len,
                                     ASYNC_NO_DEADLINE);
    keep(0, d ? d : "", len);
    R.rc[1] = async_reader_readuntil(R.r, "\r\n\r\n", 4, &d, &len,
                                     ASYNC_NO_DEADLINE);
    keep(1, d ? d : "", len);
    R.rc[2] = async_reader_readuntil(R.r, "x", 1, &d, &len,
                                     ASYNC_NO_DEADLINE);
    R.n[2] = len;
    R.rc[3] = async_reader_readuntil(R.r, "", 0, &d, &len, ASYNC_NO_DEADLINE);
    async_task_await(t, NULL);
    async_task_unref(t);
    close_pair();
    return 0;
}

static void test_readuntil(void **state)
{
    (void)state;
    assert_int_equal(run(readuntil_main, NULL), 0);
    assert_int_equal(R.rc[15], 0);
    assert_int_equal(R.rc[0], 0);
    assert_string_equal(R.s[0], "GET / HTTP/1.0\r\n\r\n");
    assert_int_equal(R.rc[1], ASYNC_EINCOMPLETE);
    assert_string_equal(R.s[1], "body-without-sep");
    assert_int_equal(R.rc[2], ASYNC_EINCOMPLETE);
    assert_int_equal(R.n[2], 0);
    assert_int_equal(R.rc[3], ASYNC_EINVAL);
}

/* ---- readexactly ------------------------------------------------------------- */

static int readexactly_main(void *arg, void **result)
{
    (void)arg;
    (void)result;
    static const char *const pieces[] = {"ab", "cdef", "gh", NULL};
    static const feed f = {pieces, true};
    if ((R.rc[15] = open_pair(NULL)))
        return 0;
    async_task *t = start_feeder(&f);
    char buf[16] = {0};
    size_t got;
    R.rc[0] = async_reader_readexactly(R.r, buf, 5, &got, ASYNC_NO_DEADLINE);
    keep(0, buf, got);
    memset(buf, 0, sizeof(buf));
    R.rc[1] = async_reader_readexactly(R.r, buf, 10, &got, ASYNC_NO_DEADLINE);
    keep(1, buf, got);
    R.rc[2] = async_reader_readexactly(R.r, buf, 1, &got, ASYNC_NO_DEADLINE);
    R.n[2] = got;
    R.rc[3] = async_reader_readexactly(R.r, buf, 0, &got, ASYNC_NO_DEADLINE);
    async_task_await(t, NULL);
    async_task_unref(t);
    close_pair();
    return 0;
}

static void test_readexactly(void **state)
{
    (void)state;
    assert_int_equal(run(readexactly_main, NULL), 0);
    assert_int_equal(R.rc[15], 0);
    assert_int_equal(R.rc[0], 0);
    assert_string_equal(R.s[0], "abcde");
    assert_int_equal(R.rc[1], ASYNC_EINCOMPLETE);
    assert_int_equal(R.n[1], 3);
    assert_string_equal(R.s[1], "fgh");
    assert_int_equal(R.rc[2], ASYNC_EINCOMPLETE);
    assert_int_equal(R.n[2], 0);
    assert_int_equal(R.rc[3], 0);
}

/* ---- the limit ------------------------------------------------------------------ */

static int limit_main(void *arg, void **result)
{
    (void)arg;
    (void)result;
    /* limit 8: "0123456789\n" is a line of 10 before its newline. */
    async_stream_opts o = {.limit = 8};
    if ((R.rc[15] = open_pair(&o)))
        return 0;
    async_write_all(R.peer, "0123456789\nok\n", 14);
    const char *d;
    size_t len;
    /* readuntil: separator found beyond the limit, nothing consumed. */
    R.rc[0] = async_reader_readuntil(R.r, "\n", 1, &d, &len,
                                     ASYNC_NO_DEADLINE);
    R.n[0] = async_reader_buffered(R.r);
    /* readline drops the long line and the next one reads fine. */
    R.rc[1] = async_reader_readline(R.r, &d, &len, ASYNC_NO_DEADLINE);
    R.rc[2] = async_reader_readline(R.r, &d, &len, ASYNC_NO_DEADLINE);
    keep(2, d ? d : "", len);
    /* No separator within the limit: readline drops what it buffered; the
     * rest of that line then comes back as a line of its own. */
    async_write_all(R.peer, "abcdefghijkl", 12);
    R.rc[3] = async_reader_readline(R.r, &d, &len, ASYNC_NO_DEADLINE);
    async_write_all(R.peer, "mnop\nend\n", 9);
    R.rc[4] = async_reader_readline(R.r, &d, &len, ASYNC_NO_DEADLINE);
    keep(4, d ? d : "", len);
    R.rc[5] = async_reader_readline(R.r, &d, &len, ASYNC_NO_DEADLINE);
    keep(5, d ? d : "", len);
    close_pair();
    return 0;
}

static void test_limit(void **state)
{
    (void)state;
    assert_int_equal(run(limit_main, NULL), 0);
    assert_int_equal(R.rc[15], 0);
    assert_int_equal(R.rc[0], ASYNC_ELIMIT);
    assert_int_equal(R.n[0], 14);
    assert_int_equal(R.rc[1], ASYNC_ELIMIT);
    assert_int_equal(R.rc[2], 0);
    assert_string_equal(R.s[2], "ok\n");
    assert_int_equal(R.rc[3], ASYNC_ELIMIT);
    assert_int_equal(R.rc[4], 0);
    assert_string_equal(R.s[4], "mnop\n");
    assert_int_equal(R.rc[5], 0);
    assert_string_equal(R.s[5], "end\n");
}

/* ---- read(n), read_all ------------------------------------------------------------ */

static int read_main(void *arg, void **result)
{
    (void)arg;
    (void)result;
    static const char *const pieces[] = {"first", "second", "third", NULL};
    static const feed f = {pieces, true};
    if ((R.rc[15] = open_pair(NULL)))
        return 0;
    async_task *t = start_feeder(&f);
    char buf[8192];
    ssize_t n = async_reader_read(R.r, buf, 3, ASYNC_NO_DEADLINE);
    R.rc[0] = (int)n;
    keep(0, buf, n > 0 ? (size_t)n : 0);
    n = async_reader_read(R.r, buf, sizeof(buf), ASYNC_NO_DEADLINE);
    keep(1, buf, n > 0 ? (size_t)n : 0); /* "st" */
    char *all;
    size_t len;
    R.rc[2] = async_reader_read_all(R.r, &all, &len, ASYNC_NO_DEADLINE);
    if (all)
        keep(2, all, len);
    free(all);
    R.rc[3] = (int)async_reader_read(R.r, buf, sizeof(buf), ASYNC_NO_DEADLINE);
    R.rc[4] = async_reader_at_eof(R.r);
    async_task_await(t, NULL);
    async_task_unref(t);
    close_pair();
    return 0;
}

static void test_read(void **state)
{
    (void)state;
    assert_int_equal(run(read_main, NULL), 0);
    assert_int_equal(R.rc[15], 0);
    assert_int_equal(R.rc[0], 3);
    assert_string_equal(R.s[0], "fir");
    assert_string_equal(R.s[1], "st");
    assert_int_equal(R.rc[2], 0);
    assert_string_equal(R.s[2], "secondthird");
    assert_int_equal(R.rc[3], 0);
    assert_int_equal(R.rc[4], 1);
}

/* ---- cancellation and deadlines lose nothing ---------------------------------------- */

static int readline_task(void *arg, void **result)
{
    (void)result;
    int i = (int)(intptr_t)arg;
    const char *d;
    size_t len;
    R.rc[i] = async_reader_readline(R.r, &d, &len, ASYNC_NO_DEADLINE);
    return R.rc[i] == ASYNC_ECANCELED ? ASYNC_ECANCELED : 0;
}

static int cancel_main(void *arg, void **result)
{
    (void)arg;
    (void)result;
    if ((R.rc[15] = open_pair(NULL)))
        return 0;
    async_write_all(R.peer, "hel", 3);
    async_task *t;
    async_spawn(&t, readline_task, (void *)(intptr_t)0);
    async_sleep(2 * ASYNC_MSEC);
    /* A second reader while the first waits. */
    const char *d;
    size_t len;
    R.rc[1] = async_reader_readline(R.r, &d, &len, ASYNC_NO_DEADLINE);
    async_task_cancel(t);
    async_task_await(t, NULL);
    async_task_unref(t);
    /* A deadline that passes keeps what arrived too. */
    async_write_all(R.peer, "lo", 2);
    R.rc[2] = async_reader_readline(R.r, &d, &len,
                                    async_deadline_in(2 * ASYNC_MSEC));
    async_write_all(R.peer, " you\n", 5);
    R.rc[3] = async_reader_readline(R.r, &d, &len, ASYNC_NO_DEADLINE);
    keep(3, d ? d : "", len);
    /* readexactly cancelled half-way keeps its bytes as well. */
    async_write_all(R.peer, "12", 2);
    char buf[4];
    size_t got = 99;
    R.rc[4] = async_reader_readexactly(R.r, buf, 4, &got,
                                       async_deadline_in(2 * ASYNC_MSEC));
    R.n[4] = got;
    async_write_all(R.peer, "34", 2);
    R.rc[5] = async_reader_readexactly(R.r, buf, 4, &got, ASYNC_NO_DEADLINE);
    keep(5, buf, got);
    close_pair();
    return 0;
}

static void test_cancel_keeps_data(void **state)
{
    (void)state;
    assert_int_equal(run(cancel_main, NULL), 0);
    assert_int_equal(R.rc[15], 0);
    assert_int_equal(R.rc[0], ASYNC_ECANCELED);
    assert_int_equal(R.rc[1], ASYNC_EBUSY);
    assert_int_equal(R.rc[2], ASYNC_ETIMEDOUT);
    assert_int_equal(R.rc[3], 0);
    assert_string_equal(R.s[3], "hello you\n");
    assert_int_equal(R.rc[4], ASYNC_ETIMEDOUT);
    assert_int_equal(R.n[4], 0);
    assert_int_equal(R.rc[5], 0);
    assert_string_equal(R.s[5], "1234");
}

/* ---- drain against a peer that does not read ------------------------------------------ */

#define CHUNK 8192
#define TOTAL (4 * 1024 * 1024)

/* Reads and checks everything the writer sends (byte i is i % 251). */
static int slow_peer(void *arg, void **result)
{
    (void)arg;
    (void)result;
    char buf[65536];
    size_t total = 0;
    bool ok = true;
    for (;;) {
        ssize_t n = async_read(R.peer, buf, sizeof(buf));
        if (n <= 0) {
            R.rc[8] = (int)n;
            break;
        }
        for (ssize_t i = 0; i < n; i++)
            ok &= (unsigned char)buf[i] == (total + (size_t)i) % 251;
        total += (size_t)n;
    }
    R.n[8] = total;
    R.rc[9] = ok;
    return 0;
}

static int drain_main(void *arg, void **result)
{
    (void)arg;
    (void)result;
    if ((R.rc[15] = open_pair(NULL)))
        return 0;
    int small = 4096;
    setsockopt(R.peer, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
    setsockopt(async_writer_fd(R.w), SOL_SOCKET, SO_SNDBUF, &small,
               sizeof(small));
    static char chunk[CHUNK];
    size_t sent = 0, max_queued = 0;
    int rc = 0;
    /* Phase 1: nobody reads.  Write + drain until drain times out; the
     * queue must stay bounded. */
    while (sent < TOTAL) {
        for (size_t i = 0; i < CHUNK; i++)
            chunk[i] = (char)((sent + i) % 251);
        if ((rc = async_writer_write(R.w, chunk, CHUNK)))
            break;
        sent += CHUNK;
        size_t q = async_writer_buffered(R.w);
        max_queued = q > max_queued ? q : max_queued;
        rc = async_writer_drain(R.w, async_deadline_in(20 * ASYNC_MSEC));
        if (rc)
            break;
    }
    R.rc[0] = rc;
    R.n[0] = max_queued;
    R.n[1] = sent;
    /* Phase 2: the peer reads; drain makes progress and everything
     * arrives intact. */
    async_task *t;
    async_spawn(&t, slow_peer, NULL);
    max_queued = 0;
    rc = async_writer_drain(R.w, ASYNC_NO_DEADLINE);
    while (rc == 0 && sent < TOTAL) {
        for (size_t i = 0; i < CHUNK; i++)
            chunk[i] = (char)((sent + i) % 251);
        if ((rc = async_writer_write(R.w, chunk, CHUNK)))
            break;
        sent += CHUNK;
        size_t q = async_writer_buffered(R.w);
        max_queued = q > max_queued ? q : max_queued;
        if ((rc = async_writer_drain(R.w, ASYNC_NO_DEADLINE)))
            break;
    }
    R.rc[2] = rc;
    R.n[2] = max_queued;
    R.n[3] = sent;
    async_writer_close(R.w);
    R.rc[3] = async_writer_wait_closed(R.w, ASYNC_NO_DEADLINE);
    async_task_await(t, NULL);
    async_task_unref(t);
    close_pair();
    return 0;
}

static void test_drain_backpressure(void **state)
{
    (void)state;
    assert_int_equal(run(drain_main, NULL), 0);
    assert_int_equal(R.rc[15], 0);
    /* Nobody read: drain timed out long before 4 MiB went anywhere, with
     * the queue at most high water + one write. */
    assert_int_equal(R.rc[0], ASYNC_ETIMEDOUT);
    assert_true(R.n[1] < TOTAL);
    assert_true(R.n[0] <= ASYNC_STREAM_HIGH_WATER_DEFAULT + CHUNK);
    /* Then everything went through. */
    assert_int_equal(R.rc[2], 0);
    assert_int_equal(R.n[3], TOTAL);
    assert_true(R.n[2] <= ASYNC_STREAM_HIGH_WATER_DEFAULT + CHUNK);
    assert_int_equal(R.rc[3], 0);
    assert_int_equal(R.rc[8], 0);
    assert_int_equal(R.n[8], TOTAL);
    assert_int_equal(R.rc[9], 1);
}

/* ---- close flushes, write_eof, abort ------------------------------------------------------ */

static int close_main(void *arg, void **result)
{
    (void)arg;
    (void)result;
    if ((R.rc[15] = open_pair(NULL)))
        return 0;
    async_task *t;
    async_spawn(&t, slow_peer, NULL);
    /* 1 MiB queued without draining: far more than the socket holds. */
    static char big[1 << 20];
    for (size_t i = 0; i < sizeof(big); i++)
        big[i] = (char)(i % 251);
    R.rc[0] = async_writer_write(R.w, big, sizeof(big));
    R.n[0] = async_writer_buffered(R.w);
    R.rc[1] = async_writer_close(R.w);
    R.rc[2] = async_writer_write(R.w, "x", 1);
    R.rc[3] = async_writer_is_closing(R.w);
    R.rc[4] = async_writer_wait_closed(R.w, ASYNC_NO_DEADLINE);
    async_task_await(t, NULL);
    async_task_unref(t);
    /* Reading our own closed stream: end of file. */
    char c;
    R.rc[5] = (int)async_reader_read(R.r, &c, 1, ASYNC_NO_DEADLINE);
    close_pair();
    return 0;
}

static void test_close_flushes(void **state)
{
    (void)state;
    assert_int_equal(run(close_main, NULL), 0);
    assert_int_equal(R.rc[15], 0);
    assert_int_equal(R.rc[0], 0);
    assert_true(R.n[0] > 0);
    assert_int_equal(R.rc[1], 0);
    assert_int_equal(R.rc[2], ASYNC_ESHUTDOWN);
    assert_int_equal(R.rc[3], 1);
    assert_int_equal(R.rc[4], 0);
    assert_int_equal(R.n[8], 1 << 20);
    assert_int_equal(R.rc[9], 1);
    assert_int_equal(R.rc[5], 0);
}

static int eof_main(void *arg, void **result)
{
    (void)arg;
    (void)result;
    if ((R.rc[15] = open_pair(NULL)))
        return 0;
    R.rc[0] = async_writer_can_write_eof(R.w);
    async_writer_write(R.w, "bye", 3);
    R.rc[1] = async_writer_write_eof(R.w);
    R.rc[2] = async_writer_write(R.w, "x", 1);
    char buf[16];
    size_t got = 0;
    R.rc[3] = (int)async_read_full(R.peer, buf, sizeof(buf),
                                   ASYNC_NO_DEADLINE, &got);
    keep(3, buf, got);
    /* Reading still works after our half-close. */
    async_write_all(R.peer, "reply\n", 6);
    const char *d;
    size_t len;
    R.rc[4] = async_reader_readline(R.r, &d, &len, ASYNC_NO_DEADLINE);
    keep(4, d ? d : "", len);
    close_pair();
    return 0;
}

static void test_write_eof(void **state)
{
    (void)state;
    assert_int_equal(run(eof_main, NULL), 0);
    assert_int_equal(R.rc[15], 0);
    assert_int_equal(R.rc[0], 1);
    assert_int_equal(R.rc[1], 0);
    assert_int_equal(R.rc[2], ASYNC_ESHUTDOWN);
    assert_int_equal(R.rc[3], 3);
    assert_string_equal(R.s[3], "bye");
    assert_int_equal(R.rc[4], 0);
    assert_string_equal(R.s[4], "reply\n");
}

static int abort_reader(void *arg, void **result)
{
    (void)arg;
    (void)result;
    char c;
    R.rc[6] = (int)async_reader_read(R.r, &c, 1, ASYNC_NO_DEADLINE);
    return 0;
}

static int abort_main(void *arg, void **result)
{
    (void)arg;
    (void)result;
    if ((R.rc[15] = open_pair(NULL)))
        return 0;
    async_task *t;
    async_spawn(&t, abort_reader, NULL);
    async_sleep(ASYNC_MSEC);
    static char big[1 << 20];
    async_writer_write(R.w, big, sizeof(big));
    async_writer_abort(R.w);
    R.rc[0] = async_writer_drain(R.w, ASYNC_NO_DEADLINE);
    R.rc[1] = async_writer_wait_closed(R.w, ASYNC_NO_DEADLINE);
    R.n[1] = async_writer_buffered(R.w);
    R.rc[2] = async_writer_fd(R.w);
    async_task_await(t, NULL);
    async_task_unref(t);
    close_pair();
    return 0;
}

static void test_abort(void **state)
{
    (void)state;
    assert_int_equal(run(abort_main, NULL), 0);
    assert_int_equal(R.rc[15], 0);
    assert_int_equal(R.rc[0], ASYNC_ESHUTDOWN);
    assert_int_equal(R.rc[1], 0);
    assert_int_equal(R.n[1], 0);
    assert_int_equal(R.rc[2], -1);
    assert_int_equal(R.rc[6], 0);
}

/* ---- peer gone, addresses ------------------------------------------------------------------ */

static int peer_gone_main(void *arg, void **result)
{
    (void)arg;
    (void)result;
    if ((R.rc[15] = open_pair(NULL)))
        return 0;
    async_close(R.peer);
    R.peer = -1;
    static char big[1 << 20];
    int rc = 0;
    for (int i = 0; i < 64 && rc == 0; i++) {
        rc = async_writer_write(R.w, big, 4096);
        if (rc == 0)
            rc = async_writer_drain(R.w, ASYNC_NO_DEADLINE);
        if (rc == 0)
            rc = async_sleep(ASYNC_MSEC);
    }
    R.rc[0] = rc;
    R.rc[1] = async_writer_write(R.w, "x", 1);
    R.rc[2] = async_writer_wait_closed(R.w, ASYNC_NO_DEADLINE);
    close_pair();
    return 0;
}

static void test_peer_gone(void **state)
{
    (void)state;
    assert_int_equal(run(peer_gone_main, NULL), 0);
    assert_int_equal(R.rc[15], 0);
    assert_true(R.rc[0] == ASYNC_EPIPE || R.rc[0] == ASYNC_ECONNRESET);
    assert_int_equal(R.rc[1], R.rc[0]);
    assert_int_equal(R.rc[2], R.rc[0]);
}

static int addr_main(void *arg, void **result)
{
    (void)arg;
    (void)result;
    int lfd = async_tcp_listen("127.0.0.1:0", -1, 0);
    async_addr la;
    async_sock_local_addr(lfd, &la);
    char where[ASYNC_ADDR_STRLEN];
    async_addr_format(&la, where, sizeof(where));
    int cfd = async_tcp_connect(where, -1);
    int sfd = async_accept(lfd, NULL, NULL);
    async_close(lfd);
    async_reader *r;
    async_writer *w;
    R.rc[0] = async_stream_open_fd(cfd, NULL, &r, &w);
    async_addr peer, local;
    R.rc[1] = async_writer_peer_addr(w, &peer);
    R.rc[2] = async_writer_local_addr(w, &local);
    R.rc[3] = async_addr_port(&peer) == async_addr_port(&la);
    R.rc[4] = async_addr_port(&local) > 0;
    R.rc[5] = async_stream_open_fd(-1, NULL, &r, &w);
    R.rc[6] = async_stream_open_fd(sfd, NULL, NULL, NULL);
    async_reader_free(r);
    async_writer_free(w);
    async_close(sfd);
    return 0;
}

static void test_addresses(void **state)
{
    (void)state;
    assert_int_equal(run(addr_main, NULL), 0);
    for (int i = 0; i < 5; i++)
        assert_int_equal(R.rc[i], i == 3 || i == 4 ? 1 : 0);
    assert_int_equal(R.rc[5], ASYNC_EINVAL);
    assert_int_equal(R.rc[6], ASYNC_EINVAL);
}

/* ---- subprocess pipes as streams, communicate ------------------------------------------ */

static int process_main(void *arg, void **result)
{
    (void)arg;
    (void)result;
    static const char *const argv[] = {"cat", NULL};
    async_process_opts po = {.argv = argv,
                             .stdin_mode = ASYNC_PROCESS_PIPE,
                             .stdout_mode = ASYNC_PROCESS_PIPE};
    async_process *p;
    if ((R.rc[15] = async_process_spawn(&po, &p)))
        return 0;
    async_writer *in;
    async_reader *out;
    async_reader *err = NULL;
    R.rc[0] = async_process_streams(p, &in, &out, &err); /* no stderr pipe */
    R.rc[1] = async_process_streams(p, &in, &out, NULL);
    async_writer_write(in, "one\ntwo\n", 8);
    const char *d;
    size_t len;
    R.rc[2] = async_reader_readline(out, &d, &len, ASYNC_NO_DEADLINE);
    keep(2, d ? d : "", len);
    async_writer_close(in);
    R.rc[3] = async_writer_wait_closed(in, ASYNC_NO_DEADLINE);
    R.rc[4] = async_process_fd(p, ASYNC_PROCESS_STDIN_FD);
    R.rc[5] = async_reader_readline(out, &d, &len, ASYNC_NO_DEADLINE);
    keep(5, d ? d : "", len);
    R.rc[6] = async_reader_readline(out, &d, &len, ASYNC_NO_DEADLINE);
    R.n[6] = len;
    async_writer_free(in);
    async_reader_free(out);
    R.rc[7] = async_process_wait(p, -1, &R.rc[8]);
    async_process_free(p);
    return 0;
}

static void test_process_streams(void **state)
{
    (void)state;
    assert_int_equal(run(process_main, NULL), 0);
    assert_int_equal(R.rc[15], 0);
    assert_int_equal(R.rc[0], ASYNC_EBADF);
    assert_int_equal(R.rc[1], 0);
    assert_int_equal(R.rc[2], 0);
    assert_string_equal(R.s[2], "one\n");
    assert_int_equal(R.rc[3], 0);
    assert_int_equal(R.rc[4], -1);
    assert_int_equal(R.rc[5], 0);
    assert_string_equal(R.s[5], "two\n");
    assert_int_equal(R.rc[6], 0);
    assert_int_equal(R.n[6], 0);
    assert_int_equal(R.rc[7], 0);
    assert_int_equal(R.rc[8], 0);
}

#define COMM_INPUT (256 * 1024) /* more than a pipe holds */

static int communicate_main(void *arg, void **result)
{
    (void)arg;
    (void)result;
    /* The child echoes its input while it reads it: stdout fills up
     * before stdin is all written, which deadlocks a naive communicate. */
    static const char *const argv[] = {"sh", "-c", "cat; echo done >&2; exit 3",
                                       NULL};
    async_process_opts po = {.argv = argv,
                             .stdin_mode = ASYNC_PROCESS_PIPE,
                             .stdout_mode = ASYNC_PROCESS_PIPE,
                             .stderr_mode = ASYNC_PROCESS_PIPE};
    async_process *p;
    if ((R.rc[15] = async_process_spawn(&po, &p)))
        return 0;
    char *input = malloc(COMM_INPUT);
    for (size_t i = 0; i < COMM_INPUT; i++)
        input[i] = (char)('a' + i % 26);
    async_process_result res;
    R.rc[0] = async_process_communicate(p, input, COMM_INPUT, 10 * ASYNC_SEC,
                                        &res);
    if (R.rc[0] == 0) {
        R.rc[1] = res.out_len == COMM_INPUT &&
                  memcmp(res.out, input, COMM_INPUT) == 0;
        keep(2, res.err, res.err_len);
        R.rc[3] = res.status;
        async_process_result_free(&res);
    }
    free(input);
    async_process_free(p);

    /* A time-out leaves the child running. */
    static const char *const sleeper[] = {"sleep", "10", NULL};
    async_process_opts so = {.argv = sleeper,
                             .stdout_mode = ASYNC_PROCESS_PIPE};
    if ((R.rc[14] = async_process_spawn(&so, &p)))
        return 0;
    R.rc[4] = async_process_communicate(p, NULL, 0, 50 * ASYNC_MSEC, &res);
    R.rc[5] = async_process_done(p);
    R.rc[6] = async_process_communicate(p, "x", 1, -1, &res);
    async_process_kill(p, SIGKILL);
    R.rc[7] = async_process_wait(p, -1, &R.rc[8]);
    async_process_free(p);
    return 0;
}

static void test_communicate(void **state)
{
    (void)state;
    assert_int_equal(run(communicate_main, NULL), 0);
    assert_int_equal(R.rc[15], 0);
    assert_int_equal(R.rc[0], 0);
    assert_int_equal(R.rc[1], 1);
    assert_string_equal(R.s[2], "done\n");
    assert_int_equal(R.rc[3], 3);
    assert_int_equal(R.rc[14], 0);
    assert_int_equal(R.rc[4], ASYNC_ETIMEDOUT);
    assert_int_equal(R.rc[5], 0);
    assert_int_equal(R.rc[6], ASYNC_EINVAL);
    assert_int_equal(R.rc[7], 0);
    assert_int_equal(R.rc[8], -SIGKILL);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN); /* pipes to children (see async/io.h) */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_readline, setup, teardown),
        cmocka_unit_test_setup_teardown(test_readuntil, setup, teardown),
        cmocka_unit_test_setup_teardown(test_readexactly, setup, teardown),
        cmocka_unit_test_setup_teardown(test_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_read, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancel_keeps_data, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_drain_backpressure, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_close_flushes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_write_eof, setup, teardown),
        cmocka_unit_test_setup_teardown(test_abort, setup, teardown),
        cmocka_unit_test_setup_teardown(test_peer_gone, setup, teardown),
        cmocka_unit_test_setup_teardown(test_addresses, setup, teardown),
        cmocka_unit_test_setup_teardown(test_process_streams, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_communicate, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
