/*
 * The snippets of docs/guide-sync.md, compiled and run so they cannot rot.
 * Each snippet is a function between "snippet" markers; main() runs them
 * all and exits non-zero if one misbehaves.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <async.h>

/* snippet: lock */
typedef struct account {
    async_lock *lock;  /* guards balance across the await below */
    long balance;
} account;

static int deposit(void *arg, void **result)
{
    (void)result;
    account *acc = arg;
    int rc = async_lock_acquire(acc->lock);
    if (rc)
        return rc;                 /* cancelled or timed out: not held */
    long b = acc->balance;
    rc = async_sleep(ASYNC_MSEC);  /* a suspension inside the section */
    acc->balance = b + 10;
    async_lock_release(acc->lock);
    return rc;
}
/* end snippet */

static int lock_demo(void *arg, void **result)
{
    (void)arg;
    (void)result;
    account acc = {0};
    async_task *t[5];
    async_lock_new(&acc.lock);
    for (int i = 0; i < 5; i++)
        async_spawn(&t[i], deposit, &acc);
    for (int i = 0; i < 5; i++) {
        async_await(t[i], NULL);
        async_task_unref(t[i]);
    }
    async_lock_free(acc.lock);
    return acc.balance == 50 ? 0 : ASYNC_EFAILED;
}

/* snippet: event */
static int wait_for_start(void *arg, void **result)
{
    (void)result;
    async_event *start = arg;
    /* Give up if nobody says "go" within a second. */
    uint64_t deadline = async_loop_time(async_get_running_loop()) + ASYNC_SEC;
    return async_event_wait_until(start, deadline);
}
/* end snippet */

static int event_demo(void *arg, void **result)
{
    (void)arg;
    (void)result;
    async_event *start;
    async_task *t;
    async_event_new(&start);
    async_spawn(&t, wait_for_start, start);
    async_sleep(ASYNC_MSEC);
    async_event_set(start);
    int rc = async_await(t, NULL);
    async_task_unref(t);
    async_event_free(start);
    return rc;
}

/* snippet: semaphore */
static int fetch(void *arg, void **result)
{
    (void)result;
    async_semaphore *slots = arg;  /* at most N fetches at a time */
    int rc = async_semaphore_acquire(slots);
    if (rc)
        return rc;
    rc = async_sleep(ASYNC_MSEC);  /* the rate-limited work */
    async_semaphore_release(slots);
    return rc;
}
/* end snippet */

static int semaphore_demo(void *arg, void **result)
{
    (void)arg;
    (void)result;
    async_semaphore *slots;
    async_task *t[6];
    async_semaphore_new_bounded(&slots, 2);
    for (int i = 0; i < 6; i++)
        async_spawn(&t[i], fetch, slots);
    int rc = 0;
    for (int i = 0; i < 6; i++) {
        rc |= async_await(t[i], NULL);
        async_task_unref(t[i]);
    }
    async_semaphore_free(slots);
    return rc;
}

/* snippet: condition */
typedef struct box {
    async_condition *cond;
    int items;
} box;

static bool box_has_items(void *arg)
{
    return ((box *)arg)->items > 0;
}

static int take(void *arg, void **result)
{
    (void)result;
    box *b = arg;
    async_lock *lock = async_condition_lock(b->cond);
    int rc = async_lock_acquire(lock);
    if (rc)
        return rc;
    rc = async_condition_wait_for(b->cond, box_has_items, b);
    if (rc == 0)
        b->items--;
    async_lock_release(lock);      /* held after the wait, even on error */
    return rc;
}

static int give(box *b)
{
    async_lock *lock = async_condition_lock(b->cond);
    int rc = async_lock_acquire(lock);
    if (rc)
        return rc;
    b->items++;
    async_condition_notify(b->cond, 1);
    return async_lock_release(lock);
}
/* end snippet */

static int condition_demo(void *arg, void **result)
{
    (void)arg;
    (void)result;
    box b = {0};
    async_task *t;
    async_condition_new(&b.cond, NULL);
    async_spawn(&t, take, &b);
    async_sleep(ASYNC_MSEC);
    give(&b);
    int rc = async_await(t, NULL);
    async_task_unref(t);
    async_condition_free(b.cond);
    return rc == 0 && b.items == 0 ? 0 : ASYNC_EFAILED;
}

/* snippet: queue */
static int consume(void *arg, void **result)
{
    async_queue *q = arg;
    intptr_t sum = 0;
    void *item;
    int rc;
    while ((rc = async_queue_get(q, &item)) == 0)
        sum += (intptr_t)item;
    *result = (void *)sum;
    return rc == ASYNC_ESHUTDOWN ? 0 : rc;  /* drained and shut down */
}

static int produce(async_queue *q)
{
    for (intptr_t i = 1; i <= 100; i++) {
        int rc = async_queue_put(q, (void *)i); /* waits while full */
        if (rc)
            return rc;
    }
    return async_queue_shutdown(q, false);  /* consumers drain, then stop */
}
/* end snippet */

static int queue_demo(void *arg, void **result)
{
    (void)arg;
    (void)result;
    async_queue *q;
    async_task *c;
    void *sum = NULL;
    async_queue_opts o = {.kind = ASYNC_QUEUE_FIFO, .maxsize = 8};
    async_queue_new(&q, &o);
    async_spawn(&c, consume, q);
    int rc = produce(q);
    if (rc == 0)
        rc = async_await(c, &sum);
    async_task_unref(c);
    async_queue_free(q);
    return rc == 0 && (intptr_t)sum == 5050 ? 0 : ASYNC_EFAILED;
}

/* snippet: group */
static int check_host(void *arg, void **result)
{
    (void)result;
    int rc = async_sleep(ASYNC_MSEC);
    if (rc)
        return rc;
    return arg ? ASYNC_ECONNREFUSED : 0;  /* pretend the second one fails */
}

static int check_all(void *arg, void **result)
{
    (void)arg;
    (void)result;
    async_group *g;
    int rc = async_group_new(&g);
    if (rc)
        return rc;
    async_group_spawn(g, NULL, check_host, NULL, NULL);
    async_group_spawn(g, NULL, check_host, (void *)1, NULL);
    /* The body may await too; a failing child cancels it. */
    int body = async_sleep(ASYNC_SEC);
    rc = async_group_wait(g);     /* waits for all; first error */
    int errors[4];
    size_t n = async_group_errors(g, errors, 4);
    printf("body: %s, group: %s, %zu error(s)\n", async_err_name(body),
           async_err_name(rc), n);
    async_group_free(g);
    return rc;
}
/* end snippet */

static int group_demo(void *arg, void **result)
{
    int rc = check_all(arg, result);
    return rc == ASYNC_ECONNREFUSED ? 0 : ASYNC_EFAILED;
}

int main(void)
{
    static const struct {
        const char *name;
        async_fn fn;
    } demos[] = {
        {"lock", lock_demo},         {"event", event_demo},
        {"semaphore", semaphore_demo}, {"condition", condition_demo},
        {"queue", queue_demo},       {"group", group_demo},
    };
    int failed = 0;
    for (size_t i = 0; i < sizeof(demos) / sizeof(demos[0]); i++) {
        int rc = async_run(demos[i].fn, NULL, NULL);
        printf("%-10s %s\n", demos[i].name, rc ? async_strerror(rc) : "ok");
        failed |= rc != 0;
    }
    return failed;
}
