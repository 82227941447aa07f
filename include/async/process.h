/*
 * Subprocesses: asyncio's create_subprocess_exec, Process.wait / kill /
 * returncode and communicate(), in C.
 *
 * async_process_spawn() starts a child with fork + exec and returns a
 * handle.  Each of the child's stdin, stdout and stderr is inherited,
 * connected to a pipe whose parent end is non-blocking and close-on-exec
 * (read and write it with the I/O API, or let async_process_run() do it),
 * connected to /dev/null, or (stderr only) merged into stdout.  Every other
 * descriptor is closed in the child: it starts with exactly 0, 1 and 2.
 *
 * Waiting for the exit never blocks the loop: on Linux the handle holds a
 * pidfd that becomes readable when the child exits; where pidfds are not
 * available a small helper thread per child waits for it (without reaping)
 * and signals the loop through a pipe.  No SIGCHLD handler is installed.
 *
 * Exit status (asyncio's returncode): a value >= 0 is the exit code passed
 * to exit(); a negative value -N means the child was killed by signal N.
 *
 * Reaping and ownership: the handle owns the child until it is reaped,
 * which happens inside async_process_wait() once the child has exited, or
 * in async_process_free().  Freeing a child that has not been reaped sends
 * it SIGKILL and reaps it (a short blocking waitpid), so no zombie is ever
 * left behind.  Do not reap the child yourself (waitpid(-1, ...), SIGCHLD
 * set to SIG_IGN): the handle would then report -ECHILD.
 *
 * A handle belongs to one loop (the one running when it was spawned, or
 * opts->loop) and must be used from that loop's thread.  If that loop is
 * closed first, the handle stays valid for async_process_free() and the
 * non-waiting accessors.
 */
#ifndef ASYNC_PROCESS_H
#define ASYNC_PROCESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <async/error.h>
#include <async/loop.h>
#include <async/version.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct async_process async_process;

/* What the child gets as one of its standard streams. */
typedef enum async_process_stdio {
    ASYNC_PROCESS_INHERIT = 0, /* the parent's own fd 0, 1 or 2 */
    ASYNC_PROCESS_PIPE,        /* a pipe; the parent's end is non-blocking */
    ASYNC_PROCESS_DEVNULL,     /* /dev/null */
    ASYNC_PROCESS_STDOUT,      /* stderr only: whatever stdout is */
} async_process_stdio;

/* Which standard stream (the child's fd number). */
enum {
    ASYNC_PROCESS_STDIN_FD = 0,
    ASYNC_PROCESS_STDOUT_FD = 1,
    ASYNC_PROCESS_STDERR_FD = 2,
};

/* How to start a child; zero-initialise and set what you need. */
typedef struct async_process_opts {
    /* Program and arguments, NULL-terminated; argv[0] is the program.  A
     * name without '/' is searched in the parent's PATH, like execvp. */
    const char *const *argv;
    /* Environment ("NAME=value", NULL-terminated); NULL inherits ours. */
    const char *const *envp;
    /* Working directory of the child; NULL keeps ours. */
    const char *cwd;
    async_process_stdio stdin_mode;  /* default: inherit */
    async_process_stdio stdout_mode; /* default: inherit */
    async_process_stdio stderr_mode; /* default: inherit */
    /* Loop the handle belongs to; NULL = the running loop. */
    async_loop *loop;
} async_process_opts;

/*
 * Starts a child process.  On success returns 0 and stores a new handle in
 * *out; the caller owns it and releases it with async_process_free().
 *
 * Errors (nothing was started, or the child failed before exec and has
 * been reaped; no descriptor is leaked; *out is untouched):
 *   ASYNC_EINVAL   opts or out NULL, argv NULL or empty, argv[0] empty, a
 *                  stdio mode out of range, or ASYNC_PROCESS_STDOUT for
 *                  stdin/stdout
 *   ASYNC_ENOLOOP  opts->loop NULL and no loop is running
 *   ASYNC_ECLOSED  the loop is closed
 *   ASYNC_ENOENT   the program (or a PATH entry for it) does not exist,
 *                  or cwd does not exist
 *   -EACCES, -ENOEXEC, -ENOTDIR, ...  exec or chdir failed in the child
 *                  with that errno
 *   ASYNC_ENOMEM, ASYNC_EMFILE, ASYNC_ENFILE, ASYNC_EAGAIN (fork, pipes,
 *                  the helper thread)
 * The call blocks the loop only until the child has exec'd (a CLOEXEC pipe
 * reports exec failures), which is short.
 */
ASYNC_API int async_process_spawn(const async_process_opts *opts,
                                  async_process **out);

/* The child's process id (valid until async_process_free), or -1 for
 * NULL. */
ASYNC_API pid_t async_process_pid(const async_process *p);

/*
 * The parent's end of the pipe for the child's stream `which`
 * (ASYNC_PROCESS_STDIN_FD, _STDOUT_FD or _STDERR_FD), or -1 if that stream
 * is not a pipe, was closed with async_process_close_fd(), or p is NULL or
 * which is out of range.  The fd is non-blocking and close-on-exec and
 * stays owned by the handle: do not close it yourself.
 */
ASYNC_API int async_process_fd(const async_process *p, int which);

/*
 * Closes the parent's end of the pipe `which` now (e.g. stdin, so that the
 * child sees end-of-file).  Tasks waiting on the fd are woken with
 * ASYNC_EBADF.  Returns 0, ASYNC_EINVAL (NULL or which out of range) or
 * ASYNC_EBADF (no such pipe, or already closed).
 */
ASYNC_API int async_process_close_fd(async_process *p, int which);

/*
 * Waits, without blocking the loop, until the child has exited, reaps it,
 * and stores its status (>= 0 exit code, < 0 minus the signal number) in
 * *status if status is not NULL.  Returns at once if it was reaped already.
 * `timeout` is in nanoseconds; negative waits forever.
 * Returns 0, ASYNC_EINVAL (NULL p), ASYNC_ENOTTASK (not in a task),
 * ASYNC_EWRONGLOOP (in a task of another loop), ASYNC_ECLOSED (the
 * handle's loop was closed), ASYNC_ETIMEDOUT (the
 * child is still running; also when a deadline scope ends), ASYNC_ECANCELED
 * (the waiting task was cancelled; the child is still owned by the handle
 * and is reaped by a later wait or by async_process_free), or -ECHILD (the
 * child was reaped behind the handle's back).  Several tasks may wait at
 * once; all get the same status.
 */
ASYNC_API int async_process_wait(async_process *p, int64_t timeout,
                                 int *status);

/*
 * Sends signal `sig` to the child (SIGTERM, SIGKILL, ...).  Once the child
 * has been reaped this does nothing and returns 0, so a recycled pid is
 * never signalled (asyncio ignores kill() after the exit too).  Returns 0,
 * ASYNC_EINVAL (NULL p, bad signal number) or another failure of kill(2),
 * negated (-EPERM).
 */
ASYNC_API int async_process_kill(async_process *p, int sig);

/* True once the child has been reaped (its status is known). */
ASYNC_API bool async_process_done(const async_process *p);

/*
 * The status of a reaped child (>= 0 exit code, < 0 minus the signal) in
 * *status.  Returns 0, ASYNC_EINVAL (NULL) or ASYNC_EPENDING (not reaped
 * yet: call async_process_wait).
 */
ASYNC_API int async_process_status(const async_process *p, int *status);

/*
 * Releases the handle: if the child has not been reaped it is sent SIGKILL
 * and reaped here (a short blocking waitpid); the pipes and every other
 * descriptor of the handle are closed (tasks still waiting on them are
 * woken with ASYNC_EBADF).  Must not be called while a task is parked in
 * async_process_wait() on this handle.  NULL is ignored.
 */
ASYNC_API void async_process_free(async_process *p);

/* ---- run a command and collect its output ------------------------------ */

/* What async_process_run() collected.  Free with
 * async_process_result_free(). */
typedef struct async_process_result {
    char *out;      /* everything the child wrote to stdout, NUL-terminated
                     * (malloc'd; never NULL after a successful run) */
    size_t out_len; /* bytes in out, not counting the NUL */
    char *err;      /* everything written to stderr, NUL-terminated
                     * (malloc'd; NULL when stderr was not captured) */
    size_t err_len; /* bytes in err */
    int status;     /* >= 0 exit code, < 0 minus the signal number */
} async_process_result;

/*
 * subprocess.run(capture_output=True, input=..., timeout=...): starts the
 * child described by opts, writes `input` (input_len bytes) to its stdin
 * and closes it, collects stdout and stderr concurrently (no deadlock
 * whatever the child writes), then reaps it.  Must be called from a task.
 *
 * The stdio modes of opts are overridden: stdin is a pipe when input is not
 * NULL and /dev/null otherwise; stdout is captured; stderr is captured too,
 * unless opts->stderr_mode is ASYNC_PROCESS_STDOUT (merged into out) or
 * ASYNC_PROCESS_DEVNULL (discarded); err is NULL then.  If the child stops
 * reading its stdin, the rest of the input is dropped, as asyncio's
 * communicate() does.
 *
 * `timeout` (ns, negative = none) bounds the whole run; when it expires the
 * child is killed with SIGKILL, reaped, and ASYNC_ETIMEDOUT is returned.
 *
 * Returns 0 with *res filled (the caller frees it with
 * async_process_result_free), or an error with *res zeroed and nothing to
 * free: the errors of async_process_spawn, ASYNC_EINVAL (res NULL, or
 * input NULL with input_len > 0), ASYNC_ENOTTASK, ASYNC_ETIMEDOUT,
 * ASYNC_ECANCELED (the task was cancelled: the child is killed and reaped),
 * ASYNC_ENOMEM, or a negated errno from read/write on the pipes.
 */
ASYNC_API int async_process_run(const async_process_opts *opts,
                                const void *input, size_t input_len,
                                int64_t timeout, async_process_result *res);

/* Frees what a successful async_process_run() stored and zeroes *res.
 * NULL is ignored. */
ASYNC_API void async_process_result_free(async_process_result *res);

#ifdef __cplusplus
}
#endif

#endif
