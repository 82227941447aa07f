/*
 * Run a scenario that must die (stack overflow, fault, abort) in a child
 * process and collect how it died and what it wrote to stderr.
 *
 * The child runs fn and then _exit()s, so nothing of the test runner's
 * state (cmocka, stdio buffers) is run or flushed twice.
 */
#ifndef ASYNC_TEST_CHILD_H
#define ASYNC_TEST_CHILD_H

#include <signal.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

typedef struct th_child {
    int status;        /* waitpid() status */
    char err[4096];    /* the child's stderr, NUL-terminated (truncated) */
} th_child;

/* Runs fn(arg) in a child whose stderr is captured; if fn returns the
 * child exits with status 0.  Returns 0, or -1 if no child could be run. */
static inline int th_child_run(void (*fn)(void *), void *arg, th_child *out)
{
    int fds[2];

    memset(out, 0, sizeof *out);
    if (pipe(fds) != 0)
        return -1;
    pid_t pid = fork();
    if (pid < 0) {
        close(fds[0]);
        close(fds[1]);
        return -1;
    }
    if (pid == 0) {
        close(fds[0]);
        dup2(fds[1], STDERR_FILENO);
        fn(arg);
        _exit(0);
    }
    close(fds[1]);
    size_t len = 0;
    ssize_t r;
    char discard[256];
    for (;;) {
        size_t room = sizeof out->err - 1 - len;
        r = room > 0 ? read(fds[0], out->err + len, room)
                     : read(fds[0], discard, sizeof discard);
        if (r <= 0)
            break;
        if (room > 0)
            len += (size_t)r;
    }
    close(fds[0]);
    while (waitpid(pid, &out->status, 0) < 0) {
    }
    return 0;
}

#endif
