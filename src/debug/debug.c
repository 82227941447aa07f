/*
 * Introspection (include/async/debug.h): the task list, the await graph and
 * the dump of both with backtraces.
 *
 * Every park site records what it waits on in the task (kind + object,
 * async__task_wait_on in core/internal.h); everything here is derived from
 * that record, the task's flags and its saved context, at the time of the
 * call.  Nothing here runs on the loop's hot path.
 */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/internal.h"
#include "debug/debug.h"
#include "process/process.h"
#include "services/executor.h"

static const char *const kind_names[] = {
    [ASYNC_WAIT_NONE] = "nothing",       [ASYNC_WAIT_FUTURE] = "future",
    [ASYNC_WAIT_TASK] = "task",          [ASYNC_WAIT_GATHER] = "gather",
    [ASYNC_WAIT_GROUP] = "group",        [ASYNC_WAIT_LOCK] = "lock",
    [ASYNC_WAIT_SEMAPHORE] = "semaphore",[ASYNC_WAIT_CONDITION] = "condition",
    [ASYNC_WAIT_EVENT] = "event",        [ASYNC_WAIT_BARRIER] = "barrier",
    [ASYNC_WAIT_QUEUE] = "queue",        [ASYNC_WAIT_FD_READ] = "fd-read",
    [ASYNC_WAIT_FD_WRITE] = "fd-write",  [ASYNC_WAIT_SLEEP] = "sleep",
    [ASYNC_WAIT_EXECUTOR] = "executor",  [ASYNC_WAIT_PROCESS] = "process",
    [ASYNC_WAIT_SIGNAL] = "signal",
};

const char *async_wait_kind_name(async_wait_kind kind)
{
    if ((unsigned)kind >= sizeof kind_names / sizeof kind_names[0])
        return "?";
    return kind_names[kind];
}

const char *async_task_state_name(async_task_state state)
{
    switch (state) {
    case ASYNC_TASK_NEW:
        return "new";
    case ASYNC_TASK_READY:
        return "ready";
    case ASYNC_TASK_RUNNING:
        return "running";
    case ASYNC_TASK_SUSPENDED:
        return "suspended";
    }
    return "?";
}

/* ---- one task ------------------------------------------------------------ */

static async_task_state task_state(const async_task *t)
{
    if (t == async__task_current())
        return ASYNC_TASK_RUNNING;
    if (!t->started)
        return ASYNC_TASK_NEW;
    if (t->queued)
        return ASYNC_TASK_READY;
    if (t->parked)
        return ASYNC_TASK_SUSPENDED;
    return ASYNC_TASK_RUNNING;
}

void async__task_info(async_task *t, async_task_info *info)
{
    info->task = t;
    info->name = async_task_name(t);
    info->id = t->coro.id;
    info->state = task_state(t);
    info->cancelling = async_task_cancelling(t);
    info->wait = ASYNC_WAIT_NONE;
    info->wait_object = NULL;
    info->wait_fd = -1;
    info->deadline = UINT64_MAX;
    info->parent = t->parent;
    info->spawn_site = t->spawn_site;
    if (info->state != ASYNC_TASK_SUSPENDED)
        return;
    if (async__timer_armed(&t->timer.node))
        info->deadline = t->timer.node.deadline;
    info->wait = (async_wait_kind)t->wait_kind;
    info->wait_object = t->wait_obj;
    switch (info->wait) {
    case ASYNC_WAIT_FD_READ:
    case ASYNC_WAIT_FD_WRITE:
        info->wait_fd = (int)(intptr_t)t->wait_obj;
        info->wait_object = NULL;
        break;
    case ASYNC_WAIT_FUTURE: {
        const async_future *f = t->wait_obj;
        if (f->is_task)
            info->wait = ASYNC_WAIT_TASK;
        else if (async__executor_owns(f))
            info->wait = ASYNC_WAIT_EXECUTOR;
        break;
    }
    default:
        break;
    }
}

int async_loop_tasks(async_loop *loop, async_task_info *out, size_t cap,
                     size_t *count)
{
    if (!loop || !count || (cap && !out))
        return ASYNC_EINVAL;
    size_t n = 0;
    for (async__list *l = loop->tasks.next; l != &loop->tasks; l = l->next) {
        if (n < cap)
            async__task_info(async__container_of(l, async_task, link), &out[n]);
        n++;
    }
    *count = n;
    return 0;
}

/* ---- the await graph ------------------------------------------------------ */

typedef struct edge_sink {
    async_await_edge *out;
    size_t cap;
    size_t n;
} edge_sink;

static void edge_add(edge_sink *s, async_task *waiter, async_future *f,
                     async_wait_kind kind)
{
    if (s->n < s->cap) {
        async_await_edge *e = &s->out[s->n];
        e->waiter = waiter;
        e->awaited = f;
        e->awaited_task = f->is_task ? (async_task *)f : NULL;
        e->kind = kind == ASYNC_WAIT_FUTURE && async__executor_owns(f)
                      ? ASYNC_WAIT_EXECUTOR : kind;
    }
    s->n++;
}

/* The await edges out of t (none unless it is parked on futures). */
static void task_edges(async_task *t, edge_sink *s)
{
    if (task_state(t) != ASYNC_TASK_SUSPENDED || !t->wait_obj)
        return;
    if (t->wait_kind == ASYNC_WAIT_FUTURE) {
        async_future *f = (async_future *)t->wait_obj;
        edge_add(s, t, f, f->is_task ? ASYNC_WAIT_TASK : ASYNC_WAIT_FUTURE);
    } else if (t->wait_kind == ASYNC_WAIT_GATHER) {
        const async__wait_set *ws = t->wait_obj;
        for (size_t i = 0; i < ws->n; i++)
            if (ws->futs[i]->state == ASYNC__PENDING)
                edge_add(s, t, ws->futs[i], ASYNC_WAIT_GATHER);
    }
}

int async_loop_await_graph(async_loop *loop, async_await_edge *out,
                           size_t cap, size_t *count)
{
    if (!loop || !count || (cap && !out))
        return ASYNC_EINVAL;
    edge_sink s = {out, cap, 0};
    async__list *l;
    for (l = loop->tasks.next; l != &loop->tasks; l = l->next)
        task_edges(async__container_of(l, async_task, link), &s);
    for (l = loop->tasks.next; l != &loop->tasks; l = l->next) {
        async_task *c = async__container_of(l, async_task, link);
        if (c->parent)
            edge_add(&s, c->parent, &c->fut, ASYNC_WAIT_GROUP);
    }
    *count = s.n;
    return 0;
}

/* ---- output ------------------------------------------------------------------ */

void async__dbg_printf(async__dbg_out *o, const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    int len = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (len < 0 || o->err)
        return;
    size_t n = (size_t)len < sizeof buf ? (size_t)len : sizeof buf - 1;
    if (o->file) {
        if (fwrite(buf, 1, n, o->file) != n)
            o->err = ASYNC_EFAILED;
        return;
    }
    const char *p = buf;
    while (n > 0) {
        ssize_t w = write(o->fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            o->err = -errno;
            return;
        }
        p += w;
        n -= (size_t)w;
    }
}

static void print_seconds(async__dbg_out *o, const char *what, uint64_t when,
                          uint64_t now)
{
    if (when <= now)
        async__dbg_printf(o, ", %s now", what);
    else
        async__dbg_printf(o, ", %s in %.3f s", what, (double)(when - now) / 1e9);
}

/* The line of one task, without the newline. */
static void task_line(async__dbg_out *o, async_loop *loop,
                      const async_task_info *ti)
{
    async__dbg_printf(o, "\"%s\" #%llu %s", ti->name,
                      (unsigned long long)ti->id, async_task_state_name(ti->state));
    if (ti->state == ASYNC_TASK_SUSPENDED) {
        const async_task *t = ti->task;
        async__dbg_printf(o, " on %s", async_wait_kind_name(ti->wait));
        switch (ti->wait) {
        case ASYNC_WAIT_NONE:
        case ASYNC_WAIT_SLEEP:
            break;
        case ASYNC_WAIT_FD_READ:
        case ASYNC_WAIT_FD_WRITE:
            async__dbg_printf(o, " %d", ti->wait_fd);
            break;
        case ASYNC_WAIT_TASK: {
            async_task *w = (async_task *)ti->wait_object;
            async__dbg_printf(o, " \"%s\" #%llu", async_task_name(w),
                              (unsigned long long)w->coro.id);
            break;
        }
        case ASYNC_WAIT_GATHER: {
            const async__wait_set *ws = t->wait_obj;
            size_t pending = 0;
            for (size_t i = 0; i < ws->n; i++)
                pending += ws->futs[i]->state == ASYNC__PENDING;
            async__dbg_printf(o, " of %zu (%zu pending)", ws->n, pending);
            break;
        }
        case ASYNC_WAIT_PROCESS:
            async__dbg_printf(o, " pid %ld",
                              (long)async_process_pid(ti->wait_object));
            break;
        default:
            async__dbg_printf(o, " %p", ti->wait_object);
            break;
        }
        if (ti->deadline != UINT64_MAX)
            print_seconds(o, ti->wait == ASYNC_WAIT_SLEEP ? "wakes" : "times out",
                          ti->deadline, async__loop_now(loop));
    }
    if (ti->cancelling)
        async__dbg_printf(o, ", cancelling");
    if (ti->spawn_site) {
        async__dbg_printf(o, ", spawned at ");
        async__dbg_symbol(o, ti->spawn_site);
    }
}

static void task_backtrace(async__dbg_out *o, async_task *t, int depth)
{
    void *pcs[ASYNC__BT_MAX];
    int n = async__task_backtrace(t, pcs, ASYNC__BT_MAX);
    if (n < 0) {
        async__dbg_printf(o, "%*s  (no backtrace on this platform)\n",
                          depth * 4, "");
        return;
    }
    for (int i = 0; i < n; i++) {
        async__dbg_printf(o, "%*s  #%-2d ", depth * 4, "", i);
        async__dbg_symbol(o, pcs[i]);
        async__dbg_printf(o, "\n");
    }
}

/* ---- the tree --------------------------------------------------------------- */

typedef struct key {
    const async_task *t;
    size_t idx;
} key;

static int key_cmp(const void *a, const void *b)
{
    const async_task *x = ((const key *)a)->t, *y = ((const key *)b)->t;
    return x < y ? -1 : x > y;
}

static long key_find(const key *keys, size_t n, const async_task *t)
{
    key k = {t, 0};
    const key *hit = t ? bsearch(&k, keys, n, sizeof k, key_cmp) : NULL;
    return hit ? (long)hit->idx : -1;
}

typedef struct tree {
    size_t n;
    async_task_info *info;
    long *parent;     /* index of the tree parent, or -1 */
    size_t *first;    /* children of i: kids[first[i] .. first[i+1]) */
    size_t *kids;
    size_t *stack;    /* DFS: (index, depth) pairs */
    bool *seen;
} tree;

static void tree_free(tree *tr)
{
    free(tr->info);
    free(tr->parent);
    free(tr->first);
    free(tr->kids);
    free(tr->stack);
    free(tr->seen);
}

static int tree_build(async_loop *loop, tree *tr)
{
    memset(tr, 0, sizeof *tr);
    size_t n = loop->ntasks, ne = 0;
    (void)async_loop_await_graph(loop, NULL, 0, &ne);
    size_t m = n ? n : 1;
    tr->n = n;
    tr->info = malloc(m * sizeof *tr->info);
    tr->parent = malloc(m * sizeof *tr->parent);
    tr->first = calloc(m + 1, sizeof *tr->first);
    tr->kids = malloc(m * sizeof *tr->kids);
    tr->stack = malloc(2 * m * sizeof *tr->stack);
    tr->seen = calloc(m, sizeof *tr->seen);
    key *keys = malloc(m * sizeof *keys);
    async_await_edge *edges = malloc((ne ? ne : 1) * sizeof *edges);
    int rc = ASYNC_ENOMEM;
    if (!tr->info || !tr->parent || !tr->first || !tr->kids || !tr->stack ||
        !tr->seen || !keys || !edges)
        goto out;
    (void)async_loop_tasks(loop, tr->info, n, &n);
    (void)async_loop_await_graph(loop, edges, ne, &ne);
    for (size_t i = 0; i < n; i++) {
        keys[i] = (key){tr->info[i].task, i};
        tr->parent[i] = -1;
    }
    qsort(keys, n, sizeof *keys, key_cmp);
    /* Group edges come last in the graph but win: a group is the parent of
     * its children whatever else awaits them. */
    for (size_t pass = 0; pass < 2; pass++)
        for (size_t e = 0; e < ne; e++) {
            if ((edges[e].kind == ASYNC_WAIT_GROUP) != (pass == 0))
                continue;
            long c = key_find(keys, n, edges[e].awaited_task);
            long p = key_find(keys, n, edges[e].waiter);
            if (c >= 0 && p >= 0 && c != p &&
                (pass == 0 || tr->parent[c] < 0))
                tr->parent[c] = p;
        }
    for (size_t i = 0; i < n; i++)
        if (tr->parent[i] >= 0)
            tr->first[tr->parent[i] + 1]++;
    for (size_t i = 0; i < n; i++)
        tr->first[i + 1] += tr->first[i];
    size_t *fill = tr->stack; /* as cursors, before the DFS needs it */
    for (size_t i = 0; i < n; i++)
        fill[i] = tr->first[i];
    for (size_t i = 0; i < n; i++)
        if (tr->parent[i] >= 0)
            tr->kids[fill[tr->parent[i]]++] = i;
    rc = 0;
out:
    free(keys);
    free(edges);
    if (rc)
        tree_free(tr);
    return rc;
}

/* Prints the subtree of root, depth first, each task once. */
static void tree_print(async__dbg_out *o, async_loop *loop, tree *tr,
                       size_t root, unsigned flags)
{
    size_t sp = 0;
    tr->stack[sp++] = root;
    tr->stack[sp++] = 0;
    tr->seen[root] = true;
    while (sp > 0) {
        size_t depth = tr->stack[--sp];
        size_t i = tr->stack[--sp];
        const async_task_info *ti = &tr->info[i];
        async__dbg_printf(o, "%*s%s", (int)depth * 4, "", depth ? "`-- " : "");
        task_line(o, loop, ti);
        async__dbg_printf(o, "\n");
        if (flags & ASYNC_DUMP_BACKTRACES)
            task_backtrace(o, ti->task, (int)depth + 1);
        /* Push children in reverse so they print in spawn order. */
        for (size_t k = tr->first[i + 1]; k-- > tr->first[i];) {
            size_t c = tr->kids[k];
            if (tr->seen[c])
                continue;
            tr->seen[c] = true;
            tr->stack[sp++] = c;
            tr->stack[sp++] = depth + 1;
        }
    }
}

static int dump(async_loop *loop, async__dbg_out *o, unsigned flags)
{
    tree tr;
    int rc = tree_build(loop, &tr);
    if (rc)
        return rc;
    async_task *cur = async__task_current();
    async__dbg_printf(o, "loop %p: %zu task%s", (void *)loop, tr.n,
                      tr.n == 1 ? "" : "s");
    if (cur && cur->fut.loop == loop)
        async__dbg_printf(o, ", running \"%s\"", async_task_name(cur));
    async__dbg_printf(o, "\n");
    for (size_t i = 0; i < tr.n; i++)
        if (tr.parent[i] < 0 && !tr.seen[i])
            tree_print(o, loop, &tr, i, flags);
    /* What is left sits on an await cycle: list it from any member. */
    for (size_t i = 0; i < tr.n; i++)
        if (!tr.seen[i]) {
            async__dbg_printf(o, "(await cycle)\n");
            tree_print(o, loop, &tr, i, flags);
        }
    tree_free(&tr);
    return o->err;
}

int async_debug_dump(async_loop *loop, FILE *out, unsigned flags)
{
    if (!loop || !out)
        return ASYNC_EINVAL;
    async__dbg_out o = {.file = out, .fd = -1, .err = 0};
    return dump(loop, &o, flags);
}

int async_debug_dump_fd(async_loop *loop, int fd, unsigned flags)
{
    if (!loop)
        return ASYNC_EINVAL;
    if (fd < 0)
        return ASYNC_EBADF;
    async__dbg_out o = {.file = NULL, .fd = fd, .err = 0};
    return dump(loop, &o, flags);
}
