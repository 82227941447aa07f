/*
 * Shared prelude of the ports of CPython's Lib/test/test_asyncio modules
 * (tests/test_asyncio_*.c): a fresh loop per case with leak checks, and an
 * exception handler that records what it was told.
 */
#ifndef ASYNC_TEST_ASYNCIO_PORT_H
#define ASYNC_TEST_ASYNCIO_PORT_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include <async.h>

#include "helpers.h"

static async_loop *L;
static th_leaks port_leaks;

/* What the exception handler saw. */
static struct {
    int n;            /* reports */
    int error;        /* last error */
    char msg[96];     /* last message */
} EXC;

static void port_handler(async_loop *loop, const async_exception_context *ctx,
                         void *arg)
{
    (void)loop;
    (void)arg;
    EXC.n++;
    EXC.error = ctx->error;
    snprintf(EXC.msg, sizeof(EXC.msg), "%s", ctx->message ? ctx->message : "");
}

static int setup(void **state)
{
    (void)state;
    memset(&EXC, 0, sizeof(EXC));
    th_leaks_begin(&port_leaks);
    int rc = async_loop_new(&L);
    if (rc == 0)
        async_loop_set_exception_handler(L, port_handler, NULL);
    return rc;
}

static int teardown(void **state)
{
    (void)state;
    if (L)
        async_loop_free(L);
    L = NULL;
    th_leaks_end(&port_leaks);
    return 0;
}

/* Runs fn(arg) as a task to completion; returns its code, *result its
 * result. */
static inline int port_run(async_fn fn, void *arg, void **result)
{
    async_task *t;
    int rc = async_loop_spawn(L, &t, fn, arg, NULL);
    if (rc)
        return rc;
    rc = async_loop_run_until_complete(L, t, result);
    async_task_unref(t);
    return rc;
}

/* Runs one loop iteration (asyncio's test_utils.run_briefly). */
static inline void port_run_briefly(void)
{
    async_loop_stop(L);
    async_loop_run_forever(L);
}

#define PORT_TEST(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

#endif
