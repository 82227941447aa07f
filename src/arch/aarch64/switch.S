/*
 * AArch64 (AAPCS64) context switch (ELF and Mach-O); the contract is in
 * src/arch/context.h.
 *
 * A suspended context is one pointer: its stack pointer.  Below it, on the
 * context's own stack, async__ctx_switch() has stored every register AAPCS64
 * makes callee-saved: x19-x28, the frame pointer x29, the link register x30
 * (where the context resumes) and the low 64 bits of v8-v15 (d8-d15).
 *
 * With ASYNC_SAVE_FP_CONTROL defined (meson -Dsave_fp_control=true) FPCR
 * (rounding mode, flush-to-zero, trap enables) travels with the context as
 * well.  The default build leaves it alone, as Go, libdill and neco do;
 * docs/design.md has the measured cost.  FPSR (the sticky exception flags) is
 * never switched: like errno it is status, not configuration.
 *
 * The routines do not sign return addresses (x30 is stored as the caller
 * left it, signed or not, and used by ret), so the object is marked BTI
 * compatible only, never PAC.
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

#if defined(ASYNC_SAVE_FP_CONTROL)
#define FRAME 176
#else
#define FRAME 160
#endif

/*
 * void *async__ctx_switch(void **from /x0/, void *to /x1/, void *arg /x2/)
 *
 * Saved: x19-x28, x29 (fp), x30 (lr = resume point), sp (stored in *from),
 * d8-d15; with ASYNC_SAVE_FP_CONTROL also FPCR.
 *
 * Frame on the suspended stack, saved sp = S (always 16-byte aligned):
 *
 *   S+160  FPCR (8 bytes, +8 padding)   only with ASYNC_SAVE_FP_CONTROL
 *   S+144  d14, d15
 *   S+128  d12, d13
 *   S+112  d10, d11
 *   S+96   d8,  d9
 *   S+80   x29, x30
 *   S+64   x27, x28
 *   S+48   x25, x26
 *   S+32   x23, x24
 *   S+16   x21, x22
 *   S+0    x19, x20
 *
 * Scratch: x9, x10 (and the flags).  On the way out `arg` goes into x0:
 * the return value of a suspended async__ctx_switch() and the argument of a
 * fresh context's entry.  The resume point is reached with ret, not br: a
 * br must land on a BTI pad, which the instruction after a bl is not, while
 * ret is not checked by BTI.
 */
function CTX_SWITCH
    .cfi_startproc
    BTI_C
    sub     sp, sp, #FRAME
    .cfi_def_cfa_offset FRAME
    stp     x19, x20, [sp, #0]
    stp     x21, x22, [sp, #16]
    stp     x23, x24, [sp, #32]
    stp     x25, x26, [sp, #48]
    stp     x27, x28, [sp, #64]
    stp     x29, x30, [sp, #80]
    .cfi_offset x29, 80 - FRAME
    .cfi_offset x30, 88 - FRAME
    stp     d8, d9, [sp, #96]
    stp     d10, d11, [sp, #112]
    stp     d12, d13, [sp, #128]
    stp     d14, d15, [sp, #144]
#if defined(ASYNC_SAVE_FP_CONTROL)
    mrs     x9, fpcr
    str     x9, [sp, #160]
#endif
    /* The switch proper; both stacks hold the same layout, so the CFI
     * describes the new stack as well as the old one. */
    mov     x10, sp
    str     x10, [x0]
    mov     sp, x1
#if defined(ASYNC_SAVE_FP_CONTROL)
    /* Writing FPCR can be slow (it may serialize FP execution); skip it
     * when the incoming value equals the one in force (x9). */
    ldr     x10, [sp, #160]
    cmp     x9, x10
    b.eq    1f
    msr     fpcr, x10
1:
#endif
    ldp     x19, x20, [sp, #0]
    ldp     x21, x22, [sp, #16]
    ldp     x23, x24, [sp, #32]
    ldp     x25, x26, [sp, #48]
    ldp     x27, x28, [sp, #64]
    ldp     x29, x30, [sp, #80]
    ldp     d8, d9, [sp, #96]
    ldp     d10, d11, [sp, #112]
    ldp     d12, d13, [sp, #128]
    ldp     d14, d15, [sp, #144]
    add     sp, sp, #FRAME
    .cfi_def_cfa_offset 0
    .cfi_restore x29
    .cfi_restore x30
    mov     x0, x2
    ret
    .cfi_endproc
endfunc CTX_SWITCH

/*
 * void *async__ctx_make(void *stack_top /x0/, void (*entry)(void *) /x1/)
 *
 * Builds, below T = stack_top rounded down to 16, the frame that
 * async__ctx_switch() pops, and returns its stack pointer S = T - FRAME:
 * x19 = entry, x30 = the trampoline, x29 = 0 and every other slot 0; with
 * ASYNC_SAVE_FP_CONTROL the caller's FPCR, so a fresh context starts with
 * the creating thread's FP configuration.  After the pop, sp is T.
 */
function CTX_MAKE
    .cfi_startproc
    BTI_C
    and     x0, x0, #~15
    sub     x0, x0, #FRAME
    stp     x1, xzr, [x0, #0]
    stp     xzr, xzr, [x0, #16]
    stp     xzr, xzr, [x0, #32]
    stp     xzr, xzr, [x0, #48]
    stp     xzr, xzr, [x0, #64]
#if defined(__APPLE__)
    adrp    x9, SYM(CTX_TRAMPOLINE)@PAGE
    add     x9, x9, SYM(CTX_TRAMPOLINE)@PAGEOFF
#else
    adr     x9, CTX_TRAMPOLINE
#endif
    stp     xzr, x9, [x0, #80]
    stp     xzr, xzr, [x0, #96]
    stp     xzr, xzr, [x0, #112]
    stp     xzr, xzr, [x0, #128]
    stp     xzr, xzr, [x0, #144]
#if defined(ASYNC_SAVE_FP_CONTROL)
    mrs     x9, fpcr
    stp     x9, xzr, [x0, #160]
#endif
    ret
    .cfi_endproc
endfunc CTX_MAKE

/*
 * First code a fresh context runs, "returned to" by async__ctx_switch() with
 * sp = T (16-byte aligned, as AAPCS64 requires at every public interface),
 * x19 = entry, x0 = arg, x29 = 0.
 *
 * It is reached by ret, which BTI does not check; the landing pad is there
 * anyway so that nothing breaks if a future switch variant uses br.
 *
 * CFI: the link register column is undefined, DWARF's way of saying
 * "outermost frame", and x29 = 0 ends frame-record walks, so debuggers and
 * unwinders stop here instead of wandering above the stack top.
 */
function CTX_TRAMPOLINE, export=0
    .cfi_startproc
    .cfi_undefined x30
    BTI_JC
    mov     x29, #0
    mov     x30, #0
    blr     x19
    /* entry must not return; if it does, report and abort. */
    bl      SYM(async__ctx_entry_returned)
    brk     #0x1
    .cfi_endproc
endfunc CTX_TRAMPOLINE
