#ifndef CSPAWN_H
#define CSPAWN_H

#include <spawn.h>

/// glibc declares posix_spawn_file_actions_addchdir_np and _addclosefrom_np only under
/// _GNU_SOURCE, which Swift's Glibc module is not built with; these wrappers make them callable.
int cspawn_file_actions_addchdir(posix_spawn_file_actions_t *actions, const char *path);

/// Closes every descriptor from `from` up in the child (glibc 2.34+). Elsewhere a no-op that
/// answers 0: the caller marks its own descriptors close-on-exec as well.
int cspawn_file_actions_addclosefrom(posix_spawn_file_actions_t *actions, int from);

/// A descriptor for process `pid` (any process this one may see, not only its children) that
/// becomes readable when the process ends (Linux 5.3+, `pidfd_open`); -1 with errno set when it
/// cannot be had (ESRCH: no such process any more). The tests wait on it for a grandchild that
/// a process group kill must take down.
int cspawn_pidfd_open(pid_t pid);

/// A pipe whose two ends are close-on-exec from the start (`pipe2`, declared only under
/// _GNU_SOURCE): another thread's child can never inherit them in between.
int cspawn_pipe_cloexec(int ends[2]);

#endif
