// dgrid's TCP stream for libgit2 (registered as GIT_STREAM_STANDARD).
//
// Why: libgit2 1.5's own socket stream leaves Nagle's algorithm on. A push
// writes its commands and then its pack as two small writes; the second waits
// for the ACK of the first, which the server delays by 40 ms on Linux. Every
// claim, result and heartbeat over git:// or http:// paid that stall — most of
// a push's time on loopback (72 ms against 31 ms for the same push over a pipe).
// TCP_NODELAY removes it. The stream also bounds connecting and each read or
// write, so a silent server fails the operation instead of hanging a worker.
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
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

typedef struct {
    git_stream parent;
    char *host;
    char *port;
    int s;  // libgit2's GIT_SOCKET on Unix
    // dgrid's own, after libgit2's layout: this stream's bound in seconds (0: none).
    int timeout;
} dgrid_socket_stream;

// Read when a stream connects; written before and between operations (an int: no tearing).
static volatile int idle_timeout = 0;

static void set_net_error(const char *what, const char *host, int err) {
    git_error_set(GIT_ERROR_NET, "%s %s: %s", what, host, strerror(err));
}

/// connect() bounded by the idle timeout: non-blocking connect, poll for
/// writability, then read the outcome with SO_ERROR.
static int connect_bounded(int s, const struct sockaddr *addr, socklen_t len, int timeout) {
    if (timeout <= 0) return connect(s, addr, len) == 0 ? 0 : errno;
    int flags = fcntl(s, F_GETFL);
    if (flags < 0 || fcntl(s, F_SETFL, flags | O_NONBLOCK) < 0) return errno;
    int err = 0;
    if (connect(s, addr, len) != 0) {
        err = errno;
        if (err == EINPROGRESS) {
            struct pollfd p = { .fd = s, .events = POLLOUT };
            int ready;
            do { ready = poll(&p, 1, timeout * 1000); } while (ready < 0 && errno == EINTR);
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
    struct addrinfo hints, *info = NULL;
    memset(&hints, 0, sizeof(hints));
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_family = AF_UNSPEC;
    int rc = getaddrinfo(st->host, st->port, &hints, &info);
    if (rc != 0) {
        git_error_set(GIT_ERROR_NET, "cannot resolve %s: %s", st->host, gai_strerror(rc));
        return -1;
    }
    int last = ECONNREFUSED;
    for (struct addrinfo *p = info; p != NULL; p = p->ai_next) {
        int s = socket(p->ai_family, p->ai_socktype | SOCK_CLOEXEC, p->ai_protocol);
        if (s < 0) { last = errno; continue; }
        last = connect_bounded(s, p->ai_addr, p->ai_addrlen, st->timeout);
        if (last == 0) {
            int one = 1;
            // Best effort: a socket type without TCP options still works, only slower.
            (void)setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
            if (st->timeout > 0) {
                struct timeval tv = { .tv_sec = st->timeout, .tv_usec = 0 };
                (void)setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
                (void)setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
            }
            st->s = s;
            freeaddrinfo(info);
            return 0;
        }
        close(s);
    }
    freeaddrinfo(info);
    set_net_error("cannot connect to", st->host, last);
    return -1;
}

static ssize_t stream_write(git_stream *stream, const char *data, size_t len, int flags) {
    dgrid_socket_stream *st = (dgrid_socket_stream *)stream;
    ssize_t written;
    do { written = send(st->s, data, len, flags | MSG_NOSIGNAL); } while (written < 0 && errno == EINTR);
    if (written < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            git_error_set(GIT_ERROR_NET, "sending to %s: nothing accepted for %d s", st->host, st->timeout);
        } else {
            set_net_error("sending to", st->host, errno);
        }
        return -1;
    }
    return written;
}

static ssize_t stream_read(git_stream *stream, void *data, size_t len) {
    dgrid_socket_stream *st = (dgrid_socket_stream *)stream;
    ssize_t got;
    do { got = recv(st->s, data, len, 0); } while (got < 0 && errno == EINTR);
    if (got < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            git_error_set(GIT_ERROR_NET, "receiving from %s: nothing for %d s", st->host, st->timeout);
        } else {
            set_net_error("receiving from", st->host, errno);
        }
    }
    return got;
}

static int stream_close(git_stream *stream) {
    dgrid_socket_stream *st = (dgrid_socket_stream *)stream;
    int rc = 0;
    if (st->s >= 0) rc = close(st->s);
    st->s = -1;
    return rc;
}

static void stream_free(git_stream *stream) {
    dgrid_socket_stream *st = (dgrid_socket_stream *)stream;
    if (st->s >= 0) close(st->s);
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
