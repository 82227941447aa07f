/*
 * Intrusive circular doubly-linked list: the node lives inside the object,
 * so linking never allocates.  An empty list (or an unlinked node) points to
 * itself.
 */
#ifndef ASYNC_LIST_H
#define ASYNC_LIST_H

#include <stdbool.h>
#include <stddef.h>

typedef struct async__list {
    struct async__list *next; /* next node, or the head itself at the end */
    struct async__list *prev; /* previous node, or the head at the start */
} async__list;

#define async__container_of(ptr, type, member)                                \
    ((type *)(void *)((char *)(ptr) - offsetof(type, member)))

static inline void async__list_init(async__list *l)
{
    l->next = l;
    l->prev = l;
}

static inline bool async__list_empty(const async__list *l)
{
    return l->next == l;
}

static inline void async__list_push_back(async__list *head, async__list *n)
{
    n->prev = head->prev;
    n->next = head;
    head->prev->next = n;
    head->prev = n;
}

/* Unlinks n and leaves it pointing to itself, so a second remove is a no-op. */
static inline void async__list_remove(async__list *n)
{
    n->prev->next = n->next;
    n->next->prev = n->prev;
    n->next = n;
    n->prev = n;
}

static inline async__list *async__list_pop_front(async__list *head)
{
    async__list *n = head->next;
    if (n == head)
        return NULL;
    async__list_remove(n);
    return n;
}

#endif
