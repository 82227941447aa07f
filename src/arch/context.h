/*
 * The context-switch contract between the C code and src/arch/<cpu>/switch.S.
 *
 * A context is nothing but a saved stack pointer: everything else the ABI
 * makes callee-saved is pushed onto the context's own stack by
 * async__ctx_switch() and popped again when the context is resumed.  The
 * assembly files document the exact frame layout they build.
 */
#ifndef ASYNC_ARCH_CONTEXT_H
#define ASYNC_ARCH_CONTEXT_H

/*
 * Saves the callee-saved state of the running context on its stack, stores
 * that stack pointer in *from, and resumes the context whose saved stack
 * pointer is `to`.  In the resumed context the call that suspended it (or,
 * for a fresh context, the entry function) receives `arg`: a suspended
 * async__ctx_switch() returns it; a fresh context's entry is called as
 * entry(arg).
 */
void *async__ctx_switch(void **from, void *to, void *arg);

/*
 * async__ctx_switch for two contexts that suspended at the same call site
 * (task to task: both gave up the CPU through the same yield or park).
 * x86_64 resumes through `ret` here, not the indirect jump that is right for
 * resume/suspend pairs: the call that entered this side pushed the very
 * return address the other side resumes at, so the return-stack predictor
 * hits, and the returns that follow stay in step with it (with the jump,
 * the first return after every such switch missed).  Elsewhere the same
 * routine as async__ctx_switch (AArch64 returns with `ret` in both; riscv64
 * keeps its jump: not measured there).
 */
#if defined(__x86_64__)
void *async__ctx_switch_ret(void **from, void *to, void *arg);
#else
#define async__ctx_switch_ret async__ctx_switch
#endif

/*
 * Builds the initial frame of a fresh context at the top of a stack and
 * returns the stack pointer to pass as `to` to async__ctx_switch().
 * `stack_top` is the highest address of the usable stack (exclusive); it
 * need not be aligned.  The first switch to the context calls entry(arg) on
 * a correctly aligned stack.  `entry` must never return: if it does, the
 * trampoline calls async__ctx_entry_returned(), which aborts.
 */
void *async__ctx_make(void *stack_top, void (*entry)(void *arg));

/* Called by the entry trampoline if an entry function returns; aborts. */
void async__ctx_entry_returned(void);

#endif
