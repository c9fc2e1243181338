#ifndef DGRID_GIT_STREAM_H
#define DGRID_GIT_STREAM_H

#include <stdint.h>
#include <stddef.h>

/// Registers dgrid's plain TCP stream with libgit2 for git://, http:// and as
/// the socket under https:// and ssh://. Call after git_libgit2_init, once.
/// `idle_timeout_seconds` bounds connecting and every read or write (0: none).
/// Returns libgit2's result (0 on success).
int dgrid_git_stream_register(int idle_timeout_seconds);

/// Changes the bound for connections opened from now on (0: none).
void dgrid_git_stream_set_timeout(int idle_timeout_seconds);

/// Starts an overall deadline, `milliseconds` from now, for the Git operation
/// this thread is about to run: every connection the thread opens until
/// `dgrid_git_deadline_end` fails connecting, reading or writing once it has
/// passed, however steadily the server trickles bytes. For ssh:// (libssh2
/// reads the socket itself) a watchdog thread shuts the socket down instead.
void dgrid_git_deadline_begin(int64_t milliseconds);

/// Ends this thread's deadline; connections opened later are unbounded again.
void dgrid_git_deadline_end(void);

/// Within the deadline this thread began: no connect of the operation, and no
/// wait on its connections for the server to send or take bytes, may last longer
/// than `milliseconds` — a silent server fails it then. 0: only the idle bound.
/// Ended with the deadline. Over ssh:// only the connect is bounded.
void dgrid_git_answer_within(int64_t milliseconds);

/// 1 when a wait of this thread's operation ran past its silence bound
/// (`dgrid_git_answer_within`), else 0.
int dgrid_git_answer_missed(void);

/// 1 when this thread has a deadline under way, else 0.
int dgrid_git_deadline_active(void);

/// 1 when this thread's deadline has passed (libgit2's progress callbacks use
/// it to abort a transfer), else 0.
int dgrid_git_deadline_expired(void);

/// Turns off libgit2's re-hash of every object it reads (GIT_OPT_ENABLE_STRICT_HASH_VERIFICATION).
/// The ledger verifies objects where they enter the mirror instead (docs/ARCHITECTURE.md §6).
int dgrid_git_skip_hash_on_read(void);

/// Lets libgit2's object cache keep trees up to `bytes` (GIT_OPT_SET_CACHE_OBJECT_LIMIT; its default is 4 KB).
int dgrid_git_cache_trees_up_to(size_t bytes);

#endif
