/*
 * The timer heap: a binary min-heap built from links inside the timers.
 *
 * There is no array.  Each timer holds parent/left/right pointers, and the
 * heap keeps the usual complete-tree shape: slot n (1-based, in level order)
 * has children 2n and 2n+1.  Read in binary, a slot number is therefore the
 * path to it from the root: after the leading 1, each bit from the top down
 * says "go left" (0) or "go right" (1).  That is how arm finds the first free
 * slot (count + 1) and disarm finds the last occupied one (count) in
 * O(log n) without any extra storage.
 *
 * Moving a timer up or down the tree swaps the nodes themselves (relinking
 * pointers), never their contents, because the loop holds pointers to the
 * timers and their owners embed them.
 */
#include "core/timer.h"

#include <assert.h>
#include <limits.h>

/* Heap order: earlier deadline first, then earlier arming. */
static inline bool timer_before(const async__timer *a, const async__timer *b)
{
    if (a->deadline != b->deadline)
        return a->deadline < b->deadline;
    return a->seq < b->seq;
}

/* The highest set bit of n (n > 0). */
static inline size_t top_bit(size_t n)
{
#if defined(__GNUC__) || defined(__clang__)
    return (size_t)1 << ((sizeof(unsigned long long) * CHAR_BIT - 1)
                         - (size_t)__builtin_clzll((unsigned long long)n));
#else
    size_t bit = 1;
    while (bit <= n / 2)
        bit <<= 1;
    return bit;
#endif
}

/*
 * The link (h->min, or a child pointer of *parent) that designates slot n,
 * n >= 1.  Walks the path spelled by n's bits below the leading one; every
 * node on the way exists because slots 1..n-1 are occupied.
 */
static async__timer **slot_link(async__timer_heap *h, size_t n,
                                async__timer **parent)
{
    if (n == 1) {
        *parent = NULL;
        return &h->min;
    }
    async__timer *node = h->min;
    for (size_t bit = top_bit(n) >> 1; bit > 1; bit >>= 1)
        node = (n & bit) ? node->right : node->left;
    *parent = node;
    return (n & 1) ? &node->right : &node->left;
}

/* Points whatever pointed at `from` (its parent's child link, or the root
 * link) at `to`.  `parent` is from's parent. */
static inline void relink_parent(async__timer_heap *h, async__timer *parent,
                                 async__timer *from, async__timer *to)
{
    if (parent == NULL)
        h->min = to;
    else if (parent->left == from)
        parent->left = to;
    else
        parent->right = to;
}

/* Exchanges child `c` with its parent, so c moves one level up. */
static void swap_with_parent(async__timer_heap *h, async__timer *c)
{
    async__timer *p = c->parent;
    async__timer *c_left = c->left;
    async__timer *c_right = c->right;

    relink_parent(h, p->parent, p, c);
    c->parent = p->parent;
    if (p->left == c) {
        c->left = p;
        c->right = p->right;
        if (c->right != NULL)
            c->right->parent = c;
    } else {
        c->right = p;
        c->left = p->left;
        if (c->left != NULL)
            c->left->parent = c;
    }
    p->parent = c;
    p->left = c_left;
    p->right = c_right;
    if (c_left != NULL)
        c_left->parent = p;
    if (c_right != NULL)
        c_right->parent = p;
}

static void sift_up(async__timer_heap *h, async__timer *t)
{
    while (t->parent != NULL && timer_before(t, t->parent))
        swap_with_parent(h, t);
}

static void sift_down(async__timer_heap *h, async__timer *t)
{
    for (;;) {
        async__timer *least = t;
        if (t->left != NULL && timer_before(t->left, least))
            least = t->left;
        if (t->right != NULL && timer_before(t->right, least))
            least = t->right;
        if (least == t)
            return;
        swap_with_parent(h, least);
    }
}

/* Puts `with` (already detached, no children) into t's place in the tree. */
static void replace_node(async__timer_heap *h, async__timer *t,
                         async__timer *with)
{
    with->parent = t->parent;
    with->left = t->left;
    with->right = t->right;
    relink_parent(h, t->parent, t, with);
    if (with->left != NULL)
        with->left->parent = with;
    if (with->right != NULL)
        with->right->parent = with;
}

void async__timer_heap_init(async__timer_heap *h)
{
    h->min = NULL;
    h->count = 0;
    h->next_seq = 0;
}

bool async__timer_armed(const async__timer *t)
{
    return t->parent != t;
}

void async__timer_arm(async__timer_heap *h, async__timer *t, uint64_t deadline)
{
    assert(!async__timer_armed(t));
    async__timer *parent;
    async__timer **link = slot_link(h, h->count + 1, &parent);

    t->deadline = deadline;
    t->seq = h->next_seq++;
    t->parent = parent;
    t->left = NULL;
    t->right = NULL;
    *link = t;
    h->count++;
    sift_up(h, t);
}

void async__timer_disarm(async__timer_heap *h, async__timer *t)
{
    if (!async__timer_armed(t))
        return;
    assert(h->count > 0);

    /* Detach the last slot's node; it fills the hole left by t. */
    async__timer *last_parent;
    async__timer **last_link = slot_link(h, h->count, &last_parent);
    async__timer *last = *last_link;
    *last_link = NULL;
    h->count--;

    if (last != t) {
        replace_node(h, t, last);
        if (last->parent != NULL && timer_before(last, last->parent))
            sift_up(h, last);
        else
            sift_down(h, last);
    }
    async__timer_init(t);
}
