/* One-purpose wrappers for Linux calls Swift cannot see without _GNU_SOURCE. */
#ifndef DGRID_SYS_H
#define DGRID_SYS_H

#include <sys/types.h>

/* clone(2) namespace flags (stable kernel ABI values). */
enum {
    DGRID_CLONE_NEWNS = 0x00020000,
    DGRID_CLONE_NEWCGROUP = 0x02000000,
    DGRID_CLONE_NEWUTS = 0x04000000,
    DGRID_CLONE_NEWIPC = 0x08000000,
    DGRID_CLONE_NEWUSER = 0x10000000,
    DGRID_CLONE_NEWPID = 0x20000000,
    DGRID_CLONE_NEWNET = 0x40000000,
};

/* pipe2(fds, O_CLOEXEC); returns 0 or -1 with errno. */
int dgrid_pipe_cloexec(int fds[2]);
/* fcntl(fd, F_SETPIPE_SZ, size); best effort. */
int dgrid_set_pipe_size(int fd, int size);
/* splice(from_pipe, NULL, to_fd, NULL, length, SPLICE_F_NONBLOCK): moves pipe
   pages without copying them (to /dev/null: drops them). Bytes moved, 0 at
   end of stream, or -1 with errno. */
ssize_t dgrid_splice_nonblock(int from_pipe, int to_fd, size_t length);

#endif
