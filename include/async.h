/*
 * libasync: asyncio's model (event loop, coroutines, tasks, futures, gather,
 * sleep, run_until_complete) for C, on stackful coroutines.
 *
 * Include this one header.  The pieces live in include/async/:
 *   version.h  version macros, ASYNC_API
 *   error.h    error codes, async_strerror()
 *   loop.h     the event loop: lifecycle, callbacks, timers, fd watchers
 *   task.h     futures, tasks, await, sleep, cancellation, gather, async_run
 *   executor.h thread pool (run_in_executor, to_thread), async_getaddrinfo
 *   signal.h   signal watchers and loop signal handlers
 *   sync.h     Event, Lock, Semaphore, Condition, Barrier for tasks
 *   queue.h    FIFO, LIFO and priority queues between tasks
 *   group.h    task groups: a scope that owns its child tasks
 *   io.h       fd I/O in tasks: read, write, accept, connect, close
 *   net.h      addresses, TCP listen/connect, UDP
 *   process.h  subprocesses: spawn, wait, kill, run with captured output
 *   wait.h     asyncio.wait, as_completed, task-array combinators
 *   stream.h   buffered streams (StreamReader/Writer), connections, servers
 *   timeout.h  timeout objects: asyncio.timeout / timeout_at
 *   tls.h      TLS sessions over OpenSSL (only when ASYNC_HAVE_TLS is 1)
 *   debug.h    introspection: task list, await graph, dumps, debug mode
 *   threadsafe.h  thread-safe futures, run_coroutine_threadsafe, wrap_future
 *   context.h  task-local context (contextvars)
 */
#ifndef ASYNC_H
#define ASYNC_H

#include <async/version.h>
#include <async/error.h>
#include <async/loop.h>
#include <async/task.h>
#include <async/executor.h>
#include <async/signal.h>
#include <async/sync.h>
#include <async/queue.h>
#include <async/group.h>
#include <async/io.h>
#include <async/net.h>
#include <async/process.h>
#include <async/wait.h>
#include <async/stream.h>
#include <async/timeout.h>
#if ASYNC_HAVE_TLS
#include <async/tls.h>
#endif
#include <async/debug.h>
#include <async/threadsafe.h>
#include <async/context.h>

#endif
