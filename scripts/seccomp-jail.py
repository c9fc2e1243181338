#!/usr/bin/python3
# Runs a command under a seccomp filter that refuses one kernel feature with
# EPERM, as a container runtime's profile does (Docker's default refuses user
# namespaces to unprivileged containers, for one). The dgrid doctor tests run
# `dgrid doctor` under it to see each check fail on a real kernel:
#   scripts/seccomp-jail.py RULE -- COMMAND [ARGS...]
# RULE: userns | cgroupns | no-new-privs | seccomp. Everything else is allowed.
# The filter is inherited by every child, the sandboxes' included. It does not
# set no_new_privs on the command (root needs none to load a filter), so only
# the rule refuses what it refuses. Needs Debian's python3-seccomp
# (scripts/install-deps.sh test), hence /usr/bin/python3.
import errno
import os
import sys

import seccomp

CLONE_NEWUSER = 0x10000000
CLONE_NEWCGROUP = 0x02000000
PR_SET_SECCOMP = 22
PR_SET_NO_NEW_PRIVS = 38


def refuse(f, syscall, *args):
    f.add_rule(seccomp.ERRNO(errno.EPERM), syscall, *args)


def build(rule):
    f = seccomp.SyscallFilter(defaction=seccomp.ALLOW)
    f.set_attr(seccomp.Attr.CTL_NNP, 0)
    if rule == "userns":
        # clone3 hides its flags in memory a filter cannot read: refuse it
        # whole with ENOSYS, as Docker does, so callers fall back to clone.
        f.add_rule(seccomp.ERRNO(errno.ENOSYS), "clone3")
        refuse(f, "clone", seccomp.Arg(0, seccomp.MASKED_EQ, CLONE_NEWUSER, CLONE_NEWUSER))
        refuse(f, "unshare", seccomp.Arg(0, seccomp.MASKED_EQ, CLONE_NEWUSER, CLONE_NEWUSER))
    elif rule == "cgroupns":
        refuse(f, "unshare", seccomp.Arg(0, seccomp.MASKED_EQ, CLONE_NEWCGROUP, CLONE_NEWCGROUP))
        refuse(f, "clone", seccomp.Arg(0, seccomp.MASKED_EQ, CLONE_NEWCGROUP, CLONE_NEWCGROUP))
    elif rule == "no-new-privs":
        refuse(f, "prctl", seccomp.Arg(0, seccomp.EQ, PR_SET_NO_NEW_PRIVS))
    elif rule == "seccomp":
        refuse(f, "seccomp")
        refuse(f, "prctl", seccomp.Arg(0, seccomp.EQ, PR_SET_SECCOMP))
    else:
        sys.exit(f"seccomp-jail.py: unknown rule {rule!r}; use userns, cgroupns, no-new-privs or seccomp")
    return f


def main():
    if len(sys.argv) < 4 or sys.argv[2] != "--":
        sys.exit("usage: seccomp-jail.py RULE -- COMMAND [ARGS...]")
    build(sys.argv[1]).load()
    os.execvp(sys.argv[3], sys.argv[3:])


if __name__ == "__main__":
    main()
