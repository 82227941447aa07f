/* The consumer's program: one task whose result async_run hands back. */
#include <stdint.h>
#include <stdio.h>

#include <async.h>

static int answer(void *arg, void **result)
{
    (void)arg;
    int rc = async_sleep(ASYNC_MSEC);
    *result = (void *)(intptr_t)42;
    return rc;
}

int main(void)
{
    void *result = NULL;
    int rc = async_run(answer, NULL, &result);
    if (rc) {
        fprintf(stderr, "consumer: %s\n", async_strerror(rc));
        return 1;
    }
    printf("consumer: %d\n", (int)(intptr_t)result);
    return 0;
}
