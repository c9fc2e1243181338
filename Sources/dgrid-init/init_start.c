/*
 * dgrid-init's entry point and the few routines a compiler may call on its
 * own (memset, memcpy), in place of the C library's (init.c says why there
 * is none). Nothing runs before init_main: no constructors, no TLS, no stack
 * protector (built with -fno-stack-protector, Package.swift).
 */
#include "init_syscall.h"

int init_main(int argc, char **argv, char **envp);
void __attribute__((noreturn, used)) init_start(long *stack);

/* The kernel starts us with argc, argv[], NULL, envp[], NULL on the stack. */
void init_start(long *stack) {
    int argc = (int)stack[0];
    char **argv = (char **)(stack + 1);
    char **envp = argv + argc + 1;
    sys_exit(init_main(argc, argv, envp));
}

#if defined(__x86_64__)
__asm__(".text\n"
        ".global _start\n"
        ".type _start,@function\n"
        "_start:\n"
        "  xor %ebp, %ebp\n"
        "  mov %rsp, %rdi\n"
        "  and $-16, %rsp\n"
        "  call init_start\n"
        "  hlt\n");
#elif defined(__aarch64__)
__asm__(".text\n"
        ".global _start\n"
        ".type _start,%function\n"
        "_start:\n"
        "  mov x29, #0\n"
        "  mov x30, #0\n"
        "  mov x0, sp\n"
        "  bl init_start\n");
#endif

void *memset(void *dst, int c, unsigned long n);
void *memset(void *dst, int c, unsigned long n) {
    volatile unsigned char *p = dst;
    while (n--)
        *p++ = (unsigned char)c;
    return dst;
}

void *memcpy(void *dst, const void *src, unsigned long n);
void *memcpy(void *dst, const void *src, unsigned long n) {
    volatile unsigned char *d = dst;
    const unsigned char *s = src;
    while (n--)
        *d++ = *s++;
    return dst;
}
