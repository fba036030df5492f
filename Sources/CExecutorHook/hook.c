#include "CExecutorHook.h"

#include <stddef.h>

// Declared by the Swift runtime (include/swift/Runtime/Concurrency.h) as
// `SWIFT_EXPORT_FROM(swift_Concurrency) SWIFT_CC(swift) void (*swift_task_enqueueGlobal_hook)(Job *, swift_task_enqueueGlobal_original)`;
// only its storage matters here.
extern const void *swift_task_enqueueGlobal_hook;

bool cexecutorhook_install(const void *hook) {
    const void *expected = NULL;
    return __atomic_compare_exchange_n(&swift_task_enqueueGlobal_hook, &expected, hook, false, __ATOMIC_SEQ_CST,
                                       __ATOMIC_SEQ_CST);
}
