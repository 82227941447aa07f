/*
 * Debug mode (asyncio's loop.set_debug / PYTHONASYNCIODEBUG): slow steps,
 * wrong-thread calls, spawn sites; and the dump on a signal.
 *
 * The loop pays for debug mode only when it is on: the iteration tests
 * loop->debug once and hands its ready items to async__debug_run_ready
 * (this file), spawn tests it once, the thread check is one predictable
 * branch at the loop's entry points (async__loop_check_thread), and the
 * direct task-to-task switch is turned off in debug mode so that every
 * step goes through the loop and gets timed.
 */
#include <dlfcn.h>
#include <execinfo.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "debug/debug.h"

/* Frames of the resume point shown in a slow-step report. */
#define RESUME_FRAMES 8

bool async__debug_env(void)
{
    const char *v = getenv("ASYNC_DEBUG");
    return v && *v && strcmp(v, "0") != 0;
}

int async_loop_set_debug(async_loop *loop, bool enabled)
{
    if (!loop)
        return ASYNC_EINVAL;
    int rc = async__loop_check_thread(loop);
    if (rc)
        return rc;
    loop->debug = enabled;
    return 0;
}

bool async_loop_get_debug(const async_loop *loop)
{
    return loop && loop->debug;
}

int async_loop_set_slow_callback_duration(async_loop *loop, uint64_t ns)
{
    if (!loop)
        return ASYNC_EINVAL;
    loop->slow_ns = ns;
    return 0;
}

uint64_t async_loop_slow_callback_duration(const async_loop *loop)
{
    return loop ? loop->slow_ns : 0;
}

int async_loop_set_debug_output(async_loop *loop, FILE *out)
{
    if (!loop)
        return ASYNC_EINVAL;
    loop->debug_out = out;
    return 0;
}

void *async_task_spawn_site(const async_task *t)
{
    return t ? t->spawn_site : NULL;
}

/* ---- the list of loops ---------------------------------------------------- */

/* Read by the gdb extension (tools/gdb/libasync-gdb.py) to find every
 * loop in a live process or a core file; written only at loop creation
 * and destruction. */
async__list async__debug_loops = {&async__debug_loops, &async__debug_loops};
static pthread_mutex_t loops_lock = PTHREAD_MUTEX_INITIALIZER;

/* Whether the switch frame holds the FP control words (switch.S): the gdb
 * extension needs it to find the registers of a suspended task. */
#if defined(ASYNC_SAVE_FP_CONTROL)
const unsigned async__debug_fp_control = 1;
#else
const unsigned async__debug_fp_control = 0;
#endif

void async__debug_loop_created(async_loop *loop)
{
    pthread_mutex_lock(&loops_lock);
    async__list_push_back(&async__debug_loops, &loop->all_link);
    pthread_mutex_unlock(&loops_lock);
}

void async__debug_loop_freed(async_loop *loop)
{
    pthread_mutex_lock(&loops_lock);
    async__list_remove(&loop->all_link);
    pthread_mutex_unlock(&loops_lock);
}

/* ---- spawn sites ---------------------------------------------------------- */

/* Whether pc is code of libasync itself: 1 yes, 0 no, -1 cannot tell (a
 * statically linked program, where only names tell, and pc has none, e.g.
 * a compiler-split "async_loop_spawn.part.0"). */
static int in_library(void *pc, const Dl_info *self, bool shared)
{
    Dl_info d;
    if (!dladdr((char *)pc - 1, &d) || d.dli_fbase != self->dli_fbase)
        return 0;
    if (shared)
        return 1;
    if (!d.dli_sname)
        return -1;
    return strncmp(d.dli_sname, "async_", 6) == 0;
}

void *async__debug_spawn_site(void)
{
    void *pcs[16];
    int n = backtrace(pcs, 16);
    Dl_info self;
    if (!dladdr((void *)async_loop_spawn, &self))
        return n > 2 ? pcs[2] : NULL;
    bool shared = self.dli_fname && strstr(self.dli_fname, "libasync") &&
                  strstr(self.dli_fname, ".so");
    /* pcs[0] is this function; the spawn site is the first frame known to
     * be outside the library.  With no names at all (static, without
     * -rdynamic) take the caller of the spawn call, assuming a direct one. */
    for (int i = 1; i < n; i++)
        if (in_library(pcs[i], &self, shared) == 0)
            return pcs[i];
    return n > 2 ? pcs[2] : NULL;
}

void async__debug_site(char *buf, size_t size, const void *site)
{
    Dl_info d;
    if (!site) {
        buf[0] = '\0';
    } else if (dladdr((const char *)site - 1, &d) && d.dli_sname) {
        const char *obj = d.dli_fname ? strrchr(d.dli_fname, '/') : NULL;
        snprintf(buf, size, ", spawned at %s+0x%lx (%s)", d.dli_sname,
                 (unsigned long)((const char *)site - (const char *)d.dli_saddr),
                 obj ? obj + 1 : d.dli_fname ? d.dli_fname : "?");
    } else {
        snprintf(buf, size, ", spawned at %p", site);
    }
}

/* ---- slow steps ------------------------------------------------------------- */

static uint64_t clock_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

typedef struct step {
    async_task *task;        /* referenced during the step, or NULL */
    void *fn;                /* the callback, for a non-task item */
    void *resume[RESUME_FRAMES];
    int nresume;             /* frames in resume (0: first step) */
} step;

static void report_slow(async_loop *loop, const step *s, uint64_t ns)
{
    async__dbg_out o = {.file = loop->debug_out ? loop->debug_out : stderr,
                        .fd = -1, .err = 0};
    async__dbg_printf(&o, "libasync: slow %s (%.3f ms, threshold %.3f ms)",
                      s->task ? "task step" : "callback", (double)ns / 1e6,
                      (double)loop->slow_ns / 1e6);
    if (!s->task) {
        async__dbg_printf(&o, ": ");
        async__dbg_function(&o, s->fn);
        async__dbg_printf(&o, "\n");
        fflush(o.file);
        return;
    }
    char site[256];
    async__debug_site(site, sizeof site, s->task->spawn_site);
    async__dbg_printf(&o, ": task \"%s\" #%llu%s\n", async_task_name(s->task),
                      (unsigned long long)s->task->coro.id, site);
    if (s->nresume == 0)
        async__dbg_printf(&o, "  (its first step)\n");
    else
        async__dbg_printf(&o, "  resumed at:\n");
    for (int i = 0; i < s->nresume; i++) {
        async__dbg_printf(&o, "    #%-2d ", i);
        async__dbg_symbol(&o, s->resume[i]);
        async__dbg_printf(&o, "\n");
    }
    fflush(o.file);
}

void async__debug_run_ready(async_loop *loop)
{
    /* todo stays 0: with loop->debug set, async__loop_next_ready never
     * switches straight to the next task, so each step comes back here. */
    loop->todo = 0;
    for (size_t todo = loop->ready_len; todo > 0; todo--) {
        async__runnable *r = async__loop_ready_pop(loop);
        step s = {.task = async__task_of(r), .fn = NULL, .nresume = 0};
        if (s.task) {
            async_task_ref(s.task);
            if (s.task->coro.state == ASYNC__CORO_SUSPENDED)
                s.nresume = async__task_backtrace(s.task, s.resume,
                                                  RESUME_FRAMES);
            if (s.nresume < 0)
                s.nresume = 0;
        } else {
            s.fn = (void *)async__handle_callback(r);
            if (!s.fn)
                s.fn = (void *)r->run;
        }
        uint64_t t0 = clock_ns();
        r->run(r, false);
        uint64_t ns = clock_ns() - t0;
        if (ns > loop->slow_ns)
            report_slow(loop, &s, ns);
        if (s.task)
            async_task_unref(s.task);
    }
}

/* ---- the dump on a signal ------------------------------------------------------ */

static int dump_on_signal(int signo, void *arg)
{
    (void)signo;
    async_loop *loop = async_get_running_loop();
    if (!loop)
        return 0;
    int rc = async_debug_dump_fd(loop, (int)(intptr_t)arg,
                                 ASYNC_DUMP_BACKTRACES);
    return rc == ASYNC_EINVAL ? 0 : rc;
}

int async_debug_dump_on_signal(async_loop *loop, int signo, int fd)
{
    if (!loop)
        return ASYNC_EINVAL;
    if (fd < 0)
        return async_loop_remove_signal_handler(loop, signo);
    return async_loop_add_signal_handler(loop, signo, dump_on_signal,
                                         (void *)(intptr_t)fd);
}
