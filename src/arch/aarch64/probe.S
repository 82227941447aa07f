/*
 * AArch64: run a function on a suspended context's stack, so that an
 * unwinder started there walks that context's frames (used by the task
 * dump in src/debug/ to take a backtrace of every suspended task).
 *
 * void async__ctx_probe(void *sp /x0/, void (*fn)(void *) /x1/,
 *                       void *arg /x2/)
 *
 * `sp` is a stack pointer saved by async__ctx_switch() (switch.S documents
 * the frame above it: x19-x30 and d8-d15 in FRAME bytes).  fn(arg) is
 * called on the free stack below that frame, from a stub whose CFI
 * describes the suspended frame as async__ctx_switch's own CFI would: CFA =
 * sp + FRAME, every saved register at its slot, x30 (the resume address)
 * as the return address.  An unwinder (libgcc's _Unwind_Backtrace, glibc's
 * backtrace()) in fn therefore continues from the stub into the suspended
 * code, down to the context's trampoline, whose CFI ends the walk.  The
 * suspended frame is only read; the bytes below it are dead.
 *
 * The CFA is expressed through x19 (set to sp), which fn preserves.
 */
#include "../asm.h"

#if defined(ASYNC_SAVE_FP_CONTROL)
#define FRAME 176
#else
#define FRAME 160
#endif

function async__ctx_probe
    .cfi_startproc
    BTI_C
    stp     x29, x30, [sp, #-32]!
    .cfi_def_cfa_offset 32
    .cfi_offset x29, -32
    .cfi_offset x30, -24
    mov     x29, sp
    stp     x19, x20, [sp, #16]
    .cfi_offset x19, -16
    .cfi_offset x20, -8
    mov     x20, sp             /* our own stack, back after fn */
    mov     x19, x0             /* the suspended frame */
    mov     x0, x2
    b       1f
2:  ldp     x19, x20, [sp, #16]
    ldp     x29, x30, [sp], #32
    .cfi_def_cfa_offset 0
    .cfi_restore x19
    .cfi_restore x20
    .cfi_restore x29
    .cfi_restore x30
    ret
    .cfi_endproc

    /* The stub: from here to its end, the CFI describes the suspended
     * frame at x19. */
    .cfi_startproc
    .cfi_def_cfa x19, FRAME
    .cfi_offset x19, 0 - FRAME
    .cfi_offset x20, 8 - FRAME
    .cfi_offset x21, 16 - FRAME
    .cfi_offset x22, 24 - FRAME
    .cfi_offset x23, 32 - FRAME
    .cfi_offset x24, 40 - FRAME
    .cfi_offset x25, 48 - FRAME
    .cfi_offset x26, 56 - FRAME
    .cfi_offset x27, 64 - FRAME
    .cfi_offset x28, 72 - FRAME
    .cfi_offset x29, 80 - FRAME
    .cfi_offset x30, 88 - FRAME
    .cfi_offset d8, 96 - FRAME
    .cfi_offset d9, 104 - FRAME
    .cfi_offset d10, 112 - FRAME
    .cfi_offset d11, 120 - FRAME
    .cfi_offset d12, 128 - FRAME
    .cfi_offset d13, 136 - FRAME
    .cfi_offset d14, 144 - FRAME
    .cfi_offset d15, 152 - FRAME
1:  sub     sp, x19, #64        /* below the frame (x19 is 16-aligned) */
    blr     x1
    mov     sp, x20
    b       2b
    .cfi_endproc
endfunc async__ctx_probe
