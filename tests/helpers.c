#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cmocka.h>

#include "helpers.h"
#include "core/internal.h"

int th_count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n - 1; /* the DIR's own fd */
}

int th_count_maps(void)
{
    FILE *f = fopen("/proc/self/maps", "r");
    if (!f)
        return -1;
    int n = 0, c;
    while ((c = fgetc(f)) != EOF)
        if (c == '\n')
            n++;
    fclose(f);
    return n;
}

void th_leaks_begin(th_leaks *l)
{
    /* The first backend of a process may open fds that live as long as the
     * process (libkqueue does); make them exist before we count. */
    static bool primed;
    if (!primed) {
        async__backend *b;
        if (async__backend_new(&b) == 0)
            async__backend_free(b);
        primed = true;
    }
    l->fds = th_count_fds();
    l->stacks = async__stack_mapped_count();
    l->tasks = async__task_live_count();
}

void th_leaks_end(const th_leaks *l)
{
    async__stack_pool_drain();
    assert_int_equal(th_count_fds(), l->fds);
    assert_int_equal(async__stack_mapped_count(), l->stacks);
    assert_int_equal(async__task_live_count(), l->tasks);
}
