/* What a service manager's seccomp options do to a task (DebPackageCLITests):
 * a writable and executable mapping, as a JIT makes (MemoryDenyWriteExecute
 * refuses it), then a system call through the i386 entry point (dgrid's own
 * profile refuses it with EPERM; SystemCallArchitectures=native kills the
 * task with SIGSYS, so the second line never comes). Static, no libc calls
 * beyond printf. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

int main(void) {
    void *p = mmap(0, 4096, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    printf("wx-mmap: %s\n", p == MAP_FAILED ? strerror(errno) : "ok");
    fflush(stdout);
    long ret;
    /* getpid (20 in the i386 table) through int 0x80: seccomp sees AUDIT_ARCH_I386. */
    __asm__ volatile("int $0x80" : "=a"(ret) : "a"(20L) : "memory");
    printf("i386-syscall: %s\n", ret < 0 ? strerror((int)-ret) : "ran");
    return 0;
}
