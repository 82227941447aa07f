/*
 * Coroutine stacks: mapping, guard, per-thread pool and the stack-overflow
 * reporter.
 *
 * Layout of one stack mapping (addresses grow upwards):
 *
 *   map                 base = map + guard                top = map + map_size
 *   | guard (no access) | usable stack, grows downwards <- |
 *
 * The guard is max(page size, 64 KiB): AArch64 compilers probe big frames in
 * 64 KiB steps (-fstack-clash-protection), so a smaller guard could be
 * stepped over.  It is installed with madvise(MADV_GUARD_INSTALL) (Linux
 * 6.13+), which marks the page-table entries instead of changing the VMA's
 * protection: an mprotect'ed guard splits every stack into two VMAs, and with
 * vm.max_map_count at its default 65530 that caps a process at ~32,000
 * stacks, far short of the 100,000 tasks we must run.  Kernels (and
 * emulators) without it get mprotect(PROT_NONE); either way the guard costs
 * address space only.  Mappings are MAP_NORESERVE (no commit charge for
 * untouched stack) and MAP_STACK (no transparent huge pages).
 *
 * Each thread keeps up to POOL_CAP freed stacks, looked up by size, so a
 * program that spawns and finishes tasks in a loop does not mmap/munmap each
 * time.  The pool is drained by async__stack_pool_drain() and at thread exit
 * (pthread key destructor).
 *
 * Overflow reporting: the first allocation in the process installs a SIGSEGV
 * and SIGBUS handler (SA_ONSTACK), and the first one in each thread gives the
 * thread an alternate signal stack (unless the application already has
 * one).  A fault inside the guard of the coroutine running on the faulting
 * thread prints the coroutine's name and stack size and aborts; any other
 * fault is passed on to the previous disposition untouched.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>
#if defined(__linux__)
#include <sys/syscall.h>
#endif

#include <async/error.h>

#include "coro.h"
#include "stack.h"

#if defined(ASYNC_HAVE_ASAN)
#include <sanitizer/asan_interface.h>
#define NO_ASAN __attribute__((no_sanitize_address))
#else
#define NO_ASAN
#endif

#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL 102 /* Linux 6.13 uapi/asm-generic/mman-common.h */
#endif
#ifndef MAP_NORESERVE
#define MAP_NORESERVE 0
#endif
#ifndef MAP_STACK
#define MAP_STACK 0
#endif

/* Freed stacks a thread keeps for reuse. */
#define POOL_CAP 64
/* Smallest guard: one AArch64 stack-probe interval. */
#define GUARD_MIN ((size_t)64 * 1024)
/* Alternate signal stack given to each thread that allocates stacks. */
#define ALTSTACK_SIZE ((size_t)64 * 1024)

enum guard_mode {
    GUARD_UNKNOWN,  /* not tried yet */
    GUARD_MADVISE,  /* MADV_GUARD_INSTALL works */
    GUARD_MPROTECT, /* it does not (old kernel, emulator): mprotect */
};

/* Per-thread state: the pool and the alternate signal stack. */
struct thread_state {
    bool ready;                 /* thread_setup() ran in this thread */
    unsigned n;                 /* stacks in pool[] */
    void *altstack;             /* the sigaltstack we installed, or NULL */
    async__stack pool[POOL_CAP];/* freed stacks, any sizes, unordered */
};

static _Thread_local struct thread_state tstate;

/* Process-wide state, written once under process_once. */
static pthread_once_t process_once = PTHREAD_ONCE_INIT;
static size_t page_size;            /* sysconf(_SC_PAGESIZE) */
static size_t guard_size;           /* max(page_size, GUARD_MIN) */
static bool key_ok;                 /* tstate_key was created */
static pthread_key_t tstate_key;    /* its destructor drains at thread exit */
static struct sigaction old_segv;   /* dispositions we chain to */
static struct sigaction old_bus;

static _Atomic int guard_mode = GUARD_UNKNOWN;
static atomic_size_t mapped_count;

/* ---------------------------------------------------------------------- */
/* Overflow reporter (async-signal-safe: write(2) and abort() only). */

static size_t fmt_size(char *out, size_t n)
{
    char tmp[24];
    size_t len = 0;

    do {
        tmp[len++] = (char)('0' + n % 10);
        n /= 10;
    } while (n != 0);
    for (size_t i = 0; i < len; i++)
        out[i] = tmp[len - 1 - i];
    return len;
}

static size_t append(char *buf, size_t pos, size_t cap, const char *s)
{
    while (*s != '\0' && pos < cap)
        buf[pos++] = *s++;
    return pos;
}

NO_ASAN static void report_overflow(const async__coro *co)
{
    char buf[256];
    size_t pos = 0;
    const size_t name_cap = 160;

    pos = append(buf, pos, sizeof buf,
                 "libasync: stack overflow in coroutine \"");
    pos = append(buf, pos, name_cap,
                 co->name != NULL ? co->name : "(unnamed)");
    pos = append(buf, pos, sizeof buf, "\" (stack size ");
    pos += fmt_size(buf + pos, co->stack.size);
    pos = append(buf, pos, sizeof buf, " bytes)\n");

    ssize_t r = write(STDERR_FILENO, buf, pos);
    (void)r;
    abort();
}

/* A fault in the guard, or up to one guard's length below it (a frame larger
 * than the guard that jumped over it), is an overflow of co's stack. */
NO_ASAN static bool in_guard(const async__coro *co, const void *addr)
{
    uintptr_t a = (uintptr_t)addr;
    uintptr_t map = (uintptr_t)co->stack.map;
    uintptr_t lo = map > co->stack.guard ? map - co->stack.guard : 0;

    return co->stack.map != NULL && a >= lo && a < (uintptr_t)co->stack.base;
}

NO_ASAN static void fault_handler(int sig, siginfo_t *si, void *uctx)
{
    const async__coro *co = async__coro_current();

    /* si_code > 0: raised by the kernel for a fault, not sent by kill(). */
    if (co != NULL && si->si_code > 0 && in_guard(co, si->si_addr))
        report_overflow(co);

    const struct sigaction *old = sig == SIGBUS ? &old_bus : &old_segv;
    if ((old->sa_flags & SA_SIGINFO) && old->sa_sigaction != NULL) {
        old->sa_sigaction(sig, si, uctx);
        return;
    }
    if (!(old->sa_flags & SA_SIGINFO) && old->sa_handler != SIG_DFL &&
        old->sa_handler != SIG_IGN) {
        old->sa_handler(sig);
        return;
    }
    /* Default disposition: put it back; the faulting instruction runs
     * again on return and the fault takes its normal course.  A signal sent
     * with kill() would not recur by itself, so re-raise it (it stays
     * pending until we return). */
    sigaction(sig, old, NULL);
    if (si->si_code <= 0)
        raise(sig);
}

static void install_handlers(void)
{
    struct sigaction sa;

    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = fault_handler;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGSEGV, &sa, &old_segv);
    sigaction(SIGBUS, &sa, &old_bus);
}

/* ---------------------------------------------------------------------- */
/* Mapping and guard. */

#if defined(__linux__)
/* madvise() returned 0, but do we have a guard?  User-mode emulators
 * (qemu-user) answer 0 to advice they do not know.  With a guard, the
 * kernel's own write into the page fails with EFAULT; without one it
 * succeeds.  A raw syscall, because the vDSO's clock_gettime would fault in
 * user space, and one that writes rather than reads a string, because
 * Valgrind reads string arguments itself before the syscall. */
static bool guard_effective(void *map)
{
    return syscall(SYS_clock_gettime, CLOCK_MONOTONIC, map) != 0 &&
           errno == EFAULT;
}

static int guard_install(void *map)
{
    int mode = atomic_load_explicit(&guard_mode, memory_order_relaxed);

    if (mode != GUARD_MPROTECT) {
        if (madvise(map, guard_size, MADV_GUARD_INSTALL) == 0) {
            if (mode == GUARD_MADVISE || guard_effective(map)) {
                atomic_store_explicit(&guard_mode, GUARD_MADVISE,
                                      memory_order_relaxed);
                return 0;
            }
            atomic_store_explicit(&guard_mode, GUARD_MPROTECT,
                                  memory_order_relaxed);
        } else if (errno == ENOMEM) {
            return ASYNC_ENOMEM;
        } else if (errno == EINVAL || errno == ENOSYS || errno == EPERM) {
            /* Not supported here: never try again. */
            atomic_store_explicit(&guard_mode, GUARD_MPROTECT,
                                  memory_order_relaxed);
        }
        /* Any other error: fall back for this stack only. */
    }
    if (mprotect(map, guard_size, PROT_NONE) != 0)
        return ASYNC_ENOMEM;
    return 0;
}
#else
/* Guard regions are a Linux feature. */
static int guard_install(void *map)
{
    if (mprotect(map, guard_size, PROT_NONE) != 0)
        return ASYNC_ENOMEM;
    return 0;
}
#endif

static int stack_map(async__stack *st, size_t size)
{
    size_t map_size = size + guard_size;
    int saved_errno = errno;
    int err;

    void *map = mmap(NULL, map_size, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK,
                     -1, 0);
    if (map == MAP_FAILED) {
        err = ASYNC_ENOMEM;
        goto out;
    }
    err = guard_install(map);
    if (err < 0) {
        munmap(map, map_size);
        goto out;
    }
    st->map = map;
    st->map_size = map_size;
    st->guard = guard_size;
    st->base = (char *)map + guard_size;
    st->top = (char *)map + map_size;
    st->size = size;
    atomic_fetch_add_explicit(&mapped_count, 1, memory_order_relaxed);
out:
    errno = saved_errno;
    return err;
}

static void stack_unmap(async__stack *st)
{
    int saved_errno = errno;

#if defined(ASYNC_HAVE_ASAN)
    /* Frames abandoned on this stack leave poisoned shadow behind; the next
     * mapping at this address must not inherit it. */
    __asan_unpoison_memory_region(st->base, st->size);
#endif
    munmap(st->map, st->map_size);
    atomic_fetch_sub_explicit(&mapped_count, 1, memory_order_relaxed);
    errno = saved_errno;
}

/* ---------------------------------------------------------------------- */
/* Per-process and per-thread setup. */

static void thread_exit(void *arg);

static void process_setup(void)
{
    long ps = sysconf(_SC_PAGESIZE);

    page_size = ps > 0 ? (size_t)ps : 4096;
    guard_size = page_size > GUARD_MIN ? page_size : GUARD_MIN;
    key_ok = pthread_key_create(&tstate_key, thread_exit) == 0;
    install_handlers();
}

static void pool_drain(struct thread_state *ts)
{
    while (ts->n > 0)
        stack_unmap(&ts->pool[--ts->n]);
}

/* pthread key destructor: the thread is exiting. */
static void thread_exit(void *arg)
{
    struct thread_state *ts = arg;
    int saved_errno = errno;

    pool_drain(ts);
    if (ts->altstack != NULL) {
        stack_t cur;
        if (sigaltstack(NULL, &cur) == 0 && cur.ss_sp == ts->altstack) {
            stack_t off = {.ss_sp = NULL, .ss_flags = SS_DISABLE, .ss_size = 0};
            sigaltstack(&off, NULL);
        }
        munmap(ts->altstack, ALTSTACK_SIZE);
        ts->altstack = NULL;
    }
    ts->ready = false;
    errno = saved_errno;
}

static void altstack_setup(struct thread_state *ts)
{
    stack_t old;

    /* The application (or a sanitizer runtime) has one: use it. */
    if (sigaltstack(NULL, &old) == 0 && !(old.ss_flags & SS_DISABLE))
        return;
    void *mem = mmap(NULL, ALTSTACK_SIZE, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
    if (mem == MAP_FAILED)
        return; /* overflows will then die by plain SIGSEGV */
    stack_t ss = {.ss_sp = mem, .ss_flags = 0, .ss_size = ALTSTACK_SIZE};
    if (sigaltstack(&ss, NULL) != 0) {
        munmap(mem, ALTSTACK_SIZE);
        return;
    }
    ts->altstack = mem;
}

static void thread_setup(struct thread_state *ts)
{
    int saved_errno = errno;

    pthread_once(&process_once, process_setup);
    ts->ready = true;
    if (key_ok)
        pthread_setspecific(tstate_key, ts);
    altstack_setup(ts);
    errno = saved_errno;
}

/* ---------------------------------------------------------------------- */
/* The interface of stack.h. */

int async__stack_alloc(async__stack *st, size_t size)
{
    struct thread_state *ts = &tstate;

    if (size == 0)
        size = ASYNC__STACK_DEFAULT;
    if (size < ASYNC__STACK_MIN || size > ASYNC__STACK_MAX)
        return ASYNC_EINVAL;
    if (!ts->ready)
        thread_setup(ts);
    size = (size + page_size - 1) & ~(page_size - 1);

    /* Newest first: the stack freed last is the one most likely cached. */
    for (unsigned i = ts->n; i-- > 0;) {
        if (ts->pool[i].size == size) {
            *st = ts->pool[i];
            ts->pool[i] = ts->pool[--ts->n];
            return 0;
        }
    }
    return stack_map(st, size);
}

void async__stack_free(async__stack *st)
{
    struct thread_state *ts = &tstate;

    if (ts->ready && ts->n < POOL_CAP) {
#if defined(ASYNC_HAVE_ASAN)
        __asan_unpoison_memory_region(st->base, st->size);
#endif
        ts->pool[ts->n++] = *st;
        return;
    }
    stack_unmap(st);
}

void async__stack_pool_drain(void)
{
    pool_drain(&tstate);
}

size_t async__stack_mapped_count(void)
{
    return atomic_load_explicit(&mapped_count, memory_order_relaxed);
}
