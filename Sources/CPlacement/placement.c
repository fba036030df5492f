// sched_getaffinity and sched_setaffinity are GNU extensions, which Swift's Glibc module does
// not declare; this file reaches them with _GNU_SOURCE (Storage's `CPUSet`).
#define _GNU_SOURCE
#include "CPlacement.h"
#include <errno.h>
#include <string.h>

#if defined(__linux__)
#include <sched.h>

size_t cplacement_words(void) { return sizeof(cpu_set_t) / sizeof(unsigned long); }

int cplacement_get(unsigned long *words, size_t count) {
    cpu_set_t mask;
    if (count < cplacement_words()) return EINVAL;
    if (sched_getaffinity(0, sizeof mask, &mask) != 0) return errno;
    memcpy(words, &mask, sizeof mask);
    return 0;
}

int cplacement_set(const unsigned long *words, size_t count) {
    cpu_set_t mask;
    if (count < cplacement_words()) return EINVAL;
    memcpy(&mask, words, sizeof mask);
    if (sched_setaffinity(0, sizeof mask, &mask) != 0) return errno;
    return 0;
}
#else
size_t cplacement_words(void) { return 1; }
int cplacement_get(unsigned long *words, size_t count) { (void)words; (void)count; return ENOSYS; }
int cplacement_set(const unsigned long *words, size_t count) { (void)words; (void)count; return ENOSYS; }
#endif
