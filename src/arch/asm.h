/*
 * Assembler helpers shared by every src/arch/<cpu>/ assembly file (and the test
 * helpers in tests/arch/).  Include it as "../asm.h" from a .S file: the
 * path is relative to the including file, so no -I flag is needed.
 *
 *   function NAME[, export=1]   opens a routine: alignment, symbol type and,
 *                               when exported, global but hidden visibility
 *                               (ELF .hidden, Mach-O .private_extern); on
 *                               Mach-O the symbol gets the leading underscore
 *                               the C compiler adds to every C name.
 *   endfunc NAME                closes it (ELF .size).
 *   SYM(name)                   a C-visible symbol as the assembler must spell
 *                               it, for call/bl/lea.
 *
 * Every ELF object also gets a .note.GNU-stack section (the stack stays
 * non-executable) and, when the compiler builds with branch protection, a GNU
 * property note: x86_64 IBT for -fcf-protection=branch/full (__CET__ bit 0),
 * AArch64 BTI for -mbranch-protection=bti/standard
 * (__ARM_FEATURE_BTI_DEFAULT).  The x86_64 note never claims SHSTK: the
 * context switch moves between stacks without switching shadow stacks, so
 * marking it shadow-stack compatible would be a lie that the kernel would
 * enforce.  The AArch64 note never claims PAC: these routines do not sign
 * return addresses.
 */
#ifndef ASYNC_ARCH_ASM_H
#define ASYNC_ARCH_ASM_H

#define ASYNC_PASTE2(a, b) a##b
#define ASYNC_PASTE(a, b) ASYNC_PASTE2(a, b)

#if defined(__APPLE__)
#define SYM(name) ASYNC_PASTE(_, name)
#else
#define SYM(name) name
#endif

#if defined(__APPLE__)

.macro function name, export=1
    .text
    .p2align 4
    .if \export
    .globl _\name
    .private_extern _\name
    .endif
_\name:
.endm

.macro endfunc name
.endm

#else /* ELF */

.macro function name, export=1
    .text
    .p2align 4
    .if \export
    .globl \name
    .hidden \name
    .endif
    .type \name, %function
\name:
.endm

.macro endfunc name
    .size \name, . - \name
.endm

    .section .note.GNU-stack, "", %progbits
    .text

/* NT_GNU_PROPERTY_TYPE_0 note with one AND-ed feature word. */
.macro gnu_property_and type, bits
    .pushsection .note.gnu.property, "a"
    .p2align 3
    .long 4             /* n_namesz: "GNU\0" */
    .long 16            /* n_descsz: pr_type, pr_datasz, pr_data, padding */
    .long 5             /* n_type: NT_GNU_PROPERTY_TYPE_0 */
    .asciz "GNU"
    .long \type         /* pr_type */
    .long 4             /* pr_datasz */
    .long \bits         /* pr_data */
    .p2align 3          /* pad the descriptor to 8 bytes */
    .popsection
.endm

#if defined(__x86_64__) && defined(__CET__) && (__CET__ & 1)
    /* GNU_PROPERTY_X86_FEATURE_1_AND: IBT (bit 0) only, never SHSTK. */
    gnu_property_and 0xc0000002, 1
#endif
#if defined(__aarch64__) && defined(__ARM_FEATURE_BTI_DEFAULT)
    /* GNU_PROPERTY_AARCH64_FEATURE_1_AND: BTI (bit 0) only, no PAC. */
    gnu_property_and 0xc0000000, 1
#endif

#endif /* ELF */

/*
 * Landing pads.  They are emitted unconditionally: endbr64 and bti are
 * hint-space instructions that execute as NOPs on CPUs (or processes)
 * without IBT/BTI, so one object works everywhere.
 */
#if defined(__x86_64__)
#define ENDBR endbr64
#elif defined(__aarch64__)
#define BTI_C hint #34
#define BTI_J hint #36
#define BTI_JC hint #38
#endif

#endif /* ASYNC_ARCH_ASM_H */
