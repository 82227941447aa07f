/*
 * The snippets of docs/guide-services.md, compiled and run so they cannot
 * rot: blocking work on the thread pool, name resolution, signals.
 * Runs by itself (it sends its own signals) and exits 0 when every
 * snippet behaved as the guide says.
 */
#include <netdb.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <async.h>

/* ---- to_thread: a blocking function, awaited from a task ----------------- */

/* Plain blocking C: no libasync calls in here, it runs on a pool thread. */
static int slow_square(void *arg, void **result)
{
    intptr_t x = (intptr_t)arg;
    usleep(10000); /* stands for a blocking call */
    *result = (void *)(x * x);
    return 0;
}

static int demo_to_thread(void)
{
    void *r;
    int rc = async_to_thread(slow_square, (void *)7, &r);
    if (rc < 0)
        return rc;
    printf("to_thread: 7 squared is %ld\n", (long)(intptr_t)r);
    return (intptr_t)r == 49 ? 0 : ASYNC_EFAILED;
}

/* ---- run_in_executor: several jobs at once, as futures --------------------- */

static int demo_run_in_executor(void)
{
    async_future *f[3];
    void *r[3];
    for (int i = 0; i < 3; i++) {
        int rc = async_run_in_executor(NULL, slow_square,
                                       (void *)(intptr_t)(i + 1), &f[i]);
        if (rc < 0)
            return rc; /* (the guide skips unwinding f[0..i-1] here) */
    }
    int rc = async_gather(f, 3, 0, r, NULL);
    for (int i = 0; i < 3; i++)
        async_future_unref(f[i]);
    if (rc == 0)
        printf("run_in_executor: %ld %ld %ld\n", (long)(intptr_t)r[0],
               (long)(intptr_t)r[1], (long)(intptr_t)r[2]);
    return rc;
}

/* ---- getaddrinfo without blocking the loop ------------------------------------ */

static int demo_getaddrinfo(void)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM};
    struct addrinfo *res;
    int rc = async_getaddrinfo("localhost", "7000", &hints, &res);
    if (rc < 0) {
        fprintf(stderr, "localhost: %s\n", async_strerror(rc));
        return rc;
    }
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        char host[64];
        getnameinfo(ai->ai_addr, ai->ai_addrlen, host, sizeof(host), NULL, 0,
                    NI_NUMERICHOST);
        printf("getaddrinfo: localhost is %s\n", host);
    }
    freeaddrinfo(res);
    return 0;
}

/* ---- waiting for a signal in a task ------------------------------------------ */

/* A worker that runs until the server is told to stop. */
static int worker(void *arg, void **result)
{
    (void)arg;
    (void)result;
    for (;;) {
        int rc = async_sleep(5 * ASYNC_MSEC); /* stands for real work */
        if (rc < 0)
            return rc; /* ASYNC_ECANCELED: time to stop */
    }
}

/* Stands for the user, systemd, ...: sends SIGTERM a little later. */
static int terminator(void *arg, void **result)
{
    (void)arg;
    (void)result;
    int rc = async_sleep(20 * ASYNC_MSEC);
    if (rc == 0)
        kill(getpid(), SIGTERM);
    return rc;
}

static int demo_signal_wait(void)
{
    async_task *w;
    int rc = async_spawn(&w, worker, NULL);
    if (rc < 0)
        return rc;
    async_spawn(NULL, terminator, NULL);
    const int stop[] = {SIGINT, SIGTERM};
    int signo;
    rc = async_signal_wait(stop, 2, UINT64_MAX, &signo);
    if (rc == 0)
        printf("signal: got %s, stopping\n", strsignal(signo));
    async_task_cancel(w);
    async_await(w, NULL); /* ASYNC_ECANCELED, as expected */
    async_task_unref(w);
    return rc;
}

/* ---- a watcher keeps signals that arrive between waits -------------------- */

static int demo_watcher(void)
{
    const int sigs[] = {SIGHUP, SIGUSR1};
    async_signal_watcher *sw;
    int rc = async_signal_watcher_new(NULL, sigs, 2, &sw);
    if (rc < 0)
        return rc;
    raise(SIGUSR1); /* nobody waits yet: the watcher keeps it */
    int signo = 0;
    rc = async_signal_watcher_wait(sw, UINT64_MAX, &signo);
    async_signal_watcher_free(sw);
    if (rc == 0)
        printf("watcher: got %s\n", strsignal(signo));
    return rc == 0 && signo == SIGUSR1 ? 0 : ASYNC_EFAILED;
}

/* ---- loop.add_signal_handler ----------------------------------------------------- */

static int reloads;

static int on_sighup(int signo, void *arg)
{
    (void)signo;
    int *count = arg;
    (*count)++; /* e.g. re-read the configuration */
    return 0;
}

static int demo_handler(void)
{
    async_loop *loop = async_get_running_loop();
    int rc = async_loop_add_signal_handler(loop, SIGHUP, on_sighup, &reloads);
    if (rc < 0)
        return rc;
    raise(SIGHUP);
    while (reloads == 0 && rc == 0)
        rc = async_sleep(ASYNC_MSEC); /* the callback runs on the loop */
    async_loop_remove_signal_handler(loop, SIGHUP);
    printf("handler: %d reload(s)\n", reloads);
    return rc;
}

static int main_task(void *arg, void **result)
{
    (void)arg;
    (void)result;
    int (*demos[])(void) = {demo_to_thread, demo_run_in_executor,
                            demo_getaddrinfo, demo_signal_wait, demo_watcher,
                            demo_handler};
    for (size_t i = 0; i < sizeof(demos) / sizeof(demos[0]); i++) {
        int rc = demos[i]();
        if (rc < 0)
            return rc;
    }
    return 0;
}

int main(void)
{
    int rc = async_run(main_task, NULL, NULL);
    if (rc < 0) {
        fprintf(stderr, "guide_services: %s\n", async_strerror(rc));
        return 1;
    }
    return 0;
}
