/*
 * x86_64 System V context switch (ELF and Mach-O); the contract is in
 * src/arch/context.h.
 *
 * A suspended context is one pointer: its stack pointer.  Below it, on the
 * context's own stack, async__ctx_switch() has pushed every register the
 * System V ABI makes callee-saved; everything else is dead across a call, so
 * the compiler has already saved whatever it still needs.
 *
 * With ASYNC_SAVE_FP_CONTROL defined (meson -Dsave_fp_control=true) the MXCSR
 * and the x87 control word travel with the context as well, so a coroutine
 * that changes the rounding mode or the exception masks does not change them
 * for whatever runs next on the thread.  The default build leaves them alone
 * (as Go, libdill and neco do): they are thread state, like errno's value.
 * docs/design.md has the measured cost of both variants.
 *
 * ASYNC_CTX_PREFIX renames the two exported routines (default async__ctx_)
 * so the benchmark can link a second copy assembled with the other FP
 * setting.
 */
#include "../asm.h"

#ifndef ASYNC_CTX_PREFIX
#define ASYNC_CTX_PREFIX async__ctx_
#endif
#define CTX_SWITCH ASYNC_PASTE(ASYNC_CTX_PREFIX, switch)
#define CTX_SWITCH_RET ASYNC_PASTE(ASYNC_CTX_PREFIX, switch_ret)
#define CTX_MAKE ASYNC_PASTE(ASYNC_CTX_PREFIX, make)
#define CTX_TRAMPOLINE ASYNC_PASTE(ASYNC_CTX_PREFIX, trampoline)

#if defined(ASYNC_SAVE_FP_CONTROL)
#define FP_BYTES 8
#else
#define FP_BYTES 0
#endif
/* Bytes between a saved stack pointer and the return address above it. */
#define FRAME_REGS (6 * 8 + FP_BYTES)

/*
 * void *async__ctx_switch(void **from /rdi/, void *to /rsi/, void *arg /rdx/)
 *
 * Saved: rbx, rbp, r12, r13, r14, r15, the return address (pushed by the
 * call) and rsp itself (stored in *from); with ASYNC_SAVE_FP_CONTROL also
 * MXCSR and the x87 control word.
 *
 * Frame left on the suspended stack, saved rsp = S (S % 16 == 8 after a
 * normal call, 0 with the FP word):
 *
 *   S+FP+48  return address (resume point in the caller, or the trampoline)
 *   S+FP+40  rbp
 *   S+FP+32  rbx
 *   S+FP+24  r12
 *   S+FP+16  r13
 *   S+FP+8   r14
 *   S+FP+0   r15
 *   S+4      x87 control word (16 bits)   } only with ASYNC_SAVE_FP_CONTROL
 *   S+0      MXCSR (32 bits)              } (FP = 8; otherwise FP = 0)
 *
 * Scratch: rax, rcx (and, with FP control, the flags).  On the way out
 * `arg` goes into rax (the return value of a suspended
 * async__ctx_switch) and into rdi (the argument a fresh context's trampoline
 * hands to its entry function).
 *
 * The resume point is reached by pop + indirect jmp rather than ret: in a
 * resume or a suspend the ret would always miss the return-stack predictor
 * (it returns into a different context, at a different call site, than the
 * one that called), the indirect jmp is predicted from its history
 * (async__ctx_switch_ret below is for switches where the ret hits).  Under IBT (-fcf-protection) an indirect jmp must land on endbr64,
 * which the instruction after a call is not, so that build marks the jump
 * notrack (as compilers do for switch jump tables); elsewhere the 3E prefix
 * would only be a no-op segment override, so it is left out.
 */
/* Everything but the last instruction(s) of both switches below.  ($(8),
 * not $8: in a macro, clang's Mach-O assembler reads $8 as an argument.) */
.macro switch_body
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
    pushq   %r13
    .cfi_adjust_cfa_offset 8
    .cfi_rel_offset %r13, 0
    pushq   %r14
    .cfi_adjust_cfa_offset 8
    .cfi_rel_offset %r14, 0
    pushq   %r15
    .cfi_adjust_cfa_offset 8
    .cfi_rel_offset %r15, 0
#if defined(ASYNC_SAVE_FP_CONTROL)
    subq    $(8), %rsp
    .cfi_adjust_cfa_offset 8
    stmxcsr (%rsp)
    fnstcw  4(%rsp)
#endif
    /* The switch proper: both stacks hold the same frame layout, so the
     * CFI above describes the new stack as well as the old one. */
    movq    %rsp, (%rdi)
#if defined(ASYNC_SAVE_FP_CONTROL)
    movq    %rsp, %rcx
#endif
    movq    %rsi, %rsp
#if defined(ASYNC_SAVE_FP_CONTROL)
    /* ldmxcsr and fldcw are slow (they serialize FP execution); skip each
     * when the incoming value equals the one in force, the common case. */
    movl    (%rsp), %eax
    cmpl    (%rcx), %eax
    je      1f
    ldmxcsr (%rsp)
1:  movzwl  4(%rsp), %eax
    cmpw    4(%rcx), %ax
    je      2f
    fldcw   4(%rsp)
2:  addq    $(8), %rsp
    .cfi_adjust_cfa_offset -8
#endif
    popq    %r15
    .cfi_adjust_cfa_offset -8
    .cfi_restore %r15
    popq    %r14
    .cfi_adjust_cfa_offset -8
    .cfi_restore %r14
    popq    %r13
    .cfi_adjust_cfa_offset -8
    .cfi_restore %r13
    popq    %r12
    .cfi_adjust_cfa_offset -8
    .cfi_restore %r12
    popq    %rbx
    .cfi_adjust_cfa_offset -8
    .cfi_restore %rbx
    popq    %rbp
    .cfi_adjust_cfa_offset -8
    .cfi_restore %rbp
    movq    %rdx, %rax
    movq    %rdx, %rdi
.endm

function CTX_SWITCH
    .cfi_startproc
    switch_body
    popq    %rcx
    .cfi_adjust_cfa_offset -8
    .cfi_register %rip, %rcx
#if defined(__CET__) && (__CET__ & 1)
    notrack jmpq *%rcx
#else
    jmpq    *%rcx
#endif
    .cfi_endproc
endfunc CTX_SWITCH

/*
 * void *async__ctx_switch_ret(void **from, void *to, void *arg)
 *
 * async__ctx_switch, ending in `ret`: for a switch between two contexts that
 * suspended at the same call site (two tasks yielding or parking in the
 * same place), the return-stack predictor then holds exactly the resume
 * point (this side's call pushed the same address), and it stays in step
 * for the returns that follow.  The jmp of async__ctx_switch is the better
 * choice for resume/suspend pairs, where the call sites differ.
 */
function CTX_SWITCH_RET
    .cfi_startproc
    switch_body
    ret
    .cfi_endproc
endfunc CTX_SWITCH_RET

/*
 * void *async__ctx_make(void *stack_top /rdi/, void (*entry)(void *) /rsi/)
 *
 * Builds, below T = stack_top rounded down to 16, the frame that
 * async__ctx_switch() pops, and returns its stack pointer S:
 *
 *   T-8      return address = trampoline      (popped last; rsp is then T)
 *   T-16     rbp = 0                          (ends frame-pointer walks)
 *   T-24     rbx = entry
 *   T-32 .. T-56  r12..r15 = 0
 *   T-64     MXCSR, x87 CW of the caller      (only with ASYNC_SAVE_FP_CONTROL)
 *   S = T-56, or T-64 with the FP word
 *
 * A fresh context thus starts with the creating thread's FP control state.
 * Touches only the top 64 bytes of the stack.
 */
function CTX_MAKE
    .cfi_startproc
    ENDBR
    movq    %rdi, %rax
    andq    $-16, %rax
    leaq    SYM(CTX_TRAMPOLINE)(%rip), %rcx
    movq    %rcx, -8(%rax)
    movq    $0, -16(%rax)
    movq    %rsi, -24(%rax)
    movq    $0, -32(%rax)
    movq    $0, -40(%rax)
    movq    $0, -48(%rax)
    movq    $0, -56(%rax)
#if defined(ASYNC_SAVE_FP_CONTROL)
    stmxcsr -64(%rax)
    fnstcw  -60(%rax)
    movw    $0, -58(%rax)
#endif
    subq    $(FRAME_REGS + 8), %rax
    ret
    .cfi_endproc
endfunc CTX_MAKE

/*
 * First code a fresh context runs, "returned to" by async__ctx_switch() with
 * rsp = T (16-byte aligned), rbx = entry, rbp = 0 and rdi = arg.  The call
 * pushes the return address, so entry starts with rsp % 16 == 8 as the ABI
 * requires.
 *
 * CFI: the return address column is undefined, which is how DWARF says
 * "outermost frame": gdb and libgcc's unwinder stop here instead of walking
 * into the garbage above the stack top.
 */
function CTX_TRAMPOLINE, export=0
    .cfi_startproc
    .cfi_undefined %rip
    ENDBR
    callq   *%rbx
    /* entry must not return; if it does, report and abort. */
    callq   SYM(async__ctx_entry_returned)
    ud2
    .cfi_endproc
endfunc CTX_TRAMPOLINE
