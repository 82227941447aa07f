/*
 * Task-local context (contextvars): keys, value cells and copy-on-write
 * contexts.  See core/context.h for how tasks and callbacks carry them.
 *
 * A value lives in a cell shared by every context that copied it; the key's
 * destructor runs when the last such context lets go of the cell.  Contexts
 * are small arrays searched linearly: programs use a handful of keys.
 */
#include <stdlib.h>

#include "core/context.h"

_Thread_local struct async__context *async__cb_context_tls ASYNC__TLS_IE;

struct async_context_key {
    atomic_uint refs;                /* creator + cells holding values */
    async_context_destroy_fn destroy;/* for values, or NULL */
};

typedef struct ctx_cell {
    atomic_uint refs;         /* contexts holding this cell */
    async_context_key *key;   /* a reference */
    void *value;              /* the value */
} ctx_cell;

struct async__context {
    atomic_uint refs;         /* tasks, handles, callbacks holding it */
    unsigned n;               /* cells in use */
    unsigned cap;             /* cells allocated */
    ctx_cell *cells[];        /* one per key set, any order */
};

/* ---- keys -------------------------------------------------------------------- */

int async_context_key_new(async_context_key **out,
                          async_context_destroy_fn destroy)
{
    if (!out)
        return ASYNC_EINVAL;
    async_context_key *k = malloc(sizeof(*k));
    if (!k)
        return ASYNC_ENOMEM;
    atomic_init(&k->refs, 1);
    k->destroy = destroy;
    *out = k;
    return 0;
}

void async_context_key_free(async_context_key *k)
{
    if (k && atomic_fetch_sub_explicit(&k->refs, 1, memory_order_acq_rel) == 1)
        free(k);
}

/* ---- cells and contexts ---------------------------------------------------- */

static void cell_unref(ctx_cell *cell)
{
    if (atomic_fetch_sub_explicit(&cell->refs, 1, memory_order_acq_rel) != 1)
        return;
    if (cell->key->destroy)
        cell->key->destroy(cell->value);
    async_context_key_free(cell->key);
    free(cell);
}

void async__context_ref(struct async__context *c)
{
    atomic_fetch_add_explicit(&c->refs, 1, memory_order_relaxed);
}

void async__context_unref(struct async__context *c)
{
    if (!c || atomic_fetch_sub_explicit(&c->refs, 1, memory_order_acq_rel) != 1)
        return;
    for (unsigned i = 0; i < c->n; i++)
        cell_unref(c->cells[i]);
    free(c);
}

/* A private copy of c (NULL: empty) with room for `cap` cells. */
static struct async__context *context_copy(const struct async__context *c,
                                           unsigned cap)
{
    struct async__context *copy =
        malloc(sizeof(*copy) + cap * sizeof(copy->cells[0]));
    if (!copy)
        return NULL;
    atomic_init(&copy->refs, 1);
    copy->cap = cap;
    copy->n = c ? c->n : 0;
    for (unsigned i = 0; i < copy->n; i++) {
        copy->cells[i] = c->cells[i];
        atomic_fetch_add_explicit(&copy->cells[i]->refs, 1,
                                  memory_order_relaxed);
    }
    return copy;
}

static int context_find(const struct async__context *c,
                        const async_context_key *key)
{
    for (unsigned i = 0; c && i < c->n; i++)
        if (c->cells[i]->key == key)
            return (int)i;
    return -1;
}

/* ---- get and set -------------------------------------------------------------- */

int async_context_set(async_context_key *key, void *value)
{
    if (!key)
        return ASYNC_EINVAL;
    async_task *t = async__task_current();
    if (!t)
        return ASYNC_ENOTTASK;
    struct async__context *c = t->ctx;
    int idx = context_find(c, key);
    unsigned need = c ? c->n + (idx < 0) : 1;
    ctx_cell *cell = malloc(sizeof(*cell));
    if (!cell)
        return ASYNC_ENOMEM;
    /* Shared (a child or a callback holds it) or full: write a copy. */
    if (!c || atomic_load_explicit(&c->refs, memory_order_acquire) > 1 ||
        need > c->cap) {
        struct async__context *copy = context_copy(c, need + 2);
        if (!copy) {
            free(cell);
            return ASYNC_ENOMEM;
        }
        async__context_unref(c);
        t->ctx = c = copy;
    }
    atomic_init(&cell->refs, 1);
    atomic_fetch_add_explicit(&key->refs, 1, memory_order_relaxed);
    cell->key = key;
    cell->value = value;
    if (idx < 0) {
        c->cells[c->n++] = cell;
    } else {
        ctx_cell *old = c->cells[idx];
        c->cells[idx] = cell;
        cell_unref(old);
    }
    return 0;
}

int async_context_lookup(async_context_key *key, void **value)
{
    if (!key || !value)
        return ASYNC_EINVAL;
    async_task *t = async__task_current();
    struct async__context *c = t ? t->ctx : async__cb_context_tls;
    int idx = context_find(c, key);
    if (idx < 0)
        return ASYNC_ENOENT;
    *value = c->cells[idx]->value;
    return 0;
}

void *async_context_get(async_context_key *key)
{
    void *value = NULL;
    (void)async_context_lookup(key, &value);
    return value;
}
