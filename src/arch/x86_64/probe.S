/*
 * x86_64: run a function on a suspended context's stack, so that an
 * unwinder started there walks that context's frames (used by the task
 * dump in src/debug/ to take a backtrace of every suspended task).
 *
 * void async__ctx_probe(void *sp /rdi/, void (*fn)(void *) /rsi/,
 *                       void *arg /rdx/)
 *
 * `sp` is a stack pointer saved by async__ctx_switch() (switch.S documents
 * the frame below it).  fn(arg) is called on the free stack below that
 * frame, from a stub whose CFI describes the suspended frame exactly as
 * async__ctx_switch's CFI does after its pushes: CFA = sp + 56 (+8 with
 * ASYNC_SAVE_FP_CONTROL, where the registers sit 8 bytes higher), the
 * callee-saved registers and the resume address at fixed offsets below the
 * CFA.  An unwinder (libgcc's _Unwind_Backtrace, glibc's backtrace()) in
 * fn therefore continues from the stub into the suspended code, through
 * every frame of the context down to its trampoline, whose CFI ends the
 * walk.  Nothing of the suspended context is modified: its saved frame is
 * only read, and the bytes below it are dead.
 *
 * The CFA is expressed through r12 (set to sp), not rsp, so that rsp can be
 * aligned for the call whatever sp's alignment.
 */
#include "../asm.h"

#if defined(ASYNC_SAVE_FP_CONTROL)
#define FP_BYTES 8
#else
#define FP_BYTES 0
#endif

function async__ctx_probe
    .cfi_startproc
    ENDBR
    pushq   %rbp
    .cfi_adjust_cfa_offset 8
    .cfi_rel_offset %rbp, 0
    pushq   %rbx
    .cfi_adjust_cfa_offset 8
    .cfi_rel_offset %rbx, 0
    pushq   %r12
    .cfi_adjust_cfa_offset 8
    .cfi_rel_offset %r12, 0
    movq    %rsp, %rbx          /* our own stack, back after fn */
    movq    %rdi, %r12          /* the suspended frame */
    jmp     1f
2:  popq    %r12
    .cfi_adjust_cfa_offset -8
    .cfi_restore %r12
    popq    %rbx
    .cfi_adjust_cfa_offset -8
    .cfi_restore %rbx
    popq    %rbp
    .cfi_adjust_cfa_offset -8
    .cfi_restore %rbp
    ret
    .cfi_endproc

    /* The stub: from here to its end, the CFI describes the suspended
     * frame at r12. */
    .cfi_startproc
    .cfi_def_cfa %r12, FP_BYTES + 56
    .cfi_offset %rip, -8
    .cfi_offset %rbp, -16
    .cfi_offset %rbx, -24
    .cfi_offset %r12, -32
    .cfi_offset %r13, -40
    .cfi_offset %r14, -48
    .cfi_offset %r15, -56
1:  leaq    -64(%r12), %rsp     /* below the frame, past any red zone */
    andq    $-16, %rsp
    movq    %rdx, %rdi
    callq   *%rsi
    movq    %rbx, %rsp
    jmp     2b
    .cfi_endproc
endfunc async__ctx_probe
