/*
 * Register-preservation helpers for tests/test_switch.c (AArch64), in the
 * spirit of dav1d's checkasm: C cannot put chosen values into callee-saved
 * registers around a call, so these do it.
 *
 * Values loaded, for register index i in the order x19..x29 (i = 0..10)
 * then d8..d15 (i = 11..18):
 *   0x5eed0000c0de0000 | (seed << 8) | i
 */
#include "../../../src/arch/asm.h"

.macro load_x reg, seed, i
    movz    \reg, #((\seed << 8) | \i)
    movk    \reg, #0xc0de, lsl #16
    movk    \reg, #0x5eed, lsl #48
.endm

.macro load_d reg, seed, i
    load_x  x9, \seed, \i
    fmov    \reg, x9
.endm

.macro load_patterns seed
    load_x  x19, \seed, 0
    load_x  x20, \seed, 1
    load_x  x21, \seed, 2
    load_x  x22, \seed, 3
    load_x  x23, \seed, 4
    load_x  x24, \seed, 5
    load_x  x25, \seed, 6
    load_x  x26, \seed, 7
    load_x  x27, \seed, 8
    load_x  x28, \seed, 9
    load_x  x29, \seed, 10
    load_d  d8, \seed, 11
    load_d  d9, \seed, 12
    load_d  d10, \seed, 13
    load_d  d11, \seed, 14
    load_d  d12, \seed, 15
    load_d  d13, \seed, 16
    load_d  d14, \seed, 17
    load_d  d15, \seed, 18
.endm

/* Frame of both helpers (176 bytes): x19..x28, x29/x30, d8..d15, out. */
.macro save_callee
    stp     x29, x30, [sp, #-176]!
    stp     x19, x20, [sp, #16]
    stp     x21, x22, [sp, #32]
    stp     x23, x24, [sp, #48]
    stp     x25, x26, [sp, #64]
    stp     x27, x28, [sp, #80]
    stp     d8, d9, [sp, #96]
    stp     d10, d11, [sp, #112]
    stp     d12, d13, [sp, #128]
    stp     d14, d15, [sp, #144]
.endm

.macro restore_callee
    ldp     x19, x20, [sp, #16]
    ldp     x21, x22, [sp, #32]
    ldp     x23, x24, [sp, #48]
    ldp     x25, x26, [sp, #64]
    ldp     x27, x28, [sp, #80]
    ldp     d8, d9, [sp, #96]
    ldp     d10, d11, [sp, #112]
    ldp     d12, d13, [sp, #128]
    ldp     d14, d15, [sp, #144]
    ldp     x29, x30, [sp], #176
.endm

/*
 * void *regs_switch_check(void **from, void *to, void *arg, uint64_t out[20])
 *
 * Saves the caller's callee-saved registers, loads pattern seed 0xA1,
 * calls async__ctx_switch(from, to, arg) and, once switched back, stores
 * x19..x29 into out[0..10], d8..d15 into out[11..18] and the change of sp
 * across the call into out[19] (must be 0); returns the switch's result.
 */
function regs_switch_check
    BTI_C
    save_callee
    str     x3, [sp, #160]
    mov     x9, sp
    str     x9, [x3, #152]
    load_patterns 0xA1
    bl      SYM(async__ctx_switch)
    ldr     x10, [sp, #160]
    stp     x19, x20, [x10, #0]
    stp     x21, x22, [x10, #16]
    stp     x23, x24, [x10, #32]
    stp     x25, x26, [x10, #48]
    stp     x27, x28, [x10, #64]
    str     x29, [x10, #80]
    str     d8, [x10, #88]
    str     d9, [x10, #96]
    str     d10, [x10, #104]
    str     d11, [x10, #112]
    str     d12, [x10, #120]
    str     d13, [x10, #128]
    str     d14, [x10, #136]
    str     d15, [x10, #144]
    ldr     x9, [x10, #152]
    mov     x11, sp
    sub     x9, x11, x9
    str     x9, [x10, #152]
    restore_callee
    ret
endfunc regs_switch_check

/*
 * void *regs_clobber_switch(void **from, void *to, void *arg)
 *
 * The other side: loads pattern seed 0x3C into every callee-saved register,
 * switches, and restores its caller's registers when resumed.
 */
function regs_clobber_switch
    BTI_C
    save_callee
    load_patterns 0x3C
    bl      SYM(async__ctx_switch)
    restore_callee
    ret
endfunc regs_clobber_switch

/* uintptr_t regs_caller_sp(void): sp of the caller, 16-byte aligned per
 * AAPCS64. */
function regs_caller_sp
    BTI_C
    mov     x0, sp
    ret
endfunc regs_caller_sp
