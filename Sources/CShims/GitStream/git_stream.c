// dgrid's TCP stream for libgit2 (registered as GIT_STREAM_STANDARD).
//
// Why: libgit2 1.5's own socket stream leaves Nagle's algorithm on. A push
// writes its commands and then its pack as two small writes; the second waits
// for the ACK of the first, which the server delays by 40 ms on Linux. Every
// claim, result and heartbeat over git:// or http:// paid that stall — most of
// a push's time on loopback (72 ms against 31 ms for the same push over a pipe).
// TCP_NODELAY removes it.
//
// The stream also bounds time, twice:
// - an idle timeout: connecting and each read or write, so a silent server
//   fails the operation instead of hanging a worker;
// - an overall deadline per Git operation (dgrid_git_deadline_begin, set by the
//   ledger per thread and captured by each stream the operation opens), so a
//   server that trickles a byte every few seconds — never idle long enough for
//   the first bound — still cannot hold the operation, and the worker's Git
//   work behind it, for more than the deadline. libgit2's http(s) transport
//   reads through this stream (TLS wraps it); its ssh transport hands the
//   descriptor to libssh2, which reads it directly with no timeout, so a
//   watchdog thread shuts down the socket of any stream past its deadline:
//   libssh2's next poll sees end-of-file and the operation fails.
// - with several Git backends, a silence bound (dgrid_git_answer_within): no
//   connect, and no wait for the server to send or take bytes, may last longer
//   than it. A server that accepts connections and then says nothing — stopped,
//   wedged, cut off behind a proxy, before it answers or mid-conversation —
//   fails the operation in seconds, and the worker moves to the next backend,
//   rather than waiting out a deadline sized for a large transfer. Git servers
//   send keep-alives while they prepare or take in a pack, so a healthy one is
//   never that silent. Over ssh:// only the connect is bounded this way
//   (libssh2 reads the socket itself).
//
// The struct layout must match libgit2's private `git_socket_stream`
// (src/libgit2/streams/socket.h, 1.5): its SSH transport reads the socket
// descriptor out of whatever standard stream it was given.
#include "dgrid_git_stream.h"

#include <git2.h>
#include <git2/sys/stream.h>

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

typedef struct dgrid_socket_stream {
    git_stream parent;
    char *host;
    char *port;
    int s;  // libgit2's GIT_SOCKET on Unix
    // dgrid's own, after libgit2's layout.
    int timeout;          // idle bound in seconds (0: none)
    int64_t deadline_ns;  // CLOCK_MONOTONIC end of the operation that opened it (0: none)
    int answer_ms;        // the silence bound the operation set, in milliseconds (0: none)
    // The watchdog's list of connected streams with a deadline; guarded by watch_lock.
    int watched;
    int expired;
    struct dgrid_socket_stream *watch_prev, *watch_next;
} dgrid_socket_stream;

// Read when a stream connects; written before and between operations (an int: no tearing).
static volatile int idle_timeout = 0;

// The deadline of the Git operation this thread runs (0: none). libgit2 opens
// an operation's streams and calls its callbacks on the caller's thread.
static _Thread_local int64_t thread_deadline_ns = 0;
// That operation's silence bound in milliseconds (0: none), and whether a wait
// of it ran past the bound.
static _Thread_local int thread_answer_ms = 0;
static _Thread_local int thread_unanswered = 0;

static int64_t now_ns(void) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (int64_t)now.tv_sec * 1000000000 + now.tv_nsec;
}

static int deadline_passed(int64_t deadline_ns) {
    return deadline_ns != 0 && now_ns() >= deadline_ns;
}

void dgrid_git_deadline_begin(int64_t milliseconds) {
    if (milliseconds < 1) milliseconds = 1;
    thread_deadline_ns = now_ns() + milliseconds * 1000000;
}

void dgrid_git_deadline_end(void) {
    thread_deadline_ns = 0;
    thread_answer_ms = 0;
}

void dgrid_git_answer_within(int64_t milliseconds) {
    thread_answer_ms = milliseconds > 0 ? (int)(milliseconds < 86400000 ? milliseconds : 86400000) : 0;
    thread_unanswered = 0;
}

int dgrid_git_answer_missed(void) { return thread_unanswered; }

int dgrid_git_deadline_active(void) { return thread_deadline_ns != 0; }

int dgrid_git_deadline_expired(void) { return deadline_passed(thread_deadline_ns); }

// MARK: - The watchdog (for descriptors libssh2 reads itself)

static pthread_mutex_t watch_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t watch_wake;
static pthread_once_t watchdog_once = PTHREAD_ONCE_INIT;
static dgrid_socket_stream *watch_head = NULL;

/// Shuts down every watched socket whose deadline has passed, then sleeps
/// until the next deadline or until a stream is added. Runs for the process's life.
static void *watchdog_main(void *unused) {
    (void)unused;
    pthread_mutex_lock(&watch_lock);
    for (;;) {
        int64_t now = now_ns(), earliest = 0;
        for (dgrid_socket_stream *st = watch_head; st != NULL; st = st->watch_next) {
            if (st->expired) continue;
            if (st->deadline_ns <= now) {
                st->expired = 1;
                // The descriptor stays open (closing it is its owner's job, under
                // this lock): only the connection ends, so no fd number is reused.
                (void)shutdown(st->s, SHUT_RDWR);
            } else if (earliest == 0 || st->deadline_ns < earliest) {
                earliest = st->deadline_ns;
            }
        }
        if (earliest == 0) {
            pthread_cond_wait(&watch_wake, &watch_lock);
        } else {
            struct timespec until = { .tv_sec = earliest / 1000000000, .tv_nsec = earliest % 1000000000 };
            (void)pthread_cond_timedwait(&watch_wake, &watch_lock, &until);
        }
    }
    return NULL;
}

static void watchdog_start(void) {
    pthread_condattr_t condition;
    pthread_condattr_init(&condition);
    pthread_condattr_setclock(&condition, CLOCK_MONOTONIC);
    pthread_cond_init(&watch_wake, &condition);
    pthread_condattr_destroy(&condition);
    // No signal is ever delivered to the watchdog: it holds a lock streams need.
    sigset_t all, previous;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &previous);
    pthread_attr_t attributes;
    pthread_attr_init(&attributes);
    pthread_attr_setdetachstate(&attributes, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&attributes, 64 * 1024);
    pthread_t thread;
    // Best effort: without it git:// and http(s) are still bounded by the stream itself.
    (void)pthread_create(&thread, &attributes, watchdog_main, NULL);
    pthread_attr_destroy(&attributes);
    pthread_sigmask(SIG_SETMASK, &previous, NULL);
}

static void watch(dgrid_socket_stream *st) {
    pthread_once(&watchdog_once, watchdog_start);
    pthread_mutex_lock(&watch_lock);
    st->watch_prev = NULL;
    st->watch_next = watch_head;
    if (watch_head != NULL) watch_head->watch_prev = st;
    watch_head = st;
    st->watched = 1;
    pthread_cond_signal(&watch_wake);
    pthread_mutex_unlock(&watch_lock);
}

/// Leaves the watch list and closes the socket, under the watchdog's lock.
static int unwatch_and_close(dgrid_socket_stream *st) {
    int rc = 0;
    pthread_mutex_lock(&watch_lock);
    if (st->watched) {
        if (st->watch_prev != NULL) st->watch_prev->watch_next = st->watch_next;
        else watch_head = st->watch_next;
        if (st->watch_next != NULL) st->watch_next->watch_prev = st->watch_prev;
        st->watched = 0;
    }
    if (st->s >= 0) rc = close(st->s);
    st->s = -1;
    pthread_mutex_unlock(&watch_lock);
    return rc;
}

// MARK: - The stream

static void set_net_error(const char *what, const char *host, int err) {
    git_error_set(GIT_ERROR_NET, "%s %s: %s", what, host, strerror(err));
}

static void set_deadline_error(const char *what, const char *host) {
    git_error_set(GIT_ERROR_NET, "%s %s: the operation's overall deadline passed", what, host);
}

/// Whether the silence bound, not the idle bound, is what limits each wait.
static int silence_bounds(const dgrid_socket_stream *st) {
    return st->answer_ms > 0 && (st->timeout <= 0 || st->answer_ms < st->timeout * 1000);
}

static void set_unanswered_error(const dgrid_socket_stream *st, const char *what) {
    thread_unanswered = 1;
    git_error_set(GIT_ERROR_NET, "%s %s: silent for %d ms", what, st->host, st->answer_ms);
}

/// How long the next wait may last in milliseconds (-1: forever): the idle
/// bound (the silence bound when that is shorter), or less when the deadline is
/// nearer. *by_deadline says which. Returns 0 when the deadline has already passed.
static int wait_bound(const dgrid_socket_stream *st, int *by_deadline) {
    int bound = st->timeout > 0 ? st->timeout * 1000 : -1;
    if (st->answer_ms > 0 && (bound < 0 || st->answer_ms < bound)) bound = st->answer_ms;
    *by_deadline = 0;
    if (st->deadline_ns != 0) {
        int64_t left = st->deadline_ns - now_ns();
        if (left <= 0) return 0;
        int64_t left_ms = left / 1000000 + 1;
        if (bound < 0 || left_ms < bound) {
            bound = (int)left_ms;
            *by_deadline = 1;
        }
    }
    return bound;
}

/// connect() bounded by `bound_ms` (-1: none): non-blocking connect, poll for
/// writability, then read the outcome with SO_ERROR.
static int connect_bounded(int s, const struct sockaddr *addr, socklen_t len, int bound_ms) {
    if (bound_ms < 0) return connect(s, addr, len) == 0 ? 0 : errno;
    int flags = fcntl(s, F_GETFL);
    if (flags < 0 || fcntl(s, F_SETFL, flags | O_NONBLOCK) < 0) return errno;
    int err = 0;
    if (connect(s, addr, len) != 0) {
        err = errno;
        if (err == EINPROGRESS) {
            struct pollfd p = { .fd = s, .events = POLLOUT };
            int ready;
            do { ready = poll(&p, 1, bound_ms); } while (ready < 0 && errno == EINTR);
            if (ready == 0) {
                err = ETIMEDOUT;
            } else if (ready < 0) {
                err = errno;
            } else {
                socklen_t errlen = sizeof(err);
                if (getsockopt(s, SOL_SOCKET, SO_ERROR, &err, &errlen) < 0) err = errno;
            }
        }
    }
    if (err == 0 && fcntl(s, F_SETFL, flags) < 0) err = errno;
    return err;
}

static int stream_connect(git_stream *stream) {
    dgrid_socket_stream *st = (dgrid_socket_stream *)stream;
    if (deadline_passed(st->deadline_ns)) {
        set_deadline_error("cannot connect to", st->host);
        return -1;
    }
    struct addrinfo hints, *info = NULL;
    memset(&hints, 0, sizeof(hints));
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_family = AF_UNSPEC;
    int rc = getaddrinfo(st->host, st->port, &hints, &info);
    if (rc != 0) {
        git_error_set(GIT_ERROR_NET, "cannot resolve %s: %s", st->host, gai_strerror(rc));
        return -1;
    }
    int last = ECONNREFUSED, last_by_deadline = 0;
    for (struct addrinfo *p = info; p != NULL; p = p->ai_next) {
        int by_deadline;
        int bound = wait_bound(st, &by_deadline);
        last_by_deadline = by_deadline;
        if (bound == 0) { last = ETIMEDOUT; break; }
        int s = socket(p->ai_family, p->ai_socktype | SOCK_CLOEXEC, p->ai_protocol);
        if (s < 0) { last = errno; continue; }
        last = connect_bounded(s, p->ai_addr, p->ai_addrlen, bound);
        if (last == 0) {
            int one = 1;
            // Best effort: a socket type without TCP options still works, only slower.
            (void)setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
            st->s = s;
            freeaddrinfo(info);
            if (st->deadline_ns != 0) watch(st);
            return 0;
        }
        close(s);
    }
    freeaddrinfo(info);
    if (deadline_passed(st->deadline_ns)) {
        set_deadline_error("cannot connect to", st->host);
    } else if (last == ETIMEDOUT && !last_by_deadline && silence_bounds(st)) {
        set_unanswered_error(st, "cannot connect to");
    } else {
        set_net_error("cannot connect to", st->host, last);
    }
    return -1;
}

/// Waits until the socket is ready for `events` within both bounds. 0 when
/// ready; -1 with libgit2's error set (`what` and `idle` word it).
static int wait_ready(dgrid_socket_stream *st, short events, const char *what, const char *idle) {
    for (;;) {
        int by_deadline;
        int bound = wait_bound(st, &by_deadline);
        if (bound == 0) {
            set_deadline_error(what, st->host);
            return -1;
        }
        struct pollfd p = { .fd = st->s, .events = events };
        int ready = poll(&p, 1, bound);
        if (ready > 0) return 0;
        if (ready < 0) {
            if (errno == EINTR) continue;
            set_net_error(what, st->host, errno);
            return -1;
        }
        if (!by_deadline) {
            if (silence_bounds(st)) {
                set_unanswered_error(st, what);
            } else {
                git_error_set(GIT_ERROR_NET, "%s %s: %s for %d s", what, st->host, idle, st->timeout);
            }
            return -1;
        }
        // The deadline's wait ran out: the next turn reports it.
    }
}

static ssize_t stream_write(git_stream *stream, const char *data, size_t len, int flags) {
    dgrid_socket_stream *st = (dgrid_socket_stream *)stream;
    for (;;) {
        if (wait_ready(st, POLLOUT, "sending to", "nothing accepted") < 0) return -1;
        // Never a blocking send: a server reading slowly could hold one past both bounds.
        ssize_t written = send(st->s, data, len, flags | MSG_NOSIGNAL | MSG_DONTWAIT);
        if (written >= 0) return written;
        if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK) continue;
        if (deadline_passed(st->deadline_ns)) set_deadline_error("sending to", st->host);
        else set_net_error("sending to", st->host, errno);
        return -1;
    }
}

static ssize_t stream_read(git_stream *stream, void *data, size_t len) {
    dgrid_socket_stream *st = (dgrid_socket_stream *)stream;
    for (;;) {
        if (wait_ready(st, POLLIN, "receiving from", "nothing") < 0) return -1;
        ssize_t got = recv(st->s, data, len, MSG_DONTWAIT);
        if (got > 0) return got;
        if (got < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)) continue;
        // The end, or the watchdog's shutdown: say which.
        if (deadline_passed(st->deadline_ns)) {
            set_deadline_error("receiving from", st->host);
            return -1;
        }
        if (got < 0) set_net_error("receiving from", st->host, errno);
        return got;
    }
}

static int stream_close(git_stream *stream) {
    return unwatch_and_close((dgrid_socket_stream *)stream);
}

static void stream_free(git_stream *stream) {
    dgrid_socket_stream *st = (dgrid_socket_stream *)stream;
    (void)unwatch_and_close(st);
    free(st->host);
    free(st->port);
    free(st);
}

static int stream_new(git_stream **out, const char *host, const char *port) {
    dgrid_socket_stream *st = calloc(1, sizeof(*st));
    if (st == NULL) return -1;
    st->host = strdup(host);
    st->port = port ? strdup(port) : NULL;
    if (st->host == NULL || (port && st->port == NULL)) {
        free(st->host); free(st->port); free(st);
        return -1;
    }
    st->s = -1;
    st->timeout = idle_timeout;
    st->deadline_ns = thread_deadline_ns;
    st->answer_ms = thread_answer_ms;
    st->parent.version = GIT_STREAM_VERSION;
    st->parent.connect = stream_connect;
    st->parent.read = stream_read;
    st->parent.write = stream_write;
    st->parent.close = stream_close;
    st->parent.free = stream_free;
    *out = &st->parent;
    return 0;
}

void dgrid_git_stream_set_timeout(int idle_timeout_seconds) {
    idle_timeout = idle_timeout_seconds;
}

int dgrid_git_stream_register(int idle_timeout_seconds) {
    idle_timeout = idle_timeout_seconds;
    git_stream_registration registration = {
        .version = GIT_STREAM_VERSION,
        .init = stream_new,
        .wrap = NULL,
    };
    return git_stream_register(GIT_STREAM_STANDARD, &registration);
}

/* git_libgit2_opts is variadic: Swift cannot call it. */
int dgrid_git_skip_hash_on_read(void) {
    return git_libgit2_opts(GIT_OPT_ENABLE_STRICT_HASH_VERIFICATION, 0);
}

int dgrid_git_cache_trees_up_to(size_t bytes) {
    return git_libgit2_opts(GIT_OPT_SET_CACHE_OBJECT_LIMIT, GIT_OBJECT_TREE, bytes);
}
