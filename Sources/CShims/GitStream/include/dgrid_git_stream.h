#ifndef DGRID_GIT_STREAM_H
#define DGRID_GIT_STREAM_H

/// Registers dgrid's plain TCP stream with libgit2 for git://, http:// and as
/// the socket under https:// and ssh://. Call after git_libgit2_init, once.
/// `idle_timeout_seconds` bounds connecting and every read or write (0: none).
/// Returns libgit2's result (0 on success).
int dgrid_git_stream_register(int idle_timeout_seconds);

/// Changes the bound for connections opened from now on (0: none).
void dgrid_git_stream_set_timeout(int idle_timeout_seconds);

#endif
