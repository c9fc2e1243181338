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
/* accept4(fd, NULL, NULL, SOCK_CLOEXEC): the connection never reaches a child
   spawned by another thread (accept then fcntl leaves a window). fd or -1 with errno. */
int dgrid_accept_cloexec(int fd);
/* unshare(CLONE_NEWUSER): refused (EINVAL) in a threaded process. 0 or -1 with errno. */
int dgrid_unshare_user_namespace(void);
/* setresgid(0,0,0) then setresuid(0,0,0): root of a user namespace whose map
   names 0. 0 or -1 with errno. */
int dgrid_become_namespace_root(void);
/* fcntl(fd, F_SETPIPE_SZ, size); best effort. */
int dgrid_set_pipe_size(int fd, int size);
/* splice(from_pipe, NULL, to_fd, NULL, length, SPLICE_F_NONBLOCK): moves pipe
   pages without copying them (to /dev/null: drops them). Bytes moved, 0 at
   end of stream, or -1 with errno. */
ssize_t dgrid_splice_nonblock(int from_pipe, int to_fd, size_t length);

/* memfd_create(name, MFD_CLOEXEC): an anonymous memory file. Swift's Glibc
 * module does not declare memfd_create (it sits behind _GNU_SOURCE), and a
 * static `dgrid` has no dynamic symbol table to look it up in. The
 * descriptor, or -1 with errno. */
int dgrid_memfd(const char *name);

/* An execute-only, sealed, read-only copy of the executable open at src_fd,
 * in a memfd named `name`: what a sandbox's pid 1 execs (runc's answer to
 * CVE-2019-5736). Nobody can write it (F_SEAL_WRITE, and the descriptor is
 * O_RDONLY, as exec requires), and since nobody can read it either (mode
 * 0111), the kernel makes whatever execs it non-dumpable. Returns the
 * descriptor (close-on-exec) or -errno. */
int dgrid_sealed_exec_copy(int src_fd, const char *name);

/* A detached clone of the tree at `path` (open_tree OPEN_TREE_CLONE, with its
 * submounts, the last component never followed), idmapped to the user
 * namespace `userns_fd` (the sandbox's: on-disk id N shows as id N inside)
 * and read-only when `readonly`. Where the filesystem cannot be idmapped,
 * the clone is made without, and *idmapped says 0. Returns the descriptor
 * (close-on-exec) or -errno. Needs CAP_SYS_ADMIN (root). */
int dgrid_tree_clone(const char *path, int userns_fd, int readonly, int *idmapped);
/* The same for `path` relative to `dirfd` ("" for the tree `dirfd` itself,
 * e.g. a detached mount from dgrid_scratch_create). Clones are nosuid, nodev. */
int dgrid_tree_clone_at(int dirfd, const char *path, int userns_fd, int readonly, int *idmapped);

/* A tmpfs of `size` bytes (a tmpfs "size" value) whose root directory is
 * owned by uid:gid, mode 0755, mounted nowhere: a detached mount
 * (fsopen/fsmount), nosuid, nodev. Only the descriptor reaches it, so
 * it goes away with the last descriptor and a killed process leaves no mount
 * behind. Returns the descriptor (close-on-exec) or -errno. Needs CAP_SYS_ADMIN. */
int dgrid_scratch_create(const char *size, unsigned uid, unsigned gid);

/* An unnamed file (O_TMPFILE) in `directory`, read-write, close-on-exec: it
 * goes with its last descriptor, so a killed process leaves nothing on disk.
 * Returns the descriptor or -errno. */
int dgrid_open_tmpfile(const char *directory);

/* An unnamed file (O_TMPFILE, 0600, O_RDWR) in the directory `dirfd`: a
 * download written there is invisible until it is verified and linked in
 * (dgrid_link_tmpfile). Returns fd or -errno. */
int dgrid_openat_tmpfile(int dirfd);

/* Gives the unnamed file `fd` the name `name` in `dirfd` (linkat through
 * /proc/self/fd, which needs no capability). 0 or -errno. */
int dgrid_link_tmpfile(int fd, int dirfd, const char *name);

/* SIGTERM to this process when its parent dies (a helper outliving the worker
 * that ran it would keep pushing for nobody). 0, or -errno; -ESRCH when the
 * parent is already gone. */
int dgrid_die_with_parent(void);

/* Send the go byte on the sync socket, with `count` descriptors (SCM_RIGHTS)
 * when count > 0. Returns 0 or -errno. */
int dgrid_send_go(int sock, const int *fds, int count);

/* The kernel's NTP state (adjtimex(2) with modes 0: reads, changes nothing):
 * the clock state it returns (5, TIME_ERROR, when the clock is not
 * synchronised: STA_UNSYNC), the maximum and estimated error in
 * microseconds. Swift's Glibc module does not declare <sys/timex.h>.
 * The state, or -1 with errno. */
int dgrid_clock_state(long *maxerror_us, long *esterror_us);

/* SIGKILL to the process `pidfd` refers to (pidfd_send_signal(2)): never to
 * another process that took its pid after it was reaped. 0, or -errno
 * (-ESRCH once it has exited). */
int dgrid_pidfd_kill(int pidfd);

/* renameat2(AT_FDCWD, a, AT_FDCWD, b, RENAME_EXCHANGE): swaps two paths in one
 * step, directories included, so a reader of either name sees the old tree or
 * the new one, never neither (the dashboard's publish, docs/ARCHITECTURE.md
 * §12). 0 or -errno; -EINVAL where the filesystem cannot exchange. */
int dgrid_rename_exchange(const char *a, const char *b);

/* renameat2(AT_FDCWD, from, AT_FDCWD, to, RENAME_NOREPLACE): fails with
 * -EEXIST rather than replace `to`. 0 or -errno. */
int dgrid_rename_noreplace(const char *from, const char *to);

#endif
