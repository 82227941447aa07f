/*
 * fd watchers (add_reader / add_writer) on pipes and socketpairs, a
 * callback removing its own watcher mid-iteration, bad fds, no fd leaks.
 */
#include <fcntl.h>
#include <setjmp.h>
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
#include "core/internal.h"

static async_loop *L;
static th_leaks leaks;

static int setup(void **state)
{
    (void)state;
    th_leaks_begin(&leaks);
    assert_int_equal(async_loop_new(&L), 0);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    assert_int_equal(async_loop_free(L), 0);
    th_leaks_end(&leaks);
    return 0;
}

typedef struct pipe_state {
    int fds[2];      /* pipe or socketpair */
    int reads;       /* reader callback calls */
    int writes;      /* writer callback calls */
    char buf[64];    /* what the reader got */
    size_t got;      /* bytes in buf */
} pipe_state;

static int on_readable(void *arg)
{
    pipe_state *p = arg;
    p->reads++;
    ssize_t n = read(p->fds[0], p->buf + p->got, sizeof(p->buf) - p->got);
    if (n > 0)
        p->got += (size_t)n;
    if (p->got >= 5 || n == 0) {
        async_loop_remove_reader(L, p->fds[0]); /* removes itself */
        return async_loop_stop(L);
    }
    return 0;
}

static int write_hello(void *arg)
{
    pipe_state *p = arg;
    return write(p->fds[1], "hello", 5) == 5 ? 0 : ASYNC_EFAILED;
}

/* A reader fires only once data is there, and can remove itself. */
static void test_reader_pipe(void **state)
{
    (void)state;
    pipe_state p = {0};
    assert_int_equal(pipe(p.fds), 0);
    assert_int_equal(async_loop_add_reader(L, p.fds[0], on_readable, &p), 0);
    assert_int_equal(async_loop_add_reader(L, p.fds[0], on_readable, &p), ASYNC_EEXIST);
    assert_int_equal(async_loop_call_later(L, 5 * ASYNC_MSEC, write_hello, &p, NULL), 0);
    assert_int_equal(async_loop_run_forever(L), 0);
    assert_int_equal(p.got, 5);
    assert_memory_equal(p.buf, "hello", 5);
    assert_int_equal(p.reads, 1);
    assert_int_equal(async_loop_remove_reader(L, p.fds[0]), ASYNC_ENOENT);
    close(p.fds[0]);
    close(p.fds[1]);
}

static int on_writable(void *arg)
{
    pipe_state *p = arg;
    p->writes++;
    if (write(p->fds[0], "x", 1) != 1)
        return ASYNC_EFAILED;
    if (p->writes == 3) {
        async_loop_remove_writer(L, p->fds[0]);
        return async_loop_stop(L);
    }
    return 0;
}

static int stop_cb(void *arg)
{
    (void)arg;
    return async_loop_stop(L);
}

/* A writer on a socketpair fires every iteration while writable
 * (level-triggered, as asyncio's add_writer), until removed. */
static void test_writer_socketpair(void **state)
{
    (void)state;
    pipe_state p = {0};
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, p.fds), 0);
    assert_int_equal(async_loop_add_writer(L, p.fds[0], on_writable, &p), 0);
    assert_int_equal(async_loop_run_forever(L), 0);
    assert_int_equal(p.writes, 3);
    /* Removed: no more calls. */
    assert_int_equal(async_loop_call_later(L, 2 * ASYNC_MSEC, stop_cb, NULL, NULL), 0);
    assert_int_equal(async_loop_run_forever(L), 0);
    assert_int_equal(p.writes, 3);
    char buf[8];
    assert_int_equal(read(p.fds[1], buf, sizeof(buf)), 3);
    close(p.fds[0]);
    close(p.fds[1]);
}

typedef struct both {
    int fd;        /* the watched fd */
    int calls;     /* reader calls */
    int wcalls;    /* writer calls */
} both;

static int remove_both(void *arg)
{
    both *b = arg;
    b->calls++;
    /* Removes the writer that is already queued for this iteration: it
     * must not run afterwards. */
    async_loop_remove_writer(L, b->fd);
    async_loop_remove_reader(L, b->fd);
    return async_loop_call_soon(L, stop_cb, NULL, NULL);
}

static int count_writer(void *arg)
{
    ((both *)arg)->wcalls++;
    return 0;
}

/* A callback that removes a watcher already due in the same iteration. */
static void test_remove_during_iteration(void **state)
{
    (void)state;
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    assert_int_equal(write(sv[1], "z", 1), 1);
    both b = {.fd = sv[0]};
    assert_int_equal(async_loop_add_reader(L, sv[0], remove_both, &b), 0);
    assert_int_equal(async_loop_add_writer(L, sv[0], count_writer, &b), 0);
    assert_int_equal(async_loop_run_forever(L), 0);
    assert_int_equal(b.calls, 1);
    assert_true(b.wcalls <= 1); /* ran before the reader, or never */
    int before = b.wcalls;
    assert_int_equal(async_loop_call_later(L, 2 * ASYNC_MSEC, stop_cb, NULL, NULL), 0);
    assert_int_equal(async_loop_run_forever(L), 0);
    assert_int_equal(b.wcalls, before);
    close(sv[0]);
    close(sv[1]);
}

static int nop(void *arg)
{
    (void)arg;
    return 0;
}

/* Bad fds and unpollable fds: clear errors, nothing registered. */
static void test_bad_fds(void **state)
{
    (void)state;
    assert_int_equal(async_loop_add_reader(L, -1, nop, NULL), ASYNC_EBADF);
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    close(fds[1]);
    assert_int_equal(async_loop_add_writer(L, fds[1], nop, NULL), ASYNC_EBADF);
    assert_int_equal(async_loop_add_reader(NULL, fds[0], nop, NULL), ASYNC_EINVAL);
    assert_int_equal(async_loop_add_reader(L, fds[0], NULL, NULL), ASYNC_EINVAL);
    assert_int_equal(async_loop_remove_reader(L, fds[0]), ASYNC_ENOENT);
    assert_int_equal(async_loop_remove_reader(L, -1), ASYNC_ENOENT);
    assert_int_equal(async_loop_remove_writer(NULL, 0), ASYNC_EINVAL);
    close(fds[0]);
    if (strcmp(async__backend_name(), "epoll") == 0) {
        char path[] = "/tmp/libasync-test-XXXXXX";
        int fd = mkstemp(path);
        assert_true(fd >= 0);
        unlink(path);
        assert_int_equal(async_loop_add_reader(L, fd, nop, NULL), ASYNC_EPERM);
        close(fd);
    }
}

/* The loop's own fds are released at close: many loops, no fd growth. */
static void test_no_fd_leak(void **state)
{
    (void)state;
    int before = th_count_fds();
    for (int i = 0; i < 50; i++) {
        async_loop *l;
        int fds[2];
        assert_int_equal(async_loop_new(&l), 0);
        assert_int_equal(pipe(fds), 0);
        assert_int_equal(async_loop_add_reader(l, fds[0], nop, NULL), 0);
        assert_int_equal(async_loop_free(l), 0);
        close(fds[0]);
        close(fds[1]);
    }
    assert_int_equal(th_count_fds(), before);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_reader_pipe, setup, teardown),
        cmocka_unit_test_setup_teardown(test_writer_socketpair, setup, teardown),
        cmocka_unit_test_setup_teardown(test_remove_during_iteration, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_fds, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_fd_leak, setup, teardown),
    };
    return cmocka_run_group_tests_name("loop_io", tests, NULL, NULL);
}
