/*
 * Sockets for tasks: addresses, TCP listen / connect, UDP.
 *
 * Address strings:
 *   "127.0.0.1:7000"   IPv4, numeric
 *   "[::1]:7000"       IPv6, numeric (brackets required)
 *   "localhost:7000"   a host name, resolved with getaddrinfo on the
 *                      loop's thread pool, never on the loop's thread
 *   ":7000", "*:7000"  every IPv4 address (0.0.0.0); "[::]:7000" is every
 *                      IPv6 (and, where the system allows, IPv4) address
 *   "unix:/path"       a Unix-domain socket path
 * Numeric addresses are parsed in place and need no thread or task.
 *
 * Every fd returned here is non-blocking and close-on-exec, owned by the
 * caller, and should be closed with async_close() (async/io.h).  Reads and
 * writes on it use async/io.h.
 */
#ifndef ASYNC_NET_H
#define ASYNC_NET_H

#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/un.h>

#include <async/error.h>
#include <async/io.h>
#include <async/version.h>

#ifdef __cplusplus
extern "C" {
#endif

/* A socket address of any supported family, with its length. */
typedef struct async_addr {
    union {
        struct sockaddr sa;        /* the generic view, for system calls */
        struct sockaddr_in in;     /* AF_INET */
        struct sockaddr_in6 in6;   /* AF_INET6 */
        struct sockaddr_un un;     /* AF_UNIX */
        struct sockaddr_storage ss;/* room for any of them */
    } u;
    socklen_t len;                 /* bytes of u in use */
} async_addr;

/* Room async_addr_format() needs for any address, with the NUL. */
#define ASYNC_ADDR_STRLEN 128

/* async_tcp_listen flags. */
#define ASYNC_LISTEN_REUSEPORT 1u /* SO_REUSEPORT: several listeners (one per
                                     loop thread) share the port */

/* Most addresses async_addr_resolve() returns. */
#define ASYNC_ADDR_MAX 8

/*
 * Parses a numeric address string (IPv4, bracketed IPv6, "unix:/path",
 * ":port" / "*:port" meaning the IPv4 any-address) into *out.  Returns 0,
 * ASYNC_EINVAL (NULL argument, bad syntax, port out of 0..65535, Unix path
 * longer than sockaddr_un allows) or ASYNC_ENOENT (the host is a name, not
 * a number: use async_addr_resolve).  *out is written only on success.
 */
ASYNC_API int async_addr_parse(const char *str, async_addr *out);

/*
 * Resolves an address string into up to `max` addresses (in the order
 * getaddrinfo prefers) for a stream (SOCK_STREAM) or datagram (SOCK_DGRAM)
 * socket.  Numeric strings give one address without leaving the thread.
 * Host names are resolved with getaddrinfo: inside a task it runs on the
 * loop's thread pool while the task waits (cancellable); outside any
 * running loop it runs right here (there is no loop to block); from loop
 * code outside a task it returns ASYNC_ENOTTASK.  Returns the number of
 * addresses stored (>= 1), or ASYNC_EINVAL (bad arguments or syntax), the
 * errors of async_getaddrinfo (async/executor.h: ASYNC_EAI_NONAME for an
 * unknown name, ASYNC_EAI_AGAIN, ..., ASYNC_ECANCELED, ASYNC_ETIMEDOUT),
 * ASYNC_EAI_NODATA (no IPv4 or IPv6 address), or ASYNC_ENOTTASK.
 */
ASYNC_API int async_addr_resolve(const char *str, int socktype,
                                 async_addr *out, size_t max);

/*
 * Formats an address as "1.2.3.4:80", "[::1]:80" or "unix:/path" into buf
 * (NUL-terminated; ASYNC_ADDR_STRLEN bytes always suffice).  Returns the
 * length, ASYNC_EINVAL (NULL, unknown family) or ASYNC_ENOSPC (buf too
 * small; buf then holds an empty string).
 */
ASYNC_API int async_addr_format(const async_addr *addr, char *buf,
                                size_t size);

/* The port of an IPv4/IPv6 address (host byte order), or ASYNC_EINVAL. */
ASYNC_API int async_addr_port(const async_addr *addr);

/* The local (sockname) / remote (peername) address of a socket.  Returns 0,
 * ASYNC_EINVAL (out NULL) or getsockname/getpeername's negated errno. */
ASYNC_API int async_sock_local_addr(int fd, async_addr *out);
ASYNC_API int async_sock_peer_addr(int fd, async_addr *out);

/*
 * Creates a listening TCP (or Unix stream) socket bound to `addr` and
 * returns its fd.  `backlog` < 0 means SOMAXCONN; 0 is passed through (the
 * kernel's smallest queue).  SO_REUSEADDR is always set on IP sockets, so a
 * restarted server can bind while old connections sit in TIME_WAIT.  With
 * ASYNC_LISTEN_REUSEPORT several sockets may listen on the same port and
 * the kernel spreads connections over them.  For "unix:/path" an existing
 * file at path is removed first only if it is a socket nobody listens on
 * (a stale one); otherwise bind fails with ASYNC_EADDRINUSE.  A host name
 * is resolved as async_addr_resolve does and the first address that binds
 * wins.  Port 0 picks a free port (see async_sock_local_addr).
 * Returns the fd, or ASYNC_EINVAL (bad arguments or flags), ASYNC_EADDRINUSE,
 * -EACCES, -EADDRNOTAVAIL, ASYNC_EMFILE, a resolution error, or another
 * negated errno of socket/bind/listen.
 */
ASYNC_API int async_tcp_listen(const char *addr, int backlog, unsigned flags);
ASYNC_API int async_tcp_listen_addr(const async_addr *addr, int backlog,
                                    unsigned flags);

/*
 * Connects a new TCP (or Unix stream) socket to `addr` and returns its fd,
 * with TCP_NODELAY set (request/response traffic should not wait for
 * Nagle's algorithm; asyncio does the same).  Must be called from a task.
 * async_tcp_connect takes a relative timeout in ns (< 0: none) covering
 * name resolution and every address tried; a name with several addresses
 * is tried in order and the last error is returned.  The _addr form takes
 * an absolute deadline (ASYNC_NO_DEADLINE: none).
 * Returns the fd, or ASYNC_ECONNREFUSED, ASYNC_ETIMEDOUT, -ENETUNREACH,
 * ASYNC_ENOENT (Unix path missing), ASYNC_EMFILE,
 * ASYNC_EINVAL, ASYNC_ECANCELED, ASYNC_ENOTTASK, or a resolution error.
 */
ASYNC_API int async_tcp_connect(const char *addr, int64_t timeout);
ASYNC_API int async_tcp_connect_addr(const async_addr *addr,
                                     uint64_t deadline);

/* Sets or clears TCP_NODELAY.  Returns 0 or a negated errno. */
ASYNC_API int async_tcp_nodelay(int fd, int on);

/*
 * Creates a UDP socket bound to `addr` (port 0 for any free port) and
 * returns its fd.  Flags: ASYNC_LISTEN_REUSEPORT.  Errors as
 * async_tcp_listen.  Unix-domain addresses are refused (ASYNC_EINVAL).
 */
ASYNC_API int async_udp_bind(const char *addr, unsigned flags);
ASYNC_API int async_udp_bind_addr(const async_addr *addr, unsigned flags);

/*
 * Sends one datagram of len bytes to `to` (or, with to == NULL, to the
 * socket's connected peer).  Returns len, or a negated errno (-EMSGSIZE,
 * ASYNC_ECONNREFUSED from an earlier ICMP error, ...) or a wait error of
 * async_wait_writable.
 */
ASYNC_API ssize_t async_udp_sendto(int fd, const void *buf, size_t len,
                                   const async_addr *to, uint64_t deadline);

/*
 * Receives one datagram into buf (a datagram longer than len is
 * truncated, as recvfrom does) and stores the sender in *from if it is not
 * NULL.  Returns the bytes stored, or a negated errno or a wait error of
 * async_wait_readable (ASYNC_ETIMEDOUT at the deadline).
 */
ASYNC_API ssize_t async_udp_recvfrom(int fd, void *buf, size_t len,
                                     async_addr *from, uint64_t deadline);

#ifdef __cplusplus
}
#endif

#endif
