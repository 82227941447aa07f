/*
 * TLS for tasks: OpenSSL driven through an in-memory BIO pair, so no
 * OpenSSL call ever touches a socket or blocks the loop (asyncio's ssl=).
 *
 * Present only when the library was built with OpenSSL (meson feature
 * `tls`, on by default when OpenSSL is found); ASYNC_HAVE_TLS in
 * <async/version.h> is then 1 and <async.h> includes this header.  Without
 * it, everything else in libasync works the same; see docs/guide-tls.md.
 *
 * Two objects:
 *   async_tls_config  what asyncio's ssl.SSLContext holds: role (client or
 *                     server), certificate and key, trusted CAs,
 *                     verification mode, ALPN protocols, TLS versions and
 *                     the handshake timeout.  Immutable once a connection
 *                     uses it; reference counted, shareable between
 *                     connections and threads.
 *   async_tls         one TLS session over a connected fd (or, inside the
 *                     library, over a stream transport): handshake, read,
 *                     write, close_notify.  Used from the tasks of one loop.
 *
 * Defaults, as asyncio's ssl.create_default_context():
 *   - a client verifies the server's certificate chain against the
 *     system trust store (OpenSSL's default paths) and checks that it was
 *     issued for the host name given to async_tls_new(), which is also
 *     sent as SNI (an IP address literal is checked against the
 *     certificate's IP addresses and not sent as SNI);
 *   - a server sends its certificate and asks for none from clients;
 *   - TLS 1.2 and 1.3 are enabled, older versions are not;
 *   - the handshake must finish within 60 s (asyncio's
 *     ssl_handshake_timeout).
 *
 * Errors.  Functions return 0 (or a count) or a negative code: besides the
 * usual ones (ASYNC_EINVAL, ASYNC_ENOMEM, ASYNC_ETIMEDOUT, ASYNC_ECANCELED,
 * the transport's errors), ASYNC_ECERT means the peer's certificate failed
 * verification (untrusted, expired, wrong host name, missing when
 * required) and ASYNC_ETLS any other TLS failure (protocol error, an alert
 * from the peer, a certificate or key file that does not load).  The code
 * alone does not say why: every failure also leaves a one-line message
 * with OpenSSL's reason, e.g.
 *   "certificate verify failed: hostname mismatch (expected \"example.com\")"
 *   "handshake failed: tlsv13 alert certificate required (SSL routines)"
 * readable with async_tls_error(conn) for a connection, and with
 * async_tls_last_error() for the last failure in this thread (also for
 * config calls and for functions that fail before a connection exists).
 */
#ifndef ASYNC_TLS_H
#define ASYNC_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <async/error.h>
#include <async/stream.h>
#include <async/version.h>

#ifdef __cplusplus
extern "C" {
#endif

/* A TLS configuration (asyncio: ssl.SSLContext); opaque. */
typedef struct async_tls_config async_tls_config;

/* A TLS session over one connection (asyncio: ssl.SSLObject); opaque. */
typedef struct async_tls async_tls;

/* async_tls_config_new roles. */
#define ASYNC_TLS_CLIENT 0
#define ASYNC_TLS_SERVER 1

/* async_tls_config_set_verify modes. */
#define ASYNC_TLS_VERIFY_NONE 0     /* client: accept any server certificate
                                       (insecure; ssl.CERT_NONE); server: ask
                                       for no client certificate (default) */
#define ASYNC_TLS_VERIFY_OPTIONAL 1 /* server only: ask for a client
                                       certificate, verify it if sent */
#define ASYNC_TLS_VERIFY_REQUIRED 2 /* client: verify the server (default);
                                       server: a client without a valid
                                       certificate fails the handshake */

/* async_tls_config_set_versions values. */
#define ASYNC_TLS_1_2 0x0303
#define ASYNC_TLS_1_3 0x0304

/* Most bytes of the message async_tls_error() keeps, with the NUL. */
#define ASYNC_TLS_ERRLEN 256

/* ---- configuration -------------------------------------------------------- */

/*
 * Creates a configuration for `role` (ASYNC_TLS_CLIENT or ASYNC_TLS_SERVER)
 * with the defaults above; a client one trusts the system store.  The
 * caller owns one reference (async_tls_config_unref).  Returns 0,
 * ASYNC_EINVAL (out NULL, unknown role), ASYNC_ENOMEM or ASYNC_ETLS
 * (OpenSSL could not initialise).  *out is set only on success.
 */
ASYNC_API int async_tls_config_new(async_tls_config **out, int role);

/* Takes another reference; returns cfg.  Thread-safe. */
ASYNC_API async_tls_config *async_tls_config_ref(async_tls_config *cfg);

/* Drops a reference; the last one frees it (connections hold their own).
 * NULL is ignored.  Thread-safe. */
ASYNC_API void async_tls_config_unref(async_tls_config *cfg);

/*
 * Loads this side's certificate chain (PEM: the leaf first, then any
 * intermediates) and its private key (PEM, unencrypted) from files, and
 * checks that they match.  Required for a server; for a client it is the
 * certificate offered when a server asks for one.  Returns 0, ASYNC_EINVAL
 * (NULL argument), ASYNC_EBUSY (a connection already uses cfg) or
 * ASYNC_ETLS (unreadable file, bad PEM, key does not match; the message
 * names the file and OpenSSL's reason).  On failure cfg is unchanged.
 */
ASYNC_API int async_tls_config_load_cert(async_tls_config *cfg,
                                         const char *cert_file,
                                         const char *key_file);

/*
 * Trusts exactly the CA certificates in `ca_file` (PEM, one or more) for
 * verifying the peer, instead of the system store (asyncio:
 * create_default_context(cafile=...)).  A client uses them for the server's
 * certificate, a server for client certificates.  Returns 0, ASYNC_EINVAL,
 * ASYNC_EBUSY, ASYNC_ENOMEM or ASYNC_ETLS (unreadable or bad file; cfg then
 * keeps its previous trust store).
 */
ASYNC_API int async_tls_config_load_ca(async_tls_config *cfg,
                                       const char *ca_file);

/*
 * Sets the verification mode (ASYNC_TLS_VERIFY_*; see above).  A client
 * accepts NONE and REQUIRED; OPTIONAL is a server mode.  Returns 0,
 * ASYNC_EINVAL (bad mode for the role) or ASYNC_EBUSY.
 */
ASYNC_API int async_tls_config_set_verify(async_tls_config *cfg, int mode);

/*
 * Sets the ALPN protocols, a comma-separated list in preference order
 * ("h2,http/1.1").  A client offers them; a server picks the first of its
 * own list that the client offers, and a client offering ALPN with no
 * protocol in common still connects, with none selected (as OpenSSL's and
 * Python's servers do).  NULL or "" clears the list.  Returns 0,
 * ASYNC_EINVAL (a name empty or longer than 255 bytes), ASYNC_ENOMEM or
 * ASYNC_EBUSY.
 */
ASYNC_API int async_tls_config_set_alpn(async_tls_config *cfg,
                                        const char *protocols);

/*
 * Limits the TLS versions (ASYNC_TLS_1_2, ASYNC_TLS_1_3; 0 leaves that end
 * at its default: 1.2 and the newest OpenSSL knows).  Returns 0,
 * ASYNC_EINVAL (unknown version, min > max) or ASYNC_EBUSY.
 */
ASYNC_API int async_tls_config_set_versions(async_tls_config *cfg,
                                            int min_version, int max_version);

/*
 * Sets how long a handshake may take, in ns (< 0: no limit; default 60 s),
 * counted from the async_tls_handshake() call; the earlier of this and the
 * call's own deadline applies.  Returns 0, ASYNC_EINVAL or ASYNC_EBUSY.
 */
ASYNC_API int async_tls_config_set_handshake_timeout(async_tls_config *cfg,
                                                     int64_t timeout);

/*
 * The underlying OpenSSL SSL_CTX *, for settings this API does not cover
 * (cipher lists, session caches, ...).  Change it only before the first
 * connection uses cfg.  Owned by cfg.
 */
ASYNC_API void *async_tls_config_ssl_ctx(async_tls_config *cfg);

/* ---- connections ---------------------------------------------------------- */

/*
 * Creates a TLS session over the connected, non-blocking socket fd, in the
 * role of cfg; no I/O happens until async_tls_handshake().  `server_name`
 * (client only) is the host name to send as SNI and check the certificate
 * against; it is required while the client verifies (ASYNC_EINVAL
 * otherwise, as Python's check_hostname) and may be NULL with
 * ASYNC_TLS_VERIFY_NONE; a server must pass NULL.  The session does not own
 * fd: async_tls_free() leaves it open.  cfg gains a reference and becomes
 * read-only.  Returns 0, ASYNC_EINVAL, ASYNC_ENOMEM or ASYNC_ETLS; *out is
 * set only on success.
 *
 * This is also STARTTLS: the fd may have carried plaintext before (read
 * through async/io.h, never through a buffer that kept bytes beyond the
 * STARTTLS reply).  Streams (async/stream.h) have their own start_tls that
 * takes care of buffered bytes.
 */
ASYNC_API int async_tls_new(async_tls **out, async_tls_config *cfg, int fd,
                            const char *server_name);

/*
 * Runs the handshake.  Must be called from a task before any read or write
 * (they return ASYNC_ENOTCONN otherwise); calling it again after success
 * returns 0 at once.  Ends by `deadline` (loop time; ASYNC_NO_DEADLINE for
 * none) or by the config's handshake timeout, whichever comes first.
 * Returns 0, ASYNC_ECERT (peer certificate rejected), ASYNC_ETLS (any other
 * handshake failure), ASYNC_ECONNRESET (the peer closed the connection
 * during the handshake), ASYNC_ETIMEDOUT, ASYNC_ECANCELED, ASYNC_ENOTTASK
 * or a transport error; on failure the session is dead (every later call
 * returns the same code) and only async_tls_free() remains.
 *
 * TLS 1.3 note: a client finishes its handshake before the server has
 * checked the client's certificate, so a server that rejects it shows up
 * as ASYNC_ETLS from the client's first read (as in Python).
 */
ASYNC_API int async_tls_handshake(async_tls *t, uint64_t deadline);

/*
 * Reads up to len bytes of plaintext: returns the count (>= 1), 0 at end of
 * stream, or a negative code: ASYNC_ETLS (protocol error or alert),
 * ASYNC_ENOTCONN (no handshake yet), ASYNC_EBUSY (another task is already
 * reading this session), ASYNC_EINVAL, or the transport's read and wait
 * errors (ASYNC_ETIMEDOUT at `deadline`, ASYNC_ECANCELED, ...).  A read
 * interrupted by a deadline or a cancellation loses nothing.
 *
 * End of stream: the peer's close_notify, or (like asyncio, unlike Python's
 * blocking ssl module) the transport's end of file without one after the
 * handshake; async_tls_close_notify_received() tells which, for protocols
 * where a truncated stream matters.
 */
ASYNC_API ssize_t async_tls_read(async_tls *t, void *buf, size_t len,
                                 uint64_t deadline);

/*
 * Encrypts and writes all len bytes: returns len once every byte is handed
 * to the transport, or a negative code: ASYNC_EPIPE (after
 * async_tls_write_eof or a shutdown), ASYNC_ENOTCONN, ASYNC_EINVAL,
 * ASYNC_ETLS, or the transport's write and wait errors.  When an error ends
 * the write part-way, *done (if not NULL) counts the bytes the session
 * took: they are encrypted and queued and go out with the next write,
 * write_eof or shutdown.  Several tasks may write at once; each call's
 * bytes stay together, in call order.  Reads and writes may run at the
 * same time in different tasks.
 */
ASYNC_API ssize_t async_tls_write(async_tls *t, const void *buf, size_t len,
                                  uint64_t deadline, size_t *done);

/*
 * Sends close_notify (after anything still queued): this side will write
 * no more; reading goes on until the peer's close_notify (asyncio:
 * write_eof is not supported over SSL; TLS 1.3 allows the half-close, so
 * libasync offers it).  Later writes return ASYNC_EPIPE; calling it twice
 * returns 0.  Returns 0, ASYNC_ENOTCONN, or a transport error.
 */
ASYNC_API int async_tls_write_eof(async_tls *t, uint64_t deadline);

/*
 * A clean close: async_tls_write_eof, then reads until the peer's
 * close_notify (application data still arriving is discarded) or the
 * transport's end of file.  Afterwards the fd carries plaintext again
 * (Python: SSLSocket.unwrap()).  Returns 0 when the peer's close_notify
 * arrived, ASYNC_ECONNRESET when the transport ended without it,
 * ASYNC_ETIMEDOUT at `deadline`, or the errors of async_tls_read.
 */
ASYNC_API int async_tls_shutdown(async_tls *t, uint64_t deadline);

/*
 * Frees the session (NULL is ignored).  Nothing is sent: call
 * async_tls_shutdown or async_tls_write_eof first for a clean close.  The
 * fd stays open.  No task may be inside a call on t.
 */
ASYNC_API void async_tls_free(async_tls *t);

/* ---- streams (async/stream.h) --------------------------------------------- */

/*
 * StreamWriter.start_tls (asyncio 3.11): upgrades the live stream of w (and
 * its reader) to TLS in place, STARTTLS style, and runs the handshake
 * before `deadline` (and within cfg's handshake timeout).  The role comes
 * from cfg: a client config needs `server_hostname` as async_tls_new does;
 * a server config takes NULL.  Bytes the reader had already buffered past
 * the plaintext exchange are handed to TLS as the first ciphertext.  The
 * stream must be idle: nothing queued in the writer (drain first), no read
 * in progress, not closing.  Afterwards the same reader and writer carry
 * plaintext through TLS; writer close sends close_notify, and
 * async_writer_write_eof sends close_notify while reading goes on (asyncio
 * refuses write_eof over SSL; TLS 1.3 allows the half-close).
 * Returns 0, ASYNC_EINVAL, ASYNC_EBUSY (stream not idle: nothing changed),
 * ASYNC_ENOMEM, or a handshake error (ASYNC_ECERT, ASYNC_ETLS,
 * ASYNC_ETIMEDOUT, ...; the message is in async_tls_last_error()); after a
 * handshake error the stream is unusable: abort it.
 * open_connection and start_server take a config in their options
 * (async_connect_opts.tls, async_server_opts.tls) and do the same for each
 * connection.
 */
ASYNC_API int async_writer_start_tls(async_writer *w, async_tls_config *cfg,
                                     const char *server_hostname,
                                     uint64_t deadline);

/* The TLS session under a stream (for async_tls_error, async_tls_alpn,
 * async_tls_peer_subject, ...), or NULL when the stream is not TLS.  Owned
 * by the stream. */
ASYNC_API async_tls *async_writer_tls(async_writer *w);

/* ---- what happened -------------------------------------------------------- */

/* The message of the session's last failure, "" if none.  Owned by t,
 * valid until t is freed. */
ASYNC_API const char *async_tls_error(const async_tls *t);

/* The message of the last TLS failure in this thread (any session, config
 * or stream call), "" if none.  Thread-local; valid until the next TLS
 * failure in this thread. */
ASYNC_API const char *async_tls_last_error(void);

/* Whether the peer's close_notify has arrived. */
ASYNC_API bool async_tls_close_notify_received(const async_tls *t);

/* The ALPN protocol agreed on, or NULL (none, or no handshake yet).  Owned
 * by t. */
ASYNC_API const char *async_tls_alpn(const async_tls *t);

/* The negotiated version ("TLSv1.3") and cipher suite
 * ("TLS_AES_256_GCM_SHA384"), or NULL before the handshake.  Static. */
ASYNC_API const char *async_tls_version(const async_tls *t);
ASYNC_API const char *async_tls_cipher(const async_tls *t);

/*
 * Writes the subject of the peer's certificate, one line
 * ("CN=client1,O=Example"), into buf (NUL-terminated).  Returns its length,
 * ASYNC_ENOENT (the peer sent no certificate), ASYNC_ENOTCONN, ASYNC_EINVAL
 * or ASYNC_ENOSPC (buf too small; buf then holds "").
 */
ASYNC_API int async_tls_peer_subject(const async_tls *t, char *buf,
                                     size_t size);

/* The underlying OpenSSL SSL *, for anything not covered here.  Owned by
 * t; never call SSL_read, SSL_write or SSL_shutdown on it. */
ASYNC_API void *async_tls_ssl(async_tls *t);

#ifdef __cplusplus
}
#endif

#endif
