/*
 * Starting a child: fork, then in the child reset signals, change
 * directory, wire up 0/1/2, mark every other descriptor close-on-exec and
 * exec.  A failure in the child is reported through a close-on-exec pipe:
 * if exec succeeds the pipe just closes, otherwise the child writes its
 * errno and exits, and the parent reaps it before returning the error.
 *
 * Between fork and exec only async-signal-safe calls are made (the parent
 * may have other threads holding malloc's or stdio's locks), so everything
 * the child needs (the list of paths to try, the fds) is prepared first.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "process/process.h"

extern char **environ;

/* close_range(2)'s flag to mark instead of close (Linux 5.11). */
#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC 4u
#endif

/* Everything the child needs, built before fork. */
typedef struct spawn_plan {
    char **paths;        /* programs to try in order (execvp's PATH walk) */
    size_t npaths;       /* entries in paths */
    char *const *argv;   /* the argument vector */
    char *const *envp;   /* the environment */
    const char *cwd;     /* directory to change to, or NULL */
    int src[3];          /* fd to put on 0/1/2; -1 = leave the inherited one */
    bool merge_stderr;   /* stderr = whatever stdout is */
    int parent[3];       /* the parent's pipe ends, or -1 */
    int devnull;         /* /dev/null, or -1 if unused */
    int errpipe[2];      /* child-to-parent exec failure report */
    long maxfd;          /* highest fd number + 1 to sweep without close_range */
} spawn_plan;

/* ---- the PATH walk, prepared in the parent -------------------------------- */

static char *path_join(const char *dir, size_t dirlen, const char *name)
{
    size_t nlen = strlen(name);
    if (dirlen == 0) { /* an empty PATH entry means the current directory */
        dir = ".";
        dirlen = 1;
    }
    char *s = malloc(dirlen + 1 + nlen + 1);
    if (!s)
        return NULL;
    memcpy(s, dir, dirlen);
    s[dirlen] = '/';
    memcpy(s + dirlen + 1, name, nlen + 1);
    return s;
}

static void plan_free_paths(spawn_plan *sp)
{
    for (size_t i = 0; i < sp->npaths; i++)
        free(sp->paths[i]);
    free(sp->paths);
    sp->paths = NULL;
    sp->npaths = 0;
}

/* A name with a slash is used as is; otherwise each PATH entry (the
 * parent's PATH, like execvp) is a candidate. */
static int plan_paths(spawn_plan *sp, const char *name)
{
    const char *path = strchr(name, '/') ? NULL : getenv("PATH");
    if (!strchr(name, '/') && !path)
        path = "/bin:/usr/bin";
    size_t n = 1;
    for (const char *c = path; c && *c; c++)
        n += *c == ':';
    sp->paths = calloc(n, sizeof(*sp->paths));
    if (!sp->paths)
        return ASYNC_ENOMEM;
    if (!path) {
        sp->paths[0] = strdup(name);
        sp->npaths = sp->paths[0] ? 1 : 0;
        return sp->npaths ? 0 : ASYNC_ENOMEM;
    }
    for (const char *dir = path;; dir = strchr(dir, ':') + 1) {
        const char *end = strchr(dir, ':');
        size_t len = end ? (size_t)(end - dir) : strlen(dir);
        if (!(sp->paths[sp->npaths] = path_join(dir, len, name)))
            return ASYNC_ENOMEM;
        sp->npaths++;
        if (!end)
            return 0;
    }
}

/* ---- descriptors, prepared in the parent ---------------------------------- */

static void close_fd(int *fd)
{
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

/* The parent's end of a pipe is non-blocking (for the loop); the child's
 * end stays blocking, as programs expect of their stdio. */
static int plan_pipe(spawn_plan *sp, int which)
{
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) < 0)
        return -errno;
    int mine = which == 0 ? fds[1] : fds[0];
    sp->src[which] = which == 0 ? fds[0] : fds[1];
    sp->parent[which] = mine;
    int fl = fcntl(mine, F_GETFL);
    if (fl < 0 || fcntl(mine, F_SETFL, fl | O_NONBLOCK) < 0)
        return -errno;
    return 0;
}

static int plan_stream(spawn_plan *sp, int which, async_process_stdio mode)
{
    switch (mode) {
    case ASYNC_PROCESS_PIPE:
        return plan_pipe(sp, which);
    case ASYNC_PROCESS_DEVNULL:
        if (sp->devnull < 0)
            sp->devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
        if (sp->devnull < 0)
            return -errno;
        sp->src[which] = sp->devnull;
        return 0;
    case ASYNC_PROCESS_STDOUT:
        sp->merge_stderr = true;
        return 0;
    default:
        return 0;
    }
}

/* Closes what the parent does not keep (child ends, /dev/null, the write
 * end of the error pipe); with `all`, the parent's pipe ends too. */
static void plan_close(spawn_plan *sp, bool all)
{
    for (int i = 0; i < 3; i++) {
        if (sp->src[i] != sp->devnull)
            close_fd(&sp->src[i]);
        sp->src[i] = -1;
        if (all)
            close_fd(&sp->parent[i]);
    }
    close_fd(&sp->devnull);
    close_fd(&sp->errpipe[1]);
    if (all)
        close_fd(&sp->errpipe[0]);
}

static int plan_init(spawn_plan *sp, const async_process_opts *o)
{
    *sp = (spawn_plan){.argv = (char *const *)o->argv, .cwd = o->cwd,
                       .src = {-1, -1, -1}, .parent = {-1, -1, -1},
                       .devnull = -1, .errpipe = {-1, -1}};
    sp->envp = o->envp ? (char *const *)o->envp : environ;
    long maxfd = sysconf(_SC_OPEN_MAX);
    sp->maxfd = maxfd > 0 ? maxfd : 1024;
    int rc = plan_paths(sp, o->argv[0]);
    if (!rc)
        rc = plan_stream(sp, 0, o->stdin_mode);
    if (!rc)
        rc = plan_stream(sp, 1, o->stdout_mode);
    if (!rc)
        rc = plan_stream(sp, 2, o->stderr_mode);
    if (!rc && pipe2(sp->errpipe, O_CLOEXEC) < 0)
        rc = -errno;
    return rc;
}

/* ---- the child, between fork and exec (async-signal-safe only) ------------ */

static _Noreturn void child_fail(int errfd, int err)
{
    while (write(errfd, &err, sizeof(err)) < 0 && errno == EINTR)
        ;
    _exit(127);
}

/* Handlers of the parent must not run in the child (they would act on the
 * parent's state, e.g. write to its self-pipes), so caught signals go back
 * to SIG_DFL before the mask the parent blocked around fork is cleared.
 * Ignored signals stay ignored across exec, as POSIX says, except SIGPIPE:
 * programs expect to die quietly on a closed pipe (Python restores it too). */
static void child_reset_signals(void)
{
    for (int s = 1; s < NSIG; s++) {
        struct sigaction sa;
        if (s == SIGKILL || s == SIGSTOP || sigaction(s, NULL, &sa) < 0)
            continue;
        if (s == SIGPIPE || (sa.sa_handler != SIG_IGN &&
                             sa.sa_handler != SIG_DFL)) {
            sa.sa_handler = SIG_DFL;
            sa.sa_flags = 0;
            sigemptyset(&sa.sa_mask);
            (void)sigaction(s, &sa, NULL);
        }
    }
    sigset_t none;
    sigemptyset(&none);
    (void)sigprocmask(SIG_SETMASK, &none, NULL);
}

/* Moves an fd that sits on 0..2 out of the way, so that wiring one stream
 * cannot clobber the source of another. */
static int child_lift(int fd, int errfd)
{
    if (fd < 0 || fd > 2)
        return fd;
    int nfd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
    if (nfd < 0)
        child_fail(errfd, errno);
    return nfd;
}

static void child_stdio(const spawn_plan *sp, int errfd)
{
    int src[3];
    for (int i = 0; i < 3; i++)
        src[i] = child_lift(sp->src[i], errfd);
    for (int i = 0; i < 3; i++)
        if (src[i] >= 0 && dup2(src[i], i) < 0)
            child_fail(errfd, errno);
    if (sp->merge_stderr && dup2(1, 2) < 0)
        child_fail(errfd, errno);
}

/* Everything above 2 gets FD_CLOEXEC, including descriptors the program
 * opened without it, so the child starts with exactly 0, 1 and 2.  The
 * error pipe is close-on-exec already and stays usable until exec. */
static void child_cloexec_rest(const spawn_plan *sp)
{
#ifdef SYS_close_range
    if (syscall(SYS_close_range, 3u, ~0u, CLOSE_RANGE_CLOEXEC) == 0)
        return;
#endif
    for (long fd = 3; fd < sp->maxfd; fd++)
        (void)fcntl((int)fd, F_SETFD, FD_CLOEXEC);
}

/* execvp's walk: a missing entry or one we may not run moves on to the
 * next PATH entry; EACCES is reported only if nothing else worked. */
static _Noreturn void child_exec(const spawn_plan *sp, int errfd)
{
    int err = ENOENT;
    for (size_t i = 0; i < sp->npaths; i++) {
        execve(sp->paths[i], sp->argv, sp->envp);
        if (errno == EACCES)
            err = EACCES;
        else if (errno != ENOENT && errno != ENOTDIR)
            child_fail(errfd, errno);
    }
    child_fail(errfd, err);
}

static _Noreturn void child_main(const spawn_plan *sp)
{
    int errfd = sp->errpipe[1];
    if (errfd <= 2)
        errfd = child_lift(errfd, errfd);
    child_reset_signals();
    if (sp->cwd && chdir(sp->cwd) < 0)
        child_fail(errfd, errno);
    child_stdio(sp, errfd);
    child_cloexec_rest(sp);
    child_exec(sp, errfd);
}

/* ---- the parent ------------------------------------------------------------ */

/* 0 once the child has exec'd (the pipe closed empty), else the child's
 * negated errno. */
static int parent_read_report(int fd)
{
    int err = 0;
    ssize_t n;
    while ((n = read(fd, &err, sizeof(err))) < 0 && errno == EINTR)
        ;
    if (n < 0)
        return -errno;
    return n == (ssize_t)sizeof(err) ? -err : 0;
}

static void reap_blocking(pid_t pid)
{
    while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
        ;
}

/* fork with every signal blocked, so that no handler runs in the child
 * before it has reset them; the parent's mask is restored at once. */
static pid_t fork_blocked(const spawn_plan *sp)
{
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pid_t pid = fork();
    if (pid == 0)
        child_main(sp);
    int err = errno;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return pid < 0 ? -err : pid;
}

int async__spawn(const async_process_opts *opts, pid_t *pid, int parent_fds[3])
{
    spawn_plan sp;
    int rc = plan_init(&sp, opts);
    pid_t child = rc ? -1 : fork_blocked(&sp);
    if (!rc && child < 0)
        rc = child;
    plan_close(&sp, false);
    if (!rc) {
        rc = parent_read_report(sp.errpipe[0]);
        if (rc)
            reap_blocking(child);
    }
    plan_free_paths(&sp);
    if (rc) {
        plan_close(&sp, true);
        return rc;
    }
    close_fd(&sp.errpipe[0]);
    *pid = child;
    memcpy(parent_fds, sp.parent, sizeof(sp.parent));
    return 0;
}
