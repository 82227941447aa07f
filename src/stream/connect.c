/*
 * open_connection: resolve, connect with Happy Eyeballs (RFC 8305), wrap
 * the socket in a stream, and (when asked) TLS on top.
 *
 * Happy Eyeballs: the resolved addresses are interleaved by family (the
 * first family getaddrinfo preferred, then the other, alternating), and
 * one connection attempt starts every `delay` (250 ms by default), or at
 * once when the previous attempt fails.  Each attempt is a task; the first
 * to connect wins and every other one is cancelled and awaited (its socket
 * closed) before the call returns, so nothing outlives it.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "stream/stream.h"
#include "stream/stream_impl.h"

#define HE_DEFAULT_DELAY (250 * ASYNC_MSEC)

/* One connection attempt. */
typedef struct attempt {
    struct he *he;          /* the race it runs in */
    const async_addr *addr; /* where to */
    async_task *task;       /* its task (our reference), or NULL */
    bool done;              /* finished (fd or err recorded) */
} attempt;

/* The race. */
typedef struct he {
    const async_connect_opts *opts; /* the caller's options */
    const async_addr *local;        /* address to bind first, or NULL */
    uint64_t deadline;              /* whole call's deadline */
    async_event *changed;           /* set whenever an attempt finishes */
    int winner;                     /* the first connected fd, or -1 */
    int last_err;                   /* the latest attempt error */
    attempt att[ASYNC_ADDR_MAX];    /* one per address, in race order */
    size_t n;                       /* addresses */
} he;

/* A socket of addr's family, bound to `local` if given, connected. */
static int connect_one(const async_addr *addr, const async_addr *local,
                       uint64_t deadline)
{
    if (!local)
        return async_tcp_connect_addr(addr, deadline);
    if (local->u.sa.sa_family != addr->u.sa.sa_family)
        return ASYNC_EINVAL;
    int fd = socket(addr->u.sa.sa_family,
                    SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    int rc = 0;
    if (bind(fd, &local->u.sa, local->len) < 0)
        rc = -errno;
    if (rc == 0)
        rc = async_connect_deadline(fd, &addr->u.sa, addr->len, deadline);
    if (rc == 0 && addr->u.sa.sa_family != AF_UNIX)
        rc = async_tcp_nodelay(fd, 1);
    if (rc) {
        async_close(fd);
        return rc;
    }
    return fd;
}

static int attempt_main(void *arg, void **result)
{
    (void)result;
    attempt *a = arg;
    he *h = a->he;
    int fd = connect_one(a->addr, h->local, h->deadline);
    if (fd >= 0 && h->winner < 0)
        h->winner = fd;
    else if (fd >= 0)
        async_close(fd); /* connected too late: another attempt won */
    else if (fd != ASYNC_ECANCELED)
        h->last_err = fd;
    a->done = true;
    async_event_set(h->changed);
    return 0;
}

/* RFC 8305 section 4: alternate the families, starting with the first. */
static size_t interleave(const async_addr *in, size_t n, const async_addr **out)
{
    int first = in[0].u.sa.sa_family;
    size_t k = 0, i = 0, j = 0;
    while (k < n) {
        while (i < n && in[i].u.sa.sa_family != first)
            i++;
        if (i < n)
            out[k++] = &in[i++];
        while (j < n && in[j].u.sa.sa_family == first)
            j++;
        if (j < n)
            out[k++] = &in[j++];
    }
    return k;
}

static bool all_done(const he *h, size_t started)
{
    for (size_t i = 0; i < started; i++)
        if (!h->att[i].done)
            return false;
    return true;
}

/* Cancels and awaits every attempt (shielded: this also runs when the
 * caller was cancelled). */
static void race_end(he *h, size_t started)
{
    for (size_t i = 0; i < started; i++)
        if (h->att[i].task && !h->att[i].done)
            async_task_cancel(h->att[i].task);
    async_shield_enter();
    for (size_t i = 0; i < started; i++) {
        if (h->att[i].task) {
            async_task_await(h->att[i].task, NULL);
            async_task_unref(h->att[i].task);
        }
    }
    async_shield_leave();
}

/* Runs the race; returns the winning fd or an error. */
static int race(he *h, int64_t delay)
{
    size_t started = 0;
    int rc = 0;
    uint64_t next = 0; /* loop time the next attempt may start */
    while (h->winner < 0) {
        if (started < h->n && (all_done(h, started) ||
                               async_loop_time(async_get_running_loop()) >=
                                   next)) {
            attempt *a = &h->att[started];
            rc = async_spawn(&a->task, attempt_main, a);
            if (rc)
                break;
            started++;
            next = async_deadline_in(delay);
            continue;
        }
        if (started == h->n && all_done(h, started))
            break;
        async_event_clear(h->changed);
        uint64_t until = started < h->n && next < h->deadline ? next
                                                               : h->deadline;
        rc = async_event_wait_until(h->changed, until);
        if (rc == ASYNC_ETIMEDOUT && until != h->deadline)
            rc = 0;
        if (rc)
            break;
    }
    race_end(h, started);
    if (h->winner >= 0 && rc) { /* cancelled while one connected */
        async_close(h->winner);
        return rc;
    }
    if (h->winner >= 0)
        return h->winner;
    return rc ? rc : h->last_err ? h->last_err : ASYNC_ECONNREFUSED;
}

static int happy_eyeballs(const async_addr *addrs, size_t n,
                          const async_connect_opts *o, const async_addr *local,
                          uint64_t deadline)
{
    if (n == 1)
        return connect_one(&addrs[0], local, deadline);
    he h = {.opts = o, .local = local, .deadline = deadline, .winner = -1};
    const async_addr *order[ASYNC_ADDR_MAX];
    h.n = interleave(addrs, n, order);
    for (size_t i = 0; i < h.n; i++) {
        h.att[i].he = &h;
        h.att[i].addr = order[i];
    }
    int rc = async_event_new(&h.changed);
    if (rc)
        return rc;
    int64_t delay = o && o->happy_eyeballs_delay > 0 ? o->happy_eyeballs_delay
                                                     : HE_DEFAULT_DELAY;
    rc = race(&h, delay);
    async_event_free(h.changed);
    return rc;
}

/* Wraps a connected fd into a stream (and TLS when asked). */
static int finish(int fd, const async_connect_opts *o, const char *host,
                  uint64_t deadline, async_reader **r, async_writer **w)
{
    async__transport t;
    int rc = async__fd_transport_new(fd, NULL, NULL, &t);
    if (rc) {
        async_close(fd);
        return rc;
    }
    rc = async__stream_new(t, o ? &o->stream : NULL, r, w);
    if (rc) {
        t.ops->free(t.ctx);
        return rc;
    }
    if (o && o->tls) {
        const char *name = o->server_hostname ? o->server_hostname : host;
        rc = async__stream_tls_client(async__stream_of_reader(*r), o->tls,
                                      name, deadline);
        if (rc) {
            async_writer_abort(*w);
            async_reader_free(*r);
            async_writer_free(*w);
            *r = NULL;
            *w = NULL;
        }
    }
    return rc;
}

/* The host part of "host:port" / "[v6]:port" (for TLS server names). */
static void host_of(const char *addr, char *out, size_t size)
{
    const char *start = addr, *end;
    if (*addr == '[') {
        start = addr + 1;
        end = strchr(start, ']');
    } else {
        end = strrchr(addr, ':');
    }
    size_t n = end ? (size_t)(end - start) : strlen(start);
    if (n >= size)
        n = size - 1;
    memcpy(out, start, n);
    out[n] = '\0';
}

static int check_args(const async_connect_opts *o, async_reader **r,
                      async_writer **w, uint64_t *deadline)
{
    if (!r || !w)
        return ASYNC_EINVAL;
    if (o && o->timeout < 0)
        return ASYNC_EINVAL;
    if (!async_current_task())
        return ASYNC_ENOTTASK;
    *deadline = o && o->timeout > 0 ? async_deadline_in(o->timeout)
                                    : ASYNC_NO_DEADLINE;
    return 0;
}

static int local_of(const async_connect_opts *o, async_addr *out,
                    const async_addr **local)
{
    *local = NULL;
    if (!o || !o->local_addr)
        return 0;
    int rc = async_addr_parse(o->local_addr, out);
    if (rc == 0)
        *local = out;
    return rc;
}

int async_open_connection_addrs(const async_addr *addrs, size_t n,
                                const async_connect_opts *opts,
                                async_reader **r, async_writer **w)
{
    uint64_t deadline;
    int rc = check_args(opts, r, w, &deadline);
    if (rc)
        return rc;
    if (!addrs || n == 0 || n > ASYNC_ADDR_MAX)
        return ASYNC_EINVAL;
    async_addr la;
    const async_addr *local;
    if ((rc = local_of(opts, &la, &local)))
        return rc;
    int fd = happy_eyeballs(addrs, n, opts, local, deadline);
    if (fd < 0)
        return fd;
    char host[ASYNC_ADDR_STRLEN] = "";
    async_addr_format(&addrs[0], host, sizeof(host));
    char name[ASYNC_ADDR_STRLEN];
    host_of(host, name, sizeof(name));
    return finish(fd, opts, name, deadline, r, w);
}

int async_open_connection(const char *addr, const async_connect_opts *opts,
                          async_reader **r, async_writer **w)
{
    uint64_t deadline;
    int rc = check_args(opts, r, w, &deadline);
    if (rc)
        return rc;
    if (!addr)
        return ASYNC_EINVAL;
    async_addr la;
    const async_addr *local;
    if ((rc = local_of(opts, &la, &local)))
        return rc;
    async_addr addrs[ASYNC_ADDR_MAX];
    int n;
    if (deadline != ASYNC_NO_DEADLINE && (rc = async_deadline_push(deadline)))
        return rc;
    n = async_addr_resolve(addr, SOCK_STREAM, addrs, ASYNC_ADDR_MAX);
    if (deadline != ASYNC_NO_DEADLINE)
        async_deadline_pop();
    if (n < 0)
        return n;
    int fd = happy_eyeballs(addrs, (size_t)n, opts, local, deadline);
    if (fd < 0)
        return fd;
    char host[256];
    host_of(addr, host, sizeof(host));
    return finish(fd, opts, host, deadline, r, w);
}
