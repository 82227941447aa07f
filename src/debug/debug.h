/*
 * What the files of src/debug/ share.
 */
#ifndef ASYNC_DEBUG_INTERNAL_H
#define ASYNC_DEBUG_INTERNAL_H

#include <stdio.h>

#include "core/internal.h"

/* Frames kept per task backtrace. */
#define ASYNC__BT_MAX 48

/* Where a dump goes: a FILE (file != NULL) or an fd; err is the first
 * write error (0: none), after which nothing more is written. */
typedef struct async__dbg_out {
    FILE *file;
    int fd;
    int err;
} async__dbg_out;

/* printf to o (each call's output is cut at 511 bytes). */
void async__dbg_printf(async__dbg_out *o, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Writes "function+0xoff (object)" for a code address, or the address and
 * "(object+0xoff)" where the symbol table has no name for it. */
void async__dbg_symbol(async__dbg_out *o, void *pc);
/* The same for a function's address (not a return address). */
void async__dbg_function(async__dbg_out *o, void *fn);

/* Every loop of the process (debugmode.c), and the switch-frame variant:
 * read by tools/gdb/libasync-gdb.py. */
extern async__list async__debug_loops;
extern const unsigned async__debug_fp_control;

/* Fills *info for t (see async_task_info). */
void async__task_info(struct async_task *t, async_task_info *info);

/*
 * Stores up to max return addresses of t's stack in pcs, innermost first,
 * and returns how many: for the running task its current stack, for a
 * suspended one the stack of its saved context (read without resuming
 * it), 0 for a task that has not started.  -1 where no unwinder is built
 * in (a CPU without async__ctx_probe).
 */
int async__task_backtrace(struct async_task *t, void **pcs, int max);

#endif
