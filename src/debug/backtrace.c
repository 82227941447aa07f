/*
 * Native backtraces of tasks, and code addresses turned into names.
 *
 * A suspended task's registers sit in the frame async__ctx_switch() left on
 * its stack.  Walking frame pointers from there would need them compiled in
 * (the default -O2 build on x86_64 omits them); instead async__ctx_probe()
 * (src/arch/<cpu>/probe.S) calls a function on the free part of the task's
 * stack, below that frame, from a stub whose DWARF CFI describes the saved
 * frame.  glibc's backtrace() (libgcc's DWARF unwinder, from .eh_frame,
 * present by default on x86_64 and AArch64) then walks from the stub into
 * the task's own frames and stops at the coroutine trampoline, whose CFI
 * marks the outermost frame.  The task is not resumed: no code of it runs
 * and nothing of its state changes.  Names come from dladdr(), i.e. from
 * the dynamic symbol table: an executable's own functions appear only when
 * it is linked with -rdynamic (static functions never).
 */
#include <dlfcn.h>
#include <execinfo.h>
#include <stdatomic.h>
#include <string.h>

#include "debug/debug.h"

#if defined(__x86_64__) || defined(__aarch64__) || \
    (defined(__riscv) && __riscv_xlen == 64)
#define HAVE_PROBE 1
/* src/arch/<cpu>/probe.S: runs fn(arg) on the stack below the saved
 * context sp, unwinding into it. */
void async__ctx_probe(void *sp, void (*fn)(void *), void *arg);
#else
#define HAVE_PROBE 0
#endif

/* Frames of the probe itself at the top of a probed backtrace: probe_fn
 * and the stub of async__ctx_probe. */
#define PROBE_FRAMES 2

typedef struct probe {
    void **pcs;
    int max;
    int n;
} probe;

/* Runs on the suspended task's stack; must not be instrumented (ASan does
 * not know that stack is in use) nor inlined (it is a frame we skip). */
__attribute__((noinline, no_sanitize_address)) static void probe_fn(void *arg)
{
    probe *p = arg;
    p->n = backtrace(p->pcs, p->max);
}

int async__task_backtrace(async_task *t, void **pcs, int max)
{
#if HAVE_PROBE
    /* glibc loads libgcc_s on the first backtrace(): do that here, on the
     * caller's stack, not on a task's. */
    static atomic_bool primed;
    if (!atomic_load_explicit(&primed, memory_order_acquire)) {
        void *one[1];
        (void)backtrace(one, 1);
        atomic_store_explicit(&primed, true, memory_order_release);
    }
    if (max <= 0)
        return 0;
    if (t == async__task_current())
        return backtrace(pcs, max);
    if (t->coro.state != ASYNC__CORO_SUSPENDED)
        return 0;
    void *buf[ASYNC__BT_MAX + PROBE_FRAMES];
    if (max > ASYNC__BT_MAX)
        max = ASYNC__BT_MAX;
    probe p = {buf, max + PROBE_FRAMES, 0};
    async__ctx_probe(t->coro.sp, probe_fn, &p);
    int n = p.n - PROBE_FRAMES;
    if (n <= 0)
        return 0;
    memcpy(pcs, buf + PROBE_FRAMES, (size_t)n * sizeof *pcs);
    return n;
#else
    (void)t;
    (void)pcs;
    (void)max;
    return -1;
#endif
}

/* Names code address pc; `ret`: pc is a return address. */
static void dbg_name(async__dbg_out *o, void *pc, bool ret)
{
    Dl_info di;
    /* A return address may lie just past the end of the calling function
     * (a call to a noreturn function): look up the byte before it. */
    if (!pc || !dladdr((char *)pc - ret, &di)) {
        async__dbg_printf(o, "%p", pc);
        return;
    }
    const char *obj = di.dli_fname ? strrchr(di.dli_fname, '/') : NULL;
    obj = obj ? obj + 1 : di.dli_fname ? di.dli_fname : "?";
    if (di.dli_sname && di.dli_saddr)
        async__dbg_printf(o, "%s+0x%lx (%s)", di.dli_sname,
                          (unsigned long)((char *)pc - (char *)di.dli_saddr),
                          obj);
    else
        async__dbg_printf(o, "%p (%s+0x%lx)", pc, obj,
                          (unsigned long)((char *)pc - (char *)di.dli_fbase));
}

void async__dbg_symbol(async__dbg_out *o, void *pc)
{
    dbg_name(o, pc, true);
}

void async__dbg_function(async__dbg_out *o, void *fn)
{
    dbg_name(o, fn, false);
}
