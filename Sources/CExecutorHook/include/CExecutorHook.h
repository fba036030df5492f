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

/// Runs `job` (a Swift `UnownedJob`'s pointer) on the calling thread as Swift's own global pool
/// runs its jobs: on the generic executor, with no serial executor and no task executor current.
///
/// Why not `ExecutorJob.runSynchronously(on: loop.asUnownedSerialExecutor())`, as NIO's loops run
/// the jobs handed to them: a job run so has the loop's serial executor current, and every hop of
/// its task to the generic executor (any nonisolated async function's entry, every step of
/// PostgresNIO's row iterators) is then a switch of executors that the loop cannot perform on
/// the spot, so the runtime enqueues the task again: about 125 extra jobs per task drained
/// (docs/benchmarks.md, forty-sixth session). Run as generic, those hops cost nothing, as they
/// do on Swift's own pool.
void cexecutorhook_run_generic(void *job);

#endif
