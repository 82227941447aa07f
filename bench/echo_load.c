/*
 * The load generator of bench/run_echo.sh: one thread, plain epoll, N
 * connections doing ping-pong with SIZE-byte messages (send a message,
 * read the whole echo, check it, send the next).  It is written for low
 * overhead so that the server, not the generator, is what gets measured,
 * and it is the same binary for every server in a run.
 *
 *   echo_load --port P --conns N --size BYTES --duration SEC
 *             [--warmup SEC] [--server-pid PID]
 *
 * After the warm-up it counts round trips for the duration and, with
 * --server-pid, reads the server's user+system CPU time from
 * /proc/PID/stat at both ends of that window.  Prints one line:
 *   trips=... secs=... rt_per_sec=... server_cpu=... rt_per_cpu_sec=...
 * Exits 1 if a connection fails or an echoed byte differs.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_EVENTS 512

typedef struct conn {
    int fd;             /* the connection */
    size_t sent;        /* bytes of the current message sent */
    size_t got;         /* bytes of its echo received */
    unsigned char *in;  /* echo buffer */
} conn;

static size_t size;
static unsigned char *msg;  /* the message every connection sends */
static int ep;
static unsigned long long trips;

static double now_sec(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* utime + stime of a process, in seconds (-1 if unreadable). */
static double cpu_of(int pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof(path), "/proc/%d/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *p = strrchr(buf, ')'); /* the command name may hold spaces */
    unsigned long long ut, st;
    if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu",
                     &ut, &st) != 2)
        return -1;
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

static void die(const char *what)
{
    fprintf(stderr, "echo_load: %s: %s\n", what, strerror(errno));
    exit(1);
}

static void want_out(conn *c, int on)
{
    struct epoll_event ev = {.events = EPOLLIN | (on ? EPOLLOUT : 0),
                             .data.ptr = c};
    epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
}

/* Sends the rest of the current message; EPOLLOUT while it cannot. */
static void pump_out(conn *c)
{
    size_t before = c->sent;
    while (c->sent < size) {
        ssize_t n = send(c->fd, msg + c->sent, size - c->sent, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno != EAGAIN)
                die("send");
            break;
        }
        c->sent += (size_t)n;
    }
    int was_waiting = before > 0 && before < size;
    if (c->sent < size)
        want_out(c, 1);
    else if (was_waiting)
        want_out(c, 0);
}

static void on_readable(conn *c)
{
    for (;;) {
        ssize_t n = read(c->fd, c->in + c->got, size - c->got);
        if (n == 0) {
            fprintf(stderr, "echo_load: the server closed a connection\n");
            exit(1);
        }
        if (n < 0) {
            if (errno == EAGAIN)
                return;
            die("read");
        }
        c->got += (size_t)n;
        if (c->got < size)
            continue;
        if (memcmp(c->in, msg, size) != 0) {
            fprintf(stderr, "echo_load: echoed bytes differ\n");
            exit(1);
        }
        trips++;
        c->got = c->sent = 0;
        pump_out(c);
        return;
    }
}

static conn *open_conns(int port, int nconns)
{
    conn *cs = calloc((size_t)nconns, sizeof(*cs));
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    for (int i = 0; i < nconns; i++) {
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0)
            die("connect");
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        fcntl(fd, F_SETFL, O_NONBLOCK);
        cs[i].fd = fd;
        cs[i].in = malloc(size);
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &cs[i]};
        epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
    }
    return cs;
}

/* Runs the event loop until the monotonic clock reaches `until`. */
static void run_until(double until)
{
    struct epoll_event events[MAX_EVENTS];
    while (now_sec() < until) {
        int n = epoll_wait(ep, events, MAX_EVENTS, 100);
        for (int i = 0; i < n; i++) {
            conn *c = events[i].data.ptr;
            if (events[i].events & EPOLLOUT)
                pump_out(c);
            if (events[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))
                on_readable(c);
        }
    }
}

int main(int argc, char **argv)
{
    int port = 0, nconns = 100, pid = 0;
    double duration = 5, warmup = 1;
    size = 64;
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *k = argv[i], *v = argv[i + 1];
        if (!strcmp(k, "--port")) port = atoi(v);
        else if (!strcmp(k, "--conns")) nconns = atoi(v);
        else if (!strcmp(k, "--size")) size = (size_t)atol(v);
        else if (!strcmp(k, "--duration")) duration = atof(v);
        else if (!strcmp(k, "--warmup")) warmup = atof(v);
        else if (!strcmp(k, "--server-pid")) pid = atoi(v);
        else { fprintf(stderr, "echo_load: unknown option %s\n", k); return 2; }
    }
    if (port <= 0 || nconns <= 0 || size == 0 || duration <= 0) {
        fprintf(stderr, "usage: echo_load --port P --conns N --size BYTES "
                        "--duration SEC [--warmup SEC] [--server-pid PID]\n");
        return 2;
    }
    msg = malloc(size);
    for (size_t i = 0; i < size; i++)
        msg[i] = (unsigned char)(i * 131 + 7);
    ep = epoll_create1(EPOLL_CLOEXEC);
    conn *cs = open_conns(port, nconns);
    for (int i = 0; i < nconns; i++)
        pump_out(&cs[i]);
    run_until(now_sec() + warmup);
    unsigned long long t0 = trips;
    double c0 = pid ? cpu_of(pid) : 0, w0 = now_sec();
    run_until(w0 + duration);
    unsigned long long t1 = trips;
    double c1 = pid ? cpu_of(pid) : 0, w1 = now_sec();
    double secs = w1 - w0, cpu = c1 - c0;
    printf("trips=%llu secs=%.3f rt_per_sec=%.0f server_cpu=%.3f "
           "rt_per_cpu_sec=%.0f\n", t1 - t0, secs, (double)(t1 - t0) / secs,
           cpu, cpu > 0 ? (double)(t1 - t0) / cpu : 0.0);
    return 0;
}
