/* Calls the layer unpacker (Sandbox/Image/Unpack) needs but Swift's Glibc
 * module does not declare: <sys/xattr.h> is not part of it, and renameat2 is
 * GNU-only. */
#ifndef DGRID_UNPACK_H
#define DGRID_UNPACK_H

#include <stddef.h>

/* fsetxattr(fd, name, value, size, 0); returns 0 or -1 with errno. */
int dgrid_unpack_fsetxattr(int fd, const char *name, const void *value, size_t size);

/* renameat2(dirfd, from, dirfd, to, RENAME_NOREPLACE): fails with EEXIST
 * instead of replacing an existing (even empty) directory at `to`. */
int dgrid_unpack_rename_noreplace(int dirfd, const char *from, const char *to);

/* flistxattr(fd, list, size) and fgetxattr(fd, name, value, size): read a
 * layer's extended attributes through an fd (the overlay-refused copy in
 * Sandbox/Isolation/LayerCopy). Return the size or -1 with errno. */
long dgrid_unpack_flistxattr(int fd, char *list, size_t size);
long dgrid_unpack_fgetxattr(int fd, const char *name, void *value, size_t size);

#endif
