/*
 * Test hooks of the executor (src/services/executor.c); not part of the public API.
 */
#ifndef ASYNC_EXECUTOR_INTERNAL_H
#define ASYNC_EXECUTOR_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include <async.h>

/* Jobs that began running on loop's pool threads so far (0 without a
 * pool).  A job counted here ran off the loop thread, since pool threads
 * never run the loop. */
uint64_t async__executor_jobs_run(async_loop *loop);

/* Threads loop's pool has started so far (0 without a pool). */
unsigned async__executor_threads(async_loop *loop);

/* Pool threads of every loop in the process that were started and not yet
 * joined: 0 once every pool was shut down (leak checks). */
unsigned async__executor_threads_unjoined(void);

/* True if f is the future of an executor job (the task dump shows a task
 * awaiting it as waiting for the executor). */
bool async__executor_owns(const async_future *f);

#endif
