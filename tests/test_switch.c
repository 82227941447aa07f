/*
 * The context switch itself (src/arch/<cpu>/switch.S), below the coroutine
 * layer: every callee-saved register survives a round trip in both
 * directions (tests/arch/<cpu>/regs.S loads known values into them), the
 * stack is ABI-aligned at entry and after switches, FP values live across
 * switches, the FP control state follows the build's save_fp_control
 * choice, the unwinder stops at the trampoline, and an entry function that
 * returns is reported.
 *
 * Code running on a context only records; the asserts run on the thread's
 * own stack afterwards.
 */
#include <fenv.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <unwind.h>

#include <cmocka.h>

#if defined(__x86_64__)
#include <immintrin.h>
#elif defined(__aarch64__)
#include <arm_neon.h>
#endif

#include "arch/context.h"
#include "child.h"
#include "coro/stack.h"

/* tests/arch/<cpu>/regs.S */
void *regs_switch_check(void **from, void *to, void *arg, uint64_t *out);
void *regs_clobber_switch(void **from, void *to, void *arg);
#if defined(__x86_64__)
/* The same through async__ctx_switch_ret (elsewhere an alias of
 * async__ctx_switch, so nothing more to test there). */
void *regs_switch_ret_check(void **from, void *to, void *arg, uint64_t *out);
void *regs_clobber_switch_ret(void **from, void *to, void *arg);
#endif
uintptr_t regs_caller_sp(void);

#if defined(__x86_64__)
#define NREGS 6 /* rbx rbp r12 r13 r14 r15 */
#elif defined(__aarch64__)
#define NREGS 19 /* x19-x29, d8-d15 */
#elif defined(__riscv)
#define NREGS 24 /* s0-s11, fs0-fs11 */
#endif
#define SP_DELTA NREGS /* out[] slot: change of sp across the switch */
#define SEED_CHECK 0xA1u
#define SEED_CLOBBER 0x3Cu

static uint64_t pattern(unsigned seed, unsigned i)
{
    return 0x5eed0000c0de0000ull | ((uint64_t)seed << 8) | i;
}

static const char *reg_name(unsigned i)
{
#if defined(__x86_64__)
    static const char *const names[] = {"rbx", "rbp", "r12",
                                        "r13", "r14", "r15"};
#elif defined(__aarch64__)
    static const char *const names[] = {
        "x19", "x20", "x21", "x22", "x23", "x24", "x25", "x26", "x27", "x28",
        "x29", "d8",  "d9",  "d10", "d11", "d12", "d13", "d14", "d15"};
#elif defined(__riscv)
    static const char *const names[] = {
        "s0",  "s1",  "s2",  "s3",  "s4",  "s5",  "s6",   "s7",
        "s8",  "s9",  "s10", "s11", "fs0", "fs1", "fs2",  "fs3",
        "fs4", "fs5", "fs6", "fs7", "fs8", "fs9", "fs10", "fs11"};
#endif
    return names[i];
}

static void assert_regs(const uint64_t *out)
{
    for (unsigned i = 0; i < NREGS; i++) {
        if (out[i] != pattern(SEED_CHECK, i))
            fail_msg("%s = %#llx after the switch, expected %#llx",
                     reg_name(i), (unsigned long long)out[i],
                     (unsigned long long)pattern(SEED_CHECK, i));
    }
    assert_int_equal(out[SP_DELTA], 0);
}

static void *alloc_top(async__stack *st)
{
    assert_int_equal(async__stack_alloc(st, 0), 0);
    return async__stack_top(st);
}

/* ---------------------------------------------------------------------- */
/* Registers: the thread side checks, the context clobbers. */

struct regs_run {
    void *main_sp, *co_sp;
    void *got[8];            /* values the context's switches returned */
    unsigned n;
    uint64_t out[4][NREGS + 1]; /* context-side checks (second test) */
};

static struct regs_run R;

static void clobber_entry(void *arg)
{
    R.got[R.n++] = arg;
    for (uintptr_t i = 0; i < 3; i++)
        R.got[R.n++] = regs_clobber_switch(&R.co_sp, R.main_sp,
                                           (void *)(0x100 + i));
    async__ctx_switch(&R.co_sp, R.main_sp, (void *)0x200);
    abort(); /* never resumed */
}

static void test_registers_thread_side(void **state)
{
    (void)state;
    async__stack st;
    uint64_t out[NREGS + 1];

    memset(&R, 0, sizeof R);
    void *ctx = async__ctx_make(alloc_top(&st), clobber_entry);

    memset(out, 0, sizeof out);
    void *r = regs_switch_check(&R.main_sp, ctx, (void *)0x42, out);
    assert_ptr_equal(r, (void *)0x100);
    assert_regs(out);
    for (uintptr_t i = 1; i < 3; i++) {
        memset(out, 0, sizeof out);
        r = regs_switch_check(&R.main_sp, R.co_sp, (void *)(0x42 + i), out);
        assert_ptr_equal(r, (void *)(0x100 + i));
        assert_regs(out);
    }
    memset(out, 0, sizeof out);
    r = regs_switch_check(&R.main_sp, R.co_sp, (void *)0x50, out);
    assert_ptr_equal(r, (void *)0x200);
    assert_regs(out);

    assert_int_equal(R.n, 4);
    assert_ptr_equal(R.got[0], (void *)0x42);
    assert_ptr_equal(R.got[1], (void *)0x43);
    assert_ptr_equal(R.got[2], (void *)0x44);
    assert_ptr_equal(R.got[3], (void *)0x50);
    async__stack_free(&st);
}

/* The context side checks, the thread clobbers. */
static void check_entry(void *arg)
{
    (void)arg;
    for (uintptr_t i = 0; i < 3; i++)
        R.got[R.n++] = regs_switch_check(&R.co_sp, R.main_sp,
                                         (void *)(0x300 + i), R.out[i]);
    async__ctx_switch(&R.co_sp, R.main_sp, (void *)0x400);
    abort();
}

static void test_registers_context_side(void **state)
{
    (void)state;
    async__stack st;

    memset(&R, 0, sizeof R);
    void *ctx = async__ctx_make(alloc_top(&st), check_entry);
    void *r = regs_clobber_switch(&R.main_sp, ctx, NULL);
    assert_ptr_equal(r, (void *)0x300);
    for (uintptr_t i = 1; i <= 3; i++) {
        r = regs_clobber_switch(&R.main_sp, R.co_sp, (void *)(0x500 + i));
        assert_ptr_equal(r, i < 3 ? (void *)(0x300 + i) : (void *)0x400);
    }
    assert_int_equal(R.n, 3);
    for (unsigned i = 0; i < 3; i++) {
        assert_ptr_equal(R.got[i], (void *)(uintptr_t)(0x501 + i));
        assert_regs(R.out[i]);
    }
    async__stack_free(&st);
}

#if defined(__x86_64__)
/* async__ctx_switch_ret, both directions, mixed with async__ctx_switch: a
 * context suspended by one variant is resumed by the other. */
static void ret_entry(void *arg)
{
    R.got[R.n++] = arg;
    for (uintptr_t i = 0; i < 2; i++)
        R.got[R.n++] = regs_clobber_switch_ret(&R.co_sp, R.main_sp,
                                               (void *)(0x600 + i));
    R.got[R.n++] = regs_switch_ret_check(&R.co_sp, R.main_sp, (void *)0x602,
                                         R.out[0]);
    async__ctx_switch_ret(&R.co_sp, R.main_sp, (void *)0x603);
    abort(); /* never resumed */
}

static void test_registers_switch_ret(void **state)
{
    (void)state;
    async__stack st;
    uint64_t out[NREGS + 1];

    memset(&R, 0, sizeof R);
    void *ctx = async__ctx_make(alloc_top(&st), ret_entry);

    /* In through the ret variant to a fresh context; back through it. */
    memset(out, 0, sizeof out);
    void *r = regs_switch_ret_check(&R.main_sp, ctx, (void *)0x42, out);
    assert_ptr_equal(r, (void *)0x600);
    assert_regs(out);
    /* In through the jmp variant to a context the ret variant suspended. */
    memset(out, 0, sizeof out);
    r = regs_switch_check(&R.main_sp, R.co_sp, (void *)0x43, out);
    assert_ptr_equal(r, (void *)0x601);
    assert_regs(out);
    /* The context checks its registers across a ret-variant round trip. */
    r = regs_clobber_switch_ret(&R.main_sp, R.co_sp, (void *)0x44);
    assert_ptr_equal(r, (void *)0x602);
    r = regs_clobber_switch(&R.main_sp, R.co_sp, (void *)0x45);
    assert_ptr_equal(r, (void *)0x603);

    assert_int_equal(R.n, 4);
    assert_ptr_equal(R.got[0], (void *)0x42);
    assert_ptr_equal(R.got[1], (void *)0x43);
    assert_ptr_equal(R.got[2], (void *)0x44);
    assert_ptr_equal(R.got[3], (void *)0x45);
    assert_regs(R.out[0]);
    async__stack_free(&st);
}
#endif

/* ---------------------------------------------------------------------- */
/* Stack alignment at entry and after switches. */

struct align_run {
    void *main_sp, *co_sp;
    uintptr_t frame_mod[4];  /* __builtin_frame_address(0) % 16 */
    uintptr_t sp_mod[4];     /* sp before a call % 16 */
    uintptr_t store_mod[4];  /* address of the aligned vector store % 16 */
    int store_ok[4];         /* the stored vector reads back */
};

static struct align_run A;

__attribute__((noinline)) static int aligned_store(uintptr_t *mod)
{
    _Alignas(16) float buf[4];

#if defined(__x86_64__)
    /* movaps: faults on a misaligned address. */
    _mm_store_ps(buf, _mm_set_ps(4.0f, 3.0f, 2.0f, 1.0f));
#elif defined(__aarch64__)
    vst1q_f32(buf, vdupq_n_f32(2.5f));
#else
    /* RV64GC has no vector unit: the alignment is checked by address. */
    for (int i = 0; i < 4; i++)
        ((volatile float *)buf)[i] = 2.5f;
#endif
    __asm__ volatile("" : : "r"(buf) : "memory");
    *mod = (uintptr_t)buf % 16;
#if defined(__x86_64__)
    return buf[0] == 1.0f && buf[3] == 4.0f;
#else
    return buf[0] == 2.5f && buf[3] == 2.5f;
#endif
}

static void align_probe(unsigned i)
{
    A.sp_mod[i] = regs_caller_sp() % 16;
    A.store_ok[i] = aligned_store(&A.store_mod[i]);
}

static void align_entry(void *arg)
{
    (void)arg;
    A.frame_mod[0] = (uintptr_t)__builtin_frame_address(0) % 16;
    align_probe(0);
    for (unsigned i = 1; i < 4; i++) {
        async__ctx_switch(&A.co_sp, A.main_sp, NULL);
        A.frame_mod[i] = (uintptr_t)__builtin_frame_address(0) % 16;
        align_probe(i);
    }
    async__ctx_switch(&A.co_sp, A.main_sp, NULL);
    abort();
}

static void test_alignment(void **state)
{
    (void)state;
    async__stack st;

    /* An odd stack top: make must align it itself. */
    for (uintptr_t skew = 0; skew < 16; skew += 7) {
        memset(&A, 0xff, sizeof A);
        void *ctx = async__ctx_make((char *)alloc_top(&st) - skew,
                                    align_entry);
        async__ctx_switch(&A.main_sp, ctx, NULL);
        for (unsigned i = 1; i < 4; i++)
            async__ctx_switch(&A.main_sp, A.co_sp, NULL);
        for (unsigned i = 0; i < 4; i++) {
            assert_int_equal(A.frame_mod[i], 0);
            assert_int_equal(A.sp_mod[i], 0);
            assert_int_equal(A.store_mod[i], 0);
            assert_true(A.store_ok[i]);
        }
        async__stack_free(&st);
    }
    /* And the thread side after coming back. */
    assert_int_equal(regs_caller_sp() % 16, 0);
}

/* ---------------------------------------------------------------------- */
/* FP values held in registers across switches, on both sides.  Every value
 * is exact in binary, so the result does not depend on contraction. */

struct fp_run {
    void *main_sp, *co_sp;
    double result;
};

static struct fp_run F;

static double fp_work(int do_switch, double seed)
{
    double a = seed * 1.5, b = a / 3.0, c = 0.0;

    for (int i = 0; i < 4; i++) {
        c += a * i + b;
        if (do_switch)
            async__ctx_switch(&F.co_sp, F.main_sp, NULL);
        a += 0.25;
        b *= 1.0625;
    }
    return c + a + b;
}

static void fp_entry(void *arg)
{
    (void)arg;
    F.result = fp_work(1, 2.0);
    async__ctx_switch(&F.co_sp, F.main_sp, NULL);
    abort();
}

static void test_fp_values(void **state)
{
    (void)state;
    async__stack st;
    volatile double seed = 3.0;
    double m1 = seed * 0.5, m2 = seed * 0.125, m3 = seed + 0.75;

    F.result = 0;
    void *ctx = async__ctx_make(alloc_top(&st), fp_entry);
    async__ctx_switch(&F.main_sp, ctx, NULL);
    for (int i = 0; i < 4; i++) {
        m1 += m2;
        async__ctx_switch(&F.main_sp, F.co_sp, NULL);
        m3 *= 2.0;
    }
    assert_true(F.result == fp_work(0, 2.0));
    assert_true(m1 == 3.0 * 0.5 + 4 * 3.0 * 0.125);
    assert_true(m3 == (3.0 + 0.75) * 16.0);
    async__stack_free(&st);
}

/* ---------------------------------------------------------------------- */
/* FP control: with save_fp_control a rounding mode set on a context stays
 * there; without it, it is thread state and leaks to the resumer. */

struct fpctl_run {
    void *main_sp, *co_sp;
    int mode_at_entry;      /* fegetround() on first entry */
    int mode_after_resume;  /* fegetround() after the thread resumed it */
    unsigned rc_after_resume; /* x86_64: MXCSR rounding bits, same moment */
};

static struct fpctl_run C;

static unsigned sse_rounding(void)
{
#if defined(__x86_64__)
    return _mm_getcsr() & 0x6000u;
#else
    return 0;
#endif
}

static void fpctl_entry(void *arg)
{
    (void)arg;
    C.mode_at_entry = fegetround();
    fesetround(FE_UPWARD);
    async__ctx_switch(&C.co_sp, C.main_sp, NULL);
    C.mode_after_resume = fegetround();
    C.rc_after_resume = sse_rounding();
    fesetround(FE_TONEAREST);
    async__ctx_switch(&C.co_sp, C.main_sp, NULL);
    abort();
}

static void test_fp_control(void **state)
{
    (void)state;
    async__stack st;

    fesetround(FE_TONEAREST);
    memset(&C, 0, sizeof C);
    void *ctx = async__ctx_make(alloc_top(&st), fpctl_entry);
    async__ctx_switch(&C.main_sp, ctx, NULL);
    int main_mode = fegetround();
    unsigned main_rc = sse_rounding();
    fesetround(FE_TONEAREST);
    async__ctx_switch(&C.main_sp, C.co_sp, NULL);
    fesetround(FE_TONEAREST);
    async__stack_free(&st);

    assert_int_equal(C.mode_at_entry, FE_TONEAREST);
#if defined(ASYNC_SAVE_FP_CONTROL)
    /* The context's FE_UPWARD went away with it and came back with it. */
    assert_int_equal(main_mode, FE_TONEAREST);
    assert_int_equal(main_rc, 0);
    assert_int_equal(C.mode_after_resume, FE_UPWARD);
#if defined(__x86_64__)
    assert_int_equal(C.rc_after_resume, 0x4000);
#endif
#else
    /* Thread state: the resumer sees the context's mode and vice versa. */
    assert_int_equal(main_mode, FE_UPWARD);
#if defined(__x86_64__)
    assert_int_equal(main_rc, 0x4000);
#endif
    assert_int_equal(C.mode_after_resume, FE_TONEAREST);
    assert_int_equal(C.rc_after_resume, 0);
#endif
    (void)main_rc;
}

/* ---------------------------------------------------------------------- */
/* Unwinding from inside a context ends at the trampoline (CFI says the
 * return address is undefined there) instead of running off the stack. */

struct unwind_run {
    void *main_sp, *co_sp;
    int frames;
    int reason;
};

static struct unwind_run U;

static _Unwind_Reason_Code count_frame(struct _Unwind_Context *ctx, void *arg)
{
    (void)ctx;
    (void)arg;
    if (++U.frames > 64)
        return _URC_NORMAL_STOP;
    return _URC_NO_REASON;
}

__attribute__((noinline)) static void unwind_deeper(int depth)
{
    if (depth > 0) {
        unwind_deeper(depth - 1);
        __asm__ volatile("");
        return;
    }
    U.reason = _Unwind_Backtrace(count_frame, NULL);
}

static void unwind_entry(void *arg)
{
    (void)arg;
    unwind_deeper(3);
    async__ctx_switch(&U.co_sp, U.main_sp, NULL);
    abort();
}

static void test_unwind_stops(void **state)
{
    (void)state;
    async__stack st;

    memset(&U, 0, sizeof U);
    void *ctx = async__ctx_make(alloc_top(&st), unwind_entry);
    async__ctx_switch(&U.main_sp, ctx, NULL);
    async__stack_free(&st);

    assert_int_equal(U.reason, _URC_END_OF_STACK);
    /* _Unwind_Backtrace, unwind_deeper x4, unwind_entry, trampoline. */
    assert_in_range(U.frames, 6, 10);
}

/* ---------------------------------------------------------------------- */
/* An entry function that returns is reported, then aborts. */

static void returning_entry(void *arg)
{
    (void)arg;
}

static void entry_returns_child(void *arg)
{
    async__stack st;
    void *sp;

    (void)arg;
    if (async__stack_alloc(&st, 0) != 0)
        _exit(3);
    async__ctx_switch(&sp, async__ctx_make(async__stack_top(&st), returning_entry), NULL);
    _exit(4);
}

static void test_entry_returns(void **state)
{
    (void)state;
    th_child c;

    assert_int_equal(th_child_run(entry_returns_child, NULL, &c), 0);
    assert_true(WIFSIGNALED(c.status));
    assert_int_equal(WTERMSIG(c.status), SIGABRT);
    assert_non_null(strstr(c.err, "entry function returned"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_registers_thread_side),
        cmocka_unit_test(test_registers_context_side),
#if defined(__x86_64__)
        cmocka_unit_test(test_registers_switch_ret),
#endif
        cmocka_unit_test(test_alignment),
        cmocka_unit_test(test_fp_values),
        cmocka_unit_test(test_fp_control),
        cmocka_unit_test(test_unwind_stops),
        cmocka_unit_test(test_entry_returns),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
