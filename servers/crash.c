/* A reference server that crashes says where: on a fatal signal it writes
 * the signal and a backtrace to stderr (the harness shows a crashed
 * server's last stderr lines in the case's report), then dies of that
 * signal as it would have. The frames inside MHD are given as
 * libmicrohttpd.so+OFFSET, which addr2line or gdb resolve against the
 * library's debug symbols. */
#define _GNU_SOURCE
#include "crash.h"

#include <execinfo.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

static const int fatal_signals[] = { SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT };


static void
on_fatal_signal (int sig)
{
  void *frames[64];
  int n;
  /* Only async-signal-safe calls from here on: write(2) and
   * backtrace_symbols_fd(), whose library was loaded at install time. */
  static const char head[] = "refserver: fatal signal ";
  char num[4] = { (char) ('0' + sig / 10), (char) ('0' + sig % 10), '\n', 0 };
  (void) ! write (STDERR_FILENO, head, sizeof (head) - 1);
  (void) ! write (STDERR_FILENO, num, 3);
  n = backtrace (frames, 64);
  backtrace_symbols_fd (frames, n, STDERR_FILENO);
  signal (sig, SIG_DFL);
  raise (sig);
}


void
crash_report_install (void)
{
  void *warm[1];
  struct sigaction sa;
#if defined(__SANITIZE_ADDRESS__)
  /* The sanitizers' own reports are better; keep their handlers. */
  return;
#endif
  /* The first backtrace() loads libgcc_s, which must not happen inside a
   * signal handler. */
  (void) backtrace (warm, 1);
  memset (&sa, 0, sizeof (sa));
  sa.sa_handler = &on_fatal_signal;
  sa.sa_flags = SA_RESETHAND;
  sigemptyset (&sa.sa_mask);
  for (size_t i = 0; i < sizeof (fatal_signals) / sizeof (fatal_signals[0]); i++)
    sigaction (fatal_signals[i], &sa, NULL);
}
