/*
 * Coroutines: lifecycle, nested resume, many coroutines, and that creating
 * and finishing a million of them neither leaks stacks nor grows the
 * process's mappings.  Coroutine bodies only record what they see; the
 * asserts run afterwards on the thread's own stack.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <async/error.h>

#include "coro/coro.h"
#include "coro/stack.h"

/* ---------------------------------------------------------------------- */

struct life {
    int steps;                /* how far the body got */
    async__coro *seen_current;/* async__coro_current() inside the body */
    void *seen_arg;
};

static void life_body(void *arg)
{
    struct life *l = arg;

    l->seen_current = async__coro_current();
    l->seen_arg = arg;
    l->steps = 1;
    async__coro_suspend();
    l->steps = 2;
    async__coro_suspend();
    l->steps = 3;
}

static void test_lifecycle(void **state)
{
    (void)state;
    async__coro co;
    struct life l = {0};

    async__stack_pool_drain();
    size_t base = async__stack_mapped_count();

    assert_int_equal(async__coro_init(&co, life_body, &l, 0), 0);
    assert_int_equal(co.state, ASYNC__CORO_READY);
    assert_null(async__coro_current());
    assert_true(co.stack.size >= ASYNC__STACK_DEFAULT);

    async__coro_resume(&co);
    assert_int_equal(l.steps, 1);
    assert_ptr_equal(l.seen_current, &co);
    assert_ptr_equal(l.seen_arg, &l);
    assert_int_equal(co.state, ASYNC__CORO_SUSPENDED);
    assert_null(async__coro_current());

    async__coro_resume(&co);
    assert_int_equal(l.steps, 2);
    async__coro_resume(&co);
    assert_int_equal(l.steps, 3);
    assert_int_equal(co.state, ASYNC__CORO_FINISHED);
    assert_null(async__coro_current());

    async__coro_destroy(&co);
    async__stack_pool_drain();
    assert_int_equal(async__stack_mapped_count(), base);
}

static void noop(void *arg)
{
    (void)arg;
}

static void test_init_errors(void **state)
{
    (void)state;
    async__coro co;

    async__stack_pool_drain();
    size_t base = async__stack_mapped_count();

    assert_int_equal(async__coro_init(NULL, noop, NULL, 0), ASYNC_EINVAL);
    assert_int_equal(async__coro_init(&co, NULL, NULL, 0), ASYNC_EINVAL);
    assert_int_equal(async__coro_init(&co, noop, NULL, 1), ASYNC_EINVAL);
    assert_int_equal(async__coro_init(&co, noop, NULL,
                                      ASYNC__STACK_MAX + 1), ASYNC_EINVAL);
    assert_int_equal(async__stack_mapped_count(), base);

    /* A READY coroutine that never ran can be destroyed. */
    assert_int_equal(async__coro_init(&co, noop, NULL, ASYNC__STACK_MIN), 0);
    assert_int_equal(co.stack.size, ASYNC__STACK_MIN);
    async__coro_destroy(&co);
    async__stack_pool_drain();
    assert_int_equal(async__stack_mapped_count(), base);
}

/* ---------------------------------------------------------------------- */
/* Nested resume: outer resumes inner; inner's suspend returns to outer,
 * outer's suspend returns to the thread. */

struct nest {
    async__coro outer, inner;
    char log[32];
    size_t n;
    async__coro *inner_resumer;  /* inner.resumer seen from inside inner */
    async__coro *outer_after;    /* current in outer after inner suspends */
};

static void nest_mark(struct nest *t, char c)
{
    if (t->n + 1 < sizeof t->log)
        t->log[t->n++] = c;
}

static void inner_body(void *arg)
{
    struct nest *t = arg;

    t->inner_resumer = t->inner.resumer;
    nest_mark(t, 'i');
    async__coro_suspend();
    nest_mark(t, 'j');
}

static void outer_body(void *arg)
{
    struct nest *t = arg;

    nest_mark(t, 'o');
    async__coro_resume(&t->inner);
    t->outer_after = async__coro_current();
    nest_mark(t, 'p');
    async__coro_suspend();
    nest_mark(t, 'q');
    async__coro_resume(&t->inner);
    nest_mark(t, 'r');
}

static void test_nested(void **state)
{
    (void)state;
    struct nest *t = calloc(1, sizeof *t);

    assert_non_null(t);
    assert_int_equal(async__coro_init(&t->outer, outer_body, t, 0), 0);
    assert_int_equal(async__coro_init(&t->inner, inner_body, t, 0), 0);

    async__coro_resume(&t->outer);
    assert_string_equal(t->log, "oip");
    assert_ptr_equal(t->inner_resumer, &t->outer);
    assert_ptr_equal(t->outer_after, &t->outer);
    assert_int_equal(t->outer.state, ASYNC__CORO_SUSPENDED);
    assert_int_equal(t->inner.state, ASYNC__CORO_SUSPENDED);
    assert_null(async__coro_current());

    async__coro_resume(&t->outer);
    assert_string_equal(t->log, "oipqjr");
    assert_int_equal(t->outer.state, ASYNC__CORO_FINISHED);
    assert_int_equal(t->inner.state, ASYNC__CORO_FINISHED);

    async__coro_destroy(&t->inner);
    async__coro_destroy(&t->outer);
    async__stack_pool_drain();
    free(t);
}

/* ---------------------------------------------------------------------- */
/* 10,000 coroutines round-robin until all finish. */

#define RR_COUNT 10000
#define RR_ROUNDS 5

struct rr {
    unsigned id;
    unsigned rounds;  /* rounds completed */
    int bad;          /* a local variable did not survive a suspend */
};

static void rr_body(void *arg)
{
    struct rr *r = arg;
    volatile unsigned local = r->id * 2654435761u;

    for (unsigned i = 0; i < RR_ROUNDS; i++) {
        r->rounds++;
        async__coro_suspend();
        if (local != r->id * 2654435761u)
            r->bad = 1;
    }
}

static void test_round_robin(void **state)
{
    (void)state;
    async__coro *cos = calloc(RR_COUNT, sizeof *cos);
    struct rr *rs = calloc(RR_COUNT, sizeof *rs);

    async__stack_pool_drain();
    size_t base = async__stack_mapped_count();

    assert_non_null(cos);
    assert_non_null(rs);
    for (unsigned i = 0; i < RR_COUNT; i++) {
        rs[i].id = i;
        assert_int_equal(async__coro_init(&cos[i], rr_body, &rs[i],
                                          ASYNC__STACK_MIN), 0);
    }
    unsigned live = RR_COUNT;
    while (live > 0) {
        live = 0;
        for (unsigned i = 0; i < RR_COUNT; i++) {
            if (cos[i].state == ASYNC__CORO_FINISHED)
                continue;
            async__coro_resume(&cos[i]);
            live += cos[i].state != ASYNC__CORO_FINISHED;
        }
    }
    for (unsigned i = 0; i < RR_COUNT; i++) {
        assert_int_equal(rs[i].rounds, RR_ROUNDS);
        assert_int_equal(rs[i].bad, 0);
        async__coro_destroy(&cos[i]);
    }
    async__stack_pool_drain();
    assert_int_equal(async__stack_mapped_count(), base);
    free(cos);
    free(rs);
}

/* ---------------------------------------------------------------------- */
/* A million create/finish cycles reuse pooled stacks: no new mappings. */

static int maps_lines(void)
{
    FILE *f = fopen("/proc/self/maps", "r");
    int lines = 0;
    int c;

    if (f == NULL)
        return -1;
    while ((c = fgetc(f)) != EOF)
        lines += c == '\n';
    fclose(f);
    return lines;
}

static void count_body(void *arg)
{
    (*(unsigned long *)arg)++;
}

static void test_million(void **state)
{
    (void)state;
    unsigned long runs = 0;
    const unsigned long n = 1000000;
    async__coro co;

    /* Warm up the pool and stdio so the baseline includes them. */
    assert_int_equal(async__coro_init(&co, count_body, &runs, 0), 0);
    async__coro_resume(&co);
    async__coro_destroy(&co);
    async__stack_pool_drain();
    size_t base = async__stack_mapped_count();
    int maps_before = maps_lines();

    for (unsigned long i = 0; i < n; i++) {
        if (async__coro_init(&co, count_body, &runs, 0) != 0)
            break;
        async__coro_resume(&co);
        async__coro_destroy(&co);
    }
    int maps_after = maps_lines();
    assert_int_equal(runs, n + 1);
    assert_true(async__stack_mapped_count() <= base + 1);
    async__stack_pool_drain();
    assert_int_equal(async__stack_mapped_count(), base);
    if (maps_before >= 0) {
        /* Slack for a malloc arena or stdio buffer appearing meanwhile. */
        assert_true(maps_after <= maps_before + 2);
    }
}

/* Transfer: a coroutine hands the CPU straight to a sibling; the sibling
 * inherits the resumer, and resume reports which coroutine came back. */
static async__coro tr_a, tr_b;
static char tr_log[16];
static int tr_n;

static void tr_a_body(void *arg)
{
    (void)arg;
    tr_log[tr_n++] = 'a';
    async__coro_transfer(&tr_a, &tr_b); /* first entry of b */
    tr_log[tr_n++] = 'A';                /* b transferred back */
}

static void tr_b_body(void *arg)
{
    (void)arg;
    tr_log[tr_n++] = 'b';
    async__coro_suspend();               /* to a's resumer: the test */
    tr_log[tr_n++] = 'B';
    async__coro_transfer(&tr_b, &tr_a);
    tr_log[tr_n++] = 'Z';                /* never: a finishes, not back */
}

static void test_transfer(void **state)
{
    (void)state;
    tr_n = 0;
    assert_int_equal(async__coro_init(&tr_a, tr_a_body, NULL, 0), 0);
    assert_int_equal(async__coro_init(&tr_b, tr_b_body, NULL, 0), 0);
    assert_ptr_equal(async__coro_resume(&tr_a), &tr_b); /* b suspended */
    assert_int_equal(tr_b.state, ASYNC__CORO_SUSPENDED);
    assert_int_equal(tr_a.state, ASYNC__CORO_SUSPENDED);
    assert_null(async__coro_current());
    assert_ptr_equal(async__coro_resume(&tr_b), &tr_a); /* a finished */
    assert_int_equal(tr_a.state, ASYNC__CORO_FINISHED);
    assert_int_equal(tr_b.state, ASYNC__CORO_SUSPENDED);
    assert_int_equal(tr_n, 4);
    assert_memory_equal(tr_log, "abBA", 4);
    async__coro_destroy(&tr_a);
    async__coro_destroy(&tr_b); /* suspended: dropped without unwinding */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lifecycle),
        cmocka_unit_test(test_init_errors),
        cmocka_unit_test(test_nested),
        cmocka_unit_test(test_round_robin),
        cmocka_unit_test(test_million),
        cmocka_unit_test(test_transfer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
