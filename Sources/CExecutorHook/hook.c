#include "CExecutorHook.h"

#include <stddef.h>
#include <stdint.h>

// Declared by the Swift runtime (include/swift/Runtime/Concurrency.h) as
// `SWIFT_EXPORT_FROM(swift_Concurrency) SWIFT_CC(swift) void (*swift_task_enqueueGlobal_hook)(Job *, swift_task_enqueueGlobal_original)`;
// only its storage matters here.
extern const void *swift_task_enqueueGlobal_hook;

bool cexecutorhook_install(const void *hook) {
    const void *expected = NULL;
    return __atomic_compare_exchange_n(&swift_task_enqueueGlobal_hook, &expected, hook, false, __ATOMIC_SEQ_CST,
                                       __ATOMIC_SEQ_CST);
}

// The runtime's `SerialExecutorRef` (include/swift/ABI/Executor.h): an identity and an
// implementation word, both zero for the generic executor; and `swift_job_run`, declared there as
// `SWIFT_CC(swift) void swift_job_run(Job *job, SerialExecutorRef executor)`, the entry point the
// standard library's `runSynchronously(on:)` calls.
typedef struct {
    const void *identity;
    uintptr_t implementation;
} cexecutorhook_serial_executor_ref;

extern void swift_job_run(void *job, cexecutorhook_serial_executor_ref executor) __attribute__((swiftcall));

void cexecutorhook_run_generic(void *job) {
    const cexecutorhook_serial_executor_ref generic = {NULL, 0};
    swift_job_run(job, generic);
}
