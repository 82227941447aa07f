/*
 * What src/process/process.c, src/process/spawn.c and src/process/process_run.c share: the fork +
 * exec step, the deadline-based wait, and the pipe pumps.
 */
#ifndef ASYNC_PROCESS_INTERNAL_H
#define ASYNC_PROCESS_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <async/process.h>

/*
 * Forks and execs the child described by opts (already validated).  On
 * success returns 0, stores the pid and the parent's pipe ends (-1 where a
 * stream is not a pipe; non-blocking, close-on-exec) in parent_fds[0..2].
 * On failure returns a negative code, with the child (if one was forked)
 * reaped and every descriptor closed.
 */
int async__spawn(const async_process_opts *opts, pid_t *pid,
                 int parent_fds[3]);

/* async_process_wait with an absolute loop-time deadline (UINT64_MAX: none). */
int async__process_wait_until(async_process *p, uint64_t deadline,
                              int *status);

/* Test hook: forces the thread-based exit watcher even where pidfds work
 * (true), or goes back to probing for pidfd_open (false). */
void async__process_force_thread_watch(bool on);

/* Which exit watcher p uses: true for the helper thread, false for pidfd. */
bool async__process_uses_thread(const async_process *p);

#endif
