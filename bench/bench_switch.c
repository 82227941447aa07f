/*
 * Context-switch cost: libasync's switch.S assembled twice (without and with
 * ASYNC_SAVE_FP_CONTROL, symbol prefixes bench_nofp_ctx_ / bench_fp_ctx_),
 * Boost.Context's jump_fcontext (when libboost_context was found) and
 * glibc's swapcontext, all in the same process, plus the coroutine layer's
 * resume + suspend round trip on top of the library's own switch.
 *
 * Each figure is a ping-pong between the main stack and one context: one
 * iteration is two switches.  Variants run interleaved, RUNS times, and the
 * median is reported in ns per switch.
 *
 *   bench_switch [iterations]      (default 5,000,000)
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <ucontext.h>

#include "arch/context.h"
#include "coro/coro.h"
#include "coro/stack.h"

#define RUNS 7

/* The two builds of switch.S (see bench/meson.build). */
void *bench_nofp_ctx_switch(void **from, void *to, void *arg);
void *bench_nofp_ctx_make(void *stack_top, void (*entry)(void *));
void *bench_fp_ctx_switch(void **from, void *to, void *arg);
void *bench_fp_ctx_make(void *stack_top, void (*entry)(void *));

#if defined(HAVE_BOOST_CONTEXT)
/* Boost.Context's C-linkage assembly entry points (boost/context/detail/
 * fcontext.hpp declares them extern "C"). */
typedef void *fcontext_t;
struct transfer_t {
    fcontext_t fctx;
    void *data;
};
struct transfer_t jump_fcontext(fcontext_t const to, void *vp);
fcontext_t make_fcontext(void *sp, size_t size, void (*fn)(struct transfer_t));
#endif

static double now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return v[n / 2];
}

static void *stack_top(void)
{
    async__stack st;

    if (async__stack_alloc(&st, 0) != 0) {
        fprintf(stderr, "bench_switch: no stack\n");
        exit(1);
    }
    return async__stack_top(&st); /* kept for the whole run */
}

/* ---------------------------------------------------------------------- */

static void *main_sp, *co_sp;

static void nofp_entry(void *arg)
{
    (void)arg;
    for (;;)
        bench_nofp_ctx_switch(&co_sp, main_sp, NULL);
}

static void fp_entry(void *arg)
{
    (void)arg;
    for (;;)
        bench_fp_ctx_switch(&co_sp, main_sp, NULL);
}

static double run_nofp(long n)
{
    co_sp = bench_nofp_ctx_make(stack_top(), nofp_entry);
    bench_nofp_ctx_switch(&main_sp, co_sp, NULL); /* warm up */
    double t0 = now_ns();
    for (long i = 0; i < n; i++)
        bench_nofp_ctx_switch(&main_sp, co_sp, NULL);
    return (now_ns() - t0) / (2.0 * (double)n);
}

static double run_fp(long n)
{
    co_sp = bench_fp_ctx_make(stack_top(), fp_entry);
    bench_fp_ctx_switch(&main_sp, co_sp, NULL);
    double t0 = now_ns();
    for (long i = 0; i < n; i++)
        bench_fp_ctx_switch(&main_sp, co_sp, NULL);
    return (now_ns() - t0) / (2.0 * (double)n);
}

#if defined(HAVE_BOOST_CONTEXT)
static void boost_entry(struct transfer_t t)
{
    for (;;)
        t = jump_fcontext(t.fctx, NULL);
}

static double run_boost(long n)
{
    async__stack st;

    if (async__stack_alloc(&st, 0) != 0)
        exit(1);
    fcontext_t ctx = make_fcontext(async__stack_top(&st), st.size, boost_entry);
    ctx = jump_fcontext(ctx, NULL).fctx;
    double t0 = now_ns();
    for (long i = 0; i < n; i++)
        ctx = jump_fcontext(ctx, NULL).fctx;
    return (now_ns() - t0) / (2.0 * (double)n);
}
#endif

static ucontext_t uc_main, uc_co;

static void uc_entry(void)
{
    for (;;)
        swapcontext(&uc_co, &uc_main);
}

static double run_swapcontext(long n)
{
    async__stack st;

    if (async__stack_alloc(&st, 0) != 0 || getcontext(&uc_co) != 0)
        exit(1);
    uc_co.uc_stack.ss_sp = async__stack_base(&st);
    uc_co.uc_stack.ss_size = st.size;
    uc_co.uc_link = NULL;
    makecontext(&uc_co, uc_entry, 0);
    swapcontext(&uc_main, &uc_co);
    double t0 = now_ns();
    for (long i = 0; i < n; i++)
        swapcontext(&uc_main, &uc_co);
    return (now_ns() - t0) / (2.0 * (double)n);
}

static void coro_body(void *arg)
{
    (void)arg;
    for (;;)
        async__coro_suspend();
}

/* resume + suspend: ns per switch, like the others. */
static double run_coro(long n)
{
    async__coro co;

    if (async__coro_init(&co, coro_body, NULL, 0) != 0)
        exit(1);
    async__coro_resume(&co);
    double t0 = now_ns();
    for (long i = 0; i < n; i++)
        async__coro_resume(&co);
    return (now_ns() - t0) / (2.0 * (double)n);
}

/* ---------------------------------------------------------------------- */

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 5000000;
    long n_uc = n / 20 > 0 ? n / 20 : 1; /* swapcontext makes a syscall */
    double nofp[RUNS], fp[RUNS], uc[RUNS], co[RUNS];
#if defined(HAVE_BOOST_CONTEXT)
    double boost[RUNS];
#endif

    for (int r = 0; r < RUNS; r++) {
        nofp[r] = run_nofp(n);
        fp[r] = run_fp(n);
#if defined(HAVE_BOOST_CONTEXT)
        boost[r] = run_boost(n);
#endif
        uc[r] = run_swapcontext(n_uc);
        co[r] = run_coro(n);
    }
    double m_nofp = median(nofp, RUNS), m_fp = median(fp, RUNS);
    double m_uc = median(uc, RUNS), m_co = median(co, RUNS);

    printf("context switch, ns per switch, median of %d runs "
           "(%ld round trips each; swapcontext %ld)\n", RUNS, n, n_uc);
    printf("  libasync switch.S, default (no FP control)  %7.2f ns\n",
           m_nofp);
    printf("  libasync switch.S, save_fp_control=true     %7.2f ns  "
           "(FP control costs %+.2f ns, %.2fx)\n",
           m_fp, m_fp - m_nofp, m_fp / m_nofp);
#if defined(HAVE_BOOST_CONTEXT)
    double m_boost = median(boost, RUNS);
    printf("  Boost.Context jump_fcontext                  %7.2f ns\n",
           m_boost);
#endif
    printf("  glibc swapcontext                            %7.2f ns\n", m_uc);
    printf("  async__coro resume/suspend (this build)      %7.2f ns\n", m_co);
#if defined(HAVE_BOOST_CONTEXT)
    printf("ratio to Boost: default %.2fx, save_fp_control %.2fx; "
           "swapcontext %.1fx\n",
           m_nofp / m_boost, m_fp / m_boost, m_uc / m_boost);
    printf("target: default switch <= 0.70x Boost: %s\n",
           m_nofp <= 0.70 * m_boost ? "MET" : "NOT MET");
#else
    printf("Boost.Context not found at configure time: no ratio\n");
#endif
    return 0;
}
