/*
 * Register-preservation helpers for tests/test_switch.c (x86_64 SysV), in
 * the spirit of dav1d's checkasm: C cannot put chosen values into
 * callee-saved registers around a call, so these do it.
 *
 * Values loaded are REGS_PATTERN(i) for register index i, in the order
 * rbx, rbp, r12, r13, r14, r15 (i = 0..5):
 *   0x5eed0000c0de0000 | (seed << 8) | i
 */
#include "../../../src/arch/asm.h"

.macro load_patterns seed
    movabsq $(0x5eed0000c0de0000 | (\seed << 8) | 0), %rbx
    movabsq $(0x5eed0000c0de0000 | (\seed << 8) | 1), %rbp
    movabsq $(0x5eed0000c0de0000 | (\seed << 8) | 2), %r12
    movabsq $(0x5eed0000c0de0000 | (\seed << 8) | 3), %r13
    movabsq $(0x5eed0000c0de0000 | (\seed << 8) | 4), %r14
    movabsq $(0x5eed0000c0de0000 | (\seed << 8) | 5), %r15
.endm

/*
 * void *regs_switch_check(void **from, void *to, void *arg, uint64_t out[8])
 *
 * Saves the caller's callee-saved registers, loads pattern seed 0xA1 into
 * them, calls async__ctx_switch(from, to, arg) and, once switched back,
 * stores what rbx, rbp, r12-r15 hold into out[0..5], the change of rsp
 * across the call into out[6] (must be 0) and returns the switch's return
 * value.  regs_switch_ret_check does the same through async__ctx_switch_ret.
 *
 * Frame: return address, 6 saved registers, out  (rsp % 16 == 0 at the call)
 */
.macro switch_check name, switch
function \name
    ENDBR
    pushq   %rbp
    pushq   %rbx
    pushq   %r12
    pushq   %r13
    pushq   %r14
    pushq   %r15
    pushq   %rcx
    movq    %rsp, 48(%rcx)
    load_patterns 0xA1
    callq   \switch
    movq    (%rsp), %r11
    movq    %rbx, 0(%r11)
    movq    %rbp, 8(%r11)
    movq    %r12, 16(%r11)
    movq    %r13, 24(%r11)
    movq    %r14, 32(%r11)
    movq    %r15, 40(%r11)
    movq    %rsp, %r10
    subq    48(%r11), %r10
    movq    %r10, 48(%r11)
    popq    %rcx
    popq    %r15
    popq    %r14
    popq    %r13
    popq    %r12
    popq    %rbx
    popq    %rbp
    ret
endfunc \name
.endm

    switch_check regs_switch_check, SYM(async__ctx_switch)
    switch_check regs_switch_ret_check, SYM(async__ctx_switch_ret)

/*
 * void *regs_clobber_switch(void **from, void *to, void *arg)
 *
 * The other side: loads pattern seed 0x3C (different values everywhere)
 * into every callee-saved register, switches, and restores its caller's
 * registers when resumed.  Returns the switch's return value.
 * regs_clobber_switch_ret switches with async__ctx_switch_ret.
 */
.macro clobber_switch name, switch
function \name
    ENDBR
    pushq   %rbp
    pushq   %rbx
    pushq   %r12
    pushq   %r13
    pushq   %r14
    pushq   %r15
    subq    $8, %rsp
    load_patterns 0x3C
    callq   \switch
    addq    $8, %rsp
    popq    %r15
    popq    %r14
    popq    %r13
    popq    %r12
    popq    %rbx
    popq    %rbp
    ret
endfunc \name
.endm

    clobber_switch regs_clobber_switch, SYM(async__ctx_switch)
    clobber_switch regs_clobber_switch_ret, SYM(async__ctx_switch_ret)

/* uintptr_t regs_caller_sp(void): the caller's rsp just before its call
 * instruction, which the ABI requires to be 16-byte aligned. */
function regs_caller_sp
    ENDBR
    leaq    8(%rsp), %rax
    ret
endfunc regs_caller_sp
