/*
 * libasync error codes.
 *
 * Every function that can fail returns 0 (or a count) on success and a
 * negative code on failure; none of them sets errno.  Where a POSIX errno
 * fits, the code is its negation (ASYNC_EINVAL == -EINVAL), so a failed
 * system call's errno passes through unchanged; the lifecycle errors that
 * asyncio raises as RuntimeError have codes of their own below -4000.
 */
#ifndef ASYNC_ERROR_H
#define ASYNC_ERROR_H

#include <errno.h>

#include <async/version.h>

#ifdef __cplusplus
extern "C" {
#endif

/* X(name, value, message): the single table behind the enum,
 * async_strerror() and async_err_name(). */
#define ASYNC_ERRNO_MAP(X)                                                    \
    X(EINVAL, -EINVAL, "invalid argument")                                    \
    X(ENOMEM, -ENOMEM, "out of memory")                                       \
    X(EAGAIN, -EAGAIN, "resource temporarily unavailable")                    \
    X(EBADF, -EBADF, "bad file descriptor")                                   \
    X(EEXIST, -EEXIST, "already exists")                                      \
    X(ENOENT, -ENOENT, "no such file or directory")                           \
    X(EPERM, -EPERM, "operation not permitted")                               \
    X(EBUSY, -EBUSY, "resource busy")                                         \
    X(EPIPE, -EPIPE, "broken pipe")                                           \
    X(ECONNRESET, -ECONNRESET, "connection reset by peer")                    \
    X(ECONNREFUSED, -ECONNREFUSED, "connection refused")                      \
    X(EADDRINUSE, -EADDRINUSE, "address already in use")                      \
    X(EMFILE, -EMFILE, "too many open files")                                 \
    X(ENFILE, -ENFILE, "file table overflow")                                 \
    X(ENOTCONN, -ENOTCONN, "socket is not connected")                         \
    X(ENOSPC, -ENOSPC, "no space left")                                       \
    X(ECANCELED, -ECANCELED, "operation canceled")                            \
    X(ETIMEDOUT, -ETIMEDOUT, "operation timed out")                           \
    X(EINTR, -EINTR, "interrupted")                                           \
    X(EDEADLK, -EDEADLK, "task cannot await itself")                          \
    X(ECLOSED, -4001, "event loop is closed")                                 \
    X(ERUNNING, -4002, "event loop is already running")                       \
    X(EOTHERLOOP, -4003, "another loop is running in this thread")            \
    X(ESTOPPED, -4004, "loop stopped before the future completed")            \
    X(ECLOSERUNNING, -4005, "cannot close a running loop")                    \
    X(ENOLOOP, -4006, "no running event loop")                                \
    X(ENOTTASK, -4007, "not called from inside a task")                       \
    X(EPENDING, -4008, "result is not set yet")                               \
    X(EDONE, -4009, "future is already done")                                 \
    X(EWRONGLOOP, -4010, "future belongs to a different loop")                \
    X(ESHUTDOWN, -4011, "object is shut down")                                \
    X(ENOTHELD, -4012, "lock is not acquired")                                \
    X(EFAILED, -4013, "operation failed")                                     \
    X(EWRONGTHREAD, -4014, "called from a thread other than the loop's")     \
    X(EAI_NONAME, -4101, "name or service not known")                         \
    X(EAI_AGAIN, -4102, "temporary failure in name resolution")               \
    X(EAI_FAIL, -4103, "non-recoverable failure in name resolution")          \
    X(EAI_FAMILY, -4104, "address family not supported")                      \
    X(EAI_SERVICE, -4105, "service not supported for socket type")            \
    X(EAI_SOCKTYPE, -4106, "socket type not supported")                       \
    X(EAI_BADFLAGS, -4107, "bad value for ai_flags")                          \
    X(EAI_NODATA, -4108, "no address associated with hostname")               \
    X(EAI_OTHER, -4109, "name resolution failed")                             \
    X(EFULL, -4201, "queue is full")                                          \
    X(EEMPTY, -4202, "queue is empty")                                        \
    X(EBROKEN, -4203, "barrier is broken")                                    \
    X(ENOTSUP, -ENOTSUP, "operation not supported")                           \
    X(EINCOMPLETE, -4301, "end of stream before the expected bytes")          \
    X(ELIMIT, -4302, "separator not found within the stream's limit")         \
    X(ETLS, -4401, "TLS error")                                               \
    X(ECERT, -4402, "TLS certificate verification failed")                    \
    X(EUNKNOWN, -4999, "unknown error")

/* The codes, as ASYNC_EINVAL, ASYNC_ECLOSED, ... */
typedef enum async_errno {
#define ASYNC_ERRNO_ENUM_ENTRY(name, value, msg) ASYNC_##name = (value),
    ASYNC_ERRNO_MAP(ASYNC_ERRNO_ENUM_ENTRY)
#undef ASYNC_ERRNO_ENUM_ENTRY
} async_errno;

/*
 * A human-readable message for `err` ("event loop is closed"); for a negated
 * errno not in the table, the system's strerror text.  Never NULL; the
 * string is static and must not be freed.
 */
ASYNC_API const char *async_strerror(int err);

/* The code's name without the prefix ("ECLOSED"), or "UNKNOWN". Static. */
ASYNC_API const char *async_err_name(int err);

#ifdef __cplusplus
}
#endif

#endif
