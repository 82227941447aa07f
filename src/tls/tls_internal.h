/*
 * Inside the TLS layer: the config and session objects, the transport a
 * session moves its ciphertext over, and the error-message helpers.
 *
 * A session never touches a socket itself.  OpenSSL reads and writes one
 * end of a BIO pair (two in-memory ring buffers); the engine in session.c
 * moves ciphertext between the other end and a transport: an fd through
 * async/io.h, or a stream transport (src/stream/) when TLS runs under a
 * StreamReader/StreamWriter.  See docs/design-tls.md.
 */
#ifndef ASYNC_TLS_INTERNAL_H
#define ASYNC_TLS_INTERNAL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <openssl/ssl.h>

#include <async.h>

/*
 * Where a session's ciphertext goes: read up to len bytes (count >= 1, 0 at
 * end of file, or a negative code) and write up to len bytes (count >= 1
 * or a negative code), each giving up at `deadline`.  Both run in a task
 * and may park it.
 */
typedef struct async__tls_io {
    ssize_t (*read)(void *ctx, void *buf, size_t len, uint64_t deadline);
    ssize_t (*write)(void *ctx, const void *buf, size_t len,
                     uint64_t deadline);
} async__tls_io;

struct async_tls_config {
    SSL_CTX *ctx;                /* OpenSSL's context; owned */
    int role;                    /* ASYNC_TLS_CLIENT or ASYNC_TLS_SERVER */
    int verify;                  /* ASYNC_TLS_VERIFY_* */
    int64_t handshake_timeout;   /* ns; < 0: none */
    unsigned char *alpn;         /* ALPN list in wire format (length-
                                    prefixed names), or NULL; owned */
    size_t alpn_len;             /* bytes of alpn */
    atomic_int refs;             /* references (atomic: configs are shared
                                    between loop threads) */
    atomic_bool frozen;          /* a session was made from it: read-only */
};

/* Creates a session moving ciphertext through io/ctx; as async_tls_new. */
int async__tls_new_io(async_tls **out, async_tls_config *cfg,
                      const async__tls_io *io, void *ctx,
                      const char *server_name);

/*
 * Hands bytes that were read from the transport before the session
 * existed (a stream's buffered bytes at STARTTLS time) to the session as
 * the first ciphertext.  Returns 0 or ASYNC_ENOSPC (more than the session's
 * input buffer holds).
 */
int async__tls_feed(async_tls *t, const void *buf, size_t len);

/*
 * Stores a failure message for this thread (and for t when not NULL) as
 * printf would, then appends OpenSSL's queued reason, if any, and empties
 * OpenSSL's error queue.  Returns `err`, so call sites can
 * `return async__tls_fail(...)`.
 */
int async__tls_fail(async_tls *t, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The per-session message buffer (ASYNC_TLS_ERRLEN bytes), for
 * async__tls_fail. */
char *async__tls_errbuf(async_tls *t);

#endif
