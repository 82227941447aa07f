/*
 * Runs several shell commands at the same time and prints what each one
 * wrote, in the order given, with its exit status -- asyncio's
 *
 *     results = await asyncio.gather(*(run(cmd) for cmd in cmds))
 *
 * Usage: subprocess ['command' ...]   (each one is run with /bin/sh -c; a
 * demo set runs when none is given).  Every command gets 5 seconds.
 */
#include <stdio.h>
#include <stdlib.h>

#include <async.h>

#define TIMEOUT (5 * ASYNC_SEC)

/* One command and what it produced. */
typedef struct job {
    const char *cmd;            /* the shell command */
    async_process_result res;   /* its output and status */
    int rc;                     /* 0, or why it could not run */
} job;

static int run_job(void *arg, void **result)
{
    (void)result;
    job *j = arg;
    const char *argv[] = {"/bin/sh", "-c", j->cmd, NULL};
    async_process_opts opts = {.argv = argv};
    j->rc = async_process_run(&opts, NULL, 0, TIMEOUT, &j->res);
    return j->rc;
}

typedef struct jobs {
    job *v;   /* the jobs */
    size_t n; /* how many */
} jobs;

static int main_task(void *arg, void **result)
{
    (void)result;
    jobs *js = arg;
    async_task **tasks = calloc(js->n, sizeof(*tasks));
    async_future **futs = calloc(js->n, sizeof(*futs));
    int rc = tasks && futs ? 0 : ASYNC_ENOMEM;
    size_t started = 0;
    for (; !rc && started < js->n; started++) {
        rc = async_spawn(&tasks[started], run_job, &js->v[started]);
        if (!rc)
            futs[started] = async_task_future(tasks[started]);
    }
    if (!rc) /* every outcome, failures included, is in js->v[i].rc */
        rc = async_gather(futs, js->n, ASYNC_GATHER_ALL, NULL, NULL);
    for (size_t i = 0; i < started; i++)
        async_task_unref(tasks[i]);
    free(tasks);
    free(futs);
    return rc;
}

static void report(const job *j)
{
    printf("$ %s\n", j->cmd);
    if (j->rc) {
        printf("  failed: %s\n", async_strerror(j->rc));
        return;
    }
    fwrite(j->res.out, 1, j->res.out_len, stdout);
    if (j->res.err_len)
        printf("  (stderr) %s", j->res.err);
    if (j->res.status < 0)
        printf("  killed by signal %d\n", -j->res.status);
    else
        printf("  exit status %d\n", j->res.status);
}

int main(int argc, char **argv)
{
    static const char *demo[] = {
        "echo hello from $$",
        "sleep 0.2; echo slept 0.2 s",
        "uname -s",
        "echo oops >&2; exit 3",
        "kill -TERM $$",
    };
    size_t n = argc > 1 ? (size_t)(argc - 1) : sizeof(demo) / sizeof(*demo);
    job *v = calloc(n, sizeof(*v));
    if (!v)
        return 1;
    for (size_t i = 0; i < n; i++)
        v[i].cmd = argc > 1 ? argv[i + 1] : demo[i];
    jobs js = {v, n};
    int rc = async_run(main_task, &js, NULL);
    for (size_t i = 0; i < n; i++) {
        report(&v[i]);
        async_process_result_free(&v[i].res);
    }
    free(v);
    if (rc)
        fprintf(stderr, "subprocess: %s\n", async_strerror(rc));
    return rc ? 1 : 0;
}
