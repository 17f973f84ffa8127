/* What the two LD_PRELOAD libraries (mutants.c, faults.c) share: the
 * definition that their own one of a function hides. Static, so that each
 * library's dlsym (RTLD_NEXT) starts after that library, even when both
 * are preloaded. Define PRELOAD_NAME (the library's name, for the
 * message) before including it. */
#ifndef PRELOAD_H
#define PRELOAD_H

#include <dlfcn.h>
#include <stdio.h>
#include <unistd.h>

/* The next definition of @a sym after this library's; exits 2 when there
 * is none (the process could not do what it is asked anyway). */
static inline void *
real (const char *sym)
{
  void *p = dlsym (RTLD_NEXT, sym);
  if (NULL == p)
  {
    fprintf (stderr, "%s: %s not found\n", PRELOAD_NAME, sym);
    _exit (2);
  }
  return p;
}

#define REAL(fn) ((__typeof__ (&fn)) real (#fn))

#endif
