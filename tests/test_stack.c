/*
 * Coroutine stacks: argument checks, geometry, the per-thread pool and its
 * cap, draining at thread exit, the alternate signal stack, the guard's VMA
 * cost, and the overflow reporter (in child processes, which must die).
 */
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <errno.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include <async.h>

#include <async/error.h>

#include "child.h"
#include "coro/coro.h"
#include "coro/stack.h"

/*
 * cmocka installs its own SIGSEGV/SIGBUS handlers around every test (and
 * longjmps out of them), which would hide the library's from a child.  The
 * library's handler is installed by the first stack allocation, done in
 * main() before cmocka starts; its dispositions are saved here and put back
 * in each dying child, so the child behaves like a program without cmocka.
 */
static struct sigaction lib_segv, lib_bus;

static void child_restore_handlers(void)
{
    sigaction(SIGSEGV, &lib_segv, NULL);
    sigaction(SIGBUS, &lib_bus, NULL);
}

static size_t page(void)
{
    return (size_t)sysconf(_SC_PAGESIZE);
}

/* ---------------------------------------------------------------------- */

static void test_bad_sizes(void **state)
{
    (void)state;
    const size_t bad[] = {1, ASYNC__STACK_MIN - 1, ASYNC__STACK_MAX + 1,
                          (size_t)-1};

    async__stack_pool_drain();
    size_t base = async__stack_mapped_count();
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        async__stack st, orig;
        memset(&st, 0xa5, sizeof st);
        orig = st;
        assert_int_equal(async__stack_alloc(&st, bad[i]), ASYNC_EINVAL);
        assert_memory_equal(&st, &orig, sizeof st);
        assert_int_equal(async__stack_mapped_count(), base);
    }
}

static void test_geometry(void **state)
{
    (void)state;
    async__stack st;
    size_t want = ASYNC__STACK_MIN + 1;
    size_t pg = page();

    assert_int_equal(async__stack_alloc(&st, want), 0);
    assert_true(st.size >= want);
    assert_int_equal(st.size % pg, 0);
    assert_true(st.size < want + pg);
    assert_true(st.guard >= 64 * 1024);
    assert_true(st.guard >= pg);
    assert_int_equal((uintptr_t)st.map % pg, 0);
    assert_ptr_equal(async__stack_base(&st), (char *)st.map + st.guard);
    assert_int_equal((size_t)((char *)async__stack_top(&st) -
                              (char *)async__stack_base(&st)),
                     st.size);
    /* The whole usable range is writable. */
    ((volatile char *)async__stack_base(&st))[0] = 1;
    ((volatile char *)async__stack_top(&st))[-1] = 1;
    async__stack_free(&st);

    assert_int_equal(async__stack_alloc(&st, 0), 0);
    assert_int_equal(st.size, ASYNC__STACK_DEFAULT);
    async__stack_free(&st);
    async__stack_pool_drain();
}

static void test_pool_reuse(void **state)
{
    (void)state;
    async__stack a, b, c;

    async__stack_pool_drain();
    size_t base = async__stack_mapped_count();

    assert_int_equal(async__stack_alloc(&a, 0), 0);
    assert_int_equal(async__stack_mapped_count(), base + 1);
    void *map = a.map;
    async__stack_free(&a);
    assert_int_equal(async__stack_mapped_count(), base + 1); /* pooled */

    assert_int_equal(async__stack_alloc(&b, 0), 0);
    assert_ptr_equal(b.map, map); /* same size: the last freed, reused */
    assert_int_equal(async__stack_mapped_count(), base + 1);

    assert_int_equal(async__stack_alloc(&c, 64 * 1024), 0);
    assert_ptr_not_equal(c.map, map); /* other size: fresh */
    assert_int_equal(c.size, 64 * 1024);
    assert_int_equal(async__stack_mapped_count(), base + 2);

    async__stack_free(&b);
    async__stack_free(&c);
    async__stack_pool_drain();
    assert_int_equal(async__stack_mapped_count(), base);
}

/* The pool keeps at most 64 default stacks' worth of used free stacks:
 * freeing many more unmaps the slabs left with no stack in use. */
static void test_pool_cap(void **state)
{
    (void)state;
    enum { N = 300 };
    async__stack *sts = calloc(N, sizeof *sts);

    assert_non_null(sts);
    async__stack_pool_drain();
    size_t base = async__stack_mapped_count();
    for (int i = 0; i < N; i++) {
        assert_int_equal(async__stack_alloc(&sts[i], 0), 0);
        ((volatile char *)async__stack_top(&sts[i]))[-1] = 1;
    }
    assert_int_equal(async__stack_mapped_count(), base + N);
    for (int i = 0; i < N; i++)
        async__stack_free(&sts[i]);
    size_t kept = async__stack_mapped_count() - base;
    assert_true(kept > 0 && kept < N);
    async__stack_pool_drain();
    assert_int_equal(async__stack_mapped_count(), base);
    free(sts);
}

static void *free_elsewhere(void *arg)
{
    async__stack_free(arg);
    return NULL;
}

/* A stack freed by another thread than the one that allocated it, after
 * that thread exited: its slab is unmapped by the last free. */
static void *alloc_and_leave(void *arg)
{
    async__stack *st = arg;

    if (async__stack_alloc(st, 0) != 0)
        st->map = NULL;
    else
        ((volatile char *)async__stack_top(st))[-1] = 1;
    return NULL;
}

static void test_foreign_free(void **state)
{
    (void)state;
    async__stack st, mine;
    pthread_t th;

    async__stack_pool_drain();
    size_t base = async__stack_mapped_count();
    assert_int_equal(pthread_create(&th, NULL, alloc_and_leave, &st), 0);
    assert_int_equal(pthread_join(th, NULL), 0);
    assert_non_null(st.map);
    assert_int_equal(async__stack_mapped_count(), base + 1);
    async__stack_free(&st); /* orphaned slab: unmapped now */
    assert_int_equal(async__stack_mapped_count(), base);

    /* Freed here while its owner (this thread) is alive: retired, and the
     * slab goes when the owner drains it. */
    assert_int_equal(async__stack_alloc(&mine, 0), 0);
    assert_int_equal(pthread_create(&th, NULL, free_elsewhere, &mine), 0);
    assert_int_equal(pthread_join(th, NULL), 0);
    async__stack_pool_drain();
    assert_int_equal(async__stack_mapped_count(), base);
}

/* ---------------------------------------------------------------------- */
/* Threads: pool drained at exit; each gets an alternate signal stack unless
 * it already has one. */

struct thread_run {
    int own_altstack;     /* install one before allocating */
    int alloc_ok;
    int altstack_enabled; /* after the first allocation */
    void *altstack_sp;
    void *own_sp;
};

static void *thread_body(void *arg)
{
    struct thread_run *t = arg;
    async__stack sts[8];
    static char own[64 * 1024];

    if (t->own_altstack) {
        stack_t ss = {.ss_sp = own, .ss_flags = 0, .ss_size = sizeof own};
        sigaltstack(&ss, NULL);
        t->own_sp = own;
    }
    t->alloc_ok = 1;
    for (int i = 0; i < 8; i++)
        t->alloc_ok &= async__stack_alloc(&sts[i], 0) == 0;
    stack_t cur;
    sigaltstack(NULL, &cur);
    t->altstack_enabled = !(cur.ss_flags & SS_DISABLE);
    t->altstack_sp = cur.ss_sp;
    for (int i = 0; i < 8; i++)
        async__stack_free(&sts[i]); /* into this thread's pool */
    if (t->own_altstack) {
        stack_t off = {.ss_sp = NULL, .ss_flags = SS_DISABLE, .ss_size = 0};
        sigaltstack(&off, NULL);
    }
    return NULL;
}

static void test_threads(void **state)
{
    (void)state;

    async__stack_pool_drain();
    size_t base = async__stack_mapped_count();
    for (int own = 0; own < 2; own++) {
        struct thread_run t = {.own_altstack = own};
        pthread_t th;
        assert_int_equal(pthread_create(&th, NULL, thread_body, &t), 0);
        assert_int_equal(pthread_join(th, NULL), 0);
        assert_true(t.alloc_ok);
        assert_true(t.altstack_enabled);
        if (own)
            assert_ptr_equal(t.altstack_sp, t.own_sp); /* left alone */
        /* The exiting thread's pool was unmapped by its key destructor. */
        assert_int_equal(async__stack_mapped_count(), base);
    }
}

/* ---------------------------------------------------------------------- */
/* MADV_GUARD_INSTALL keeps one VMA per stack (or fewer: neighbours merge);
 * an mprotect guard would need two.  Only meaningful where the kernel has
 * guard regions, probed here the way the library does. */

static int kernel_has_guard_regions(void)
{
    size_t len = 2 * page();
    void *m = mmap(NULL, len, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    int ok = 0;

    if (m == MAP_FAILED)
        return 0;
    if (madvise(m, page(), 102 /* MADV_GUARD_INSTALL */) == 0)
        ok = syscall(SYS_clock_gettime, CLOCK_MONOTONIC, m) != 0 &&
             errno == EFAULT;
    munmap(m, len);
    return ok;
}

static int maps_lines(void)
{
    FILE *f = fopen("/proc/self/maps", "r");
    int lines = 0, c;

    if (f == NULL)
        return -1;
    while ((c = fgetc(f)) != EOF)
        lines += c == '\n';
    fclose(f);
    return lines;
}

static void test_guard_vma_cost(void **state)
{
    (void)state;
    enum { N = 1000 };

    /* The library's own probe agrees with ours. */
    assert_int_equal(async__stack_guard_splits_vma(),
                     !kernel_has_guard_regions());
    if (!kernel_has_guard_regions() || maps_lines() < 0) {
        print_message("no MADV_GUARD_INSTALL here (kernel < 6.13 or an "
                      "emulator): stacks use mprotect guards\n");
        skip();
    }
    async__stack *sts = calloc(N, sizeof *sts);
    assert_non_null(sts);
    async__stack_pool_drain();
    int before = maps_lines();
    for (int i = 0; i < N; i++)
        assert_int_equal(async__stack_alloc(&sts[i], ASYNC__STACK_MIN), 0);
    int after = maps_lines();
    for (int i = 0; i < N; i++)
        async__stack_free(&sts[i]);
    async__stack_pool_drain();
    free(sts);
    assert_true(after - before <= N + 2);
}

/* ---------------------------------------------------------------------- */
/* Recursion and overflow. */

__attribute__((noinline)) static size_t recurse(size_t depth,
                                                volatile char *prev)
{
    volatile char buf[512];

    buf[0] = (char)depth;
    buf[sizeof buf - 1] = prev != NULL ? prev[0] : 0;
    if (depth == 0)
        return (size_t)buf[0];
    return recurse(depth - 1, buf) + (size_t)buf[sizeof buf - 1];
}

struct deep {
    size_t depth;
    size_t result;
    int done;
};

static void deep_body(void *arg)
{
    struct deep *d = arg;

    d->result = recurse(d->depth, NULL);
    d->done = 1;
}

static void test_deep_recursion_within_budget(void **state)
{
    (void)state;
    async__coro co;
    /* ~100 frames of a bit over 512 bytes: ~64 KiB of a 256 KiB stack,
     * leaving room for sanitizer redzones. */
    struct deep d = {.depth = 100};

    assert_int_equal(async__coro_init(&co, deep_body, &d, 0), 0);
    async__coro_resume(&co);
    assert_int_equal(co.state, ASYNC__CORO_FINISHED);
    assert_true(d.done);
    async__coro_destroy(&co);
}

static void overflow_child(void *arg)
{
    async__coro co;
    struct deep d = {.depth = (size_t)-1};

    (void)arg;
    child_restore_handlers();
    if (async__coro_init(&co, deep_body, &d, 65536) != 0)
        _exit(3);
    co.name = "deep-thinker";
    async__coro_resume(&co);
    _exit(4);
}

static void test_overflow_reported(void **state)
{
    (void)state;
    th_child c;

    assert_int_equal(th_child_run(overflow_child, NULL, &c), 0);
    if (!WIFSIGNALED(c.status) || WTERMSIG(c.status) != SIGABRT)
        fail_msg("child status %#x, stderr:\n%s", c.status, c.err);
    assert_non_null(strstr(c.err, "libasync: stack overflow in coroutine "
                                  "\"deep-thinker\" (stack size 65536 "
                                  "bytes)\n"));
}

/* An unnamed task's overflow names it by its default name, "Task-N". */
static int task_overflows(void *arg, void **result)
{
    (void)arg;
    (void)result;
    struct deep d = {.depth = (size_t)-1};
    deep_body(&d);
    return 0;
}

static int task_noop(void *arg, void **result)
{
    (void)arg;
    (void)result;
    return 0;
}

static void task_overflow_child(void *arg)
{
    (void)arg;
    child_restore_handlers();
    async_loop *loop;
    async_task *t;
    async_task_opts opts = {.stack_size = 65536};
    if (async_loop_new(&loop) != 0 ||
        async_loop_spawn(loop, NULL, task_noop, NULL, NULL) != 0 ||
        async_loop_spawn(loop, &t, task_overflows, NULL, &opts) != 0)
        _exit(3);
    async_loop_run_until_complete(loop, t, NULL);
    _exit(4);
}

static void test_task_overflow_reported(void **state)
{
    (void)state;
    th_child c;

    assert_int_equal(th_child_run(task_overflow_child, NULL, &c), 0);
    if (!WIFSIGNALED(c.status) || WTERMSIG(c.status) != SIGABRT)
        fail_msg("child status %#x, stderr:\n%s", c.status, c.err);
    assert_non_null(strstr(c.err, "libasync: stack overflow in coroutine "
                                  "\"Task-2\" (stack size 65536 bytes)\n"));
}

/*
 * A fault that is not an overflow keeps its normal behaviour.  Natively
 * that is death by SIGSEGV.  Under AddressSanitizer our handler chains to
 * ASan's, which reports the SEGV and then exits or aborts (meson's default
 * ASAN_OPTIONS say abort_on_error=1); either way ASan's report must be there
 * and ours must not.
 */
static void assert_plain_segv(const th_child *c)
{
    if (strstr(c->err, "stack overflow") != NULL)
        fail_msg("reported as overflow:\n%s", c->err);
#if defined(ASYNC_HAVE_ASAN)
    assert_true(WIFSIGNALED(c->status) ||
                (WIFEXITED(c->status) && WEXITSTATUS(c->status) != 0));
    if (strstr(c->err, "AddressSanitizer: SEGV") == NULL)
        fail_msg("no ASan SEGV report, status %#x:\n%s", c->status, c->err);
#else
    if (!WIFSIGNALED(c->status) || WTERMSIG(c->status) != SIGSEGV)
        fail_msg("child status %#x, stderr:\n%s", c->status, c->err);
#endif
}

static volatile int *volatile null_ptr;

/* The deliberate fault must reach the signal handlers: keep UBSan's null
 * check (which may be set to halt_on_error) out of the way. */
#if defined(__clang__) || (defined(__GNUC__) && __GNUC__ >= 8)
#define NO_UBSAN __attribute__((no_sanitize("undefined")))
#else
#define NO_UBSAN
#endif

NO_UBSAN static void store_through_null(void)
{
    *null_ptr = 1;
}

static void null_deref_child(void *arg)
{
    async__stack st;

    (void)arg;
    child_restore_handlers();
    if (async__stack_alloc(&st, 0) != 0)
        _exit(3);
    store_through_null();
    _exit(4);
}

static void test_null_deref_outside(void **state)
{
    (void)state;
    th_child c;

    assert_int_equal(th_child_run(null_deref_child, NULL, &c), 0);
    assert_plain_segv(&c);
}

static void null_body(void *arg)
{
    (void)arg;
    store_through_null();
}

static void null_in_coro_child(void *arg)
{
    async__coro co;

    (void)arg;
    child_restore_handlers();
    if (async__coro_init(&co, null_body, NULL, 0) != 0)
        _exit(3);
    co.name = "innocent";
    async__coro_resume(&co);
    _exit(4);
}

static void test_null_deref_in_coroutine(void **state)
{
    (void)state;
    th_child c;

    assert_int_equal(th_child_run(null_in_coro_child, NULL, &c), 0);
    assert_plain_segv(&c);
}

/* Touching a guard from outside its coroutine is a bug, not an overflow. */
static void foreign_guard_child(void *arg)
{
    async__stack st;

    (void)arg;
    child_restore_handlers();
    if (async__stack_alloc(&st, 0) != 0)
        _exit(3);
    ((volatile char *)async__stack_base(&st))[-1] = 1;
    _exit(4);
}

static void test_foreign_guard_fault(void **state)
{
    (void)state;
    th_child c;

    assert_int_equal(th_child_run(foreign_guard_child, NULL, &c), 0);
#if defined(ASYNC_HAVE_ASAN)
    /* ASan's instrumentation may catch the write before the kernel does
     * (the guard is not in ASan's shadow), so only require a death that
     * is not our overflow report. */
    assert_null(strstr(c.err, "stack overflow in coroutine"));
    assert_true(WIFSIGNALED(c.status) || WEXITSTATUS(c.status) != 0);
#else
    assert_plain_segv(&c);
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
        cmocka_unit_test(test_bad_sizes),
        cmocka_unit_test(test_geometry),
        cmocka_unit_test(test_pool_reuse),
        cmocka_unit_test(test_pool_cap),
        cmocka_unit_test(test_foreign_free),
        cmocka_unit_test(test_threads),
        cmocka_unit_test(test_guard_vma_cost),
        cmocka_unit_test(test_deep_recursion_within_budget),
        cmocka_unit_test(test_overflow_reported),
        cmocka_unit_test(test_task_overflow_reported),
        cmocka_unit_test(test_null_deref_outside),
        cmocka_unit_test(test_null_deref_in_coroutine),
        cmocka_unit_test(test_foreign_guard_fault),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
