/*
 * The server object (src/stream/server.c), shared with the multi-thread
 * group (server_group.c) and white-box tests.
 */
#ifndef ASYNC_STREAM_SERVER_H
#define ASYNC_STREAM_SERVER_H

#include "stream/stream.h"

typedef struct server_conn server_conn;

struct async_server {
    async_loop *loop;             /* the loop it serves on */
    int lfd;                      /* listening socket, -1 once closed */
    int spare;                    /* reserve fd for EMFILE, or -1 */
    async_conn_handler handler;   /* runs once per connection */
    void *arg;                    /* for handler */
    async_server_opts opts;       /* copy of the caller's options */
    async_addr addr;              /* where it listens */
    bool acceptor_done;           /* the accept task has finished */
    bool closing;                 /* close() was called */
    int err;                      /* why accepting stopped, if not close */
    size_t nconns;                /* live connections */
    server_conn *conns;           /* their list */
    async_event *room;            /* set while below opts.max_conns */
    async_event *closed_ev;       /* set by close() */
    async_event *idle_ev;         /* set once closed and nothing runs */
};

/* Starts serving an accepted connection fd (the server owns it from
 * here, also on error).  *task (if not NULL) receives a reference to the
 * handler's task.  0 or an error (fd closed). */
int async__server_conn_start(async_server *srv, int fd, async_task **task);

/* Serves the listening socket lfd (owned by the server from here, also on
 * error) on the running loop. */
int async__server_start_fd(int lfd, async_conn_handler handler, void *arg,
                           const async_server_opts *opts, async_server **out);

#endif
