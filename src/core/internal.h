/*
 * What the loop, futures, tasks and the services built on them share.
 *
 * The one suspension mechanism: a task parks (async__task_park) after
 * putting async__waiter nodes on whatever it waits for (a future, an fd, a
 * lock, a queue...).  Whoever makes the condition true calls the waiter's
 * notify, which normally wakes the task (async__task_wake): the task becomes
 * ready and its park returns the wake code.  A park also ends on its
 * deadline (ASYNC_ETIMEDOUT) or on cancellation (ASYNC_ECANCELED); either
 * way the parked code removes its own waiter nodes afterwards.
 */
#ifndef ASYNC_INTERNAL_H
#define ASYNC_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <async.h>

#include "backend/backend.h"
#include "coro/coro.h"
#include "core/list.h"
#include "core/timer.h"

/* No deadline. */
#define ASYNC__FOREVER UINT64_MAX

/* Thread-locals read on every switch and schedule (the running loop, the
 * current task): initial-exec so each access is one instruction instead of
 * a __tls_get_addr call from the shared library (a third of an async_yield
 * measured that way).  A few pointers fit in the static TLS surplus glibc
 * keeps for dlopen'ed libraries. */
#if defined(__GNUC__) && defined(__ELF__)
#define ASYNC__TLS_IE __attribute__((tls_model("initial-exec")))
#else
#define ASYNC__TLS_IE
#endif

/* ---- the ready queue ---------------------------------------------------- */

/* Anything the loop can run: a task to resume, a callback to call.  `run`
 * is called with drop == true when the loop closes with the item still
 * queued: it must then release what it holds without running. */
typedef struct async__runnable {
    struct async__runnable *next;                        /* FIFO link */
    void (*run)(struct async__runnable *self, bool drop); /* run or release */
} async__runnable;

/* The ready-queue operations are static inline (below, after struct
 * async_loop): they are most of the cost of a task switch. */

/* Queues r from any thread, as call_soon_threadsafe does but without
 * allocating: r (owned by the caller) runs on the loop thread in a later
 * iteration, or is run with drop == true at loop close.  Returns 0 or
 * ASYNC_ECLOSED (nothing queued). */
int async__loop_post_threadsafe(async_loop *loop, async__runnable *r);

/* ---- loop timers ------------------------------------------------------- */

/* A heap node plus what to do when it expires.  At close the loop disarms
 * every remaining timer and calls fire with loop->closed set: the owner
 * must then release instead of acting. */
typedef struct async__ltimer {
    async__timer node;                                 /* in loop->timers */
    void (*fire)(async_loop *loop, struct async__ltimer *self);
} async__ltimer;

void async__loop_timer_arm(async_loop *loop, async__ltimer *t, uint64_t when);
void async__loop_timer_disarm(async_loop *loop, async__ltimer *t);

/* Fresh monotonic time (or the virtual clock in tests). */
uint64_t async__loop_now(async_loop *loop);

/*
 * The loop-time deadline of a relative time-out in ns, as the asyncio-named
 * waits take it: ASYNC_NO_TIMEOUT is none (FOREVER); a time-out <= 0 is a
 * deadline already past (asyncio: a negative delay means "now"), so the
 * park times out at once unless what it waits for is already done.
 */
static inline uint64_t async__deadline_after(async_loop *loop, int64_t timeout)
{
    if (timeout == ASYNC_NO_TIMEOUT)
        return ASYNC__FOREVER;
    if (timeout <= 0)
        return 0;
    uint64_t now = async__loop_now(loop);
    if ((uint64_t)timeout >= ASYNC__FOREVER - now)
        return ASYNC__FOREVER - 1;
    return now + (uint64_t)timeout;
}

/* ---- waiters --------------------------------------------------------------- */

typedef struct async__waiter async__waiter;
struct async__waiter {
    async__list link;      /* in the list of the thing waited for */
    async__list task_link; /* in task->waiters, so a killed task can unlink */
    struct async_task *task; /* the parked task */
    /* Called (inline, by whoever fires the condition) after the node has
     * been unlinked from `link`'s list; `rc` is the wake code.  NULL (the
     * default) wakes `task` with rc. */
    void (*notify)(async__waiter *w, int rc);
    void *data;            /* for the owner of the node */
};

/* The waiter operations are static inline (defined at the end of this
 * header, once struct async_task is known): every wait goes through them. */
static inline void async__waiter_init(async__waiter *w, struct async_task *task);
static inline void async__waiter_add(async__waiter *w, async__list *list);
static inline void async__waiter_remove(async__waiter *w);
static inline bool async__waiters_notify_one(async__list *list, int rc);
static inline void async__waiters_notify_all(async__list *list, int rc);

/* ---- futures and tasks --------------------------------------------------- */

enum async__future_state {
    ASYNC__PENDING,
    ASYNC__DONE,
    ASYNC__CANCELLED,
};

/* Done-callback registration, turned into a ready item when the future
 * completes. */
typedef struct async__done_cb {
    async__runnable run;          /* ready-queue node once scheduled */
    struct async__done_cb *next;  /* pending list */
    struct async__context *ctx;   /* context captured when added, or NULL */
    async_future *future;         /* holds a reference while scheduled */
    async_done_fn fn;             /* the user's callback */
    void *arg;                    /* its argument */
} async__done_cb;

struct async_future {
    async_loop *loop;         /* owning loop */
    unsigned refs;            /* handle references (users + loop) */
    uint8_t state;            /* enum async__future_state */
    bool is_task;             /* this is the head of an async_task */
    bool retrieved;           /* someone looked at the outcome */
    bool retrieve_on_done;    /* count the outcome as retrieved when it
                                 comes (gather gave up on this child) */
    int error;                /* outcome code when done (0 = result) */
    void *result;             /* result when error == 0 */
    async__list waiters;      /* parked tasks (async__waiter.link) */
    async__done_cb *callbacks;/* done callbacks not yet scheduled, FIFO */
    async__done_cb **callbacks_tail; /* where to append */
    /* async_future_cancel of a plain future calls this instead of
     * cancelling at once when set (the executor defers the cancel of a
     * running job until it returns); NULL for most futures. */
    int (*cancel_fn)(async_future *f);
};

/* Initialises a pending future of `loop` with one reference (inline: part
 * of every spawn; defined at the end of this header). */
static inline void async__future_init(async_future *f, async_loop *loop,
                                      bool is_task);
/* Completes a pending future: error 0 with result, an error, or
 * ASYNC_ECANCELED for cancellation.  Wakes waiters, schedules callbacks. */
void async__future_complete(async_future *f, int error, void *result);
/* Waits (parked) until f is done: 0, or the park's error. */
int async__future_wait(async_future *f);
/* Waits for f with t's cancellation and deadline scopes suspended (the
 * inner work was cancelled and is finishing); returns rc. */
int async__future_wait_shielded(struct async_task *t, async_future *f, int rc);
/* Frees a future whose last reference went away. */
void async__future_release(async_future *f);
/* Settable check of set_result / set_error / cancel: 0, ASYNC_EINVAL,
 * ASYNC_EDONE, ASYNC_ECLOSED (loop closed) or ASYNC_EPERM (a task's own
 * future: only its body completes it). */
int async__future_check_settable(const async_future *f);

enum {
    ASYNC__TASK_MAX_DEADLINES = 16, /* nested async_deadline_push scopes */
};

struct async_task {
    async_future fut;         /* a task is a future: keep first */
    async__coro coro;         /* its coroutine; coro.name is the
                                 user-given name (malloc, owned), or NULL;
                                 coro.id is N of "Task-N": spawn order in
                                 the loop (kept there, not twice) */
    async__runnable run;      /* ready-queue node: resume me */
    async__ltimer timer;      /* deadline of the current park */
    async__list link;         /* loop->tasks: every unfinished task */
    async__list waiters;      /* async__waiter.task_link of my parks */
    async_fn fn;              /* body */
    void *arg;                /* body's argument */
    /* The scalar state a spawn clears (task_init_fields), kept together
     * so that the compiler merges the clearing into a few wide stores. */
    int wake_rc;              /* what the current park returns */
    bool parked;              /* suspended in async__task_park */
    bool queued;              /* in the ready queue */
    bool cancel_requested;    /* async_task_cancel was called */
    bool must_cancel;         /* a request no suspension point delivered
                                 yet: a plain return ends it cancelled */
    bool shielding;           /* in async_shield: fut_waiter is not
                                 cancelled with the task */
    bool started;             /* the body has begun */
    /* Introspection (src/debug/): what the current park waits on, set by
     * async__task_wait_on just before it (wait_obj is meaningful only
     * while wait_kind is not NONE). */
    uint8_t wait_kind;        /* enum async_wait_kind; NONE after a park */
    unsigned cancel_count;    /* cancel requests not undone by uncancel */
    unsigned shield;          /* async_shield_enter nesting */
    unsigned ndeadlines;      /* depth of the deadline-scope stack */
    async_future *fut_waiter; /* the future async_future_await parks on
                                 (one reference), or NULL: a cancel goes
                                 down to it, a kill releases it */
    uint64_t *deadlines;      /* scope stack, allocated on first push */
    /* Introspection: the group owner that spawned me; where I was spawned
     * (debug mode only, else NULL). */
    struct async_task *parent;/* owner of the group I belong to, or NULL */
    void *spawn_site;         /* return address in the spawner, or NULL */
    const void *wait_obj;     /* the future, lock, fd (as intptr_t)... */
    struct async__context *ctx; /* task-local values (core/context.h), or
                                 * NULL while there are none */
    uint64_t scope_deadline;  /* earliest of deadlines[], or FOREVER */
    char autoname[24];        /* "Task-N", formatted on first use, or "" */
};

/* The object of an ASYNC_WAIT_GATHER record: the futures waited on (the
 * record points at one of these on the parked task's stack). */
typedef struct async__wait_set {
    async_future *const *futs;
    size_t n;
} async__wait_set;

/* Records what t is about to park on (shown by the task dump); the next
 * park of t clears it when it returns. */
static inline void async__task_wait_on(struct async_task *t, unsigned kind,
                                       const void *obj)
{
    t->wait_kind = (uint8_t)kind;
    t->wait_obj = obj;
}

/* Frees a finished (or killed) task whose last reference went away. */
void async__task_free(struct async_task *t);

/* The task running on this thread, or NULL. */
static inline struct async_task *async__task_current(void);

/*
 * Suspends the current task until woken, its deadline passes (returns
 * ASYNC_ETIMEDOUT; also when a deadline scope expires) or it is cancelled
 * (ASYNC_ECANCELED, unless shielded).  A pending cancellation or expired
 * scope returns at once without suspending.  Returns the wake code given
 * to async__task_wake (0 normally).
 */
int async__task_park(struct async_task *t, uint64_t deadline);

/* Ends t's park with code rc (the first wake wins); no-op if not parked. */
static inline void async__task_wake(struct async_task *t, int rc);

/* Cancels every unfinished task of `loop` and runs the loop until they are
 * gone (async_run's cleanup). */
void async__loop_drain_tasks(async_loop *loop);

/* Runs one loop iteration, blocking in the poll as run_forever would (a
 * pending stop is honoured by not blocking).  Errors: those of
 * async_loop_run_forever, and a failed poll (already reported). */
int async__loop_run_once(async_loop *loop);

/* Frees unfinished tasks without running them (loop close). */
void async__tasks_kill_all(async_loop *loop);

/* ---- fd readiness (for src/io/io.c and friends) ----------------------------- */

/*
 * Parks the current task until fd has `events` (ASYNC__EV_READ or
 * ASYNC__EV_WRITE) ready, `deadline` passes (ASYNC_ETIMEDOUT), the task is
 * cancelled (ASYNC_ECANCELED), or the fd is forgotten with
 * async__loop_fd_forget (returns the error given there, e.g. ASYNC_EBADF).
 * The fd is registered with the backend on first use and stays registered.
 * Other errors: those of async__backend_watch (ASYNC_EPERM, ASYNC_EBADF).
 */
int async__loop_fd_wait(async_loop *loop, int fd, unsigned events,
                        uint64_t deadline);
/* The same, shown by the task dump as a wait of `kind` on obj (e.g. a
 * subprocess) rather than on the fd (kind ASYNC_WAIT_NONE: the fd). */
int async__loop_fd_wait_on(async_loop *loop, int fd, unsigned events,
                           uint64_t deadline, unsigned kind, const void *obj);

/* Wakes every task waiting on fd with `err`, drops its reader/writer
 * callbacks and removes it from the backend.  Call before closing fd. */
void async__loop_fd_forget(async_loop *loop, int fd, int err);

/* Tells the loop that fd was just created (accept, socket...): any record
 * under that number belongs to an fd closed behind the loop's back and is
 * reset, so the new fd gets registered afresh.  loop may be NULL. */
void async__loop_fd_opened(async_loop *loop, int fd);

/* ---- services attached to a loop ------------------------------------------ */

/* Something (executor, signal watcher...) to shut down when the loop closes. */
typedef struct async__close_hook {
    struct async__close_hook *next;              /* LIFO list */
    void (*fn)(async_loop *loop, struct async__close_hook *self);
} async__close_hook;

/* Registers a hook; it runs once, at async_loop_close (LIFO order). */
void async__loop_add_close_hook(async_loop *loop, async__close_hook *h);
/* Unregisters a hook that has not run yet (no-op otherwise). */
void async__loop_remove_close_hook(async_loop *loop, async__close_hook *h);

/* Reports an error through the loop's exception handler. */
void async__loop_report(async_loop *loop, const char *message, int error,
                        async_task *task, async_future *future);

/* ---- the loop itself ------------------------------------------------------ */

/* Per-fd state: who watches the fd, and what the backend was told. */
typedef struct async__fdw {
    int fd;                    /* the descriptor */
    unsigned registered;       /* interest currently set in the backend */
    async_handle *reader;      /* add_reader callback handle, or NULL */
    async_handle *writer;      /* add_writer callback handle, or NULL */
    async__list rwait;         /* tasks waiting for readable */
    async__list wwait;         /* tasks waiting for writable */
} async__fdw;

struct async_loop {
    async__runnable *ready_head;   /* FIFO of things to run */
    async__runnable **ready_tail;  /* append point */
    size_t ready_len;              /* entries in the FIFO */
    size_t todo;                   /* items of this iteration not yet run */
    async__timer_heap timers;      /* call_later handles and task deadlines */
    async__backend *backend;       /* epoll or kqueue, via backend.h */
    async__fdw **fds;              /* indexed by fd; NULL = never watched */
    int nfds;                      /* capacity of fds */
    size_t nwatched;               /* fds with interest set in the backend */
    async__list tasks;             /* unfinished tasks (async_task.link) */
    size_t ntasks;                 /* length of tasks */
    uint64_t next_task_id;         /* for "Task-N" names */
    bool running;                  /* inside run_forever */
    bool stopping;                 /* stop() requested */
    bool closed;                   /* async_loop_close() done */
    bool virtual_clock;            /* tests: time only moves when told */
    uint64_t vnow;                 /* the virtual clock's value */
    uint64_t now;                  /* time cached at the last poll */
    pthread_mutex_t ts_lock;       /* guards ts_head/ts_tail */
    async__runnable *ts_head;      /* call_soon_threadsafe FIFO */
    async__runnable **ts_tail;     /* its append point */
    atomic_int ts_pending;         /* ts FIFO non-empty, or an interrupt
                                      to take: check without lock (int:
                                      lock-free everywhere, so a signal
                                      handler may set it; riscv64's bool
                                      is only "sometimes" lock-free) */
    atomic_int intr_pending;       /* async__loop_interrupt() was called */
    void (*intr_fn)(async_loop *, void *); /* runs for it, on the loop */
    void *intr_arg;                /* its argument */
    async__close_hook *close_hooks;/* services to shut down at close */
    async_exception_handler exc_fn;/* user exception handler, or NULL */
    void *exc_arg;                 /* its argument */
    size_t nfutures;               /* live futures and tasks pointing here */
    bool freed;                    /* async_loop_free ran; the struct stays
                                      until nfutures drops to 0 */
    bool debug;                    /* debug mode (src/debug/debugmode.c) */
    uint64_t slow_ns;              /* debug: a step longer than this is reported */
    FILE *debug_out;               /* debug: where reports go (NULL: stderr) */
    pthread_t thread;              /* the thread running it (while running) */
    async__list all_link;          /* in async__debug_loops (gdb finds it) */
};

/* The last future of a loop that async_loop_free already freed went away:
 * frees what was left of the loop. */
void async__loop_release(async_loop *loop);

/* Debug mode's check at the loop's entry points: ASYNC_EWRONGTHREAD when
 * the loop runs on another thread, else 0.  Off: one predictable branch. */
static inline int async__loop_check_thread(const async_loop *loop)
{
    if (__builtin_expect(loop->debug, 0) && loop->running &&
        !pthread_equal(loop->thread, pthread_self()))
        return ASYNC_EWRONGTHREAD;
    return 0;
}

/* Debug mode (src/debug/debugmode.c): runs the items of one iteration,
 * timing each and reporting the slow ones; ASYNC_DEBUG in the environment
 * turns it on for new loops; where a spawn was called from. */
void async__debug_run_ready(async_loop *loop);
/* Every loop of the process (for tools/gdb/libasync-gdb.py): a loop is on
 * the list from async_loop_new to async_loop_free. */
void async__debug_loop_created(async_loop *loop);
void async__debug_loop_freed(async_loop *loop);
bool async__debug_env(void);
void *async__debug_spawn_site(void);
/* ", spawned at fn+0x1c (object)" for a spawn site, "" for NULL. */
void async__debug_site(char *buf, size_t size, const void *site);
/* The task a ready-queue item resumes, or NULL (task.c). */
struct async_task *async__task_of(async__runnable *r);
/* The callback a ready-queue item calls, or NULL (loop.c). */
async_callback async__handle_callback(async__runnable *r);

/* ---- the ready queue, inline ------------------------------------------------- */

/* Appends r to the ready queue; it runs in this or the next iteration. */
static inline void async__loop_schedule(async_loop *loop, async__runnable *r)
{
    r->next = NULL;
    *loop->ready_tail = r;
    loop->ready_tail = &r->next;
    loop->ready_len++;
}

/* Pops the head of the ready queue, or NULL. */
static inline async__runnable *async__loop_ready_pop(async_loop *loop)
{
    async__runnable *r = loop->ready_head;
    if (!r)
        return NULL;
    loop->ready_head = r->next;
    if (!loop->ready_head)
        loop->ready_tail = &loop->ready_head;
    loop->ready_len--;
    return r;
}

/*
 * For a task about to give up the CPU: pops and returns the head of the
 * ready queue if it is of kind `kind` (its run function) and the loop would
 * run it next anyway, either in the current iteration or at the start of
 * the next one when that iteration has nothing else to do first: no poll
 * (no fd watched), no timer to fire, no threadsafe call to take, no stop
 * to honour.  NULL otherwise.
 */
static inline async__runnable *
async__loop_next_ready(async_loop *loop, void (*kind)(async__runnable *, bool))
{
    async__runnable *r = loop->ready_head;
    if (!r || r->run != kind)
        return NULL;
    if (loop->todo == 0) {
        if (loop->nwatched || loop->stopping || loop->debug ||
            async__timer_heap_min(&loop->timers) ||
            atomic_load_explicit(&loop->ts_pending, memory_order_relaxed))
            return NULL;
        loop->todo = loop->ready_len;
    }
    loop->todo--;
    return async__loop_ready_pop(loop);
}

/* ---- interrupts from signal handlers -------------------------------------- */

/*
 * Sets the function the loop calls, on its own thread between callbacks,
 * after async__loop_interrupt() (NULL: none).  Call it while no interrupt
 * can arrive (before the signal handler that interrupts is installed, and
 * after it is gone).
 */
void async__loop_set_interrupt(async_loop *loop,
                               void (*fn)(async_loop *, void *), void *arg);
/*
 * Async-signal-safe, callable from any thread: makes the loop call its
 * interrupt function at the start of its next iteration, waking it if it
 * sleeps.  Costs the loop nothing until called: no fd is watched for it,
 * only the flag the iteration already checks for call_soon_threadsafe
 * (ts_pending) is raised, with the backend's wakeup.  Several calls before
 * the loop gets to it count as one.  errno is preserved.
 */
void async__loop_interrupt(async_loop *loop);

/* ---- test hooks (not part of the public API) ---------------------------- */

/* Switches the loop to a virtual clock starting at `start`: whenever the
 * loop would block for a timer it jumps the clock to the timer instead. */
void async__loop_use_virtual_clock(async_loop *loop, uint64_t start);
/* Advances the virtual clock by ns. */
void async__loop_advance_clock(async_loop *loop, uint64_t ns);
/* Number of unfinished tasks the loop holds. */
size_t async__loop_task_count(const async_loop *loop);
/* Number of live async_task objects in the process (leak checks). */
size_t async__task_live_count(void);

/* ---- inline: waiters, wake, the current task ------------------------------ */

/* The task running on this thread (task.c sets it around every switch). */
extern _Thread_local struct async_task *async__current_task_tls ASYNC__TLS_IE;

static inline struct async_task *async__task_current(void)
{
    return async__current_task_tls;
}

/* Ends t's park with code rc (the first wake wins); no-op if not parked. */
static inline void async__task_wake(struct async_task *t, int rc)
{
    if (!t->parked)
        return;
    t->parked = false;
    t->wake_rc = rc;
    if (!t->queued) {
        t->queued = true;
        async__loop_schedule(t->fut.loop, &t->run);
    }
}

static inline void async__future_init(async_future *f, async_loop *loop,
                                      bool is_task)
{
    f->loop = loop;
    f->refs = 1;
    f->state = ASYNC__PENDING;
    f->is_task = is_task;
    f->retrieved = false;
    f->retrieve_on_done = false;
    f->error = 0;
    f->result = NULL;
    async__list_init(&f->waiters);
    f->callbacks = NULL;
    f->callbacks_tail = &f->callbacks;
    f->cancel_fn = NULL;
    loop->nfutures++;
}

/* Initialises w for `task` with the default notify (wake it). */
static inline void async__waiter_init(async__waiter *w, struct async_task *task)
{
    async__list_init(&w->link);
    async__list_init(&w->task_link);
    w->task = task;
    w->notify = NULL;
    w->data = NULL;
}

/* Puts w on `list` (e.g. a future's waiters). */
static inline void async__waiter_add(async__waiter *w, async__list *list)
{
    async__list_push_back(list, &w->link);
    if (w->task)
        async__list_push_back(&w->task->waiters, &w->task_link);
}

/* Unlinks w from its list (no-op when already unlinked). */
static inline void async__waiter_remove(async__waiter *w)
{
    async__list_remove(&w->link);
    async__list_remove(&w->task_link);
}

/* Pops the first waiter of `list` and notifies it; false if none. */
static inline bool async__waiters_notify_one(async__list *list, int rc)
{
    async__list *n = async__list_pop_front(list);
    if (!n)
        return false;
    async__waiter *w = async__container_of(n, async__waiter, link);
    if (w->notify)
        w->notify(w, rc);
    else
        async__task_wake(w->task, rc);
    return true;
}

/* Pops every waiter of `list` and notifies each with rc. */
static inline void async__waiters_notify_all(async__list *list, int rc)
{
    while (async__waiters_notify_one(list, rc))
        ;
}

#endif
