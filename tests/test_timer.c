/*
 * The intrusive timer heap (src/core/timer.c) against a reference model: a plain
 * array kept sorted by (deadline, seq).  After every operation the heap's
 * minimum must equal the model's first element, and the tree must satisfy
 * every structural invariant (links agree, heap order, complete shape, count).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/timer.h"

/* A small deterministic PRNG (xorshift64*), so failures reproduce. */
static uint64_t rng_state = 0x9e3779b97f4a7c15u;

static uint64_t rng(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 2685821657736338717u;
}

/*
 * Walks the subtree at `t`, which should sit in level-order slot `slot`
 * below `parent`.  Returns the number of nodes; checks links, order, and
 * that no slot number exceeds `count` (with the node total equal to count,
 * that proves the tree is complete).
 */
static size_t check_subtree(const async__timer *t, const async__timer *parent,
                            size_t slot, size_t count)
{
    if (t == NULL)
        return 0;
    assert_ptr_equal(t->parent, parent);
    assert_true(slot <= count);
    if (parent != NULL) {
        bool ordered = parent->deadline < t->deadline
                       || (parent->deadline == t->deadline && parent->seq < t->seq);
        assert_true(ordered);
    }
    return 1 + check_subtree(t->left, t, 2 * slot, count)
             + check_subtree(t->right, t, 2 * slot + 1, count);
}

static void check_heap(const async__timer_heap *h)
{
    assert_int_equal(check_subtree(h->min, NULL, 1, h->count), h->count);
}

/* The reference model: armed timers sorted by (deadline, seq). */
typedef struct model {
    async__timer **items;
    size_t n;
} model;

static int timer_cmp(const void *pa, const void *pb)
{
    const async__timer *a = *(async__timer *const *)pa;
    const async__timer *b = *(async__timer *const *)pb;
    if (a->deadline != b->deadline)
        return a->deadline < b->deadline ? -1 : 1;
    return a->seq < b->seq ? -1 : (a->seq > b->seq);
}

static void model_add(model *m, async__timer *t)
{
    m->items[m->n++] = t;
    qsort(m->items, m->n, sizeof *m->items, timer_cmp);
}

static void model_remove(model *m, async__timer *t)
{
    for (size_t i = 0; i < m->n; i++) {
        if (m->items[i] == t) {
            memmove(&m->items[i], &m->items[i + 1],
                    (m->n - i - 1) * sizeof *m->items);
            m->n--;
            return;
        }
    }
    fail_msg("timer missing from the model");
}

static void check_against(const async__timer_heap *h, const model *m)
{
    check_heap(h);
    assert_int_equal(h->count, m->n);
    assert_ptr_equal(async__timer_heap_min(h), m->n ? m->items[0] : NULL);
}

/* Thousands of random arms and disarms; few distinct deadlines force ties. */
static void test_random_against_model(void **state)
{
    (void)state;
    enum { POOL = 300, OPS = 20000 };
    static async__timer pool[POOL];
    static async__timer *items[POOL];
    model m = { items, 0 };
    async__timer_heap h;

    async__timer_heap_init(&h);
    for (size_t i = 0; i < POOL; i++)
        async__timer_init(&pool[i]);

    for (int op = 0; op < OPS; op++) {
        async__timer *t = &pool[rng() % POOL];
        unsigned kind = (unsigned)(rng() % 4);
        if (async__timer_armed(t)) {
            async__timer_disarm(&h, t);
            model_remove(&m, t);
            assert_false(async__timer_armed(t));
        } else if (kind == 0 && m.n > 0) {
            /* Pop the minimum, as the loop does when a timer is due. */
            async__timer *min = async__timer_heap_min(&h);
            async__timer_disarm(&h, min);
            model_remove(&m, min);
        } else {
            async__timer_arm(&h, t, rng() % 64);
            model_add(&m, t);
            assert_true(async__timer_armed(t));
        }
        check_against(&h, &m);
    }
    /* Drain in order. */
    while (m.n > 0) {
        async__timer *min = async__timer_heap_min(&h);
        assert_ptr_equal(min, m.items[0]);
        async__timer_disarm(&h, min);
        model_remove(&m, min);
        check_against(&h, &m);
    }
    assert_null(async__timer_heap_min(&h));
}

/* Equal deadlines come out in the order they were armed. */
static void test_equal_deadlines_fifo(void **state)
{
    (void)state;
    enum { N = 100 };
    async__timer t[N];
    async__timer_heap h;
    async__timer_heap_init(&h);

    /* Arm in a scrambled order so slot position and arm order differ. */
    int order[N];
    for (int i = 0; i < N; i++)
        order[i] = (i * 37) % N;
    for (int i = 0; i < N; i++) {
        async__timer_init(&t[order[i]]);
        async__timer_arm(&h, &t[order[i]], 1000);
    }
    for (int i = 0; i < N; i++) {
        async__timer *min = async__timer_heap_min(&h);
        assert_ptr_equal(min, &t[order[i]]);
        async__timer_disarm(&h, min);
        check_heap(&h);
    }
    assert_null(async__timer_heap_min(&h));
}

static void test_disarm_unarmed_is_noop(void **state)
{
    (void)state;
    async__timer a, b;
    async__timer_heap h;
    async__timer_heap_init(&h);
    async__timer_init(&a);
    async__timer_init(&b);

    assert_false(async__timer_armed(&a));
    async__timer_disarm(&h, &a); /* never armed */
    assert_int_equal(h.count, 0);

    async__timer_arm(&h, &b, 5);
    async__timer_disarm(&h, &a); /* not armed, heap not empty */
    assert_int_equal(h.count, 1);
    assert_ptr_equal(async__timer_heap_min(&h), &b);

    async__timer_disarm(&h, &b);
    async__timer_disarm(&h, &b); /* twice */
    assert_int_equal(h.count, 0);
    assert_null(async__timer_heap_min(&h));
}

/* Seven timers with deadlines 1..7 arm into a full three-level tree:
 * slot 1 is the root, 2-3 the middle level, 4-7 the leaves. */
static void arm_seven(async__timer_heap *h, async__timer t[7])
{
    async__timer_heap_init(h);
    for (int i = 0; i < 7; i++) {
        async__timer_init(&t[i]);
        async__timer_arm(h, &t[i], (uint64_t)i + 1);
    }
    check_heap(h);
}

static void expect_order_without(async__timer_heap *h, async__timer t[7],
                                 int removed)
{
    for (int i = 0; i < 7; i++) {
        if (i == removed)
            continue;
        assert_ptr_equal(async__timer_heap_min(h), &t[i]);
        async__timer_disarm(h, &t[i]);
        check_heap(h);
    }
    assert_int_equal(h->count, 0);
}

static void test_disarm_root_leaf_middle(void **state)
{
    (void)state;
    async__timer t[7];
    async__timer_heap h;
    static const int positions[] = { 0 /* root */, 6 /* last leaf */,
                                     3 /* first leaf */, 1 /* middle */,
                                     2 /* middle, right */ };

    for (size_t k = 0; k < sizeof positions / sizeof positions[0]; k++) {
        int victim = positions[k];
        arm_seven(&h, t);
        assert_ptr_equal(t[3].parent, &t[1]); /* shape as documented above */
        async__timer_disarm(&h, &t[victim]);
        assert_false(async__timer_armed(&t[victim]));
        check_heap(&h);
        assert_int_equal(h.count, 6);
        expect_order_without(&h, t, victim);
    }
}

/*
 * A replacement that must move up.  Armed in this order, the deadlines land
 * in level order without any sifting:
 *   slot 1: 1;  2: 2;  3: 50;  4: 3;  5: 4;  6: 60;  7: 70;  8: 5.
 * Removing slot 6 (60, under 50) moves the last node (5, from the left
 * subtree) there; 5 < 50, so it has to climb to slot 3.
 */
static void test_disarm_replacement_sifts_up(void **state)
{
    (void)state;
    static const uint64_t d[] = { 1, 2, 50, 3, 4, 60, 70, 5 };
    async__timer t[8];
    async__timer_heap h;
    async__timer_heap_init(&h);
    for (int i = 0; i < 8; i++) {
        async__timer_init(&t[i]);
        async__timer_arm(&h, &t[i], d[i]);
    }
    check_heap(&h);
    assert_ptr_equal(t[5].parent, &t[2]);
    assert_ptr_equal(t[7].parent, &t[3]);

    async__timer_disarm(&h, &t[5]);
    check_heap(&h);
    assert_ptr_equal(t[7].parent, &t[0]); /* climbed to slot 3 */
    assert_ptr_equal(t[0].right, &t[7]);

    uint64_t prev = 0;
    while (h.count > 0) {
        async__timer *min = async__timer_heap_min(&h);
        assert_true(min->deadline >= prev);
        prev = min->deadline;
        async__timer_disarm(&h, min);
        check_heap(&h);
    }
}

static void test_rearm_after_disarm(void **state)
{
    (void)state;
    async__timer a, b, c;
    async__timer_heap h;
    async__timer_heap_init(&h);
    async__timer_init(&a);
    async__timer_init(&b);
    async__timer_init(&c);

    async__timer_arm(&h, &a, 10);
    async__timer_arm(&h, &b, 20);
    async__timer_arm(&h, &c, 10);
    async__timer_disarm(&h, &a);
    assert_ptr_equal(async__timer_heap_min(&h), &c);

    /* Re-armed with the same deadline, a goes after c: arm order counts. */
    async__timer_arm(&h, &a, 10);
    assert_true(async__timer_armed(&a));
    check_heap(&h);
    assert_ptr_equal(async__timer_heap_min(&h), &c);
    async__timer_disarm(&h, &c);
    assert_ptr_equal(async__timer_heap_min(&h), &a);
    async__timer_disarm(&h, &a);
    assert_ptr_equal(async__timer_heap_min(&h), &b);

    /* Re-armed earlier, it becomes the minimum. */
    async__timer_arm(&h, &a, 1);
    assert_ptr_equal(async__timer_heap_min(&h), &a);
    check_heap(&h);
    async__timer_disarm(&h, &a);
    async__timer_disarm(&h, &b);
    assert_int_equal(h.count, 0);
}

/* Large heap: deep paths through slot_link, ascending and descending input. */
static void test_many_monotonic(void **state)
{
    (void)state;
    enum { N = 5000 };
    async__timer *t = calloc(N, sizeof *t);
    assert_non_null(t);
    async__timer_heap h;

    for (int dir = 0; dir < 2; dir++) {
        async__timer_heap_init(&h);
        for (int i = 0; i < N; i++) {
            async__timer_init(&t[i]);
            async__timer_arm(&h, &t[i], dir ? (uint64_t)(N - i) : (uint64_t)i);
        }
        check_heap(&h);
        for (int i = 0; i < N; i++) {
            int expect = dir ? N - 1 - i : i;
            assert_ptr_equal(async__timer_heap_min(&h), &t[expect]);
            async__timer_disarm(&h, &t[expect]);
        }
        assert_int_equal(h.count, 0);
    }
    free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_random_against_model),
        cmocka_unit_test(test_equal_deadlines_fifo),
        cmocka_unit_test(test_disarm_unarmed_is_noop),
        cmocka_unit_test(test_disarm_root_leaf_middle),
        cmocka_unit_test(test_disarm_replacement_sifts_up),
        cmocka_unit_test(test_rearm_after_disarm),
        cmocka_unit_test(test_many_monotonic),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
