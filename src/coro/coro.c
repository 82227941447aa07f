/*
 * Coroutines: a function running on its own stack, resumed and suspended
 * asymmetrically on top of async__ctx_switch().
 *
 * Control flow.  async__coro_resume(co) remembers who is running now (the
 * resumer: another coroutine, or NULL for the thread's own stack), makes co
 * current and switches to co's saved stack pointer, storing its own in
 * co->resumer_sp.  async__coro_suspend() switches back to co->resumer_sp, so
 * it always returns to whoever resumed, which makes nested resumes work: a
 * coroutine may resume another, which suspends back to it.  The first resume
 * enters coro_entry() through the trampoline; when fn returns, coro_entry()
 * marks the coroutine FINISHED and switches back a last time.  It never
 * frees its own stack (it is running on it); async__coro_destroy() does, from
 * outside.
 *
 * The hot path (resume + suspend) is two calls into the switch, one
 * thread-local load and a few stores; everything else (sanitizer hooks) is
 * compiled out unless the build asks for it.
 */
#include <assert.h>
#include <stdlib.h>
#include <unistd.h>

#include <async/error.h>

#include "arch/context.h"
#include "coro/coro.h"

#if defined(ASYNC_HAVE_ASAN)
#include <sanitizer/common_interface_defs.h>
#endif
#if defined(ASYNC_HAVE_TSAN)
#include <sanitizer/tsan_interface.h>
/* ThreadSanitizer must know which stack runs: every switch is told to it
 * as a fiber switch (with synchronisation: a switch orders what the two
 * sides did, as it does for the program). */
#define TSAN_ENTER(co)                                                        \
    do {                                                                      \
        (co)->tsan_resumer_fiber = __tsan_get_current_fiber();                \
        __tsan_switch_to_fiber((co)->tsan_fiber, 0);                          \
    } while (0)
#define TSAN_LEAVE(co) __tsan_switch_to_fiber((co)->tsan_resumer_fiber, 0)
#define TSAN_HAND_OVER(from, to)                                              \
    do {                                                                      \
        (to)->tsan_resumer_fiber = (from)->tsan_resumer_fiber;                \
        __tsan_switch_to_fiber((to)->tsan_fiber, 0);                          \
    } while (0)
#else
#define TSAN_ENTER(co) ((void)0)
#define TSAN_LEAVE(co) ((void)0)
#define TSAN_HAND_OVER(from, to) ((void)0)
#endif
#if defined(ASYNC_HAVE_VALGRIND_H)
#include <stdatomic.h>
#include <stdbool.h>
#include <valgrind/valgrind.h>

/*
 * Whether the process runs under Valgrind, asked once: the client requests
 * are no-ops outside Valgrind but still a dozen instructions each (the
 * magic sequence and its argument block), and a register plus a deregister
 * on every spawn were 3 % of a spawn + await.  0 = not asked yet, 1 = no,
 * 2 = yes; a process cannot start or stop running under Valgrind, so every
 * thread that asks gets the same answer.
 */
static atomic_int on_valgrind;

static bool running_on_valgrind(void)
{
    int v = atomic_load_explicit(&on_valgrind, memory_order_relaxed);
    if (__builtin_expect(v == 0, 0)) {
        v = RUNNING_ON_VALGRIND ? 2 : 1;
        atomic_store_explicit(&on_valgrind, v, memory_order_relaxed);
    }
    return v == 2;
}
#endif

/*
 * The coroutine running on this thread.  initial-exec: this is read on every
 * resume and by the SIGSEGV handler, so it must be one instruction away and
 * never go through __tls_get_addr (which is neither fast nor async-signal
 * safe for a dlopen'ed library).  One pointer fits in the static TLS surplus
 * glibc reserves for dlopen'ed libraries.
 */
#if defined(__GNUC__) && defined(__ELF__)
#define ASYNC_TLS_IE __attribute__((tls_model("initial-exec")))
#else
#define ASYNC_TLS_IE
#endif
static _Thread_local async__coro *current ASYNC_TLS_IE;

async__coro *async__coro_current(void)
{
    return current;
}

/*
 * AddressSanitizer must be told about every stack change, or it reports
 * false stack-buffer-overflows and corrupts its fake stacks.  Protocol: the
 * side leaving calls start_switch_fiber() with the bounds of the stack it is
 * going to (saving its own fake stack, or NULL when it will never come back);
 * the side arriving calls finish_switch_fiber() with the fake stack it saved
 * when it left, and learns the bounds of the stack it came from.
 */
#if defined(ASYNC_HAVE_ASAN)
static inline void asan_enter(async__coro *co, void **resumer_fake)
{
    __sanitizer_start_switch_fiber(resumer_fake, async__stack_base(&co->stack),
                                   co->stack.size);
}

static inline void asan_back_in_resumer(void *resumer_fake)
{
    __sanitizer_finish_switch_fiber(resumer_fake, NULL, NULL);
}

static inline void asan_leave(async__coro *co, int finished)
{
    __sanitizer_start_switch_fiber(finished ? NULL : &co->asan_fake_stack,
                                   co->resumer_bottom, co->resumer_size);
}

/* Arriving from a transfer, the stack we came from is a sibling, not the
 * resumer: the resumer's bounds were handed over by the transfer. */
static inline void asan_arrived(async__coro *co)
{
    const void *bottom;
    size_t size;
    __sanitizer_finish_switch_fiber(co->asan_fake_stack, &bottom, &size);
    if (!co->transferred_in) {
        co->resumer_bottom = bottom;
        co->resumer_size = size;
    }
}

static inline void asan_hand_over(async__coro *from, async__coro *to)
{
    to->resumer_bottom = from->resumer_bottom;
    to->resumer_size = from->resumer_size;
    to->transferred_in = true;
}

static inline void asan_leave_to(async__coro *from, async__coro *to)
{
    __sanitizer_start_switch_fiber(&from->asan_fake_stack,
                                   async__stack_base(&to->stack),
                                   to->stack.size);
}
#else
static inline void asan_hand_over(async__coro *from, async__coro *to)
{
    (void)from;
    (void)to;
}

static inline void asan_leave_to(async__coro *from, async__coro *to)
{
    (void)from;
    (void)to;
}

static inline void asan_leave(async__coro *co, int finished)
{
    (void)co;
    (void)finished;
}

static inline void asan_arrived(async__coro *co)
{
    (void)co;
}
#endif

void async__ctx_entry_returned(void)
{
    static const char msg[] =
        "libasync: a context entry function returned; aborting\n";
    ssize_t r = write(STDERR_FILENO, msg, sizeof msg - 1);
    (void)r;
    abort();
}

/* What a coroutine runs, kept in the top bytes of its stack from
 * async__coro_init until coro_entry reads it (the page is touched by the
 * first frame anyway, and the coroutine object stays smaller). */
struct coro_start {
    async__coro_fn fn;
    void *arg;
};

static struct coro_start *coro_start_of(async__coro *co)
{
    return (struct coro_start *)async__stack_top(&co->stack) - 1;
}

/* First (and only) frame of every coroutine, entered through the
 * trampoline with the coroutine as argument. */
static void coro_entry(void *arg)
{
    async__coro *co = arg;

    asan_arrived(co);
    const struct coro_start *start = coro_start_of(co);
    start->fn(start->arg);
    co->state = ASYNC__CORO_FINISHED;
    current = co->resumer;
    /* Last switch out: NULL fake stack tells ASan to drop ours. */
    asan_leave(co, 1);
    TSAN_LEAVE(co);
    async__ctx_switch(&co->sp, co->resumer_sp, co);
    /* A finished coroutine is never resumed again. */
    abort();
}

int async__coro_init(async__coro *co, async__coro_fn fn, void *arg,
                     size_t stack_size)
{
    if (co == NULL || fn == NULL)
        return ASYNC_EINVAL;

    /* Straight into co (untouched on error): no copy from a local. */
    int err = async__stack_alloc(&co->stack, stack_size);
    if (err < 0)
        return err;

    struct coro_start *start = coro_start_of(co);
    start->fn = fn;
    start->arg = arg;
    /* The initial frame goes right below: the trampoline's call never
     * reaches up into *start. */
    co->sp = async__ctx_make(start, coro_entry);
    co->resumer_sp = NULL;
    co->resumer = NULL;
    co->name = NULL;
    co->id = 0;
    co->state = ASYNC__CORO_READY;
    co->transferred_in = false;
#if defined(ASYNC_HAVE_ASAN)
    co->asan_fake_stack = NULL;
    co->resumer_bottom = NULL;
    co->resumer_size = 0;
#endif
#if defined(ASYNC_HAVE_VALGRIND_H)
    co->stack.valgrind_id =
        running_on_valgrind()
            ? VALGRIND_STACK_REGISTER(async__stack_base(&co->stack),
                                      async__stack_top(&co->stack))
            : 0;
#endif
#if defined(ASYNC_HAVE_TSAN)
    co->tsan_fiber = __tsan_create_fiber(0);
    co->tsan_resumer_fiber = NULL;
#endif
    return 0;
}

/*
 * Resume and suspend end in a tail call of the switch, and whoever leaves a
 * coroutine (suspend, or coro_entry when fn returns) puts the resumer back
 * as current before switching.  So nothing runs in resume() after the
 * switch: the switch's indirect jump lands straight in resume()'s caller,
 * there is no frame to pop and no ret that the return-stack predictor would
 * miss (it holds the other context's return addresses at that point).
 * AddressSanitizer builds need work after the switch, so they keep a frame.
 */
#if defined(ASYNC_HAVE_ASAN)
async__coro *async__coro_resume(async__coro *co)
{
    void *resumer_fake = NULL;

    assert(co->state == ASYNC__CORO_READY ||
           co->state == ASYNC__CORO_SUSPENDED);
    co->resumer = current;
    co->state = ASYNC__CORO_RUNNING;
    current = co;
    co->transferred_in = false;
    asan_enter(co, &resumer_fake);
    TSAN_ENTER(co);
    async__coro *back = async__ctx_switch(&co->resumer_sp, co->sp, co);
    asan_back_in_resumer(resumer_fake);
    return back;
}
#else
async__coro *async__coro_resume(async__coro *co)
{
    assert(co->state == ASYNC__CORO_READY ||
           co->state == ASYNC__CORO_SUSPENDED);
    co->resumer = current;
    co->state = ASYNC__CORO_RUNNING;
    current = co;
    TSAN_ENTER(co);
    return async__ctx_switch(&co->resumer_sp, co->sp, co);
}
#endif

/*
 * Builds with assertions (no NDEBUG: debug and the default debugoptimized)
 * check, whenever a coroutine switches away, that it is still on its own
 * stack.  A frame larger than the guard, in code built without
 * -fstack-clash-protection, can jump the guard and run on the neighbouring
 * stack without a fault; if it suspends from there, this stops it before
 * the neighbour runs on corrupted frames.  Release builds skip it (one
 * compare on the switch path).
 */
#if !defined(NDEBUG)
#define CHECK_ON_STACK(co)                                                    \
    do {                                                                      \
        const char *fp_ = __builtin_frame_address(0);                         \
        if (fp_ < (const char *)async__stack_base(&(co)->stack) ||            \
            fp_ >= (const char *)async__stack_top(&(co)->stack))              \
            async__stack_overflow_abort(co);                                  \
    } while (0)
#else
#define CHECK_ON_STACK(co) ((void)0)
#endif

void async__coro_suspend(void)
{
    async__coro *co = current;

    CHECK_ON_STACK(co);
    co->state = ASYNC__CORO_SUSPENDED;
    current = co->resumer;
    asan_leave(co, 0);
    TSAN_LEAVE(co);
    async__ctx_switch(&co->sp, co->resumer_sp, co);
    asan_arrived(co);
}

void async__coro_transfer(async__coro *from, async__coro *to)
{
    assert(from == current);
    CHECK_ON_STACK(from);
    assert(to->state == ASYNC__CORO_READY ||
           to->state == ASYNC__CORO_SUSPENDED);
    /* `to` takes over from's resumer: when it suspends or finishes, control
     * goes where from's would have gone. */
    to->resumer = from->resumer;
    to->resumer_sp = from->resumer_sp;
    asan_hand_over(from, to);
    bool fresh = to->state == ASYNC__CORO_READY;
    from->state = ASYNC__CORO_SUSPENDED;
    to->state = ASYNC__CORO_RUNNING;
    current = to;
    asan_leave_to(from, to);
    TSAN_HAND_OVER(from, to);
    /* A sibling that gave up the CPU returns to a call site like ours (the
     * return-stack predictor holds it: arch/context.h); a fresh one starts
     * in its trampoline, which only the jump predicts. */
    if (fresh)
        async__ctx_switch(&from->sp, to->sp, to);
    else
        async__ctx_switch_ret(&from->sp, to->sp, to);
    asan_arrived(from);
}

/*
 * Besides READY and FINISHED, a SUSPENDED coroutine may be destroyed too
 * (a loop closing with tasks still parked): its frames are simply dropped,
 * so whatever they own leaks, but the stack itself goes back to the pool.
 */
void async__coro_destroy(async__coro *co)
{
    if (co == NULL || co->stack.map == NULL)
        return;
    assert(co->state != ASYNC__CORO_RUNNING);
#if defined(ASYNC_HAVE_VALGRIND_H)
    if (running_on_valgrind())
        VALGRIND_STACK_DEREGISTER(co->stack.valgrind_id);
#endif
#if defined(ASYNC_HAVE_TSAN)
    __tsan_destroy_fiber(co->tsan_fiber);
#endif
    async__stack_free(&co->stack);
    co->stack.map = NULL;
}
