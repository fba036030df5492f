#ifndef CPLACEMENT_H
#define CPLACEMENT_H

#include <stddef.h>

/// The affinity mask of the calling thread as `words` unsigned longs, CPU n being bit n % 64 of
/// word n / 64 (sched_getaffinity(2) with pid 0). Returns 0, or an errno value.
int cplacement_get(unsigned long *words, size_t count);

/// Restricts the calling thread to the CPUs of `words` (as above; sched_setaffinity(2) with
/// pid 0). Returns 0, or an errno value. Threads it starts afterwards inherit the mask.
int cplacement_set(const unsigned long *words, size_t count);

/// How many unsigned longs a mask of every CPU the system's type can name takes.
size_t cplacement_words(void);

#endif
