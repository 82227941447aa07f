/*
 * async_getaddrinfo: getaddrinfo(3) as an executor job, so a slow resolver
 * (DNS, /etc/hosts on a slow disk, NSS modules) blocks a pool thread and
 * never the loop.
 *
 * The request owns copies of its inputs and the lookup's result, because
 * the awaiting task may be cancelled and return while the lookup still
 * runs.  Whoever ends up with the request frees it: the task when the
 * outcome was delivered to the future, the executor's discard callback
 * when it was not (the future was cancelled first).
 */
#include <errno.h>
#include <netdb.h>
#include <stdlib.h>
#include <string.h>

#include "core/internal.h"

typedef struct gai_req {
    char *host;             /* copy of host, or NULL */
    char *service;          /* copy of service, or NULL */
    struct addrinfo hints;  /* the four hint fields getaddrinfo reads */
    bool has_hints;         /* hints were given */
    struct addrinfo *res;   /* the lookup's result, until handed over */
} gai_req;

static void gai_req_free(gai_req *req)
{
    if (req->res)
        freeaddrinfo(req->res);
    free(req->host);
    free(req->service);
    free(req);
}

static char *dup_or_null(const char *s, bool *failed)
{
    if (!s)
        return NULL;
    char *d = strdup(s);
    if (!d)
        *failed = true;
    return d;
}

static gai_req *gai_req_new(const char *host, const char *service,
                            const struct addrinfo *hints)
{
    gai_req *req = calloc(1, sizeof(*req));
    if (!req)
        return NULL;
    bool failed = false;
    req->host = dup_or_null(host, &failed);
    req->service = dup_or_null(service, &failed);
    if (failed) {
        gai_req_free(req);
        return NULL;
    }
    if (hints) {
        req->has_hints = true;
        req->hints.ai_flags = hints->ai_flags;
        req->hints.ai_family = hints->ai_family;
        req->hints.ai_socktype = hints->ai_socktype;
        req->hints.ai_protocol = hints->ai_protocol;
    }
    return req;
}

/* EAI_* to libasync codes.  EAI_NODATA and EAI_ADDRFAMILY are not POSIX
 * (glibc has them under _GNU_SOURCE), hence the guards. */
static int eai_to_async(int eai, int err)
{
    switch (eai) {
    case EAI_NONAME: return ASYNC_EAI_NONAME;
    case EAI_AGAIN: return ASYNC_EAI_AGAIN;
    case EAI_FAIL: return ASYNC_EAI_FAIL;
    case EAI_FAMILY: return ASYNC_EAI_FAMILY;
    case EAI_SERVICE: return ASYNC_EAI_SERVICE;
    case EAI_SOCKTYPE: return ASYNC_EAI_SOCKTYPE;
    case EAI_BADFLAGS: return ASYNC_EAI_BADFLAGS;
    case EAI_MEMORY: return ASYNC_ENOMEM;
    case EAI_SYSTEM: return err > 0 ? -err : ASYNC_EAI_OTHER;
#ifdef EAI_NODATA
    case EAI_NODATA: return ASYNC_EAI_NODATA;
#endif
#ifdef EAI_ADDRFAMILY
    case EAI_ADDRFAMILY: return ASYNC_EAI_NODATA;
#endif
    default: return ASYNC_EAI_OTHER;
    }
}

/* The job, on a pool thread. */
static int gai_job(void *arg, void **result)
{
    gai_req *req = arg;
    errno = 0;
    int eai = getaddrinfo(req->host, req->service,
                          req->has_hints ? &req->hints : NULL, &req->res);
    if (eai) {
        req->res = NULL;
        return eai_to_async(eai, errno);
    }
    *result = req;
    return 0;
}

/* The outcome did not reach the task (it was cancelled): free it here. */
static void gai_discard(void *arg, int rc, void *result)
{
    (void)rc;
    (void)result;
    gai_req_free(arg);
}

int async_getaddrinfo(const char *host, const char *service,
                      const struct addrinfo *hints, struct addrinfo **res)
{
    if (!res || (!host && !service))
        return ASYNC_EINVAL;
    if (!async_current_task())
        return ASYNC_ENOTTASK;
    gai_req *req = gai_req_new(host, service, hints);
    if (!req)
        return ASYNC_ENOMEM;
    async_future *f;
    int rc = async_run_in_executor_ex(NULL, gai_job, req, gai_discard, &f);
    if (rc) {
        gai_req_free(req);
        return rc;
    }
    rc = async_future_await(f, NULL);
    if (!async_future_done(f)) {
        async_future_cancel(f); /* we were cancelled: gai_discard frees */
    } else if (!async_future_cancelled(f)) {
        /* Delivered (gai_job never returns ASYNC_ECANCELED): ours. */
        if (rc == 0) {
            *res = req->res;
            req->res = NULL;
        }
        gai_req_free(req);
    }
    async_future_unref(f);
    return rc;
}
