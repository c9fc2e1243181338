#define _GNU_SOURCE
#include "dgrid_sys.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/timex.h>
#include <unistd.h>

#ifndef MFD_EXEC
#define MFD_EXEC 0x0010U
#endif
#ifndef F_SEAL_EXEC
#define F_SEAL_EXEC 0x0020
#endif

int dgrid_pipe_cloexec(int fds[2]) {
    return pipe2(fds, O_CLOEXEC);
}

int dgrid_accept_cloexec(int fd) {
    return accept4(fd, NULL, NULL, SOCK_CLOEXEC);
}

int dgrid_unshare_user_namespace(void) {
    return unshare(CLONE_NEWUSER);
}

int dgrid_become_namespace_root(void) {
    if (setresgid(0, 0, 0) != 0) return -1;
    return setresuid(0, 0, 0);
}

int dgrid_set_pipe_size(int fd, int size) {
    return fcntl(fd, F_SETPIPE_SZ, size);
}

int dgrid_memfd(const char *name) {
    return memfd_create(name, MFD_CLOEXEC);
}

int dgrid_sealed_exec_copy(int src_fd, const char *name) {
    struct stat st;
    if (fstat(src_fd, &st) < 0)
        return -errno;
    if (!S_ISREG(st.st_mode) || st.st_size <= 0)
        return -ENOEXEC;
    /* MFD_EXEC: a host with vm.memfd_noexec=1 would otherwise make it non-executable. */
    int fd = memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING | MFD_EXEC);
    if (fd < 0 && errno == EINVAL)
        fd = memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (fd < 0)
        return -errno;
    off_t offset = 0;
    int err = 0;
    while (offset < st.st_size) {
        ssize_t n = sendfile(fd, src_fd, &offset, (size_t)(st.st_size - offset));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            err = n < 0 ? errno : EIO;
            break;
        }
    }
    if (!err && fchmod(fd, 0111) < 0)
        err = errno;
    if (!err && fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_EXEC | F_SEAL_SEAL) < 0 &&
        fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) < 0)
        err = errno;
    if (err) {
        close(fd);
        return -err;
    }
    /* exec refuses a file that is open for writing anywhere, so keep only an
     * O_PATH descriptor: execveat(AT_EMPTY_PATH) takes one, and it needs no
     * read permission (the mode is 0111 by now). */
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    int ro = open(path, O_PATH | O_CLOEXEC);
    err = errno;
    close(fd);
    return ro < 0 ? -err : ro;
}

int dgrid_tree_clone(const char *path, int userns_fd, int readonly, int *idmapped) {
    return dgrid_tree_clone_at(AT_FDCWD, path, userns_fd, readonly, idmapped);
}

int dgrid_tree_clone_at(int dirfd, const char *path, int userns_fd, int readonly, int *idmapped) {
    int fd = (int)syscall(SYS_open_tree, dirfd, path,
                          OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE | AT_SYMLINK_NOFOLLOW
                          | (path[0] == 0 ? AT_EMPTY_PATH : 0));
    if (fd < 0)
        return -errno;
    struct mount_attr attr;
    memset(&attr, 0, sizeof attr);
    attr.attr_set = MOUNT_ATTR_IDMAP | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | (readonly ? MOUNT_ATTR_RDONLY : 0);
    attr.userns_fd = (unsigned long long)userns_fd;
    *idmapped = 1;
    if (syscall(SYS_mount_setattr, fd, "", AT_EMPTY_PATH | AT_RECURSIVE, &attr, sizeof attr) == 0)
        return fd;
    int err = errno;
    if (err != EINVAL && err != EOPNOTSUPP && err != EPERM) {
        close(fd);
        return -err;
    }
    /* The filesystem cannot be idmapped: its ids show as the overflow id. */
    *idmapped = 0;
    {
        memset(&attr, 0, sizeof attr);
        attr.attr_set = MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | (readonly ? MOUNT_ATTR_RDONLY : 0);
        if (syscall(SYS_mount_setattr, fd, "", AT_EMPTY_PATH | AT_RECURSIVE, &attr, sizeof attr) < 0) {
            err = errno;
            close(fd);
            return -err;
        }
    }
    return fd;
}

int dgrid_send_go(int sock, const int *fds, int count) {
    char go = 1;
    struct iovec iov = { &go, 1 };
    struct msghdr msg;
    memset(&msg, 0, sizeof msg);
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    union {
        char buf[CMSG_SPACE(sizeof(int) * 253)];
        struct cmsghdr align;
    } control;
    if (count > 253)
        return -EMSGSIZE;
    if (count > 0) {
        memset(&control, 0, sizeof control);
        msg.msg_control = control.buf;
        msg.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)count);
        struct cmsghdr *cm = CMSG_FIRSTHDR(&msg);
        cm->cmsg_level = SOL_SOCKET;
        cm->cmsg_type = SCM_RIGHTS;
        cm->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)count);
        memcpy(CMSG_DATA(cm), fds, sizeof(int) * (size_t)count);
    }
    ssize_t n;
    do {
        n = sendmsg(sock, &msg, MSG_NOSIGNAL);
    } while (n < 0 && errno == EINTR);
    return n == 1 ? 0 : -(n < 0 ? errno : EIO);
}

ssize_t dgrid_splice_nonblock(int from_pipe, int to_fd, size_t length) {
    return splice(from_pipe, NULL, to_fd, NULL, length, SPLICE_F_NONBLOCK);
}

int dgrid_scratch_create(const char *size, unsigned uid, unsigned gid) {
    char number[16];
    int fs = (int)syscall(SYS_fsopen, "tmpfs", FSOPEN_CLOEXEC);
    if (fs < 0)
        return -errno;
    int err = 0;
    if (syscall(SYS_fsconfig, fs, FSCONFIG_SET_STRING, "size", size, 0) < 0 ||
        syscall(SYS_fsconfig, fs, FSCONFIG_SET_STRING, "mode", "0755", 0) < 0)
        err = errno;
    snprintf(number, sizeof number, "%u", uid);
    if (!err && syscall(SYS_fsconfig, fs, FSCONFIG_SET_STRING, "uid", number, 0) < 0)
        err = errno;
    snprintf(number, sizeof number, "%u", gid);
    if (!err && syscall(SYS_fsconfig, fs, FSCONFIG_SET_STRING, "gid", number, 0) < 0)
        err = errno;
    if (!err && syscall(SYS_fsconfig, fs, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0)
        err = errno;
    if (err) {
        close(fs);
        return -err;
    }
    int mnt = (int)syscall(SYS_fsmount, fs, FSMOUNT_CLOEXEC, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV);
    err = errno;
    close(fs);
    return mnt < 0 ? -err : mnt;
}

int dgrid_open_tmpfile(const char *directory) {
    int fd = open(directory, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    return fd < 0 ? -errno : fd;
}

int dgrid_openat_tmpfile(int dirfd) {
    int fd = openat(dirfd, ".", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    return fd < 0 ? -errno : fd;
}

int dgrid_link_tmpfile(int fd, int dirfd, const char *name) {
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    return linkat(AT_FDCWD, path, dirfd, name, AT_SYMLINK_FOLLOW) < 0 ? -errno : 0;
}

int dgrid_die_with_parent(void) {
    if (prctl(PR_SET_PDEATHSIG, SIGTERM, 0, 0, 0) < 0)
        return -errno;
    return getppid() == 1 ? -ESRCH : 0;
}

int dgrid_clock_state(long *maxerror_us, long *esterror_us) {
    struct timex tx;
    memset(&tx, 0, sizeof tx);
    int state = adjtimex(&tx);
    if (state < 0)
        return -1;
    *maxerror_us = tx.maxerror;
    *esterror_us = tx.esterror;
    return state;
}

int dgrid_pidfd_kill(int pidfd) {
    return syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, NULL, 0) == 0 ? 0 : -errno;
}

int dgrid_rename_exchange(const char *a, const char *b) {
    return renameat2(AT_FDCWD, a, AT_FDCWD, b, RENAME_EXCHANGE) == 0 ? 0 : -errno;
}

int dgrid_rename_noreplace(const char *from, const char *to) {
    return renameat2(AT_FDCWD, from, AT_FDCWD, to, RENAME_NOREPLACE) == 0 ? 0 : -errno;
}
