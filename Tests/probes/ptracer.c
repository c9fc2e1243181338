/* Probe: leaves a ptrace-stopped child behind a parent that ignores SIGTERM
 * and sleeps; only a kill of the whole tree ends it. Prints "traced" once the
 * child is in a ptrace stop. Needs ptrace, so it runs with seccomp unconfined. */
#include <signal.h>
#include <stdio.h>
#include <sys/ptrace.h>
#include <sys/wait.h>
#include <unistd.h>

int main(void) {
    signal(SIGTERM, SIG_IGN);
    pid_t child = fork();
    if (child == 0) {
        ptrace(PTRACE_TRACEME, 0, 0, 0);
        raise(SIGSTOP);
        for (;;) pause();
    }
    int status;
    waitpid(child, &status, WUNTRACED);
    printf(WIFSTOPPED(status) ? "traced\n" : "not traced\n");
    fflush(stdout);
    for (;;) pause();
}
