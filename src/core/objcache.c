/* Thread-exit flushing for the per-thread object caches (objcache.h). */
#include <pthread.h>

#include "core/internal.h"
#include "core/objcache.h"

static pthread_key_t cache_key;
static pthread_once_t cache_once = PTHREAD_ONCE_INIT;
static bool cache_key_ok;
/* This thread's armed caches; the key's value is non-NULL while any is. */
static _Thread_local async__objcache *armed_head ASYNC__TLS_IE;

void async__objcache_flush(async__objcache *c)
{
    while (c->head) {
        void *p = c->head;
        c->head = *(void **)p;
        free(p);
    }
    c->len = 0;
}

static void cache_thread_exit(void *unused)
{
    (void)unused;
    for (async__objcache *c = armed_head; c; c = c->next_armed) {
        async__objcache_flush(c);
        c->armed = false;
    }
    armed_head = NULL;
}

static void cache_key_init(void)
{
    cache_key_ok = pthread_key_create(&cache_key, cache_thread_exit) == 0;
}

bool async__objcache_arm(async__objcache *c)
{
    pthread_once(&cache_once, cache_key_init);
    if (!cache_key_ok || pthread_setspecific(cache_key, (void *)1) != 0)
        return false;
    c->next_armed = armed_head;
    armed_head = c;
    c->armed = true;
    return true;
}
