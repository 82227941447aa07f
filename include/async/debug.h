/*
 * Seeing inside a running program: the tasks of a loop, what each one is
 * suspended on, who awaits whom, and a dump of that tree with a native
 * backtrace of every suspended task.  asyncio's all_tasks(),
 * capture_call_graph() / print_call_graph() and `python -m asyncio pstree`,
 * plus what Go prints on SIGQUIT.  docs/guide-debugging.md shows them at
 * work; tools/gdb/libasync-gdb.py does the same from gdb, on a live process
 * or a core file.
 *
 * Everything here reads the loop's state and changes nothing; call it on
 * the loop's thread (from a task, a callback, or between runs), never from
 * another thread or a signal handler: async_debug_dump_on_signal() is the
 * way to get a dump on a signal.
 */
#ifndef ASYNC_DEBUG_H
#define ASYNC_DEBUG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <async/error.h>
#include <async/loop.h>
#include <async/task.h>
#include <async/version.h>

#ifdef __cplusplus
extern "C" {
#endif

/* What a suspended task waits on (async_task_info.wait). */
typedef enum async_wait_kind {
    ASYNC_WAIT_NONE = 0,   /* not suspended, or in a wait not listed here */
    ASYNC_WAIT_FUTURE,     /* async_future_await on a plain future */
    ASYNC_WAIT_TASK,       /* async_task_await (a future that is a task) */
    ASYNC_WAIT_GATHER,     /* gather / wait_any / wait_for on several */
    ASYNC_WAIT_GROUP,      /* async_group_wait: the group's children */
    ASYNC_WAIT_LOCK,       /* async_lock_acquire */
    ASYNC_WAIT_SEMAPHORE,  /* async_semaphore_acquire */
    ASYNC_WAIT_CONDITION,  /* async_condition_wait */
    ASYNC_WAIT_EVENT,      /* async_event_wait */
    ASYNC_WAIT_BARRIER,    /* async_barrier_wait */
    ASYNC_WAIT_QUEUE,      /* a queue's get, put or join */
    ASYNC_WAIT_FD_READ,    /* an fd to become readable (read, accept...) */
    ASYNC_WAIT_FD_WRITE,   /* an fd to become writable (write, connect...) */
    ASYNC_WAIT_SLEEP,      /* async_sleep / async_sleep_until */
    ASYNC_WAIT_EXECUTOR,   /* a job running on the executor's threads */
    ASYNC_WAIT_PROCESS,    /* a subprocess to exit */
    ASYNC_WAIT_SIGNAL,     /* a signal watcher */
} async_wait_kind;

/* "lock", "fd-read", ...: a static string, "?" for an unknown value. */
ASYNC_API const char *async_wait_kind_name(async_wait_kind kind);

/* Where a task stands (async_task_info.state). */
typedef enum async_task_state {
    ASYNC_TASK_NEW = 0,     /* spawned; its body has not started yet */
    ASYNC_TASK_READY,       /* woken (or yielding): queued to run */
    ASYNC_TASK_RUNNING,     /* the task that is running now */
    ASYNC_TASK_SUSPENDED,   /* parked until something happens */
} async_task_state;

/* "new", "ready", "running", "suspended"; "?" for an unknown value. */
ASYNC_API const char *async_task_state_name(async_task_state state);

/* One task, as seen at the time of the call. */
typedef struct async_task_info {
    async_task *task;         /* borrowed: valid until the loop runs on */
    const char *name;         /* borrowed, as async_task_name() */
    uint64_t id;              /* N of the default name "Task-N" */
    async_task_state state;
    bool cancelling;          /* async_task_cancelling() */
    async_wait_kind wait;     /* ASYNC_WAIT_NONE unless SUSPENDED */
    const void *wait_object;  /* the future, lock, queue, group, process,
                               * signal watcher... waited on; NULL for fd
                               * waits and sleeps */
    int wait_fd;              /* the fd of an FD_READ/FD_WRITE wait, else -1 */
    uint64_t deadline;        /* when the current wait times out, on the
                               * loop's clock (async_loop_time), or
                               * UINT64_MAX; for a sleep, when it ends */
    async_task *parent;       /* for a child of a task group: the task that
                               * owns the group; else NULL */
    void *spawn_site;         /* in debug mode (async_loop_set_debug), the
                               * code address the task was spawned from;
                               * else NULL */
} async_task_info;

/*
 * asyncio.all_tasks(loop): the unfinished tasks of `loop`, in spawn order.
 * Fills out[0 .. min(cap, n)) and sets *count to n, the number of
 * unfinished tasks (call with cap 0 to size the array).  Returns 0, or
 * ASYNC_EINVAL (NULL loop or count, or out NULL with cap > 0).  The
 * pointers in the records are borrowed from the loop: they stay valid until
 * the loop runs again.
 */
ASYNC_API int async_loop_tasks(async_loop *loop, async_task_info *out,
                               size_t cap, size_t *count);

/* One edge of the await graph: `waiter` is suspended until `awaited`
 * completes. */
typedef struct async_await_edge {
    async_task *waiter;       /* the suspended task (borrowed) */
    async_future *awaited;    /* what it waits for (borrowed) */
    async_task *awaited_task; /* the task whose future `awaited` is, or NULL
                               * for a plain future */
    async_wait_kind kind;     /* FUTURE, TASK or EXECUTOR (one await),
                               * GATHER (one
                               * edge per child still pending) or GROUP
                               * (one edge per running child of a group the
                               * waiter owns, whatever the waiter is doing:
                               * a group is the parent of its children) */
} async_await_edge;

/*
 * The await graph of `loop` (asyncio.capture_call_graph, for every task
 * at once): one edge per (waiter, awaited) pair as described above, group
 * edges after await edges.  Fills out[0 .. min(cap, n)), sets *count to n.
 * Returns 0 or ASYNC_EINVAL (as async_loop_tasks).  Borrowed pointers, as
 * there.
 */
ASYNC_API int async_loop_await_graph(async_loop *loop, async_await_edge *out,
                                     size_t cap, size_t *count);

/* Flags of async_debug_dump(). */
enum {
    /* Each suspended task's native backtrace under its line, taken from
     * its saved context (function names where the symbol table has them:
     * link executables with -rdynamic to see their own functions). */
    ASYNC_DUMP_BACKTRACES = 1u << 0,
};

/*
 * Writes the tasks of `loop` as a tree (asyncio.print_call_graph /
 * `python -m asyncio pstree`): roots are tasks nobody awaits; under a task
 * come the tasks it awaits and the children of the groups it owns.  One
 * line per task: name, id, state, what it waits on (with the deadline),
 * "cancelling", the spawn site in debug mode; with ASYNC_DUMP_BACKTRACES
 * its backtrace follows.  A task awaited by several tasks appears under
 * the first; tasks in an await cycle are listed as roots.
 *
 * Safe from a task (the running task's own backtrace is taken directly),
 * a callback or outside the loop; the suspended tasks are not resumed and
 * nothing changes.  Returns 0, ASYNC_EINVAL (NULL loop or out), ASYNC_ENOMEM,
 * or the negated errno of a failed write (the dump is then incomplete).
 */
ASYNC_API int async_debug_dump(async_loop *loop, FILE *out, unsigned flags);

/* The same, written with write(2) to fd (no stdio buffer): returns as
 * async_debug_dump, ASYNC_EBADF for a negative fd. */
ASYNC_API int async_debug_dump_fd(async_loop *loop, int fd, unsigned flags);

/*
 * Go's SIGQUIT dump, opt-in: on each delivery of signo the loop writes the
 * dump (with backtraces, as async_debug_dump_fd) to fd.  fd < 0 removes it.
 * Uses the loop's signal handling (async_loop_add_signal_handler), so the
 * dump is written by the loop thread at its next iteration, from a
 * consistent state; unlike Go's, it cannot interrupt a task that never
 * yields (debug mode's slow-step report names that task once it does;
 * gdb with tools/gdb/libasync-gdb.py shows it at once).  fd must stay open
 * while the handler is set.  Returns 0 or the errors of
 * async_loop_add_signal_handler / async_loop_remove_signal_handler.
 */
ASYNC_API int async_debug_dump_on_signal(async_loop *loop, int signo, int fd);

/* ---- debug mode ---------------------------------------------------------- */

/*
 * asyncio's loop.set_debug().  Also on for every new loop when the
 * environment has ASYNC_DEBUG set to anything but "" or "0" (asyncio:
 * PYTHONASYNCIODEBUG).  In debug mode:
 *   - a step that runs longer than the slow-callback duration (default
 *     100 ms) is reported, to the debug output: a task step with the
 *     task's name, the duration, its spawn site and where it was resumed
 *     (the top of its backtrace before the step); a callback with its
 *     function;
 *   - calls into the loop from a thread other than the one running it
 *     (call_soon, call_later, call_at, add/remove_reader/writer, spawn,
 *     set_debug; on its futures set_result, set_error, cancel and
 *     add_done_callback, and async_task_cancel on its tasks) return
 *     ASYNC_EWRONGTHREAD and change nothing, instead of corrupting it
 *     (call_soon_threadsafe and async/threadsafe.h remain the ways in
 *     from other threads);
 *   - every task records where it was spawned (the first caller outside
 *     libasync; async_task_spawn_site), shown in the slow-step report, in
 *     the dump and in the default exception handler's reports about a task
 *     ("Task exception was never retrieved", "Task was destroyed but it is
 *     pending!");
 *   - every task step goes through the loop (the direct task-to-task
 *     switch is off), so each one is timed.
 * Off, it costs one predictable branch per loop iteration, per spawn and
 * per scheduling call.  Returns 0, ASYNC_EINVAL (NULL loop) or
 * ASYNC_EWRONGTHREAD.
 */
ASYNC_API int async_loop_set_debug(async_loop *loop, bool enabled);
/* asyncio's loop.get_debug(); false for NULL. */
ASYNC_API bool async_loop_get_debug(const async_loop *loop);

/* loop.slow_callback_duration, in nanoseconds (default 100 ms).  Returns 0
 * or ASYNC_EINVAL (NULL loop); the getter returns 0 for NULL. */
ASYNC_API int async_loop_set_slow_callback_duration(async_loop *loop,
                                                    uint64_t ns);
ASYNC_API uint64_t async_loop_slow_callback_duration(const async_loop *loop);

/* Where debug mode's reports go (NULL: stderr, the default); the stream is
 * borrowed and must outlive its use.  asyncio logs them instead.  Returns
 * 0 or ASYNC_EINVAL (NULL loop). */
ASYNC_API int async_loop_set_debug_output(async_loop *loop, FILE *out);

/* The code address t was spawned from (debug mode), or NULL (not in debug
 * mode, or NULL t).  async_debug_dump resolves it to a name. */
ASYNC_API void *async_task_spawn_site(const async_task *t);

#ifdef __cplusplus
}
#endif

#endif
