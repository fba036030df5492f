#ifndef CSPAWN_H
#define CSPAWN_H

#include <spawn.h>

/// glibc declares posix_spawn_file_actions_addchdir_np and _addclosefrom_np only under
/// _GNU_SOURCE, which Swift's Glibc module is not built with; these wrappers make them callable.
int cspawn_file_actions_addchdir(posix_spawn_file_actions_t *actions, const char *path);

/// Closes every descriptor from `from` up in the child (glibc 2.34+). Elsewhere a no-op that
/// answers 0: the caller marks its own descriptors close-on-exec as well.
int cspawn_file_actions_addclosefrom(posix_spawn_file_actions_t *actions, int from);

#endif
