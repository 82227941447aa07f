/*
 * RISC-V 64 (RV64GC, LP64D ABI, ELF) context switch; the contract is in
 * src/arch/context.h.
 *
 * A suspended context is one pointer: its stack pointer.  Below it, on the
 * context's own stack, async__ctx_switch() has stored every register the
 * LP64D calling convention makes callee-saved: s0-s11 (s0 is the frame
 * pointer), fs0-fs11 (64 bits each: the D extension), plus ra, the resume
 * point.  sp itself is the saved pointer.
 *
 * With ASYNC_SAVE_FP_CONTROL defined (meson -Dsave_fp_control=true) the
 * rounding mode (frm, the control half of fcsr) travels with the context as
 * well.  The default build leaves it alone, as Go, libdill and neco do;
 * docs/design.md has the measured cost on the other CPUs.  The accrued
 * exception flags (fflags, the other half of fcsr) are never switched: like
 * AArch64's FPSR and errno they are status, not configuration.  RISC-V has no
 * FP trap enables, so frm is all the FP configuration there is.
 *
 * ASYNC_CTX_PREFIX renames the exported routines (default async__ctx_) so
 * the benchmark can link a second copy assembled with the other FP setting.
 */
#include "../asm.h"

#ifndef ASYNC_CTX_PREFIX
#define ASYNC_CTX_PREFIX async__ctx_
#endif
#define CTX_SWITCH ASYNC_PASTE(ASYNC_CTX_PREFIX, switch)
#define CTX_MAKE ASYNC_PASTE(ASYNC_CTX_PREFIX, make)
#define CTX_TRAMPOLINE ASYNC_PASTE(ASYNC_CTX_PREFIX, trampoline)

/* 25 registers of 8 bytes, rounded up to the ABI's 16-byte stack alignment;
 * the padding slot holds frm when it is switched, so both variants share one
 * layout and one size. */
#define FRAME 208
#define FRM_SLOT 200

/*
 * void *async__ctx_switch(void **from /a0/, void *to /a1/, void *arg /a2/)
 *
 * Saved: ra (resume point), s0-s11, fs0-fs11, sp (stored in *from); with
 * ASYNC_SAVE_FP_CONTROL also frm.
 *
 * Frame on the suspended stack, saved sp = S (always 16-byte aligned):
 *
 *   S+200  frm (only with ASYNC_SAVE_FP_CONTROL; padding otherwise)
 *   S+104  fs0 .. fs11   (fsN at S + 104 + 8 * N)
 *   S+8    s0 .. s11     (sN  at S + 8 + 8 * N)
 *   S+0    ra
 *
 * Scratch: t0, t1.  On the way out `arg` goes into a0: the return value of a
 * suspended async__ctx_switch() and the argument of a fresh context's entry.
 * The resume point is reached with `jr t1`, not `ret`: ret (jalr through
 * ra or t0) pops the return-address stack, which always predicts the wrong
 * context here; a jump through t1 is an ordinary predicted indirect jump.
 */
function CTX_SWITCH
    .cfi_startproc
    addi    sp, sp, -FRAME
    .cfi_def_cfa_offset FRAME
    sd      ra, 0(sp)
    .cfi_offset ra, 0 - FRAME
    sd      s0, 8(sp)
    .cfi_offset s0, 8 - FRAME
    sd      s1, 16(sp)
    sd      s2, 24(sp)
    sd      s3, 32(sp)
    sd      s4, 40(sp)
    sd      s5, 48(sp)
    sd      s6, 56(sp)
    sd      s7, 64(sp)
    sd      s8, 72(sp)
    sd      s9, 80(sp)
    sd      s10, 88(sp)
    sd      s11, 96(sp)
    fsd     fs0, 104(sp)
    fsd     fs1, 112(sp)
    fsd     fs2, 120(sp)
    fsd     fs3, 128(sp)
    fsd     fs4, 136(sp)
    fsd     fs5, 144(sp)
    fsd     fs6, 152(sp)
    fsd     fs7, 160(sp)
    fsd     fs8, 168(sp)
    fsd     fs9, 176(sp)
    fsd     fs10, 184(sp)
    fsd     fs11, 192(sp)
#if defined(ASYNC_SAVE_FP_CONTROL)
    frrm    t0
    sd      t0, FRM_SLOT(sp)
#endif
    /* The switch proper; both stacks hold the same layout, so the CFI
     * describes the new stack as well as the old one. */
    sd      sp, 0(a0)
    mv      sp, a1
#if defined(ASYNC_SAVE_FP_CONTROL)
    /* Writing frm can serialize FP execution; skip it when the incoming
     * value equals the one in force (t0). */
    ld      t1, FRM_SLOT(sp)
    beq     t0, t1, 1f
    fsrm    t1
1:
#endif
    ld      t1, 0(sp)
    ld      s0, 8(sp)
    ld      s1, 16(sp)
    ld      s2, 24(sp)
    ld      s3, 32(sp)
    ld      s4, 40(sp)
    ld      s5, 48(sp)
    ld      s6, 56(sp)
    ld      s7, 64(sp)
    ld      s8, 72(sp)
    ld      s9, 80(sp)
    ld      s10, 88(sp)
    ld      s11, 96(sp)
    fld     fs0, 104(sp)
    fld     fs1, 112(sp)
    fld     fs2, 120(sp)
    fld     fs3, 128(sp)
    fld     fs4, 136(sp)
    fld     fs5, 144(sp)
    fld     fs6, 152(sp)
    fld     fs7, 160(sp)
    fld     fs8, 168(sp)
    fld     fs9, 176(sp)
    fld     fs10, 184(sp)
    fld     fs11, 192(sp)
    addi    sp, sp, FRAME
    .cfi_def_cfa_offset 0
    .cfi_restore s0
    .cfi_register ra, t1
    mv      a0, a2
    jr      t1
    .cfi_endproc
endfunc CTX_SWITCH

/*
 * void *async__ctx_make(void *stack_top /a0/, void (*entry)(void *) /a1/)
 *
 * Builds, below T = stack_top rounded down to 16, the frame that
 * async__ctx_switch() pops, and returns its stack pointer S = T - FRAME:
 * ra = the trampoline, s1 = entry, s0 = 0 and every other slot 0; with
 * ASYNC_SAVE_FP_CONTROL the caller's frm, so a fresh context starts with
 * the creating thread's rounding mode.  After the pop, sp is T.
 */
function CTX_MAKE
    .cfi_startproc
    andi    a0, a0, -16
    addi    a0, a0, -FRAME
    lla     t0, CTX_TRAMPOLINE
    sd      t0, 0(a0)
    sd      zero, 8(a0)
    sd      a1, 16(a0)
    /* s2 .. s11, fs0 .. fs11 and the frm slot. */
    .irp off, 24, 32, 40, 48, 56, 64, 72, 80, 88, 96, 104, 112, 120, 128, \
              136, 144, 152, 160, 168, 176, 184, 192, 200
    sd      zero, \off(a0)
    .endr
#if defined(ASYNC_SAVE_FP_CONTROL)
    frrm    t0
    sd      t0, FRM_SLOT(a0)
#endif
    ret
    .cfi_endproc
endfunc CTX_MAKE

/*
 * First code a fresh context runs, jumped to by async__ctx_switch() with
 * sp = T (16-byte aligned, as the ABI requires at every call), s1 = entry,
 * a0 = arg, s0 = 0.
 *
 * CFI: the return-address column is undefined, DWARF's way of saying
 * "outermost frame", and s0 = 0 ends frame-pointer walks, so debuggers and
 * unwinders stop here instead of wandering above the stack top.
 */
function CTX_TRAMPOLINE, export=0
    .cfi_startproc
    .cfi_undefined ra
    mv      s0, zero
    mv      ra, zero
    jalr    s1
    /* entry must not return; if it does, report and abort. */
    call    SYM(async__ctx_entry_returned)
    ebreak
    .cfi_endproc
endfunc CTX_TRAMPOLINE
