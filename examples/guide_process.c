/*
 * The snippets of docs/guide-process.md, compiled and run as a test so
 * they cannot rot.  Each snippet function returns 0 when it did what the
 * guide says.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <async.h>

/* [run] */
static int count_lines(const char *text, int *lines)
{
    const char *argv[] = {"wc", "-l", NULL};
    async_process_opts opts = {.argv = argv};
    async_process_result res;
    int rc = async_process_run(&opts, text, strlen(text), 2 * ASYNC_SEC,
                               &res);
    if (rc)
        return rc; /* e.g. ASYNC_ENOENT, ASYNC_ETIMEDOUT */
    *lines = res.status == 0 ? atoi(res.out) : -1;
    async_process_result_free(&res);
    return 0;
}
/* [/run] */

/* [spawn] */
static int stream_lines(void)
{
    const char *argv[] = {"/bin/sh", "-c", "for i in 1 2 3; do echo $i; done",
                          NULL};
    async_process_opts opts = {.argv = argv,
                               .stdout_mode = ASYNC_PROCESS_PIPE,
                               .stderr_mode = ASYNC_PROCESS_STDOUT};
    async_process *p;
    int rc = async_process_spawn(&opts, &p);
    if (rc)
        return rc;
    char buf[256];
    ssize_t n;
    size_t total = 0;
    while ((n = async_read(async_process_fd(p, ASYNC_PROCESS_STDOUT_FD), buf,
                           sizeof(buf))) > 0)
        total += (size_t)n; /* a real program would parse buf here */
    int status;
    rc = n < 0 ? (int)n : async_process_wait(p, -1, &status);
    async_process_free(p); /* reaps (or kills and reaps) the child */
    return rc ? rc : (total == 6 && status == 0 ? 0 : ASYNC_EFAILED);
}
/* [/spawn] */

/* [kill] */
static int stop_server(void)
{
    const char *argv[] = {"sleep", "60", NULL};
    async_process_opts opts = {.argv = argv};
    async_process *p;
    int rc = async_process_spawn(&opts, &p);
    if (rc)
        return rc;
    int status;
    rc = async_process_wait(p, 100 * ASYNC_MSEC, &status);
    if (rc == ASYNC_ETIMEDOUT) { /* still running: ask it to stop */
        async_process_kill(p, SIGTERM);
        rc = async_process_wait(p, -1, &status);
    }
    async_process_free(p);
    return rc ? rc : (status == -SIGTERM ? 0 : ASYNC_EFAILED);
}
/* [/kill] */

static int guide_main(void *arg, void **result)
{
    (void)arg;
    (void)result;
    int lines = 0;
    int rc = count_lines("a\nb\nc\n", &lines);
    if (rc || lines != 3)
        return rc ? rc : ASYNC_EFAILED;
    if ((rc = stream_lines()))
        return rc;
    return stop_server();
}

int main(void)
{
    int rc = async_run(guide_main, NULL, NULL);
    if (rc)
        fprintf(stderr, "guide_process: %s\n", async_strerror(rc));
    return rc ? 1 : 0;
}
