/*
 * Register-preservation helpers for tests/test_switch.c (RISC-V 64, LP64D),
 * in the spirit of dav1d's checkasm: C cannot put chosen values into
 * callee-saved registers around a call, so these do it.
 *
 * Values loaded, for register index i in the order s0..s11 (i = 0..11) then
 * fs0..fs11 (i = 12..23):
 *   0x5eed0000c0de0000 | (seed << 8) | i
 */
#include "../../../src/arch/asm.h"

.macro load_x reg, seed, i
    li      \reg, 0x5eed0000c0de0000 | (\seed << 8) | \i
.endm

.macro load_f reg, seed, i
    load_x  t0, \seed, \i
    fmv.d.x \reg, t0
.endm

.macro load_patterns seed
    load_x  s0, \seed, 0
    load_x  s1, \seed, 1
    load_x  s2, \seed, 2
    load_x  s3, \seed, 3
    load_x  s4, \seed, 4
    load_x  s5, \seed, 5
    load_x  s6, \seed, 6
    load_x  s7, \seed, 7
    load_x  s8, \seed, 8
    load_x  s9, \seed, 9
    load_x  s10, \seed, 10
    load_x  s11, \seed, 11
    load_f  fs0, \seed, 12
    load_f  fs1, \seed, 13
    load_f  fs2, \seed, 14
    load_f  fs3, \seed, 15
    load_f  fs4, \seed, 16
    load_f  fs5, \seed, 17
    load_f  fs6, \seed, 18
    load_f  fs7, \seed, 19
    load_f  fs8, \seed, 20
    load_f  fs9, \seed, 21
    load_f  fs10, \seed, 22
    load_f  fs11, \seed, 23
.endm

/* Frame of both helpers (208 bytes): ra, s0..s11, fs0..fs11, out. */
.macro save_callee
    addi    sp, sp, -208
    sd      ra, 0(sp)
    .irp r, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11
    sd      s\r, (8 + 8 * \r)(sp)
    fsd     fs\r, (104 + 8 * \r)(sp)
    .endr
.endm

.macro restore_callee
    ld      ra, 0(sp)
    .irp r, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11
    ld      s\r, (8 + 8 * \r)(sp)
    fld     fs\r, (104 + 8 * \r)(sp)
    .endr
    addi    sp, sp, 208
.endm

/*
 * void *regs_switch_check(void **from, void *to, void *arg, uint64_t out[25])
 *
 * Saves the caller's callee-saved registers, loads pattern seed 0xA1,
 * calls async__ctx_switch(from, to, arg) and, once switched back, stores
 * s0..s11 into out[0..11], fs0..fs11 into out[12..23] and the change of sp
 * across the call into out[24] (must be 0); returns the switch's result.
 */
function regs_switch_check
    save_callee
    sd      a3, 200(sp)
    sd      sp, 192(a3)
    load_patterns 0xA1
    call    SYM(async__ctx_switch)
    ld      t0, 200(sp)
    .irp r, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11
    sd      s\r, (8 * \r)(t0)
    fsd     fs\r, (96 + 8 * \r)(t0)
    .endr
    ld      t1, 192(t0)
    sub     t1, sp, t1
    sd      t1, 192(t0)
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
    save_callee
    load_patterns 0x3C
    call    SYM(async__ctx_switch)
    restore_callee
    ret
endfunc regs_clobber_switch

/* uintptr_t regs_caller_sp(void): sp of the caller, 16-byte aligned per
 * the LP64D calling convention. */
function regs_caller_sp
    mv      a0, sp
    ret
endfunc regs_caller_sp
