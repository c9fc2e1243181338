/* Helpers that are safe to call in the cloned child: no allocation, no locks,
 * no stdio. Internal to the shim. */
#ifndef DGRID_CHILD_UTIL_H
#define DGRID_CHILD_UTIL_H

#include <errno.h>
#include <stddef.h>
#include <unistd.h>

static inline void dgrid_write_all(int fd, const void *buf, size_t len) {
    const char *p = buf;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return;
        p += n;
        len -= (size_t)n;
    }
}

static inline void dgrid_strlcpy(char *dst, const char *src, size_t size) {
    size_t i = 0;
    for (; i + 1 < size && src[i]; i++)
        dst[i] = src[i];
    if (size > 0)
        dst[i] = 0;
}

/* "/proc/self/fd/<fd>" into buf (at least 32 bytes), without snprintf. */
static inline void dgrid_fd_path(char *buf, int fd) {
    static const char prefix[] = "/proc/self/fd/";
    size_t n = sizeof prefix - 1;
    for (size_t i = 0; i < n; i++)
        buf[i] = prefix[i];
    char digits[12];
    int d = 0;
    unsigned v = (unsigned)fd;
    do {
        digits[d++] = (char)('0' + v % 10);
        v /= 10;
    } while (v && d < 11);
    while (d > 0)
        buf[n++] = digits[--d];
    buf[n] = 0;
}

#endif
