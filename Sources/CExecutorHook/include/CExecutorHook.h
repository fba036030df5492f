#ifndef CEXECUTORHOOK_H
#define CEXECUTORHOOK_H

#include <stdbool.h>

/// Stores `hook` in the Swift runtime's `swift_task_enqueueGlobal_hook` if nothing is stored
/// there yet; true when stored. `hook` is a Swift function (the runtime calls it with the job
/// and the runtime's own enqueue), taken as a raw pointer.
///
/// The variable is reached by the linker, not by `dlsym`: built with `--static-swift-stdlib`
/// the runtime is linked into the binary with `--exclude-libs ALL`, its symbols are not in the
/// dynamic symbol table, and `dlsym` (NIO's way) finds nothing.
bool cexecutorhook_install(const void *hook);

#endif
