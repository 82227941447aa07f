/*
 * Task-local context: asyncio's contextvars, in C.
 *
 * A key (ContextVar) names a slot; each task sees its own value per key.
 * A spawned task starts with the values of the task (or callback) that
 * spawned it, as asyncio copies the context at create_task: later sets in
 * either are not seen by the other.  Callbacks scheduled from a task with
 * call_soon / call_later / call_at or add_done_callback see that task's
 * values as they were when the callback was scheduled, as asyncio's
 * callbacks run in a copy of the scheduler's context.  Typical use: a
 * request id that every log line of a request's tasks prints.
 *
 *     static async_context_key *request_id;     // made once at start-up
 *     async_context_key_new(&request_id, free);
 *     async_context_set(request_id, strdup("req-42"));   // in a task
 *     const char *id = async_context_get(request_id);    // in it or children
 *
 * Cost: a task that never sets a value carries one NULL pointer; spawning
 * from it costs a NULL check.  Copies are shared (copy-on-write), so a
 * spawn from a task with values is one reference count increment.
 *
 * Differences from asyncio: values are plain pointers; set() works in
 * tasks only (a callback may read but not set); call_soon_threadsafe and
 * run_coroutine_threadsafe carry no context to the other loop (asyncio
 * copies the calling thread's context, usually empty there).
 */
#ifndef ASYNC_CONTEXT_H
#define ASYNC_CONTEXT_H

#include <async/error.h>
#include <async/version.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct async_context_key async_context_key;

/* Called once per value when no context refers to it any more (it was
 * replaced, or the last task or callback holding it went away). */
typedef void (*async_context_destroy_fn)(void *value);

/*
 * Creates a key (contextvars.ContextVar).  `destroy` (may be NULL) is
 * called for each value that stops being referenced.  Returns 0,
 * ASYNC_EINVAL (NULL out) or ASYNC_ENOMEM.
 */
ASYNC_API int async_context_key_new(async_context_key **out,
                                    async_context_destroy_fn destroy);

/* Drops the creator's reference to the key; values still set keep it alive
 * until they go.  Any thread; NULL is ignored. */
ASYNC_API void async_context_key_free(async_context_key *key);

/*
 * Sets the current task's value for key (ContextVar.set); the previous
 * value of this task is released (destroyed if nothing else refers to it).
 * Children spawned earlier keep what they had.  NULL is a valid value
 * (distinct from unset only for async_context_lookup).  Returns 0,
 * ASYNC_EINVAL (NULL key), ASYNC_ENOTTASK or ASYNC_ENOMEM (nothing
 * changed).
 */
ASYNC_API int async_context_set(async_context_key *key, void *value);

/*
 * The value of key in the current task, or in the context the running
 * callback was scheduled with (ContextVar.get): 0 with *value, ASYNC_ENOENT
 * (not set there, or outside any task and context-carrying callback:
 * asyncio's LookupError) or ASYNC_EINVAL (NULL key or value).
 */
ASYNC_API int async_context_lookup(async_context_key *key, void **value);

/* async_context_lookup's value, or NULL when unset or unavailable. */
ASYNC_API void *async_context_get(async_context_key *key);

#ifdef __cplusplus
}
#endif

#endif
