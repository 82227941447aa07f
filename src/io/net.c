/*
 * Addresses, TCP listen / connect and UDP on top of src/io/io.c.
 *
 * Numeric addresses are parsed in place with inet_pton: the common case
 * ("127.0.0.1:7000") needs no thread.  Host names go to getaddrinfo, which
 * blocks, so inside a task it runs on the loop's thread pool.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <async/net.h>

#include "core/internal.h"
#include "io/io_internal.h"

#ifndef MSG_NOSIGNAL
#define MSG_NOSIGNAL 0
#endif

#define UNIX_PREFIX "unix:"

/* An address string split into its parts (host may be a name). */
typedef struct split_addr {
    char host[256];  /* numeric host or name, without brackets */
    uint16_t port;   /* host byte order */
    bool bracketed;  /* host was written as [v6] */
} split_addr;

/* ---- parsing -------------------------------------------------------------- */

static int parse_port(const char *s, uint16_t *out)
{
    unsigned long v = 0;
    if (*s == '\0')
        return ASYNC_EINVAL;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return ASYNC_EINVAL;
        v = v * 10 + (unsigned long)(*s - '0');
        if (v > 65535)
            return ASYNC_EINVAL;
    }
    *out = (uint16_t)v;
    return 0;
}

/* Splits "host:port" / "[v6]:port" into parts; syntax only. */
static int split(const char *str, split_addr *sp)
{
    const char *colon, *host = str;
    size_t hlen;
    sp->bracketed = str[0] == '[';
    if (sp->bracketed) {
        const char *close = strchr(str, ']');
        if (!close || close[1] != ':')
            return ASYNC_EINVAL;
        host = str + 1;
        hlen = (size_t)(close - host);
        colon = close + 1;
    } else {
        colon = strrchr(str, ':');
        if (!colon)
            return ASYNC_EINVAL;
        hlen = (size_t)(colon - str);
        if (memchr(str, ':', hlen))
            return ASYNC_EINVAL; /* an IPv6 literal needs brackets */
    }
    if (hlen >= sizeof(sp->host))
        return ASYNC_EINVAL;
    memcpy(sp->host, host, hlen);
    sp->host[hlen] = '\0';
    return parse_port(colon + 1, &sp->port);
}

static int parse_unix(const char *path, async_addr *out)
{
    size_t n = strlen(path);
    async_addr a;
    memset(&a, 0, sizeof(a));
    if (n == 0 || n >= sizeof(a.u.un.sun_path))
        return ASYNC_EINVAL;
    a.u.un.sun_family = AF_UNIX;
    memcpy(a.u.un.sun_path, path, n + 1);
    a.len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
    *out = a;
    return 0;
}

/* The numeric forms of a split address; ASYNC_ENOENT for a name. */
static int numeric(const split_addr *sp, async_addr *out)
{
    async_addr a;
    memset(&a, 0, sizeof(a));
    if (sp->bracketed) {
        if (inet_pton(AF_INET6, sp->host, &a.u.in6.sin6_addr) != 1)
            return ASYNC_EINVAL;
        a.u.in6.sin6_family = AF_INET6;
        a.u.in6.sin6_port = htons(sp->port);
        a.len = sizeof(a.u.in6);
    } else {
        bool any = sp->host[0] == '\0' || strcmp(sp->host, "*") == 0;
        if (!any && inet_pton(AF_INET, sp->host, &a.u.in.sin_addr) != 1)
            return ASYNC_ENOENT;
        a.u.in.sin_family = AF_INET;
        a.u.in.sin_port = htons(sp->port);
        a.len = sizeof(a.u.in);
    }
    *out = a;
    return 0;
}

/* Host names: letters, digits, '-', '.', '_' (no spaces, no quotes). */
static bool valid_name(const char *h)
{
    if (*h == '\0')
        return false;
    for (; *h; h++) {
        char c = *h;
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                  (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_';
        if (!ok)
            return false;
    }
    return true;
}

int async_addr_parse(const char *str, async_addr *out)
{
    if (!str || !out)
        return ASYNC_EINVAL;
    if (strncmp(str, UNIX_PREFIX, strlen(UNIX_PREFIX)) == 0)
        return parse_unix(str + strlen(UNIX_PREFIX), out);
    split_addr sp;
    int rc = split(str, &sp);
    if (rc)
        return rc;
    rc = numeric(&sp, out);
    if (rc == ASYNC_ENOENT && !valid_name(sp.host))
        rc = ASYNC_EINVAL;
    return rc;
}

/* ---- name resolution ------------------------------------------------------- */

/* getaddrinfo's errors as libasync codes: the same ones async_getaddrinfo
 * gives, so a name fails alike with and without a running loop. */
static int eai_code(int eai, int sys_errno)
{
    switch (eai) {
    case 0: return 0;
    case EAI_NONAME: return ASYNC_EAI_NONAME;
    case EAI_AGAIN: return ASYNC_EAI_AGAIN;
    case EAI_FAIL: return ASYNC_EAI_FAIL;
    case EAI_FAMILY: return ASYNC_EAI_FAMILY;
    case EAI_SERVICE: return ASYNC_EAI_SERVICE;
    case EAI_SOCKTYPE: return ASYNC_EAI_SOCKTYPE;
    case EAI_BADFLAGS: return ASYNC_EAI_BADFLAGS;
#ifdef EAI_NODATA
    case EAI_NODATA: return ASYNC_EAI_NODATA;
#endif
#ifdef EAI_ADDRFAMILY
    case EAI_ADDRFAMILY: return ASYNC_EAI_NODATA;
#endif
    case EAI_MEMORY: return ASYNC_ENOMEM;
    case EAI_SYSTEM: return sys_errno ? -sys_errno : ASYNC_EAI_OTHER;
    default: return ASYNC_EAI_OTHER;
    }
}

/* Copies up to max IPv4/IPv6 results of a getaddrinfo list. */
static int addrs_from_list(const struct addrinfo *ai, async_addr *out,
                           size_t max)
{
    size_t n = 0;
    for (; ai && n < max; ai = ai->ai_next) {
        if (ai->ai_family != AF_INET && ai->ai_family != AF_INET6)
            continue;
        if (ai->ai_addrlen > sizeof(out[n].u))
            continue;
        memset(&out[n], 0, sizeof(out[n]));
        memcpy(&out[n].u, ai->ai_addr, ai->ai_addrlen);
        out[n].len = ai->ai_addrlen;
        n++;
    }
    return n ? (int)n : ASYNC_EAI_NODATA;
}

static void hints_for(struct addrinfo *hints, int socktype)
{
    memset(hints, 0, sizeof(*hints));
    hints->ai_family = AF_UNSPEC;
    hints->ai_socktype = socktype;
    hints->ai_flags = AI_NUMERICSERV;
}

/* getaddrinfo right here: only when no loop runs in this thread. */
static int resolve_here(const split_addr *sp, int socktype, async_addr *out,
                        size_t max)
{
    char port[8];
    snprintf(port, sizeof(port), "%u", (unsigned)sp->port);
    struct addrinfo hints, *res = NULL;
    hints_for(&hints, socktype);
    int eai = getaddrinfo(sp->host, port, &hints, &res);
    int rc = eai_code(eai, errno);
    if (rc)
        return rc;
    rc = addrs_from_list(res, out, max);
    freeaddrinfo(res);
    return rc;
}

/* async_getaddrinfo: the lookup blocks a pool thread, not the loop. */
static int resolve_off_thread(const split_addr *sp, int socktype,
                              async_addr *out, size_t max)
{
    char port[8];
    snprintf(port, sizeof(port), "%u", (unsigned)sp->port);
    struct addrinfo hints, *res = NULL;
    hints_for(&hints, socktype);
    int rc = async_getaddrinfo(sp->host, port, &hints, &res);
    if (rc)
        return rc;
    rc = addrs_from_list(res, out, max);
    freeaddrinfo(res);
    return rc;
}

static int resolve_name(const split_addr *sp, int socktype, async_addr *out,
                        size_t max)
{
    if (!async_get_running_loop())
        return resolve_here(sp, socktype, out, max);
    if (!async__task_current())
        return ASYNC_ENOTTASK;
    return resolve_off_thread(sp, socktype, out, max);
}

int async_addr_resolve(const char *str, int socktype, async_addr *out,
                       size_t max)
{
    if (!str || !out || max == 0)
        return ASYNC_EINVAL;
    if (socktype != SOCK_STREAM && socktype != SOCK_DGRAM)
        return ASYNC_EINVAL;
    if (strncmp(str, UNIX_PREFIX, strlen(UNIX_PREFIX)) == 0) {
        int rc = parse_unix(str + strlen(UNIX_PREFIX), out);
        return rc ? rc : 1;
    }
    split_addr sp;
    int rc = split(str, &sp);
    if (rc)
        return rc;
    rc = numeric(&sp, out);
    if (rc != ASYNC_ENOENT)
        return rc ? rc : 1;
    if (!valid_name(sp.host))
        return ASYNC_EINVAL;
    return resolve_name(&sp, socktype, out, max);
}

/* ---- formatting and queries ------------------------------------------------- */

int async_addr_format(const async_addr *a, char *buf, size_t size)
{
    if (!a || !buf || size == 0)
        return ASYNC_EINVAL;
    char host[INET6_ADDRSTRLEN];
    int n;
    switch (a->u.sa.sa_family) {
    case AF_INET:
        inet_ntop(AF_INET, &a->u.in.sin_addr, host, sizeof(host));
        n = snprintf(buf, size, "%s:%u", host, ntohs(a->u.in.sin_port));
        break;
    case AF_INET6:
        inet_ntop(AF_INET6, &a->u.in6.sin6_addr, host, sizeof(host));
        n = snprintf(buf, size, "[%s]:%u", host, ntohs(a->u.in6.sin6_port));
        break;
    case AF_UNIX:
        n = snprintf(buf, size, UNIX_PREFIX "%.*s",
                     (int)sizeof(a->u.un.sun_path), a->u.un.sun_path);
        break;
    default:
        buf[0] = '\0';
        return ASYNC_EINVAL;
    }
    if (n < 0 || (size_t)n >= size) {
        buf[0] = '\0';
        return ASYNC_ENOSPC;
    }
    return n;
}

int async_addr_port(const async_addr *a)
{
    if (!a)
        return ASYNC_EINVAL;
    if (a->u.sa.sa_family == AF_INET)
        return ntohs(a->u.in.sin_port);
    if (a->u.sa.sa_family == AF_INET6)
        return ntohs(a->u.in6.sin6_port);
    return ASYNC_EINVAL;
}

int async_sock_local_addr(int fd, async_addr *out)
{
    if (!out)
        return ASYNC_EINVAL;
    async_addr a;
    memset(&a, 0, sizeof(a));
    a.len = sizeof(a.u);
    if (getsockname(fd, &a.u.sa, &a.len) < 0)
        return -errno;
    *out = a;
    return 0;
}

int async_sock_peer_addr(int fd, async_addr *out)
{
    if (!out)
        return ASYNC_EINVAL;
    async_addr a;
    memset(&a, 0, sizeof(a));
    a.len = sizeof(a.u);
    if (getpeername(fd, &a.u.sa, &a.len) < 0)
        return -errno;
    *out = a;
    return 0;
}

/* ---- sockets ------------------------------------------------------------------ */

/* A new non-blocking, close-on-exec socket, or a negated errno. */
static int sock_new(int family, int type)
{
#if defined(SOCK_NONBLOCK) && defined(SOCK_CLOEXEC)
    int fd = socket(family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
#else
    int fd = socket(family, type, 0);
    if (fd < 0)
        return -errno;
    if (async_set_nonblocking(fd) < 0 || fcntl(fd, F_SETFD, FD_CLOEXEC) < 0) {
        int err = -errno;
        close(fd);
        return err;
    }
#endif
#ifdef SO_NOSIGPIPE
    int one = 1;
    (void)setsockopt(fd, SOL_SOCKET, SO_NOSIGPIPE, &one, sizeof(one));
#endif
    async__loop_fd_opened(async_get_running_loop(), fd);
    return fd;
}

static int set_opt(int fd, int level, int name)
{
    int one = 1;
    return setsockopt(fd, level, name, &one, sizeof(one)) < 0 ? -errno : 0;
}

int async_tcp_nodelay(int fd, int on)
{
    int v = on != 0;
    if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &v, sizeof(v)) < 0)
        return -errno;
    return 0;
}

/* Removes a Unix socket file that nobody listens on any more.  A live
 * listener (connect succeeds or its backlog is full) is left alone. */
static void unlink_stale_unix(const async_addr *a)
{
    struct stat st;
    if (lstat(a->u.un.sun_path, &st) < 0 || !S_ISSOCK(st.st_mode))
        return;
    int fd = sock_new(AF_UNIX, SOCK_STREAM);
    if (fd < 0)
        return;
    if (connect(fd, &a->u.sa, a->len) < 0 && errno == ECONNREFUSED)
        unlink(a->u.un.sun_path);
    close(fd);
}

/* Socket options and bind shared by TCP listeners and UDP sockets. */
static int bind_new(const async_addr *a, int type, unsigned flags)
{
    int family = a->u.sa.sa_family;
    int fd = sock_new(family, type);
    if (fd < 0)
        return fd;
    int rc = 0;
    if (family != AF_UNIX)
        rc = set_opt(fd, SOL_SOCKET, SO_REUSEADDR);
#ifdef SO_REUSEPORT
    if (!rc && (flags & ASYNC_LISTEN_REUSEPORT) && family != AF_UNIX)
        rc = set_opt(fd, SOL_SOCKET, SO_REUSEPORT);
#else
    if (!rc && (flags & ASYNC_LISTEN_REUSEPORT))
        rc = -ENOPROTOOPT;
#endif
    if (!rc && family == AF_UNIX)
        unlink_stale_unix(a);
    if (!rc && bind(fd, &a->u.sa, a->len) < 0)
        rc = -errno;
    if (rc) {
        close(fd);
        return rc;
    }
    return fd;
}

static bool valid_family(const async_addr *a)
{
    int f = a->u.sa.sa_family;
    return f == AF_INET || f == AF_INET6 || f == AF_UNIX;
}

int async_tcp_listen_addr(const async_addr *a, int backlog, unsigned flags)
{
    if (!a || !valid_family(a) || (flags & ~ASYNC_LISTEN_REUSEPORT))
        return ASYNC_EINVAL;
    int fd = bind_new(a, SOCK_STREAM, flags);
    if (fd < 0)
        return fd;
    if (listen(fd, backlog < 0 ? SOMAXCONN : backlog) < 0) {
        int err = -errno;
        close(fd);
        return err;
    }
    return fd;
}

int async_tcp_listen(const char *addr, int backlog, unsigned flags)
{
    if (!addr || (flags & ~ASYNC_LISTEN_REUSEPORT))
        return ASYNC_EINVAL;
    async_addr addrs[ASYNC_ADDR_MAX];
    int n = async_addr_resolve(addr, SOCK_STREAM, addrs, ASYNC_ADDR_MAX);
    int rc = n;
    for (int i = 0; i < n; i++) {
        rc = async_tcp_listen_addr(&addrs[i], backlog, flags);
        if (rc >= 0)
            break;
    }
    return rc;
}

int async_tcp_connect_addr(const async_addr *a, uint64_t deadline)
{
    if (!a || !valid_family(a))
        return ASYNC_EINVAL;
    if (!async__task_current())
        return ASYNC_ENOTTASK;
    int fd = sock_new(a->u.sa.sa_family, SOCK_STREAM);
    if (fd < 0)
        return fd;
    int rc = async_connect_deadline(fd, &a->u.sa, a->len, deadline);
    if (rc == 0 && a->u.sa.sa_family != AF_UNIX)
        rc = async_tcp_nodelay(fd, 1);
    if (rc) {
        async_close(fd);
        return rc;
    }
    return fd;
}

/* Resolution under the connect deadline (a deadline scope bounds it). */
static int resolve_until(const char *addr, async_addr *out, uint64_t deadline)
{
    if (deadline == ASYNC_NO_DEADLINE)
        return async_addr_resolve(addr, SOCK_STREAM, out, ASYNC_ADDR_MAX);
    int rc = async_deadline_push(deadline);
    if (rc)
        return rc;
    int n = async_addr_resolve(addr, SOCK_STREAM, out, ASYNC_ADDR_MAX);
    async_deadline_pop();
    return n;
}

int async_tcp_connect(const char *addr, int64_t timeout)
{
    if (!addr)
        return ASYNC_EINVAL;
    if (!async__task_current())
        return ASYNC_ENOTTASK;
    uint64_t deadline = async_deadline_in(timeout);
    async_addr addrs[ASYNC_ADDR_MAX];
    int n = resolve_until(addr, addrs, deadline);
    int rc = n;
    for (int i = 0; i < n; i++) {
        rc = async_tcp_connect_addr(&addrs[i], deadline);
        if (rc >= 0 || rc == ASYNC_ECANCELED || rc == ASYNC_ETIMEDOUT)
            break;
    }
    return rc;
}

/* ---- UDP ----------------------------------------------------------------------- */

int async_udp_bind_addr(const async_addr *a, unsigned flags)
{
    if (!a || (flags & ~ASYNC_LISTEN_REUSEPORT))
        return ASYNC_EINVAL;
    int f = a->u.sa.sa_family;
    if (f != AF_INET && f != AF_INET6)
        return ASYNC_EINVAL;
    return bind_new(a, SOCK_DGRAM, flags);
}

int async_udp_bind(const char *addr, unsigned flags)
{
    if (!addr || (flags & ~ASYNC_LISTEN_REUSEPORT))
        return ASYNC_EINVAL;
    async_addr addrs[ASYNC_ADDR_MAX];
    int n = async_addr_resolve(addr, SOCK_DGRAM, addrs, ASYNC_ADDR_MAX);
    int rc = n;
    for (int i = 0; i < n; i++) {
        rc = async_udp_bind_addr(&addrs[i], flags);
        if (rc >= 0)
            break;
    }
    return rc;
}

static int udp_enter(int fd, const void *buf, size_t len, async_task **t)
{
    int rc = async__io_enter(t);
    if (rc)
        return rc;
    if (fd < 0)
        return ASYNC_EBADF;
    if (!buf && len > 0)
        return ASYNC_EINVAL;
    return 0;
}

ssize_t async_udp_sendto(int fd, const void *buf, size_t len,
                         const async_addr *to, uint64_t deadline)
{
    async_task *t;
    int rc = udp_enter(fd, buf, len, &t);
    if (rc)
        return rc;
    const struct sockaddr *sa = to ? &to->u.sa : NULL;
    socklen_t salen = to ? to->len : 0;
    for (;;) {
        ssize_t n = sendto(fd, buf, len, MSG_NOSIGNAL | MSG_DONTWAIT, sa,
                           salen);
        if (n >= 0)
            return n;
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK)
            return -errno;
        rc = async__io_wait(t, fd, ASYNC__EV_WRITE, deadline);
        if (rc)
            return rc;
    }
}

ssize_t async_udp_recvfrom(int fd, void *buf, size_t len, async_addr *from,
                           uint64_t deadline)
{
    async_task *t;
    int rc = udp_enter(fd, buf, len, &t);
    if (rc)
        return rc;
    for (;;) {
        async_addr a;
        a.len = sizeof(a.u);
        ssize_t n = recvfrom(fd, buf, len, MSG_DONTWAIT, &a.u.sa, &a.len);
        if (n >= 0) {
            if (from)
                *from = a;
            return n;
        }
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK)
            return -errno;
        rc = async__io_wait(t, fd, ASYNC__EV_READ, deadline);
        if (rc)
            return rc;
    }
}
