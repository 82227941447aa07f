/*
 * The TLS engine: one SSL object per session, fed through a BIO pair.
 *
 * OpenSSL owns one end of the pair and never sees a socket: every SSL_*
 * call here returns at once, having consumed ciphertext from the inbound
 * ring and appended ciphertext to the outbound ring.  Between those calls
 * the engine moves bytes between the rings and the transport with the
 * transport's own (parking, deadline-aware, cancellable) read and write,
 * straight from and into the rings (BIO_nread0 / BIO_nwrite0), so
 * ciphertext is copied no more often than with a socket BIO.
 *
 * Concurrency: one reader and any number of writers may use a session at
 * once from different tasks of its loop.  Each SSL_* call is atomic with
 * respect to task switches; what must not interleave is the draining of
 * the outbound ring and the sequence "make room, SSL_write", so both run
 * under the write lock.  Readers never wait for it: output a read produced
 * (a TLS 1.3 KeyUpdate reply) is flushed by the reader when the lock is
 * free, else by the holder, whose flush loop drains the ring to empty.
 * docs/design-tls.md has the state machine.
 */
#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "tls/tls_internal.h"

/* Ring sizes: transport -> OpenSSL holds two full records, OpenSSL ->
 * transport four, so a bulk write is one system call per ~64 KiB. */
#define IN_RING (40 * 1024)
#define OUT_RING (64 * 1024)

/* Plaintext per SSL_write (one record), and the ring room such a write
 * may need: the record's header, padding, MAC or tag, and a KeyUpdate. */
#define WRITE_CHUNK 16384
#define RECORD_ROOM (WRITE_CHUNK + 1024)

/* Session states. */
enum {
    TLS_NEW,   /* created, handshake not done */
    TLS_OPEN,  /* handshake done */
    TLS_DEAD,  /* fatal failure: every call returns dead_err */
};

struct async_tls {
    SSL *ssl;                /* OpenSSL's session; owns the inner BIO */
    BIO *net;                /* our end of the BIO pair */
    async_tls_config *cfg;   /* the configuration; one reference */
    async__tls_io io;        /* the transport's read and write */
    void *io_ctx;            /* their first argument */
    async_lock *wlock;       /* the write side: SSL_write + ring draining */
    int state;               /* TLS_NEW / TLS_OPEN / TLS_DEAD */
    int dead_err;            /* the code every call returns once dead */
    bool busy_read;          /* a task is in read or handshake */
    bool eof_in;             /* the transport reached end of file */
    bool sent_close;         /* our close_notify is queued */
    bool got_close;          /* the peer's close_notify arrived */
    char alpn[256];          /* the ALPN protocol agreed on, or "" */
    char err[ASYNC_TLS_ERRLEN]; /* the last failure's message */
};

/* ---- the fd transport ------------------------------------------------------ */

static ssize_t fd_read(void *ctx, void *buf, size_t len, uint64_t deadline)
{
    return async_read_deadline((int)(intptr_t)ctx, buf, len, deadline);
}

static ssize_t fd_write(void *ctx, const void *buf, size_t len,
                        uint64_t deadline)
{
    return async_write_deadline((int)(intptr_t)ctx, buf, len, deadline);
}

static const async__tls_io fd_io = {fd_read, fd_write};

/* ---- moving ciphertext ----------------------------------------------------- */

/* Writes the outbound ring to the transport until it is empty.  The
 * caller holds the write lock (or owns the session, in the handshake). */
static int flush_out(async_tls *t, uint64_t deadline)
{
    for (;;) {
        char *p;
        int n = BIO_nread0(t->net, &p);
        if (n <= 0)
            return 0;
        ssize_t w = t->io.write(t->io_ctx, p, (size_t)n, deadline);
        if (w < 0)
            return (int)w;
        BIO_nread(t->net, &p, (int)w);
    }
}

/* One transport write from the outbound ring (it is not empty). */
static int flush_some(async_tls *t, uint64_t deadline)
{
    char *p;
    int n = BIO_nread0(t->net, &p);
    if (n <= 0)
        return 0;
    ssize_t w = t->io.write(t->io_ctx, p, (size_t)n, deadline);
    if (w < 0)
        return (int)w;
    BIO_nread(t->net, &p, (int)w);
    return 0;
}

/* Flushes output a read produced, unless a writer holds the lock (its
 * flush loop will send it). */
static int flush_if_free(async_tls *t, uint64_t deadline)
{
    if (BIO_ctrl_pending(t->net) == 0 || async_lock_try_acquire(t->wlock) < 0)
        return 0;
    int rc = flush_out(t, deadline);
    async_lock_release(t->wlock);
    return rc;
}

/* One transport read into the inbound ring: 1, 0 at end of file, or a
 * negative code.  Only the one reading task calls it. */
static int fill_in(async_tls *t, uint64_t deadline)
{
    char *p;
    int room = BIO_nwrite0(t->net, &p);
    if (room <= 0)
        return ASYNC_ENOSPC;
    ssize_t n = t->io.read(t->io_ctx, p, (size_t)room, deadline);
    if (n < 0)
        return (int)n;
    if (n == 0) {
        t->eof_in = true;
        return 0;
    }
    BIO_nwrite(t->net, &p, (int)n);
    return 1;
}

/* ---- creation ------------------------------------------------------------------ */

/* Client side: certificate checks, SNI and the host name to match. */
static int setup_client(async_tls *t, const char *name)
{
    async_tls_config *cfg = t->cfg;
    bool verify = cfg->verify == ASYNC_TLS_VERIFY_REQUIRED;
    SSL_set_verify(t->ssl, verify ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, NULL);
    SSL_set_connect_state(t->ssl);
    if (!name)
        return 0;
    unsigned char ip[16];
    bool literal = inet_pton(AF_INET, name, ip) == 1 ||
                   inet_pton(AF_INET6, name, ip) == 1;
    if (literal) {
        /* RFC 6066: SNI carries host names only. */
        if (verify &&
            X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(t->ssl), name) != 1)
            return ASYNC_ENOMEM;
        return 0;
    }
    if (SSL_set_tlsext_host_name(t->ssl, name) != 1)
        return ASYNC_EINVAL;
    if (verify) {
        SSL_set_hostflags(t->ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
        if (SSL_set1_host(t->ssl, name) != 1)
            return ASYNC_ENOMEM;
    }
    return 0;
}

/* Server side: which client certificates to ask for. */
static void setup_server(async_tls *t)
{
    static const int modes[] = {
        [ASYNC_TLS_VERIFY_NONE] = SSL_VERIFY_NONE,
        [ASYNC_TLS_VERIFY_OPTIONAL] = SSL_VERIFY_PEER,
        [ASYNC_TLS_VERIFY_REQUIRED] =
            SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT,
    };
    SSL_set_verify(t->ssl, modes[t->cfg->verify], NULL);
    SSL_set_accept_state(t->ssl);
}

/* Arguments of async__tls_new_io; 0 or an error with a message. */
static int check_new(async_tls **out, async_tls_config *cfg,
                     const async__tls_io *io, const char *name)
{
    if (!out || !cfg || !io)
        return ASYNC_EINVAL;
    if (cfg->role == ASYNC_TLS_SERVER) {
        if (name)
            return async__tls_fail(NULL, ASYNC_EINVAL,
                                   "a server session takes no server name");
        if (!SSL_CTX_get0_certificate(cfg->ctx))
            return async__tls_fail(NULL, ASYNC_EINVAL,
                                   "server config has no certificate "
                                   "(async_tls_config_load_cert)");
        return 0;
    }
    if (cfg->verify == ASYNC_TLS_VERIFY_REQUIRED && (!name || !*name))
        return async__tls_fail(NULL, ASYNC_EINVAL,
                               "a verifying client needs the server's name");
    return 0;
}

int async__tls_new_io(async_tls **out, async_tls_config *cfg,
                      const async__tls_io *io, void *ctx,
                      const char *server_name)
{
    int rc = check_new(out, cfg, io, server_name);
    if (rc < 0)
        return rc;
    async_tls *t = calloc(1, sizeof(*t));
    if (!t)
        return ASYNC_ENOMEM;
    BIO *inner = NULL;
    rc = ASYNC_ENOMEM;
    if (async_lock_new(&t->wlock) < 0)
        goto fail_lock;
    t->ssl = SSL_new(cfg->ctx);
    if (!t->ssl)
        goto fail_ssl;
    if (BIO_new_bio_pair(&inner, OUT_RING, &t->net, IN_RING) != 1)
        goto fail_bio;
    SSL_set_bio(t->ssl, inner, inner);
    SSL_set_options(t->ssl, SSL_OP_NO_RENEGOTIATION);
    t->cfg = async_tls_config_ref(cfg);
    t->io = *io;
    t->io_ctx = ctx;
    rc = 0;
    if (cfg->role == ASYNC_TLS_CLIENT)
        rc = setup_client(t, server_name);
    else
        setup_server(t);
    if (rc < 0)
        goto fail_setup;
    atomic_store(&cfg->frozen, true);
    ERR_clear_error();
    *out = t;
    return 0;

fail_setup:
    async_tls_config_unref(t->cfg);
    BIO_free(t->net);
fail_bio:
    SSL_free(t->ssl);
fail_ssl:
    async_lock_free(t->wlock);
fail_lock:
    free(t);
    ERR_clear_error();
    return rc;
}

int async_tls_new(async_tls **out, async_tls_config *cfg, int fd,
                  const char *server_name)
{
    if (fd < 0)
        return ASYNC_EINVAL;
    return async__tls_new_io(out, cfg, &fd_io, (void *)(intptr_t)fd,
                             server_name);
}

int async__tls_feed(async_tls *t, const void *buf, size_t len)
{
    while (len > 0) {
        char *p;
        int room = BIO_nwrite0(t->net, &p);
        if (room <= 0)
            return ASYNC_ENOSPC;
        size_t n = len < (size_t)room ? len : (size_t)room;
        memcpy(p, buf, n);
        BIO_nwrite(t->net, &p, (int)n);
        buf = (const char *)buf + n;
        len -= n;
    }
    return 0;
}

void async_tls_free(async_tls *t)
{
    if (!t)
        return;
    SSL_free(t->ssl);
    BIO_free(t->net);
    async_lock_free(t->wlock);
    async_tls_config_unref(t->cfg);
    free(t);
}

/* ---- handshake ------------------------------------------------------------------ */

/* The session failed for good: remember the code for every later call. */
static int die(async_tls *t, int err)
{
    t->state = TLS_DEAD;
    t->dead_err = err;
    return err;
}

/* Names the reason of a failed SSL_do_handshake. */
static int handshake_error(async_tls *t, const char *name)
{
    long vr = SSL_get_verify_result(t->ssl);
    if (vr == X509_V_ERR_HOSTNAME_MISMATCH || vr == X509_V_ERR_IP_ADDRESS_MISMATCH) {
        ERR_clear_error();
        return async__tls_fail(t, ASYNC_ECERT,
                               "certificate verify failed: %s (expected \"%s\")",
                               X509_verify_cert_error_string(vr),
                               name ? name : "");
    }
    if (vr != X509_V_OK) {
        ERR_clear_error();
        return async__tls_fail(t, ASYNC_ECERT, "certificate verify failed: %s",
                               X509_verify_cert_error_string(vr));
    }
    unsigned long e = ERR_peek_error();
    if (ERR_GET_LIB(e) == ERR_LIB_SSL &&
        ERR_GET_REASON(e) == SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE)
        return async__tls_fail(t, ASYNC_ECERT, "handshake failed");
    if (!e && t->eof_in)
        return async__tls_fail(t, ASYNC_ECONNRESET,
                               "peer closed the connection during the handshake");
    return async__tls_fail(t, ASYNC_ETLS, "handshake failed");
}

/* The handshake's transport failure, with a message. */
static int handshake_io_error(async_tls *t, int err)
{
    if (err == ASYNC_ETIMEDOUT)
        return async__tls_fail(t, err, "handshake timed out");
    return async__tls_fail(t, err, "handshake: %s", async_strerror(err));
}

/* Runs SSL_do_handshake to completion; the caller holds the write lock. */
static int handshake_loop(async_tls *t, uint64_t deadline)
{
    for (;;) {
        ERR_clear_error();
        int r = SSL_do_handshake(t->ssl);
        int e = r == 1 ? SSL_ERROR_NONE : SSL_get_error(t->ssl, r);
        if (e != SSL_ERROR_NONE && e != SSL_ERROR_WANT_READ &&
            e != SSL_ERROR_WANT_WRITE) {
            const char *name = SSL_get_servername(t->ssl, TLSEXT_NAMETYPE_host_name);
            int rc = handshake_error(t, name);
            flush_out(t, deadline); /* best effort: our alert */
            return rc;
        }
        int rc = flush_out(t, deadline);
        if (rc < 0)
            return handshake_io_error(t, rc);
        if (e == SSL_ERROR_NONE)
            return 0;
        if (e == SSL_ERROR_WANT_WRITE)
            continue;
        if (t->eof_in)
            return async__tls_fail(t, ASYNC_ECONNRESET,
                                   "peer closed the connection during the handshake");
        rc = fill_in(t, deadline);
        if (rc < 0)
            return handshake_io_error(t, rc);
    }
}

/* Common entry checks: 0 when the session can do I/O from this task. */
static int check_io(const async_tls *t)
{
    if (!t)
        return ASYNC_EINVAL;
    if (t->state == TLS_DEAD)
        return t->dead_err;
    if (!async_current_task())
        return ASYNC_ENOTTASK;
    return t->state == TLS_OPEN ? 0 : ASYNC_ENOTCONN;
}

int async_tls_handshake(async_tls *t, uint64_t deadline)
{
    int rc = check_io(t);
    if (rc != ASYNC_ENOTCONN)
        return rc;
    if (t->busy_read)
        return ASYNC_EBUSY;
    int64_t timeout = t->cfg->handshake_timeout;
    if (timeout >= 0) {
        uint64_t limit = async_deadline_in(timeout);
        if (limit < deadline)
            deadline = limit;
    }
    rc = async_lock_acquire_until(t->wlock, deadline);
    if (rc < 0)
        return die(t, handshake_io_error(t, rc));
    t->busy_read = true;
    rc = handshake_loop(t, deadline);
    t->busy_read = false;
    async_lock_release(t->wlock);
    if (rc < 0)
        return die(t, rc);
    const unsigned char *alpn = NULL;
    unsigned int alpn_len = 0;
    SSL_get0_alpn_selected(t->ssl, &alpn, &alpn_len);
    if (alpn)
        memcpy(t->alpn, alpn, alpn_len);
    t->alpn[alpn ? alpn_len : 0] = '\0';
    t->state = TLS_OPEN;
    return 0;
}

/* ---- reading and writing ------------------------------------------------------- */

/* The read loop of async_tls_read; the caller is the one reader. */
static ssize_t read_loop(async_tls *t, void *buf, size_t len, uint64_t deadline)
{
    for (;;) {
        size_t got = 0;
        ERR_clear_error();
        int r = SSL_read_ex(t->ssl, buf, len, &got);
        int e = r == 1 ? SSL_ERROR_NONE : SSL_get_error(t->ssl, r);
        int rc = flush_if_free(t, deadline);
        switch (e) {
        case SSL_ERROR_NONE:
            return (ssize_t)got;
        case SSL_ERROR_ZERO_RETURN:
            t->got_close = true;
            return 0;
        case SSL_ERROR_WANT_WRITE:
            if (rc < 0)
                return rc;
            break;
        case SSL_ERROR_WANT_READ:
            if (t->eof_in)
                return 0; /* the transport ended without close_notify */
            rc = fill_in(t, deadline);
            if (rc < 0)
                return rc;
            break;
        default:
            if (t->eof_in && ERR_GET_REASON(ERR_peek_error()) ==
                                 SSL_R_UNEXPECTED_EOF_WHILE_READING) {
                ERR_clear_error();
                return 0;
            }
            return die(t, async__tls_fail(t, ASYNC_ETLS, "read failed"));
        }
    }
}

ssize_t async_tls_read(async_tls *t, void *buf, size_t len, uint64_t deadline)
{
    int rc = check_io(t);
    if (rc < 0)
        return rc;
    if (!buf && len > 0)
        return ASYNC_EINVAL;
    if (len == 0)
        return 0;
    if (t->busy_read)
        return ASYNC_EBUSY;
    t->busy_read = true;
    ssize_t n = read_loop(t, buf, len, deadline);
    t->busy_read = false;
    return n;
}

/* Encrypts buf into the outbound ring, flushing whenever a record might
 * not fit; the caller holds the write lock.  *off counts what was taken. */
static int write_loop(async_tls *t, const char *buf, size_t len, size_t *off,
                      uint64_t deadline)
{
    BIO *inner = SSL_get_wbio(t->ssl);
    while (*off < len) {
        size_t chunk = len - *off < WRITE_CHUNK ? len - *off : WRITE_CHUNK;
        while (BIO_ctrl_get_write_guarantee(inner) < RECORD_ROOM) {
            int rc = flush_some(t, deadline);
            if (rc < 0)
                return rc;
        }
        size_t w = 0;
        ERR_clear_error();
        if (SSL_write_ex(t->ssl, buf + *off, chunk, &w) != 1) {
            /* The room check above makes WANT_WRITE impossible, so a failure
             * here is a protocol error (or our close_notify went first). */
            return die(t, async__tls_fail(t, ASYNC_ETLS, "write failed"));
        }
        *off += w;
    }
    return flush_out(t, deadline);
}

ssize_t async_tls_write(async_tls *t, const void *buf, size_t len,
                        uint64_t deadline, size_t *done)
{
    size_t off = 0;
    if (done)
        *done = 0;
    int rc = check_io(t);
    if (rc < 0)
        return rc;
    if (!buf && len > 0)
        return ASYNC_EINVAL;
    if (t->sent_close)
        return ASYNC_EPIPE;
    if (len == 0)
        return 0;
    rc = async_lock_acquire_until(t->wlock, deadline);
    if (rc < 0)
        return rc;
    if (t->sent_close)
        rc = ASYNC_EPIPE; /* a write_eof got the lock first */
    else
        rc = write_loop(t, buf, len, &off, deadline);
    async_lock_release(t->wlock);
    if (done)
        *done = off;
    return rc < 0 ? rc : (ssize_t)len;
}

/* ---- closing ------------------------------------------------------------------- */

int async_tls_write_eof(async_tls *t, uint64_t deadline)
{
    int rc = check_io(t);
    if (rc < 0)
        return rc;
    rc = async_lock_acquire_until(t->wlock, deadline);
    if (rc < 0)
        return rc;
    if (!t->sent_close) {
        ERR_clear_error();
        /* The first SSL_shutdown only queues close_notify; the ring has
         * room for it after any earlier flush left at most a few records. */
        while (BIO_ctrl_get_write_guarantee(SSL_get_wbio(t->ssl)) < 64 &&
               (rc = flush_some(t, deadline)) == 0) {
        }
        if (rc == 0 && SSL_shutdown(t->ssl) < 0)
            rc = async__tls_fail(t, ASYNC_ETLS, "cannot send close_notify");
        if (rc == 0)
            t->sent_close = true;
        ERR_clear_error();
    }
    if (rc == 0)
        rc = flush_out(t, deadline);
    async_lock_release(t->wlock);
    return rc;
}

int async_tls_shutdown(async_tls *t, uint64_t deadline)
{
    int rc = async_tls_write_eof(t, deadline);
    if (rc < 0)
        return rc;
    char scratch[4096];
    for (;;) {
        ssize_t n = async_tls_read(t, scratch, sizeof(scratch), deadline);
        if (n < 0)
            return (int)n;
        if (n == 0)
            break;
    }
    if (!t->got_close)
        return async__tls_fail(t, ASYNC_ECONNRESET,
                               "the peer closed the connection without close_notify");
    return 0;
}

/* ---- introspection ------------------------------------------------------------- */

char *async__tls_errbuf(async_tls *t)
{
    return t->err;
}

const char *async_tls_error(const async_tls *t)
{
    return t ? t->err : "";
}

bool async_tls_close_notify_received(const async_tls *t)
{
    return t && t->got_close;
}

const char *async_tls_alpn(const async_tls *t)
{
    return t && t->state == TLS_OPEN && t->alpn[0] ? t->alpn : NULL;
}

const char *async_tls_version(const async_tls *t)
{
    return t && t->state == TLS_OPEN ? SSL_get_version(t->ssl) : NULL;
}

const char *async_tls_cipher(const async_tls *t)
{
    return t && t->state == TLS_OPEN ? SSL_get_cipher_name(t->ssl) : NULL;
}

int async_tls_peer_subject(const async_tls *t, char *buf, size_t size)
{
    if (!t || !buf || size == 0)
        return ASYNC_EINVAL;
    if (t->state != TLS_OPEN)
        return ASYNC_ENOTCONN;
    X509 *cert = SSL_get1_peer_certificate(t->ssl);
    if (!cert)
        return ASYNC_ENOENT;
    BIO *mem = BIO_new(BIO_s_mem());
    int rc = ASYNC_ENOMEM;
    if (mem && X509_NAME_print_ex(mem, X509_get_subject_name(cert), 0,
                                  XN_FLAG_RFC2253) >= 0) {
        char *data;
        long n = BIO_get_mem_data(mem, &data);
        rc = ASYNC_ENOSPC;
        buf[0] = '\0';
        if (n >= 0 && (size_t)n < size) {
            memcpy(buf, data, (size_t)n);
            buf[n] = '\0';
            rc = (int)n;
        }
    }
    BIO_free(mem);
    X509_free(cert);
    return rc;
}

void *async_tls_ssl(async_tls *t)
{
    return t ? t->ssl : NULL;
}
