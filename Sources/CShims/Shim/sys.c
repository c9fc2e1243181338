#define _GNU_SOURCE
#include "dgrid_sys.h"

#include <fcntl.h>
#include <unistd.h>

int dgrid_pipe_cloexec(int fds[2]) {
    return pipe2(fds, O_CLOEXEC);
}

int dgrid_set_pipe_size(int fd, int size) {
    return fcntl(fd, F_SETPIPE_SZ, size);
}

ssize_t dgrid_splice_nonblock(int from_pipe, int to_fd, size_t length) {
    return splice(from_pipe, NULL, to_fd, NULL, length, SPLICE_F_NONBLOCK);
}
