/*
 * Task groups: asyncio.TaskGroup in C, a scope that owns the tasks spawned
 * into it.
 *
 *     async_group *g;
 *     int rc = async_group_new(&g);              // inside a task: the owner
 *     if (rc) return rc;
 *     rc = async_group_spawn(g, NULL, child, arg, NULL);
 *     if (rc == 0)
 *         rc = body(...);                        // the body
 *     rc = async_group_leave(g, rc);             // leave the scope
 *     async_group_free(g);
 *
 * Leaving the scope (async_group_leave, or async_group_wait for a body
 * that succeeded) waits for every child.  A body that leaves with an error
 * is asyncio's `async with` block raising: the error cancels the children,
 * the group waits for them as after a child failure, and the error is
 * listed by async_group_errors() after the children's errors.  The first
 * child that fails (returns an error other than ASYNC_ECANCELED) makes the
 * group cancel all other children and the body: the owner task gets a
 * cancellation request, so its current or next suspension point returns
 * ASYNC_ECANCELED, just as asyncio cancels the parent task.  The body
 * should then reach async_group_leave (passing on that ASYNC_ECANCELED, or
 * whatever error its cleanup ended with), which withdraws that request
 * (with async_task_uncancel) and returns the first error; the owner is not
 * left cancelled.  async_group_errors() lists every child error, like
 * ExceptionGroup.
 *
 * A cancellation from outside the group is never swallowed: if the owner
 * is cancelled by someone else (or a deadline scope expires) while the body
 * runs or while it waits, async_group_wait cancels the children, waits for
 * them, and returns ASYNC_ECANCELED (or ASYNC_ETIMEDOUT), and the owner
 * stays cancelled.  When children failed as well, their first error is
 * returned instead (as asyncio raises the ExceptionGroup), but the owner
 * still stays cancelled.  Groups nest: a group may be opened inside
 * another group's scope, by the same task or by a child.
 *
 * Children's errors count as retrieved: the group reports them, so they are
 * never logged as "Task exception was never retrieved".
 */
#ifndef ASYNC_GROUP_H
#define ASYNC_GROUP_H

#include <stdbool.h>
#include <stddef.h>

#include <async/error.h>
#include <async/task.h>
#include <async/version.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct async_group async_group;

/* Opens a group owned by the current task.  Returns 0, ASYNC_EINVAL (out
 * NULL), ASYNC_ENOTTASK or ASYNC_ENOMEM; *out is set only on success. */
ASYNC_API int async_group_new(async_group **out);

/*
 * Spawns fn(arg) as a child on the owner's loop (opts as async_spawn_opts,
 * may be NULL).  Any code may call it while the group is open; the group
 * keeps its own reference to the child until the child finishes.  *out (if
 * not NULL) receives a reference for the caller.  Returns 0, ASYNC_EINVAL
 * (NULL g or fn, bad opts), ASYNC_ESHUTDOWN (the group is shutting down
 * after a failure or cancellation, or its wait has finished), ASYNC_ECLOSED
 * or ASYNC_ENOMEM; on error nothing was spawned.
 */
ASYNC_API int async_group_spawn(async_group *g, async_task **out, async_fn fn,
                                void *arg, const async_task_opts *opts);

/*
 * Leaves the scope with the body's outcome `body_rc` (asyncio's
 * TaskGroup.__aexit__ with the exception the body raised, or none): waits
 * until every child has finished, cancelling them all if body_rc is an
 * error, if a child fails, or if the owner is cancelled or times out while
 * waiting.  Only the owner may call it.
 *
 * body_rc is 0 (the body succeeded), ASYNC_ECANCELED (the body was
 * cancelled: like asyncio's CancelledError it is not recorded as an error;
 * the call returns ASYNC_ECANCELED unless a child failed, or unless the
 * only cancellation was the group's own, withdrawn here), or any other
 * negative code: an error of the body, recorded after the children's
 * errors in async_group_errors() (asyncio's ExceptionGroup lists it last
 * too).
 *
 * Returns 0 when the body and every child succeeded (or children were
 * cancelled individually), else the first recorded error (a child's if
 * any failed, else the body's), ASYNC_ECANCELED (cancelled from outside,
 * or body_rc was ASYNC_ECANCELED), ASYNC_ETIMEDOUT (a deadline scope of
 * the owner expired), ASYNC_EINVAL (NULL g or body_rc > 0: nothing
 * happens), ASYNC_ENOTTASK, or ASYNC_EPERM (not the owner: nothing
 * happens).  Once it has returned, calling it (or async_group_wait) again
 * returns the same result at once, whatever body_rc.
 *
 * Difference from asyncio: one int stands for asyncio's ExceptionGroup --
 * the first error -- while async_group_errors() lists them all.
 */
ASYNC_API int async_group_leave(async_group *g, int body_rc);

/* async_group_leave(g, 0): leaves the scope after a body that succeeded. */
ASYNC_API int async_group_wait(async_group *g);

/*
 * Copies up to n errors -- the children's, in the order they failed, then
 * the body's (given to async_group_leave) -- into errors (may be NULL when
 * n is 0) and returns how many there are in all (0 for NULL).
 */
ASYNC_API size_t async_group_errors(const async_group *g, int *errors,
                                    size_t n);

/* Children still running (0 for NULL). */
ASYNC_API size_t async_group_running(const async_group *g);

/*
 * Frees the group.  Returns 0 (also for NULL) or ASYNC_EBUSY while children
 * still run (call async_group_wait first; nothing is freed).  If the group
 * cancelled its owner and async_group_wait never withdrew that request,
 * freeing withdraws it.
 */
ASYNC_API int async_group_free(async_group *g);

#ifdef __cplusplus
}
#endif

#endif
