/*
 * Big stack frames as Debian's gcc compiles them by default: this file is
 * built with -fno-stack-clash-protection (tests/meson.build), so each frame
 * is allocated with one stack-pointer subtraction and nothing touches the
 * pages in between.  Used by tests/test_stack_frames.c.
 */
#include <stddef.h>

#include "frames_unprotected.h"

__attribute__((noinline)) void frames_big_unprotected(void (*then)(void))
{
    char buf[FRAMES_UNPROTECTED_BYTES];

    /* The lowest byte first: the first touch is a whole frame below.  The
     * empty asm takes the array's address, so the compiler must give it
     * all of its bytes (clang shrinks a volatile array whose ends alone
     * are used). */
    ((volatile char *)buf)[0] = 1;
    __asm__ volatile("" : : "r"(buf) : "memory");
    if (then != NULL)
        then();
    ((volatile char *)buf)[sizeof buf - 1] = buf[0];
}
