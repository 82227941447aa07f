/*
 * async_tls_config: an SSL_CTX with asyncio's ssl.create_default_context()
 * defaults, plus the settings OpenSSL keeps per connection (verification
 * mode, ALPN list, handshake timeout).
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/x509_vfy.h>

#include "tls/tls_internal.h"

/* asyncio's ssl_handshake_timeout default: 60 s. */
#define DEFAULT_HANDSHAKE_TIMEOUT (60 * ASYNC_SEC)

/* Configuration calls are refused once a session uses cfg. */
static int check_mutable(const async_tls_config *cfg)
{
    if (!cfg)
        return ASYNC_EINVAL;
    return atomic_load(&cfg->frozen) ? ASYNC_EBUSY : 0;
}

/* The server's ALPN callback: the first of our protocols the client offers. */
static int alpn_select(SSL *ssl, const unsigned char **out,
                       unsigned char *outlen, const unsigned char *in,
                       unsigned int inlen, void *arg)
{
    (void)ssl;
    async_tls_config *cfg = arg;
    unsigned char *sel;
    if (!cfg->alpn)
        return SSL_TLSEXT_ERR_NOACK;
    if (SSL_select_next_proto(&sel, outlen, cfg->alpn,
                              (unsigned int)cfg->alpn_len, in, inlen) !=
        OPENSSL_NPN_NEGOTIATED)
        return SSL_TLSEXT_ERR_NOACK;
    *out = sel;
    return SSL_TLSEXT_ERR_OK;
}

int async_tls_config_new(async_tls_config **out, int role)
{
    if (!out || (role != ASYNC_TLS_CLIENT && role != ASYNC_TLS_SERVER))
        return ASYNC_EINVAL;
    async_tls_config *cfg = calloc(1, sizeof(*cfg));
    if (!cfg)
        return ASYNC_ENOMEM;
    cfg->ctx = SSL_CTX_new(role == ASYNC_TLS_CLIENT ? TLS_client_method()
                                                    : TLS_server_method());
    if (!cfg->ctx) {
        free(cfg);
        return async__tls_fail(NULL, ASYNC_ETLS, "cannot create SSL_CTX");
    }
    cfg->role = role;
    cfg->verify = role == ASYNC_TLS_CLIENT ? ASYNC_TLS_VERIFY_REQUIRED
                                           : ASYNC_TLS_VERIFY_NONE;
    cfg->handshake_timeout = DEFAULT_HANDSHAKE_TIMEOUT;
    atomic_init(&cfg->refs, 1);
    atomic_init(&cfg->frozen, false);
    SSL_CTX_set_min_proto_version(cfg->ctx, TLS1_2_VERSION);
    /* The engine retries writes only with the same bytes, but partial
     * writes let one SSL_write stop at a full BIO without holding a record
     * back. */
    SSL_CTX_set_mode(cfg->ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
                                   SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    if (role == ASYNC_TLS_CLIENT)
        SSL_CTX_set_default_verify_paths(cfg->ctx);
    else
        SSL_CTX_set_alpn_select_cb(cfg->ctx, alpn_select, cfg);
    ERR_clear_error();
    *out = cfg;
    return 0;
}

async_tls_config *async_tls_config_ref(async_tls_config *cfg)
{
    if (cfg)
        atomic_fetch_add(&cfg->refs, 1);
    return cfg;
}

void async_tls_config_unref(async_tls_config *cfg)
{
    if (!cfg || atomic_fetch_sub(&cfg->refs, 1) != 1)
        return;
    SSL_CTX_free(cfg->ctx);
    free(cfg->alpn);
    free(cfg);
}

int async_tls_config_load_cert(async_tls_config *cfg, const char *cert_file,
                               const char *key_file)
{
    int rc = check_mutable(cfg);
    if (rc < 0)
        return rc;
    if (!cert_file || !key_file)
        return ASYNC_EINVAL;
    /* Load into a scratch context first, so a failure changes nothing. */
    SSL_CTX *probe = SSL_CTX_new(TLS_method());
    if (!probe)
        return async__tls_fail(NULL, ASYNC_ENOMEM, "cannot create SSL_CTX");
    if (SSL_CTX_use_certificate_chain_file(probe, cert_file) != 1)
        rc = async__tls_fail(NULL, ASYNC_ETLS,
                             "cannot load certificate \"%s\"", cert_file);
    else if (SSL_CTX_use_PrivateKey_file(probe, key_file, SSL_FILETYPE_PEM) != 1)
        rc = async__tls_fail(NULL, ASYNC_ETLS,
                             "cannot load private key \"%s\"", key_file);
    else if (SSL_CTX_check_private_key(probe) != 1)
        rc = async__tls_fail(NULL, ASYNC_ETLS,
                             "private key \"%s\" does not match certificate \"%s\"",
                             key_file, cert_file);
    SSL_CTX_free(probe);
    if (rc < 0)
        return rc;
    if (SSL_CTX_use_certificate_chain_file(cfg->ctx, cert_file) != 1 ||
        SSL_CTX_use_PrivateKey_file(cfg->ctx, key_file, SSL_FILETYPE_PEM) != 1)
        return async__tls_fail(NULL, ASYNC_ETLS,
                               "cannot load certificate \"%s\"", cert_file);
    return 0;
}

int async_tls_config_load_ca(async_tls_config *cfg, const char *ca_file)
{
    int rc = check_mutable(cfg);
    if (rc < 0)
        return rc;
    if (!ca_file)
        return ASYNC_EINVAL;
    X509_STORE *store = X509_STORE_new();
    if (!store)
        return ASYNC_ENOMEM;
    if (X509_STORE_load_file(store, ca_file) != 1) {
        X509_STORE_free(store);
        return async__tls_fail(NULL, ASYNC_ETLS,
                               "cannot load CA file \"%s\"", ca_file);
    }
    SSL_CTX_set_cert_store(cfg->ctx, store); /* frees the old store */
    if (cfg->role == ASYNC_TLS_SERVER) {
        /* Name these CAs in the CertificateRequest, so a client with
         * several certificates picks one they issued. */
        STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(ca_file);
        if (names)
            SSL_CTX_set_client_CA_list(cfg->ctx, names);
    }
    ERR_clear_error();
    return 0;
}

int async_tls_config_set_verify(async_tls_config *cfg, int mode)
{
    int rc = check_mutable(cfg);
    if (rc < 0)
        return rc;
    bool ok = cfg->role == ASYNC_TLS_CLIENT
                  ? mode == ASYNC_TLS_VERIFY_NONE ||
                        mode == ASYNC_TLS_VERIFY_REQUIRED
                  : mode >= ASYNC_TLS_VERIFY_NONE &&
                        mode <= ASYNC_TLS_VERIFY_REQUIRED;
    if (!ok)
        return ASYNC_EINVAL;
    cfg->verify = mode;
    return 0;
}

/* "h2,http/1.1" -> "\x02h2\x08http/1.1"; NULL on a bad name or no memory. */
static int alpn_encode(const char *list, unsigned char **out, size_t *outlen)
{
    size_t len = strlen(list);
    unsigned char *wire = malloc(len + 1);
    if (!wire)
        return ASYNC_ENOMEM;
    size_t w = 0;
    const char *p = list;
    for (;;) {
        const char *comma = strchr(p, ',');
        size_t n = comma ? (size_t)(comma - p) : strlen(p);
        if (n == 0 || n > 255) {
            free(wire);
            return ASYNC_EINVAL;
        }
        wire[w++] = (unsigned char)n;
        memcpy(wire + w, p, n);
        w += n;
        if (!comma)
            break;
        p = comma + 1;
    }
    *out = wire;
    *outlen = w;
    return 0;
}

int async_tls_config_set_alpn(async_tls_config *cfg, const char *protocols)
{
    int rc = check_mutable(cfg);
    if (rc < 0)
        return rc;
    unsigned char *wire = NULL;
    size_t len = 0;
    if (protocols && *protocols) {
        rc = alpn_encode(protocols, &wire, &len);
        if (rc < 0)
            return rc;
    }
    if (cfg->role == ASYNC_TLS_CLIENT &&
        SSL_CTX_set_alpn_protos(cfg->ctx, wire, (unsigned int)len) != 0) {
        free(wire);
        return ASYNC_ENOMEM;
    }
    free(cfg->alpn);
    cfg->alpn = wire;
    cfg->alpn_len = len;
    return 0;
}

/* ASYNC_TLS_1_x -> OpenSSL's version number; 0 stays 0 (the default). */
static int proto_version(int v, int *out)
{
    switch (v) {
    case 0:
        *out = 0;
        return 0;
    case ASYNC_TLS_1_2:
        *out = TLS1_2_VERSION;
        return 0;
    case ASYNC_TLS_1_3:
        *out = TLS1_3_VERSION;
        return 0;
    default:
        return ASYNC_EINVAL;
    }
}

int async_tls_config_set_versions(async_tls_config *cfg, int min_version,
                                  int max_version)
{
    int rc = check_mutable(cfg);
    if (rc < 0)
        return rc;
    int lo, hi;
    if (proto_version(min_version, &lo) < 0 ||
        proto_version(max_version, &hi) < 0 || (lo && hi && lo > hi))
        return ASYNC_EINVAL;
    SSL_CTX_set_min_proto_version(cfg->ctx, lo ? lo : TLS1_2_VERSION);
    SSL_CTX_set_max_proto_version(cfg->ctx, hi);
    return 0;
}

int async_tls_config_set_handshake_timeout(async_tls_config *cfg,
                                           int64_t timeout)
{
    int rc = check_mutable(cfg);
    if (rc < 0)
        return rc;
    cfg->handshake_timeout = timeout < 0 ? -1 : timeout;
    return 0;
}

void *async_tls_config_ssl_ctx(async_tls_config *cfg)
{
    return cfg ? cfg->ctx : NULL;
}
