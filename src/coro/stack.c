/*
 * Coroutine stacks: slabs, guards, the per-thread free list and the
 * stack-overflow reporter.
 *
 * A slab is one mapping carved into `cap` stacks of one size (addresses grow
 * upwards):
 *
 *   slab->map                                     slab->map + cap * stride
 *   | guard | stack 0 ... <- | guard | stack 1 ... <- | ... | stack cap-1 <- |
 *
 * Each stack's usable range has its own guard right below it, so a stack
 * still looks like a mapping of its own (async__stack: map = its guard,
 * base = map + guard, top = base + size).  The guard is as large as the
 * stack, at least 64 KiB and at most 1 MiB (guard_for): a function whose
 * frame is no larger than that, compiled without -fstack-clash-protection,
 * lands in the guard wherever its frame starts, never in the neighbouring
 * stack, so any frame that fits in a stack of up to 1 MiB is caught.  64 KiB
 * at least because AArch64 compilers probe big frames in 64 KiB steps even
 * with -fstack-clash-protection.  Guards cost address space and page-table
 * markers, no memory.  It is installed with madvise(MADV_GUARD_INSTALL) (Linux 6.13+), which marks
 * page-table entries instead of changing the VMA's protection: an mprotect'ed
 * guard splits every stack into two VMAs, and with vm.max_map_count at its
 * default 65530 that caps a process at ~32,000 stacks, far short of the
 * 100,000 tasks we must run.  Kernels (and emulators) without it get
 * mprotect(PROT_NONE).  Slabs are MAP_NORESERVE (no commit charge for
 * untouched stack) and MAP_STACK (no transparent huge pages); all guards of a
 * slab are installed when it is mapped.
 *
 * Why slabs: one mmap + `cap` guard installs replace `cap` (mmap + madvise +
 * munmap) triples, and a stack that goes back to the free list keeps its
 * touched pages, so the next coroutine on it takes no page fault.
 *
 * First pages.  A fresh stack's first use touches its top page (the initial
 * frame), one page fault each.  When never-used slots are carved, their top
 * pages are populated in batches with one process_madvise(MADV_POPULATE_
 * WRITE) (tops_populate): as many slots as the slab already used (1, 1, 2,
 * 4, ... 32), so a slab never holds more populated-but-unused pages than it
 * has used stacks.  Kernels or emulators that refuse it simply fault.
 *
 * Free list.  Each thread has a pool with one size class per stack size in
 * use; a class keeps its slabs on two lists, "partial" (some stack free,
 * most recently freed-into first) and "full".  Every slab keeps a LIFO of
 * its free slots; the bottom `nclean` of them hold no memory (never touched,
 * or released), the rest are "dirty" (may be resident).  Allocation pops the
 * newest free slot of the first partial slab, i.e. the stack freed last,
 * whose top pages are hot.  The pool caps the usable bytes of dirty free
 * stacks at DIRTY_CAP; past it, the coldest partial slabs are trimmed down
 * to half the cap: a slab with no stack in use is unmapped, any other has
 * its dirty free stacks released with madvise(MADV_DONTNEED), one call per
 * run of adjacent slots.  MADV_DONTNEED, not MADV_FREE: lazily freed pages
 * still count in RSS until the kernel is short of memory, so the cap would
 * not be a cap.  Guard markers survive both.
 *
 * Hot path: the pool is reached through one initial-exec TLS pointer, so
 * alloc and free are a few loads and stores without system calls or atomics.
 *
 * Threads.  A stack freed by a thread other than its slab's owner (rare: a
 * loop is driven by one thread) is released with MADV_DONTNEED and its slot
 * retired; the slab counts such frees atomically (`foreign`).  At thread
 * exit the pool unmaps its slabs with no stack in use and orphans the
 * others: the last foreign free of an orphaned slab unmaps it.
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
#include <sys/uio.h>
#endif

#include <async/error.h>

#include "coro/coro.h"
#include "coro/stack.h"

#if defined(ASYNC_HAVE_ASAN)
#include <sanitizer/asan_interface.h>
#define NO_ASAN __attribute__((no_sanitize_address))
#else
#define NO_ASAN
#endif
#if defined(ASYNC_HAVE_VALGRIND_H)
#include <valgrind/valgrind.h>
#endif

/* The pool pointer is read on every alloc and free: one instruction away,
 * never through __tls_get_addr (see `current` in coro.c). */
#if defined(__GNUC__) && defined(__ELF__)
#define TLS_IE __attribute__((tls_model("initial-exec")))
#else
#define TLS_IE
#endif

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23 /* Linux 5.14 uapi/asm-generic/mman-common.h */
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

/* Usable bytes of dirty free stacks a thread may keep: 64 default stacks. */
#define DIRTY_CAP ((size_t)64 * ASYNC__STACK_DEFAULT)
/* Address space of one slab (fewer stacks for big sizes, at least one). */
#define SLAB_BYTES ((size_t)32 << 20)
/* Most stacks in one slab (slot numbers fit a uint8_t). */
#define SLAB_MAX 64u
/* Smallest guard: one AArch64 stack-probe interval. */
#define GUARD_MIN ((size_t)64 * 1024)
/* Largest guard: frames up to this size are caught without stack-clash
 * protection in stacks of any size. */
#define GUARD_MAX ((size_t)1 << 20)
/* async__stack keeps sizes, guards and slots in narrow fields. */
_Static_assert(ASYNC__STACK_MAX <= UINT32_MAX && GUARD_MAX <= UINT32_MAX,
               "async__stack.size and .guard are 32 bits");
_Static_assert(SLAB_MAX <= UINT16_MAX + 1u, "async__stack.slot is 16 bits");
/* Alternate signal stack given to each thread that allocates stacks. */
#define ALTSTACK_SIZE ((size_t)64 * 1024)
/* Added to slab->foreign when its owner exits with stacks in use. */
#define ORPHAN ((long)1 << 40)

enum guard_mode {
    GUARD_UNKNOWN,  /* not tried yet */
    GUARD_MADVISE,  /* MADV_GUARD_INSTALL works */
    GUARD_MPROTECT, /* it does not (old kernel, emulator): mprotect */
};

struct pool;
struct size_class;

/* Intrusive circular list node; a class holds two sentinels. */
struct link {
    struct link *next; /* toward the tail */
    struct link *prev; /* toward the head */
};

struct async__slab {
    struct link link;          /* in its class's partial or full list */
    _Atomic(struct pool *) owner; /* allocating thread's pool; NULL: orphan */
    struct size_class *cls;    /* its size class (owner's memory) */
    char *map;                 /* start of the mapping */
    size_t stride;             /* bytes per stack, guard included */
    size_t guard;              /* bytes of guard below each stack */
    unsigned cap;              /* stacks in the mapping */
    unsigned nfree;            /* slots in free[] */
    unsigned nclean;           /* free[0 .. nclean) hold no memory */
    unsigned live;             /* handed out minus freed by the owner */
    unsigned carved;           /* slots handed out at least once */
    unsigned guarded;          /* slots [0, guarded) have their guard */
    unsigned populated;        /* slots [0, populated) had their top page
                                  populated (or were used) */
    atomic_long foreign;       /* minus frees by other threads, + ORPHAN */
    uint8_t free[SLAB_MAX];    /* free slots, LIFO: newest at the end */
};

struct size_class {
    struct size_class *next; /* in the pool's list */
    size_t size;             /* usable bytes of its stacks */
    size_t guard;            /* guard_for(size) */
    size_t stride;           /* size + guard */
    unsigned cap;            /* stacks per slab */
    struct link partial;     /* slabs with a free slot, newest freed first */
    struct link full;        /* slabs with none */
};

/* Per-thread state, malloc'ed by the first allocation in the thread. */
struct pool {
    struct size_class *classes; /* one per size in use */
    struct size_class *last;    /* the class used last (lookup cache) */
    size_t dirty;               /* usable bytes of dirty free stacks */
    void *altstack;             /* the sigaltstack we installed, or NULL */
};

static _Thread_local struct pool *tpool TLS_IE;

/* Process-wide state, written once under process_once. */
static pthread_once_t process_once = PTHREAD_ONCE_INIT;
static size_t page_size;            /* sysconf(_SC_PAGESIZE) */
static size_t guard_min;            /* max(page_size, GUARD_MIN) */
static bool key_ok;                 /* pool_key was created */
static pthread_key_t pool_key;      /* its destructor runs at thread exit */
static struct sigaction old_segv;   /* dispositions we chain to */
static struct sigaction old_bus;    /* (the SIGBUS one) */

static _Atomic int guard_mode = GUARD_UNKNOWN;
static atomic_size_t mapped_count; /* stacks mapped and used, all threads */

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

/* Writes the overflow line for co (and, when `escaped`, why the guard did
 * not stop it), then aborts. */
_Noreturn NO_ASAN static void report_overflow(const async__coro *co,
                                              bool escaped)
{
    char buf[256];
    size_t pos = 0;
    const size_t name_cap = 160;

    pos = append(buf, pos, sizeof buf,
                 "libasync: stack overflow in coroutine \"");
    if (co->name != NULL) {
        pos = append(buf, pos, name_cap, co->name);
    } else if (co->id != 0) {
        /* A task's default name, "Task-N", formatted here: it is only
         * formatted on demand elsewhere. */
        pos = append(buf, pos, name_cap, "Task-");
        pos += fmt_size(buf + pos, (size_t)co->id);
    } else {
        pos = append(buf, pos, name_cap, "(unnamed)");
    }
    pos = append(buf, pos, sizeof buf, "\" (stack size ");
    pos += fmt_size(buf + pos, co->stack.size);
    pos = append(buf, pos, sizeof buf, " bytes)\n");
    ssize_t r = write(STDERR_FILENO, buf, pos);

    if (escaped) {
        pos = append(buf, 0, sizeof buf,
                     "libasync: its stack pointer was below the stack at a "
                     "switch: a frame larger than the guard (");
        pos += fmt_size(buf + pos, co->stack.guard);
        pos = append(buf, pos, sizeof buf,
                     " bytes) jumped it; build with -fstack-clash-protection "
                     "or give the task a bigger stack\n");
        r = write(STDERR_FILENO, buf, pos);
    }
    (void)r;
    abort();
}

void async__stack_overflow_abort(const async__coro *co)
{
    report_overflow(co, true);
}

/* A fault in the guard, or up to one guard's length below it (a frame larger
 * than the guard that jumped over it), is an overflow of co's stack. */
NO_ASAN static bool in_guard(const async__coro *co, const void *addr)
{
    uintptr_t a = (uintptr_t)addr;
    uintptr_t map = (uintptr_t)co->stack.map;
    uintptr_t lo = map > co->stack.guard ? map - co->stack.guard : 0;

    return co->stack.map != NULL && a >= lo &&
           a < (uintptr_t)async__stack_base(&co->stack);
}

NO_ASAN static void fault_handler(int sig, siginfo_t *si, void *uctx)
{
    const async__coro *co = async__coro_current();

    /* si_code > 0: raised by the kernel for a fault, not sent by kill(). */
    if (co != NULL && si->si_code > 0 && in_guard(co, si->si_addr))
        report_overflow(co, false);

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

static int guard_install(void *map, size_t guard)
{
    int mode = atomic_load_explicit(&guard_mode, memory_order_relaxed);

    if (mode != GUARD_MPROTECT) {
        if (madvise(map, guard, MADV_GUARD_INSTALL) == 0) {
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
    if (mprotect(map, guard, PROT_NONE) != 0)
        return ASYNC_ENOMEM;
    return 0;
}
#else
/* Guard regions are a Linux feature. */
static int guard_install(void *map, size_t guard)
{
    if (mprotect(map, guard, PROT_NONE) != 0)
        return ASYNC_ENOMEM;
    return 0;
}
#endif

/* ---------------------------------------------------------------------- */
/* Slabs. */

static void link_init(struct link *l)
{
    l->next = l->prev = l;
}

static void link_remove(struct link *l)
{
    l->prev->next = l->next;
    l->next->prev = l->prev;
}

/* Inserts l right after the sentinel: at the head. */
static void link_push(struct link *head, struct link *l)
{
    l->next = head->next;
    l->prev = head;
    head->next->prev = l;
    head->next = l;
}

static struct async__slab *slab_of(struct link *l)
{
    return (struct async__slab *)(void *)l; /* link is the first member */
}

#if defined(__linux__) && defined(SYS_process_madvise)
/* PIDFD_SELF_THREAD_GROUP (Linux 6.15): the calling process, without an
 * fd (an fd of ours would show up in callers' fd-leak checks). */
#define PIDFD_SELF_GROUP (-10001)

static atomic_bool batch_broken; /* process_madvise refused: stop trying */

/* Installs the guards of a whole slab with one process_madvise(2): since
 * Linux 6.13 it takes any advice for the calling process.  Returns how many
 * leading guards are in place (0 when the call is not available). */
static unsigned guards_batch(char *map, size_t stride, size_t guard,
                             unsigned cap)
{
    struct iovec iov[SLAB_MAX];

    if (cap < 2 || atomic_load_explicit(&batch_broken, memory_order_relaxed) ||
        atomic_load_explicit(&guard_mode, memory_order_relaxed) !=
            GUARD_MADVISE)
        return 0;
#if defined(ASYNC_HAVE_VALGRIND_H)
    if (RUNNING_ON_VALGRIND)
        return 0; /* 3.19 does not know the call and would say so */
#endif
    for (unsigned i = 0; i < cap; i++) {
        iov[i].iov_base = map + (size_t)i * stride;
        iov[i].iov_len = guard;
    }
    long r = syscall(SYS_process_madvise, PIDFD_SELF_GROUP, iov, cap,
                     MADV_GUARD_INSTALL, 0);
    if (r < 0) {
        if (errno != ENOMEM && errno != EAGAIN && errno != EINTR)
            atomic_store_explicit(&batch_broken, true, memory_order_relaxed);
        return 0;
    }
    return (unsigned)((size_t)r / guard);
}

static atomic_bool populate_broken; /* populating refused: stop trying */

/* Faults in the top page of slots [from, from + n) of s, all in one
 * process_madvise(MADV_POPULATE_WRITE).  A first touch costs a trap per page
 * and, on VMs, an exit per page as well; one call per batch takes the same
 * pages without the traps.  Best effort: on any failure the pages are simply
 * faulted in when first touched, as without it. */
static void tops_populate(struct async__slab *s, unsigned from, unsigned n)
{
    struct iovec iov[SLAB_MAX];

    if (atomic_load_explicit(&populate_broken, memory_order_relaxed))
        return;
#if defined(ASYNC_HAVE_VALGRIND_H)
    if (RUNNING_ON_VALGRIND)
        return;
#endif
    for (unsigned i = 0; i < n; i++) {
        iov[i].iov_base = s->map + (size_t)(from + i + 1u) * s->stride -
                          page_size;
        iov[i].iov_len = page_size;
    }
    int saved_errno = errno;
    if (syscall(SYS_process_madvise, PIDFD_SELF_GROUP, iov, n,
                MADV_POPULATE_WRITE, 0) < 0 &&
        errno != ENOMEM && errno != EAGAIN && errno != EINTR)
        atomic_store_explicit(&populate_broken, true, memory_order_relaxed);
    errno = saved_errno;
}
#else
static unsigned guards_batch(char *map, size_t stride, size_t guard,
                             unsigned cap)
{
    (void)map;
    (void)stride;
    (void)guard;
    (void)cap;
    return 0;
}

static void tops_populate(struct async__slab *s, unsigned from, unsigned n)
{
    (void)s;
    (void)from;
    (void)n;
}
#endif

/* Guards go in when the slab is mapped, all in one call, where the kernel
 * allows; otherwise each when its stack is first handed out (see
 * slot_first_use), so that mprotect'ed guards split VMAs only for stacks
 * actually used.  The first guard of the process always goes through
 * guard_install(), which finds out whether MADV_GUARD_INSTALL works.
 * Returns how many leading slots are guarded. */
static unsigned slab_guards(char *map, size_t stride, size_t guard,
                            unsigned cap)
{
    unsigned n = guards_batch(map, stride, guard, cap);

    if (n == cap)
        return n;
    return n > 0 ? n : guard_install(map, guard) == 0 ? 1u : 0u;
}

/* Maps a slab for class c, all of its slots free and clean, and puts it at
 * the head of c's partial list. */
static int slab_new(struct pool *p, struct size_class *c,
                    struct async__slab **out)
{
    int saved_errno = errno;
    int err = ASYNC_ENOMEM;
    struct async__slab *s = malloc(sizeof *s);

    if (s == NULL)
        goto out;
    size_t len = (size_t)c->cap * c->stride;
    s->map = mmap(NULL, len, PROT_READ | PROT_WRITE,
                  MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK,
                  -1, 0);
    if (s->map == MAP_FAILED)
        goto free_slab;
    s->guarded = slab_guards(s->map, c->stride, c->guard, c->cap);
    if (s->guarded == 0)
        goto unmap;
    atomic_init(&s->owner, p);
    atomic_init(&s->foreign, 0);
    s->cls = c;
    s->stride = c->stride;
    s->guard = c->guard;
    s->cap = s->nfree = s->nclean = c->cap;
    s->live = s->carved = s->populated = 0;
    /* Slot 0 on top: stacks are handed out in address order. */
    for (unsigned i = 0; i < c->cap; i++)
        s->free[i] = (uint8_t)(c->cap - 1 - i);
    link_push(&c->partial, &s->link);
    *out = s;
    errno = saved_errno;
    return 0;
unmap:
    munmap(s->map, len);
free_slab:
    free(s);
out:
    errno = saved_errno;
    return err;
}

static void slab_unmap(struct async__slab *s)
{
    int saved_errno = errno;

    munmap(s->map, (size_t)s->cap * s->stride);
    atomic_fetch_sub_explicit(&mapped_count, s->carved, memory_order_relaxed);
    free(s);
    errno = saved_errno;
}

/* No stack of s is in use (by the owner's count and other threads'). */
static bool slab_idle(struct async__slab *s)
{
    return (long)s->live +
               atomic_load_explicit(&s->foreign, memory_order_acquire) == 0;
}

/* Gives back the memory of slots free[from .. to), adjacent slots in one
 * call (their guards lie in between; guard markers survive it). */
static void slab_release(struct async__slab *s, unsigned from, unsigned to)
{
    int saved_errno = errno;
    unsigned i = from;

    while (i < to) {
        unsigned lo = s->free[i], hi = s->free[i];
        for (i++; i < to; i++) {
            if (s->free[i] == lo - 1u)
                lo = s->free[i];
            else if (s->free[i] == hi + 1u)
                hi = s->free[i];
            else
                break;
        }
        char *base = s->map + (size_t)lo * s->stride + s->guard;
        size_t len = (size_t)(hi - lo + 1u) * s->stride - s->guard;
        madvise(base, len, MADV_DONTNEED);
    }
    errno = saved_errno;
}

/* ---------------------------------------------------------------------- */
/* The pool. */

/* The guard below stacks of `size` usable bytes (a multiple of the page
 * size): the stack size, clamped to [guard_min, GUARD_MAX]. */
static size_t guard_for(size_t size)
{
    return size < guard_min ? guard_min : size > GUARD_MAX ? GUARD_MAX : size;
}

static struct size_class *class_new(struct pool *p, size_t size)
{
    struct size_class *c = malloc(sizeof *c);

    if (c == NULL)
        return NULL;
    c->size = size;
    c->guard = guard_for(size);
    c->stride = size + c->guard;
    size_t cap = SLAB_BYTES / c->stride;
    c->cap = cap < 1 ? 1u : cap > SLAB_MAX ? SLAB_MAX : (unsigned)cap;
    link_init(&c->partial);
    link_init(&c->full);
    c->next = p->classes;
    p->classes = c;
    return c;
}

static struct size_class *class_find(struct pool *p, size_t size)
{
    struct size_class *c = p->classes;

    while (c != NULL && c->size != size)
        c = c->next;
    if (c == NULL)
        c = class_new(p, size);
    if (c != NULL)
        p->last = c;
    return c;
}

/* Releases the dirty free stacks of slab s (or unmaps it when none of its
 * stacks is in use); returns the usable bytes given back. */
static size_t slab_trim(struct async__slab *s)
{
    size_t freed = (size_t)(s->nfree - s->nclean) * s->cls->size;

    if (slab_idle(s)) {
        link_remove(&s->link);
        slab_unmap(s);
        return freed;
    }
    slab_release(s, s->nclean, s->nfree);
    s->nclean = s->nfree;
    return freed;
}

/* Trims c's coldest partial slabs (the tail of the list) until the pool's
 * dirty bytes are down to half the cap. */
static void class_trim(struct pool *p, struct size_class *c)
{
    struct link *l = c->partial.prev;

    while (l != &c->partial && p->dirty > DIRTY_CAP / 2) {
        struct link *prev = l->prev;
        p->dirty -= slab_trim(slab_of(l));
        l = prev;
    }
}

/* Over the cap: the class just freed into first, then the others. */
static void pool_trim(struct pool *p, struct size_class *first)
{
    class_trim(p, first);
    for (struct size_class *c = p->classes; c != NULL; c = c->next)
        if (c != first)
            class_trim(p, c);
}

/* Unmaps the idle slabs of list `head`; the others release their dirty
 * free stacks and, at thread exit, become orphans. */
static void list_drain(struct pool *p, struct link *head, bool exiting)
{
    struct link *l = head->next;

    while (l != head) {
        struct async__slab *s = slab_of(l);
        l = l->next;
        p->dirty -= (size_t)(s->nfree - s->nclean) * s->cls->size;
        if (slab_idle(s)) {
            link_remove(&s->link);
            slab_unmap(s);
            continue;
        }
        slab_release(s, s->nclean, s->nfree);
        s->nclean = s->nfree;
        if (exiting) {
            /* Off the list before another thread may free it. */
            link_remove(&s->link);
            atomic_store_explicit(&s->owner, NULL, memory_order_relaxed);
            long old = atomic_fetch_add_explicit(
                &s->foreign, ORPHAN + (long)s->live, memory_order_acq_rel);
            if (old + ORPHAN + (long)s->live == ORPHAN)
                slab_unmap(s); /* its last foreign free came meanwhile */
        }
    }
}

static void pool_drain(struct pool *p, bool exiting)
{
    struct size_class **pc = &p->classes;

    while (*pc != NULL) {
        struct size_class *c = *pc;
        list_drain(p, &c->partial, exiting);
        list_drain(p, &c->full, exiting);
        if (exiting || (c->partial.next == &c->partial &&
                        c->full.next == &c->full)) {
            *pc = c->next;
            free(c);
        } else {
            pc = &c->next;
        }
    }
    p->last = NULL;
}

/* A stack freed by a thread that does not own its slab. */
static void stack_free_foreign(async__stack *st)
{
    struct async__slab *s = st->slab;
    int saved_errno = errno;

    madvise(async__stack_base(st), st->size, MADV_DONTNEED);
    errno = saved_errno;
    long old = atomic_fetch_sub_explicit(&s->foreign, 1, memory_order_acq_rel);
    if (old - 1 == ORPHAN)
        slab_unmap(s);
}

/* ---------------------------------------------------------------------- */
/* Per-process and per-thread setup. */

static void thread_exit(void *arg);

static void process_setup(void)
{
    long ps = sysconf(_SC_PAGESIZE);

    page_size = ps > 0 ? (size_t)ps : 4096;
    guard_min = page_size > GUARD_MIN ? page_size : GUARD_MIN;
    key_ok = pthread_key_create(&pool_key, thread_exit) == 0;
    install_handlers();
}

/* pthread key destructor: the thread is exiting. */
static void thread_exit(void *arg)
{
    struct pool *p = arg;
    int saved_errno = errno;

    pool_drain(p, true);
    if (p->altstack != NULL) {
        stack_t cur;
        if (sigaltstack(NULL, &cur) == 0 && cur.ss_sp == p->altstack) {
            stack_t off = {.ss_sp = NULL, .ss_flags = SS_DISABLE, .ss_size = 0};
            sigaltstack(&off, NULL);
        }
        munmap(p->altstack, ALTSTACK_SIZE);
    }
    if (tpool == p)
        tpool = NULL;
    free(p);
    errno = saved_errno;
}

static void altstack_setup(struct pool *p)
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
    p->altstack = mem;
}

static struct pool *pool_setup(void)
{
    int saved_errno = errno;
    struct pool *p = calloc(1, sizeof *p);

    pthread_once(&process_once, process_setup);
    if (p != NULL) {
        if (key_ok)
            pthread_setspecific(pool_key, p);
        altstack_setup(p);
        tpool = p;
    }
    errno = saved_errno;
    return p;
}

/* ---------------------------------------------------------------------- */
/* The interface of stack.h. */

/* Never-used slots sit at the bottom of free[] in address order, so a slot
 * is used for the first time when it is the next to carve. */
static int slot_first_use(struct async__slab *s, unsigned slot)
{
    if (slot >= s->guarded) {
        int err = guard_install(s->map + (size_t)slot * s->stride, s->guard);
        if (err < 0)
            return err;
        s->guarded = slot + 1;
    }
    if (slot >= s->populated) {
        /* As many slots as are already in use (1, 1, 2, 4, ... 32 for a
         * 64-slot slab carved in order), so a slab never holds more
         * populated-but-unused pages than it has used stacks. */
        unsigned n = slot > 0 ? slot : 1u;
        if (n > s->cap - slot)
            n = s->cap - slot;
        tops_populate(s, slot, n);
        s->populated = slot + n;
    }
    s->carved++;
    atomic_fetch_add_explicit(&mapped_count, 1, memory_order_relaxed);
    return 0;
}

int async__stack_alloc(async__stack *st, size_t size)
{
    struct pool *p = tpool;

    if (size == 0)
        size = ASYNC__STACK_DEFAULT;
    if (size < ASYNC__STACK_MIN || size > ASYNC__STACK_MAX)
        return ASYNC_EINVAL;
    if (p == NULL && (p = pool_setup()) == NULL)
        return ASYNC_ENOMEM;
    size = (size + page_size - 1) & ~(page_size - 1);
    struct size_class *c = p->last;
    if ((c == NULL || c->size != size) && (c = class_find(p, size)) == NULL)
        return ASYNC_ENOMEM;

    struct async__slab *s = slab_of(c->partial.next);
    if (&s->link == &c->partial) {
        int err = slab_new(p, c, &s);
        if (err < 0)
            return err;
    }
    unsigned slot = s->free[s->nfree - 1];
    if (slot == s->carved && slot_first_use(s, slot) < 0)
        return ASYNC_ENOMEM; /* nothing changed: the slot stays free */
    if (--s->nfree < s->nclean)
        s->nclean = s->nfree;
    else
        p->dirty -= c->size;
    if (s->nfree == 0) {
        link_remove(&s->link);
        link_push(&c->full, &s->link);
    }
    s->live++;
    st->map = s->map + (size_t)slot * c->stride;
    st->slab = s;
    st->guard = (uint32_t)c->guard;
    st->size = (uint32_t)size;
    st->slot = (uint16_t)slot; /* valgrind_id: the coroutine layer's */
    return 0;
}

void async__stack_free(async__stack *st)
{
    struct pool *p = tpool;
    struct async__slab *s = st->slab;

#if defined(ASYNC_HAVE_ASAN)
    /* Frames abandoned on this stack (a coroutine destroyed while
     * suspended) leave poisoned shadow; the next user must not inherit it. */
    __asan_unpoison_memory_region(async__stack_base(st), st->size);
#endif
    if (p == NULL ||
        atomic_load_explicit(&s->owner, memory_order_relaxed) != p) {
        stack_free_foreign(st);
        return;
    }
    /* Most recently freed-into slab first: allocation reuses this stack. */
    link_remove(&s->link);
    link_push(&s->cls->partial, &s->link);
    s->free[s->nfree++] = (uint8_t)st->slot;
    s->live--;
    p->dirty += st->size;
    if (p->dirty > DIRTY_CAP)
        pool_trim(p, s->cls);
}

void async__stack_pool_drain(void)
{
    if (tpool != NULL)
        pool_drain(tpool, false);
}

size_t async__stack_mapped_count(void)
{
    return atomic_load_explicit(&mapped_count, memory_order_relaxed);
}

bool async__stack_guard_splits_vma(void)
{
    pthread_once(&process_once, process_setup);
    if (atomic_load_explicit(&guard_mode, memory_order_relaxed) ==
        GUARD_UNKNOWN) {
        int saved_errno = errno;
        size_t len = guard_min + page_size;
        void *m = mmap(NULL, len, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (m != MAP_FAILED) {
            guard_install(m, guard_min);
            munmap(m, len);
        }
        errno = saved_errno;
    }
    return atomic_load_explicit(&guard_mode, memory_order_relaxed) ==
           GUARD_MPROTECT;
}
