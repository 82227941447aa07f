/*
 * riscv64 (LP64D): run a function on a suspended context's stack, so that
 * an unwinder started there walks that context's frames (used by the task
 * dump in src/debug/ to take a backtrace of every suspended task).
 *
 * void async__ctx_probe(void *sp /a0/, void (*fn)(void *) /a1/,
 *                       void *arg /a2/)
 *
 * `sp` is a stack pointer saved by async__ctx_switch() (switch.S documents
 * the frame above it: ra, s0-s11, fs0-fs11 in FRAME bytes).  fn(arg) is
 * called on the free stack below that frame, from a stub whose CFI
 * describes the suspended frame as async__ctx_switch's own CFI would: CFA =
 * sp + FRAME, every saved register at its slot, the saved ra (the resume
 * address) as the return address.  An unwinder (glibc's backtrace()) in fn
 * therefore continues from the stub into the suspended code, down to the
 * context's trampoline, whose CFI ends the walk.  The suspended frame is
 * only read; the bytes below it are dead.
 *
 * The CFA is expressed through s1 (set to sp), which fn preserves.
 */
#include "../asm.h"

#define FRAME 208

function async__ctx_probe
    .cfi_startproc
    addi    sp, sp, -32
    .cfi_def_cfa_offset 32
    sd      ra, 24(sp)
    .cfi_offset ra, -8
    sd      s0, 16(sp)
    .cfi_offset s0, -16
    sd      s1, 8(sp)
    .cfi_offset s1, -24
    mv      s0, sp              /* our own stack, back after fn */
    mv      s1, a0              /* the suspended frame */
    mv      a0, a2
    j       1f
2:  ld      ra, 24(sp)
    ld      s0, 16(sp)
    ld      s1, 8(sp)
    addi    sp, sp, 32
    .cfi_def_cfa_offset 0
    .cfi_restore ra
    .cfi_restore s0
    .cfi_restore s1
    ret
    .cfi_endproc

    /* The stub: from here to its end, the CFI describes the suspended
     * frame at s1. */
    .cfi_startproc
    .cfi_def_cfa s1, FRAME
    .cfi_offset ra, 0 - FRAME
    .cfi_offset s0, 8 - FRAME
    .cfi_offset s1, 16 - FRAME
    .cfi_offset s2, 24 - FRAME
    .cfi_offset s3, 32 - FRAME
    .cfi_offset s4, 40 - FRAME
    .cfi_offset s5, 48 - FRAME
    .cfi_offset s6, 56 - FRAME
    .cfi_offset s7, 64 - FRAME
    .cfi_offset s8, 72 - FRAME
    .cfi_offset s9, 80 - FRAME
    .cfi_offset s10, 88 - FRAME
    .cfi_offset s11, 96 - FRAME
    .cfi_offset fs0, 104 - FRAME
    .cfi_offset fs1, 112 - FRAME
    .cfi_offset fs2, 120 - FRAME
    .cfi_offset fs3, 128 - FRAME
    .cfi_offset fs4, 136 - FRAME
    .cfi_offset fs5, 144 - FRAME
    .cfi_offset fs6, 152 - FRAME
    .cfi_offset fs7, 160 - FRAME
    .cfi_offset fs8, 168 - FRAME
    .cfi_offset fs9, 176 - FRAME
    .cfi_offset fs10, 184 - FRAME
    .cfi_offset fs11, 192 - FRAME
1:  addi    sp, s1, -64         /* below the frame (s1 is 16-aligned) */
    jalr    a1
    mv      sp, s0
    j       2b
    .cfi_endproc
endfunc async__ctx_probe
