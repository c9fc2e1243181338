#define _GNU_SOURCE
#include "dgrid_unpack.h"

#include <stdio.h>
#include <sys/xattr.h>

int dgrid_unpack_fsetxattr(int fd, const char *name, const void *value, size_t size) {
    return fsetxattr(fd, name, value, size, 0);
}

int dgrid_unpack_rename_noreplace(int dirfd, const char *from, const char *to) {
    return renameat2(dirfd, from, dirfd, to, RENAME_NOREPLACE);
}

long dgrid_unpack_flistxattr(int fd, char *list, size_t size) {
    return flistxattr(fd, list, size);
}

long dgrid_unpack_fgetxattr(int fd, const char *name, void *value, size_t size) {
    return fgetxattr(fd, name, value, size);
}
