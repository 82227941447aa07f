/*
 * Task benchmarks (issue 4, DESIGN.md "Performance targets"):
 *
 *   yield     async_yield ping-pong between two tasks: ns per yield call
 *   spawn     spawn + run + await of an empty task, from a task: ns each
 *   sleepers  100,000 tasks each sleeping 1 s with the default stack size:
 *             wall time from the first spawn until all are done, CPU time
 *             (user + system) over the same span, and peak RSS per task
 *             (VmHWM growth over the baseline / 100,000)
 *
 * Usage: bench_tasks [yield|spawn|sleepers|sleepers-child|all] [runs]
 * "all" (the default) runs yield and spawn `runs` times (default 7) and
 * sleepers 3 times, each sleepers run in a fresh child process (so its
 * VmHWM is its own), and prints the median of each.
 *
 * Output: lines "result <name> <value>" for the driver (bench/run_tasks.sh)
 * and "#" lines for people.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <async.h>

#define SLEEPERS 100000

/* Iterations per run; the optional third argument scales them down (for
 * callgrind). */
static int yields_per_task = 2000000;
static int spawns = 300000;

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof(*v), cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static _Noreturn void die(const char *what, int rc)
{
    fprintf(stderr, "bench_tasks: %s: %s\n", what, async_strerror(rc));
    exit(1);
}

/* ---- yield ping-pong ---------------------------------------------------- */

static int yielder(void *arg, void **result)
{
    (void)arg;
    (void)result;
    for (int i = 0; i < yields_per_task; i++) {
        int rc = async_yield();
        if (rc)
            return rc;
    }
    return 0;
}

static int yield_main(void *arg, void **result)
{
    (void)result;
    async_task *a, *b;
    int rc;
    if ((rc = async_spawn(&a, yielder, NULL)) ||
        (rc = async_spawn(&b, yielder, NULL)))
        die("spawn", rc);
    uint64_t t0 = mono_ns();
    if ((rc = async_await(a, NULL)) || (rc = async_await(b, NULL)))
        die("await", rc);
    uint64_t t1 = mono_ns();
    async_task_unref(a);
    async_task_unref(b);
    *(double *)arg = (double)(t1 - t0) / (2.0 * yields_per_task);
    return 0;
}

/* ---- spawn + await ------------------------------------------------------- */

static int empty(void *arg, void **result)
{
    (void)arg;
    (void)result;
    return 0;
}

static int spawn_main(void *arg, void **result)
{
    (void)result;
    int rc;
    uint64_t t0 = mono_ns();
    for (int i = 0; i < spawns; i++) {
        async_task *t;
        if ((rc = async_spawn(&t, empty, NULL)))
            die("spawn", rc);
        if ((rc = async_await(t, NULL)))
            die("await", rc);
        async_task_unref(t);
    }
    uint64_t t1 = mono_ns();
    *(double *)arg = (double)(t1 - t0) / spawns;
    return 0;
}

/* ---- 100k sleepers ------------------------------------------------------- */

/* Shared by the sleepers and main; lives outside the tasks. */
struct sleepers {
    int left;            /* sleepers not finished yet */
    async_future *done;  /* set by the last one */
};

static int sleeper(void *arg, void **result)
{
    (void)result;
    struct sleepers *s = arg;
    int rc = async_sleep(ASYNC_SEC);
    if (--s->left == 0)
        async_future_set_result(s->done, NULL);
    return rc;
}

/* Reads "<key>   N kB" from /proc/self/status, in kB (-1 if missing). */
static long status_kb(const char *key)
{
    FILE *f = fopen("/proc/self/status", "r");
    if (!f)
        return -1;
    char line[256];
    long kb = -1;
    size_t klen = strlen(key);
    while (fgets(line, sizeof(line), f)) {
        if (strncmp(line, key, klen) == 0 && line[klen] == ':') {
            kb = strtol(line + klen + 1, NULL, 10);
            break;
        }
    }
    fclose(f);
    return kb;
}

/* User + system time of this process so far, in seconds. */
static double cpu_seconds(void)
{
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0)
        return 0;
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

/* Lines of /proc/self/maps = VMAs, read with a static buffer so that the
 * count itself does not grow the heap. */
static long count_vmas(void)
{
    static char buf[1 << 16];
    FILE *f = fopen("/proc/self/maps", "r");
    if (!f)
        return -1;
    long n = 0;
    size_t got;
    while ((got = fread(buf, 1, sizeof(buf), f)) > 0)
        for (size_t i = 0; i < got; i++)
            n += buf[i] == '\n';
    fclose(f);
    return n;
}

static int sleepers_main(void *arg, void **result)
{
    (void)arg;
    (void)result;
    struct sleepers s = {SLEEPERS, NULL};
    int rc = async_future_new(async_get_running_loop(), &s.done);
    if (rc)
        die("future_new", rc);
    long vmas0 = count_vmas();
    long hwm0 = status_kb("VmHWM");
    double cpu0 = cpu_seconds();
    uint64_t t0 = mono_ns();
    for (int i = 0; i < SLEEPERS; i++)
        if ((rc = async_spawn(NULL, sleeper, &s)))
            die("spawn", rc);
    uint64_t t_spawned = mono_ns();
    long vmas1 = count_vmas();
    if ((rc = async_await(s.done, NULL)))
        die("await", rc);
    uint64_t t1 = mono_ns();
    double cpu1 = cpu_seconds();
    long hwm1 = status_kb("VmHWM");
    async_future_unref(s.done);
    printf("result sleepers_wall_s %.4f\n", (double)(t1 - t0) / 1e9);
    printf("result sleepers_cpu_s %.4f\n", cpu1 - cpu0);
    printf("result sleepers_spawn_ms %.2f\n", (double)(t_spawned - t0) / 1e6);
    printf("result sleepers_rss_per_task_bytes %.0f\n",
           (double)(hwm1 - hwm0) * 1024.0 / SLEEPERS);
    printf("result sleepers_peak_rss_mb %.1f\n", (double)hwm1 / 1024.0);
    printf("result sleepers_vmas %ld\n", vmas1 - vmas0);
    return 0;
}

/* Runs one sleepers measurement in a fresh process; returns its output
 * values through the pointers. */
static void sleepers_in_child(double *wall, double *rss, double *cpu,
                              double *vmas)
{
    int pfd[2];
    if (pipe(pfd) != 0) {
        perror("pipe");
        exit(1);
    }
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0) {
        perror("fork");
        exit(1);
    }
    if (pid == 0) {
        dup2(pfd[1], STDOUT_FILENO);
        close(pfd[0]);
        close(pfd[1]);
        execl("/proc/self/exe", "bench_tasks", "sleepers-child", (char *)NULL);
        _exit(127);
    }
    close(pfd[1]);
    FILE *f = fdopen(pfd[0], "r");
    char line[256];
    *wall = *rss = *cpu = *vmas = -1;
    while (f && fgets(line, sizeof(line), f)) {
        char key[64];
        double v;
        if (sscanf(line, "result %63s %lf", key, &v) != 2)
            continue;
        if (!strcmp(key, "sleepers_wall_s"))
            *wall = v;
        else if (!strcmp(key, "sleepers_rss_per_task_bytes"))
            *rss = v;
        else if (!strcmp(key, "sleepers_cpu_s"))
            *cpu = v;
        else if (!strcmp(key, "sleepers_vmas"))
            *vmas = v;
        fputs("# child: ", stdout);
        fputs(line, stdout);
    }
    if (f)
        fclose(f);
    int status;
    waitpid(pid, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "bench_tasks: sleepers child failed\n");
        exit(1);
    }
}

/* ---- driver --------------------------------------------------------------- */

static double run_one(async_fn fn)
{
    double v = 0;
    int rc = async_run(fn, &v, NULL);
    if (rc)
        die("async_run", rc);
    return v;
}

static void bench_repeat(const char *name, async_fn fn, int runs)
{
    double v[64];
    for (int i = 0; i < runs; i++) {
        v[i] = run_one(fn);
        printf("# %s run %d: %.2f ns\n", name, i + 1, v[i]);
    }
    printf("result %s %.2f\n", name, median(v, runs));
}

static void bench_sleepers(int runs)
{
    double wall[8], rss[8], cpu[8], vmas = 0;
    for (int i = 0; i < runs; i++)
        sleepers_in_child(&wall[i], &rss[i], &cpu[i], &vmas);
    printf("result sleepers_wall_s %.4f\n", median(wall, runs));
    printf("result sleepers_rss_per_task_bytes %.0f\n", median(rss, runs));
    printf("result sleepers_cpu_s %.4f\n", median(cpu, runs));
    printf("result sleepers_vmas %.0f\n", vmas);
}

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "all";
    int runs = argc > 2 ? atoi(argv[2]) : 7;
    if (runs < 1 || runs > 64)
        runs = 7;
    if (argc > 3 && atoi(argv[3]) > 0) {
        yields_per_task = atoi(argv[3]);
        spawns = atoi(argv[3]);
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    bool all = !strcmp(mode, "all");
    if (!strcmp(mode, "sleepers-child")) {
        int rc = async_run(sleepers_main, NULL, NULL);
        if (rc)
            die("async_run", rc);
        return 0;
    }
    if (all || !strcmp(mode, "yield"))
        bench_repeat("yield_ns", yield_main, runs);
    if (all || !strcmp(mode, "spawn"))
        bench_repeat("spawn_await_ns", spawn_main, runs);
    if (all || !strcmp(mode, "sleepers"))
        bench_sleepers(runs < 3 ? runs : 3);
    return 0;
}
