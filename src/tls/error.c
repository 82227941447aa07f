/*
 * TLS failure messages: what went wrong, in words, with OpenSSL's reason.
 * Each failure is kept per session and per thread (the last one), because
 * an error code alone cannot say "hostname mismatch" or "unknown ca".
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <openssl/err.h>

#include "tls/tls_internal.h"

/* The last failure in this thread, for async_tls_last_error(). */
static _Thread_local char last_error[ASYNC_TLS_ERRLEN];

/* Appends ": reason (library)" for the oldest error OpenSSL queued. */
static void append_openssl_reason(char *msg, size_t size)
{
    unsigned long e = ERR_peek_error();
    if (!e)
        return;
    size_t used = strlen(msg);
    const char *reason = ERR_reason_error_string(e);
    const char *lib = ERR_lib_error_string(e);
    if (reason && lib)
        snprintf(msg + used, size - used, ": %s (%s)", reason, lib);
    else if (reason)
        snprintf(msg + used, size - used, ": %s", reason);
    else {
        char code[128];
        ERR_error_string_n(e, code, sizeof(code));
        snprintf(msg + used, size - used, ": %s", code);
    }
}

int async__tls_fail(async_tls *t, int err, const char *fmt, ...)
{
    char msg[ASYNC_TLS_ERRLEN];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    append_openssl_reason(msg, sizeof(msg));
    ERR_clear_error();
    memcpy(last_error, msg, sizeof(msg));
    if (t)
        memcpy(async__tls_errbuf(t), msg, sizeof(msg));
    return err;
}

const char *async_tls_last_error(void)
{
    return last_error;
}
