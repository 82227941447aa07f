/*
 * Stack frames bigger than a page against the guard below every coroutine
 * stack (issue 13): the guard grows with the stack, a frame built with
 * stack-clash protection cannot jump it, a frame built without it that is
 * no larger than the guard lands in it, and one that is larger and escapes
 * onto the neighbouring stack is stopped at its next switch (builds with
 * assertions).  Every scenario runs in a child process that must die with
 * the overflow report, not silently corrupt its neighbour.
 *
 * This file is compiled with -fstack-clash-protection; the unprotected
 * frames live in tests/frames_unprotected.c (-fno-stack-clash-protection).
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "child.h"
#include "coro/coro.h"
#include "coro/stack.h"
#include "frames_unprotected.h"

/* See test_stack.c: cmocka's SIGSEGV handlers would hide the library's. */
static struct sigaction lib_segv, lib_bus;

static void child_restore_handlers(void)
{
    sigaction(SIGSEGV, &lib_segv, NULL);
    sigaction(SIGBUS, &lib_bus, NULL);
}

#define KIB ((size_t)1024)

/* ---------------------------------------------------------------------- */

/* The guard is the stack size, clamped to [64 KiB, 1 MiB]. */
static void test_guard_follows_size(void **state)
{
    (void)state;
    const struct {
        size_t size, guard;
    } cases[] = {
        {16 * KIB, 64 * KIB},
        {80 * KIB, 80 * KIB},
        {0, ASYNC__STACK_DEFAULT},
        {4096 * KIB, 1024 * KIB},
    };
    size_t pg = (size_t)sysconf(_SC_PAGESIZE);

    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        async__stack st;
        size_t want = cases[i].guard < pg ? pg : cases[i].guard;
        assert_int_equal(async__stack_alloc(&st, cases[i].size), 0);
        assert_int_equal(st.guard, want);
        assert_ptr_equal(async__stack_base(&st), (char *)st.map + st.guard);
        async__stack_free(&st);
    }
    async__stack_pool_drain();
}

/* ---------------------------------------------------------------------- */
/* The scenarios.  Each uses a stack size no other test uses, so its class
 * is new in the child: the neighbour gets slot 0 of a fresh slab and the
 * culprit slot 1, right above it. */

struct scenario {
    size_t size;             /* stack size of both coroutines */
    void (*body)(void *arg); /* the culprit's body */
    const char *name;        /* the culprit's name */
};

static void neighbour_body(void *arg)
{
    volatile char mark[64];

    (void)arg;
    memset((char *)mark, 0x5a, sizeof mark);
    async__coro_suspend();
    _exit(5); /* never resumed: the culprit kills the process first */
}

static void scenario_child(void *arg)
{
    const struct scenario *sc = arg;
    async__coro neighbour, culprit;

    child_restore_handlers();
    if (async__coro_init(&neighbour, neighbour_body, NULL, sc->size) != 0 ||
        async__coro_init(&culprit, sc->body, NULL, sc->size) != 0)
        _exit(3);
    if ((char *)culprit.stack.map !=
        (char *)async__stack_top(&neighbour.stack)) /* adjacent, below */
        _exit(6);
    neighbour.name = "neighbour";
    culprit.name = sc->name;
    async__coro_resume(&neighbour);
    async__coro_resume(&culprit);
    _exit(4); /* the culprit returned or suspended: nothing was caught */
}

static void run_scenario(const struct scenario *sc, th_child *c)
{
    char want[128];

    assert_int_equal(th_child_run(scenario_child, (void *)sc, c), 0);
    if (WIFEXITED(c->status))
        fail_msg("child exited with %d (6: stacks not adjacent, 4: not "
                 "caught), stderr:\n%s",
                 WEXITSTATUS(c->status), c->err);
    if (!WIFSIGNALED(c->status) || WTERMSIG(c->status) != SIGABRT)
        fail_msg("child status %#x, stderr:\n%s", c->status, c->err);
    snprintf(want, sizeof want,
             "libasync: stack overflow in coroutine \"%s\" (stack size %zu "
             "bytes)\n",
             sc->name, sc->size);
    if (strstr(c->err, want) == NULL)
        fail_msg("no report \"%s\" in:\n%s", want, c->err);
}

/* A frame three times the guard, compiled with -fstack-clash-protection:
 * the compiler probes it page by page (x86_64) or in 64 KiB steps
 * (AArch64), so the first probe past the stack hits the guard. */
#define PROTECTED_BYTES (768 * KIB)
#define PROTECTED_STACK (260 * KIB)

__attribute__((noinline)) static void protected_big_frame(void)
{
    char buf[PROTECTED_BYTES];

    /* See frames_unprotected.c: the asm keeps the whole array. */
    ((volatile char *)buf)[0] = 1;
    __asm__ volatile("" : : "r"(buf) : "memory");
    ((volatile char *)buf)[sizeof buf - 1] = buf[0];
}

static void protected_body(void *arg)
{
    (void)arg;
    protected_big_frame();
}

static void test_protected_frame_cannot_jump(void **state)
{
    (void)state;
#if defined(__x86_64__) || defined(__aarch64__)
    static const struct scenario sc = {PROTECTED_STACK, protected_body,
                                       "clash-protected"};
    th_child c;

    /* Without the probes its lowest byte would land past the guard. */
    assert_true(PROTECTED_BYTES > 2 * PROTECTED_STACK);
    run_scenario(&sc, &c);
#else
    /* gcc 12 accepts -fstack-clash-protection on riscv64 but emits no
     * probes (GCC 14 implements them). */
    skip();
#endif
}

/* Two unprotected 200 KiB frames, one in the other, from the top of a
 * 264 KiB stack: the inner one's first byte lies 136 KiB below the stack,
 * past a 64 KiB guard (the neighbour's stack, before issue 13) but inside
 * a guard as large as the stack. */
#define TWO_FRAMES_STACK (264 * KIB)

static void inner_frame(void)
{
    frames_big_unprotected(NULL);
}

static void two_frames_body(void *arg)
{
    (void)arg;
    frames_big_unprotected(inner_frame);
}

static void test_unprotected_frame_within_guard(void **state)
{
    (void)state;
    static const struct scenario sc = {TWO_FRAMES_STACK, two_frames_body,
                                       "two-big-frames"};
    th_child c;

    assert_true(2 * FRAMES_UNPROTECTED_BYTES > TWO_FRAMES_STACK + 64 * KIB);
    assert_true(2 * FRAMES_UNPROTECTED_BYTES < 2 * TWO_FRAMES_STACK);
    run_scenario(&sc, &c);
}

/* One unprotected 200 KiB frame on an 80 KiB stack (80 KiB guard): it jumps
 * the guard and runs on the neighbour's stack without any fault.  The
 * switch check stops it when it suspends from there. */
#define ESCAPE_STACK (80 * KIB)

static void escape_body(void *arg)
{
    (void)arg;
    frames_big_unprotected(async__coro_suspend);
}

static void test_escape_caught_at_switch(void **state)
{
    (void)state;
#if !defined(NDEBUG)
    static const struct scenario sc = {ESCAPE_STACK, escape_body, "escaper"};
    th_child c;

    assert_true(FRAMES_UNPROTECTED_BYTES > 2 * ESCAPE_STACK);
    assert_true(FRAMES_UNPROTECTED_BYTES < 3 * ESCAPE_STACK);
    run_scenario(&sc, &c);
    assert_non_null(strstr(c.err, "stack pointer was below the stack"));
    assert_non_null(strstr(c.err, "-fstack-clash-protection"));
#else
    skip(); /* release builds leave the check out of the switch path */
#endif
}

int main(void)
{
    async__stack st;

    /* Installs the overflow reporter (see child_restore_handlers). */
    if (async__stack_alloc(&st, 0) != 0)
        return 1;
    async__stack_free(&st);
    async__stack_pool_drain();
    sigaction(SIGSEGV, NULL, &lib_segv);
    sigaction(SIGBUS, NULL, &lib_bus);

    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_guard_follows_size),
        cmocka_unit_test(test_protected_frame_cannot_jump),
        cmocka_unit_test(test_unprotected_frame_within_guard),
        cmocka_unit_test(test_escape_caught_at_switch),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
