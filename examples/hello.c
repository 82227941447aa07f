/*
 * The asyncio tutorial's first example, in C.
 *
 *   async def say_after(delay, what):
 *       await asyncio.sleep(delay)
 *       print(what)
 *
 * main() first awaits two say_after calls one after the other (about 3 s),
 * then runs them as two tasks with gather (about 2 s: the longer one).
 *
 * Run: ./hello   (or ./hello 0.1 to scale every delay by 0.1)
 */
#include <stdio.h>
#include <stdlib.h>

#include <async.h>

typedef struct say {
    double seconds;   /* how long to sleep */
    const char *what; /* what to print then */
} say;

static double scale = 1.0;

static int say_after(void *arg, void **result)
{
    (void)result;
    say *s = (say *)arg; /* the cast keeps this file valid C++ as well */
    int rc = async_sleep((int64_t)(s->seconds * scale * ASYNC_SEC));
    if (rc)
        return rc;
    printf("%s\n", s->what);
    return 0;
}

static double elapsed(uint64_t start)
{
    return (double)(async_loop_time(async_get_running_loop()) - start) / 1e9;
}

static int main_task(void *arg, void **result)
{
    (void)arg;
    (void)result;
    uint64_t start = async_loop_time(async_get_running_loop());
    say hello = {2, "hello"}, world = {1, "world"};

    /* One after the other: await each task as soon as it is created. */
    printf("sequential: started\n");
    async_task *a, *b;
    int rc = async_spawn(&a, say_after, &hello);
    if (rc == 0) {
        rc = async_await(a, NULL);
        async_task_unref(a);
    }
    if (rc == 0 && (rc = async_spawn(&b, say_after, &world)) == 0) {
        rc = async_await(b, NULL);
        async_task_unref(b);
    }
    if (rc)
        return rc;
    printf("sequential: finished after %.2f s\n", elapsed(start));

    /* Concurrently: both tasks run, gather waits for both. */
    start = async_loop_time(async_get_running_loop());
    printf("gather: started\n");
    if ((rc = async_spawn(&a, say_after, &hello)) != 0)
        return rc;
    if ((rc = async_spawn(&b, say_after, &world)) != 0) {
        async_task_unref(a);
        return rc;
    }
    async_future *both[] = {async_task_future(a), async_task_future(b)};
    rc = async_gather(both, 2, 0, NULL, NULL);
    async_task_unref(a);
    async_task_unref(b);
    if (rc)
        return rc;
    printf("gather: finished after %.2f s\n", elapsed(start));
    return 0;
}

int main(int argc, char **argv)
{
    if (argc > 1)
        scale = atof(argv[1]);
    int rc = async_run(main_task, NULL, NULL);
    if (rc) {
        fprintf(stderr, "hello: %s\n", async_strerror(rc));
        return 1;
    }
    return 0;
}
