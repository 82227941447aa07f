/*
 * chat_server: every line a client sends is broadcast to every other
 * client, prefixed with the sender's address.
 *
 *   chat_server [--host H] [--port P]       (default 127.0.0.1:7001)
 *   then, in other terminals:  nc 127.0.0.1 7001
 *
 * SIGINT / SIGTERM: stop accepting, say goodbye to every client, close
 * their connections (what is queued is still sent) and exit once every
 * handler has returned.
 *
 * A client that stops reading is not allowed to make the server buffer
 * without bound: write() never blocks, so a broadcast never waits for the
 * slowest client, and a client with more than MAX_BACKLOG bytes queued is
 * disconnected.
 */
#include <async.h>

#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_BACKLOG (1024 * 1024)
#define GRACE (5 * ASYNC_SEC)

/* One connected client. */
typedef struct client {
    async_writer *w;                 /* its writer (owned by the server) */
    char name[ASYNC_ADDR_STRLEN];    /* "ip:port" */
    struct client *prev, *next;      /* in the list of clients */
} client;

static client *clients;

/* Sends text to every client but `from`; drops those too far behind. */
static void broadcast(const client *from, const char *text, size_t len)
{
    for (client *c = clients; c; c = c->next) {
        if (c == from)
            continue;
        if (async_writer_buffered(c->w) > MAX_BACKLOG)
            async_writer_abort(c->w); /* its handler then reads EOF */
        else
            async_writer_write(c->w, text, len);
    }
}

static void announce(const client *c, const char *what)
{
    char msg[256];
    int n = snprintf(msg, sizeof(msg), "* %s %s\n", c->name, what);
    broadcast(c, msg, (size_t)n);
}

static int chat(async_reader *r, async_writer *w, void *arg)
{
    (void)arg;
    client me = {.w = w, .next = clients};
    async_addr peer;
    if (async_writer_peer_addr(w, &peer) != 0 ||
        async_addr_format(&peer, me.name, sizeof(me.name)) < 0)
        snprintf(me.name, sizeof(me.name), "someone");
    if (clients)
        clients->prev = &me;
    clients = &me;
    announce(&me, "joined");
    int rc;
    for (;;) {
        const char *line;
        size_t len;
        rc = async_reader_readline(r, &line, &len, ASYNC_NO_DEADLINE);
        if (rc == ASYNC_ELIMIT)
            continue; /* an overlong line is dropped */
        if (rc < 0 || len == 0)
            break;
        char msg[ASYNC_STREAM_LIMIT_DEFAULT + ASYNC_ADDR_STRLEN + 8];
        int n = snprintf(msg, sizeof(msg), "%s: %.*s", me.name, (int)len,
                         line);
        broadcast(&me, msg, (size_t)n);
    }
    if (me.prev)
        me.prev->next = me.next;
    else
        clients = me.next;
    if (me.next)
        me.next->prev = me.prev;
    announce(&me, "left");
    return rc == ASYNC_ECONNRESET || rc == ASYNC_ECANCELED ? 0 : rc < 0 ? rc : 0;
}

static int serve(void *arg, void **result)
{
    (void)result;
    const char *where = arg;
    async_server *srv;
    int rc = async_start_server(where, chat, NULL, NULL, &srv);
    if (rc) {
        fprintf(stderr, "chat_server: cannot listen on %s: %s\n", where,
                async_strerror(rc));
        return rc;
    }
    async_addr a;
    char name[ASYNC_ADDR_STRLEN];
    async_server_addr(srv, &a);
    async_addr_format(&a, name, sizeof(name));
    printf("chat_server: listening on %s\n", name);
    fflush(stdout);
    static const int sigs[] = {SIGINT, SIGTERM};
    rc = async_signal_wait(sigs, 2, ASYNC_NO_DEADLINE, NULL);
    printf("chat_server: shutting down\n");
    async_server_close(srv);
    for (client *c = clients; c; c = c->next)
        async_writer_write(c->w, "* server shutting down\n", 23);
    async_server_close_clients(srv);
    if (async_server_wait_closed(srv, async_deadline_in(GRACE)) != 0) {
        async_server_abort_clients(srv);
        async_server_wait_closed(srv, ASYNC_NO_DEADLINE);
    }
    async_server_free(srv);
    return rc;
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"host", required_argument, NULL, 'H'},
        {"port", required_argument, NULL, 'p'},
        {NULL, 0, NULL, 0},
    };
    const char *host = "127.0.0.1";
    long port = 7001;
    int c;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        if (c == 'H') {
            host = optarg;
        } else if (c == 'p') {
            char *end;
            port = strtol(optarg, &end, 10);
            if (*end || port < 0 || port > 65535)
                c = '?';
        }
        if (c == '?') {
            fprintf(stderr, "usage: chat_server [--host H] [--port P]\n");
            return 2;
        }
    }
    char where[300];
    bool v6 = strchr(host, ':') && host[0] != '[' && strncmp(host, "unix:", 5);
    snprintf(where, sizeof(where), v6 ? "[%s]:%ld" : "%s:%ld", host, port);
    if (strncmp(host, "unix:", 5) == 0)
        snprintf(where, sizeof(where), "%s", host);
    return async_run(serve, where, NULL) == 0 ? 0 : 1;
}
