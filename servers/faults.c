/* What the system may do under MHD: an LD_PRELOAD library, enabled per
 * server by CONFORMANCE_FAULTS (harness/faults.py writes it). It is not a
 * mutant: every result it makes, a POSIX system may give. It acts only on
 * the calls of MHD and of its TLS library, and only on the descriptors of
 * upgraded connections: the TCP socket on which MHD sent a 101, and the
 * socket pairs MHD made. It is preloaded ahead of the mutant library, whose
 * wrappers every caller's calls pass through: the return address then
 * still says whose call it is, and a mutant sees what the system gave.
 *
 * CONFORMANCE_FAULTS is a comma-separated list:
 *   sockbuf=N   SO_SNDBUF and SO_RCVBUF of N bytes on those descriptors, set
 *               before the 101 leaves (TCP) and as the pair is made: the
 *               kernel itself then gives short counts and EAGAIN, with the
 *               readiness events that go with them.
 *   eintr=N     one in N of the reads and writes MHD and GnuTLS make on
 *               them fails with EINTR before doing anything (the socket's
 *               readiness is left as it was, as a caught signal leaves it),
 *               and one in N of MHD's waits (select, poll, epoll_wait)
 *               while an upgraded connection is open.
 *   lowres=N    one in N of MHD's own send() and recv() on a socket pair
 *               fails with ENOBUFS ("insufficient resources", POSIX).
 *   waitfail=N  one in N of MHD's select() and poll() while an upgraded
 *               connection is open fails before waiting: select() with
 *               ENOMEM (Linux: no memory for its tables), poll() with
 *               EAGAIN (POSIX: its allocation failed, "a subsequent
 *               request may succeed"). epoll_wait() cannot fail so.
 *   seed=N      the schedule of eintr=, lowres= and waitfail=: the same seed gives
 *               the same sequence of decisions.
 *   fail=socketpair  every socketpair() MHD calls fails with EMFILE.
 *   fail=calloc      MHD's first calloc() after each 101, on the thread that
 *               sent it, fails (ENOMEM).
 *   fail=create_calloc:K  the K-th calloc() MHD makes inside
 *               MHD_create_response_for_upgrade() fails (ENOMEM): 1 the
 *               response, 2 its "Connection: Upgrade" header; in the
 *               calls made once MHD has accepted a client (not in the
 *               server's own at start).
 *   fail=epoll_ctl:K MHD's K-th EPOLL_CTL_ADD after each 101, on the thread
 *               that sent it, fails (ENOMEM).
 *   pair_fd=N   the socket pairs MHD makes get descriptors of at least N
 *               (as when the lower ones are all in use); the soft limit of
 *               open files is raised for it.
 *
 * What it does is reported as events on the server's event channel
 * (fd 1, one line per write, as events.c does): "fault" with what=sockbuf,
 * eintr, lowres, waitfail, socketpair, calloc, epoll_ctl or pair_fd; eintr,
 * lowres and waitfail once per call name, with the count so far. */
#define _GNU_SOURCE
#define PRELOAD_NAME "faults"
#include "preload.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <gnutls/gnutls.h>
#include <link.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

/* -- configuration --------------------------------------------------------- */

static bool on;
static int sockbuf;
static unsigned eintr_one_in, lowres_one_in, waitfail_one_in;
static uint64_t seed;
static bool fail_socketpair, fail_calloc;
static int fail_epoll_nth;
static int fail_create_nth;
/* callocs so far inside MHD_create_response_for_upgrade() on this thread;
 * -1: not inside it */
static _Thread_local int create_callocs = -1;
static atomic_bool accepted; /* MHD has accepted a client */
static int pair_fd_min;

static void
bad (const char *what, const char *value)
{
  fprintf (stderr, "faults: bad CONFORMANCE_FAULTS item %s%s\n", what, value);
  _exit (2);
}


static long
number (const char *item, const char *value, long most)
{
  char *end;
  long v = strtol (value, &end, 10);
  if ('\0' != *end || v < 1 || v > most)
    bad (item, "");
  return v;
}


/* -- whose call: the code of MHD and of GnuTLS ---------------------------- */

struct range
{
  uintptr_t lo, hi;
};
static struct range mhd_code, tls_code;

static int
note_object (struct dl_phdr_info *info, size_t size, void *data)
{
  struct range *r = NULL;
  (void) size;
  (void) data;
  if (NULL != strstr (info->dlpi_name, "libmicrohttpd"))
    r = &mhd_code;
  else if (NULL != strstr (info->dlpi_name, "libgnutls"))
    r = &tls_code;
  if (NULL == r)
    return 0;
  for (int i = 0; i < info->dlpi_phnum; i++)
  {
    const ElfW (Phdr) *ph = &info->dlpi_phdr[i];
    if (PT_LOAD != ph->p_type || 0 == (ph->p_flags & PF_X))
      continue;
    uintptr_t lo = info->dlpi_addr + ph->p_vaddr;
    if (0 == r->lo || lo < r->lo)
      r->lo = lo;
    if (lo + ph->p_memsz > r->hi)
      r->hi = lo + ph->p_memsz;
  }
  return 0;
}


static bool
in (const struct range *r, const void *addr)
{
  return (uintptr_t) addr >= r->lo && (uintptr_t) addr < r->hi;
}


static bool
by_mhd (const void *caller)
{
  return in (&mhd_code, caller);
}


static bool
by_mhd_or_tls (const void *caller)
{
  return by_mhd (caller) || in (&tls_code, caller);
}


/* -- the real functions ---------------------------------------------------- */

/* calloc is looked up before anything else; dlsym may itself call calloc
 * while it does, which this small arena serves. */
static void *(*real_calloc)(size_t, size_t);
static _Alignas (16) unsigned char early[4096];
static size_t early_used;
static atomic_bool resolving;


/* -- what was done: events ------------------------------------------------- */

static void
report (const char *fmt, ...)
{
  char line[512];
  struct timespec ts;
  int n;
  va_list ap;
  clock_gettime (CLOCK_MONOTONIC, &ts);
  n = snprintf (line, sizeof (line), "{\"ev\":\"fault\",\"t\":%lld.%06ld,",
                (long long) ts.tv_sec, ts.tv_nsec / 1000);
  va_start (ap, fmt);
  n += vsnprintf (line + n, sizeof (line) - (size_t) n - 2, fmt, ap);
  va_end (ap);
  if (n > (int) sizeof (line) - 2)
    n = (int) sizeof (line) - 2;
  line[n++] = '}';
  line[n++] = '\n';
  /* One write: lines never interleave with the server's own (PIPE_BUF). */
  if (write (1, line, (size_t) n) < 0)
    return;
}


/* -- the descriptors of upgraded connections ------------------------------- */

enum kind
{
  NOT_UPGRADED,
  UPGRADED_TCP,
  SOCKET_PAIR,
};
#define MAX_FD 65536
static _Atomic unsigned char kinds[MAX_FD];
static atomic_int open_upgraded; /* descriptors of kind UPGRADED_TCP or SOCKET_PAIR */

static enum kind
kind_of (int fd)
{
  return (fd >= 0 && fd < MAX_FD) ? (enum kind) kinds[fd] : NOT_UPGRADED;
}


static void
set_kind (int fd, enum kind k)
{
  if (fd < 0 || fd >= MAX_FD)
    return;
  enum kind was = (enum kind) atomic_exchange (&kinds[fd], (unsigned char) k);
  if ((NOT_UPGRADED == was) != (NOT_UPGRADED == k))
    atomic_fetch_add (&open_upgraded, NOT_UPGRADED == k ? -1 : 1);
}


static void
small_buffers (int fd)
{
  int (*set)(int, int, int, const void *, socklen_t) = REAL (setsockopt);
  int snd = -1, rcv = -1;
  socklen_t len = sizeof (int);
  if (0 == sockbuf)
    return;
  if (0 != set (fd, SOL_SOCKET, SO_SNDBUF, &sockbuf, sizeof (sockbuf))
      || 0 != set (fd, SOL_SOCKET, SO_RCVBUF, &sockbuf, sizeof (sockbuf)))
  {
    report ("\"what\":\"sockbuf\",\"fd\":%d,\"errno\":%d", fd, errno);
    return;
  }
  getsockopt (fd, SOL_SOCKET, SO_SNDBUF, &snd, &len);
  len = sizeof (int);
  getsockopt (fd, SOL_SOCKET, SO_RCVBUF, &rcv, &len);
  report ("\"what\":\"sockbuf\",\"fd\":%d,\"kind\":\"%s\",\"sndbuf\":%d,\"rcvbuf\":%d",
          fd, UPGRADED_TCP == kind_of (fd) ? "tcp" : "pair", snd, rcv);
}


/* MHD's resource faults strike after a 101, once for each, on the thread
 * that sent it: MHD sets the upgrade up right after, on that thread, while
 * a pool's other threads may calloc or add to an epoll set for other
 * connections meanwhile. */
static _Thread_local bool calloc_armed;
static _Thread_local int epoll_adds = -1; /* EPOLL_CTL_ADDs since the last 101; -1: none */

static bool
is_101 (const void *buf, size_t len)
{
  return len >= 12 && 0 == memcmp (buf, "HTTP/1.1 101", 12);
}


static void
upgrade_begins (int fd)
{
  if (! on || fd < 0)
    return;
  set_kind (fd, UPGRADED_TCP);
  small_buffers (fd);
  calloc_armed = fail_calloc;
  epoll_adds = fail_epoll_nth > 0 ? 0 : -1;
}


/* -- the schedule of EINTR and ENOBUFS ------------------------------------- */

static atomic_uint_fast64_t decisions;

/* Whether the next decision says "now", one time in @a one_in: SplitMix64
 * of the seed and the decision's number. */
static bool
now (unsigned one_in)
{
  uint64_t z;
  if (0 == one_in)
    return false;
  z = seed + 0x9e3779b97f4a7c15ULL * (atomic_fetch_add (&decisions, 1) + 1);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  z ^= z >> 31;
  return 0 == z % one_in;
}


#define CALLS 11
static const char *const call_names[CALLS] = {
  "recv", "send", "recvmsg", "sendmsg", "read", "write", "readv", "writev",
  "select", "poll", "epoll_wait",
};
static atomic_uint eintr_count[CALLS], lowres_count[CALLS], waitfail_count[CALLS];

/* Whether this call fails (with errno set), for call @a c on @a fd. */
static bool
inject (int c, int fd, const void *caller)
{
  enum kind k = kind_of (fd);
  if (NOT_UPGRADED == k || ! by_mhd_or_tls (caller))
    return false;
  if (now (eintr_one_in))
  {
    if (0 == atomic_fetch_add (&eintr_count[c], 1))
      report ("\"what\":\"eintr\",\"call\":\"%s\",\"fd\":%d", call_names[c], fd);
    errno = EINTR;
    return true;
  }
  /* GnuTLS takes any error but EAGAIN and EINTR as the end of the session,
   * as it should: ENOBUFS only where MHD itself reads and writes. */
  if (SOCKET_PAIR == k && (0 == c || 1 == c) && by_mhd (caller)
      && now (lowres_one_in))
  {
    if (0 == atomic_fetch_add (&lowres_count[c], 1))
      report ("\"what\":\"lowres\",\"call\":\"%s\",\"fd\":%d", call_names[c], fd);
    errno = ENOBUFS;
    return true;
  }
  return false;
}


/* Whether MHD's wait (call @a c) is interrupted: while an upgraded
 * connection is open, one in eintr= of them. */
static bool
interrupt_wait (int c, const void *caller)
{
  if (0 == atomic_load (&open_upgraded) || ! by_mhd (caller) || ! now (eintr_one_in))
    return false;
  if (0 == atomic_fetch_add (&eintr_count[c], 1))
    report ("\"what\":\"eintr\",\"call\":\"%s\"", call_names[c]);
  errno = EINTR;
  return true;
}


/* Whether MHD's select() or poll() (call @a c) fails for want of memory:
 * while an upgraded connection is open, one in waitfail= of them. */
static bool
fail_wait (int c, int err, const void *caller)
{
  if (0 == atomic_load (&open_upgraded) || ! by_mhd (caller) || ! now (waitfail_one_in))
    return false;
  if (0 == atomic_fetch_add (&waitfail_count[c], 1))
    report ("\"what\":\"waitfail\",\"call\":\"%s\",\"errno\":%d", call_names[c], err);
  errno = err;
  return true;
}


/* How many of MHD's waits failed so far: for the mutant wait-failure-fatal
 * (mutants.c), which makes MHD take such a failure as the end. */
unsigned
conformance_wait_failures (void)
{
  return atomic_load (&waitfail_count[8]) + atomic_load (&waitfail_count[9]);
}


/* -- the interposed calls -------------------------------------------------- */

#define CALLER __builtin_extract_return_addr (__builtin_return_address (0))


int
select (int n, fd_set *rs, fd_set *ws, fd_set *es, struct timeval *tv)
{
  if (on && (interrupt_wait (8, CALLER) || fail_wait (8, ENOMEM, CALLER)))
    return -1;
  return REAL (select)(n, rs, ws, es, tv);
}


int
poll (struct pollfd *fds, nfds_t n, int timeout)
{
  if (on && (interrupt_wait (9, CALLER) || fail_wait (9, EAGAIN, CALLER)))
    return -1;
  return REAL (poll)(fds, n, timeout);
}


int
epoll_wait (int epfd, struct epoll_event *events, int n, int timeout)
{
  if (on && interrupt_wait (10, CALLER))
    return -1;
  return REAL (epoll_wait)(epfd, events, n, timeout);
}


ssize_t
recv (int fd, void *buf, size_t len, int flags)
{
  if (on && inject (0, fd, CALLER))
    return -1;
  return REAL (recv)(fd, buf, len, flags);
}


ssize_t
send (int fd, const void *buf, size_t len, int flags)
{
  if (on && by_mhd (CALLER) && is_101 (buf, len))
    upgrade_begins (fd);
  else if (on && inject (1, fd, CALLER))
    return -1;
  return REAL (send)(fd, buf, len, flags);
}


ssize_t
recvmsg (int fd, struct msghdr *msg, int flags)
{
  if (on && inject (2, fd, CALLER))
    return -1;
  return REAL (recvmsg)(fd, msg, flags);
}


ssize_t
sendmsg (int fd, const struct msghdr *msg, int flags)
{
  if (on && by_mhd (CALLER) && msg->msg_iovlen > 0
      && is_101 (msg->msg_iov[0].iov_base, msg->msg_iov[0].iov_len))
    upgrade_begins (fd);
  else if (on && inject (3, fd, CALLER))
    return -1;
  return REAL (sendmsg)(fd, msg, flags);
}


ssize_t
read (int fd, void *buf, size_t len)
{
  if (on && inject (4, fd, CALLER))
    return -1;
  return REAL (read)(fd, buf, len);
}


ssize_t
write (int fd, const void *buf, size_t len)
{
  if (on && inject (5, fd, CALLER))
    return -1;
  return REAL (write)(fd, buf, len);
}


ssize_t
readv (int fd, const struct iovec *iov, int n)
{
  if (on && inject (6, fd, CALLER))
    return -1;
  return REAL (readv)(fd, iov, n);
}


ssize_t
writev (int fd, const struct iovec *iov, int n)
{
  if (on && by_mhd (CALLER) && n > 0 && is_101 (iov[0].iov_base, iov[0].iov_len))
    upgrade_begins (fd);
  else if (on && inject (7, fd, CALLER))
    return -1;
  return REAL (writev)(fd, iov, n);
}


ssize_t
gnutls_record_send (gnutls_session_t session, const void *data, size_t size)
{
  if (on && is_101 (data, size))
    upgrade_begins (gnutls_transport_get_int (session));
  return REAL (gnutls_record_send)(session, data, size);
}


int
close (int fd)
{
  set_kind (fd, NOT_UPGRADED);
  return REAL (close)(fd);
}


/* Moves @a fd to a descriptor of at least pair_fd_min, keeping its
 * close-on-exec flag; the old one is closed. */
static int
move_up (int fd)
{
  int cloexec = fcntl (fd, F_GETFD);
  int to = fcntl (fd, (cloexec > 0 && (cloexec & FD_CLOEXEC)) ? F_DUPFD_CLOEXEC : F_DUPFD,
                  pair_fd_min);
  if (to < 0)
  {
    report ("\"what\":\"pair_fd\",\"errno\":%d", errno);
    return fd;
  }
  REAL (close)(fd);
  return to;
}


int
socketpair (int domain, int type, int protocol, int sv[2])
{
  int r;
  if (! on || ! by_mhd (CALLER))
    return REAL (socketpair)(domain, type, protocol, sv);
  if (fail_socketpair)
  {
    report ("\"what\":\"socketpair\",\"errno\":%d", EMFILE);
    errno = EMFILE;
    return -1;
  }
  r = REAL (socketpair)(domain, type, protocol, sv);
  if (0 != r)
    return r;
  if (0 != pair_fd_min)
  {
    sv[0] = move_up (sv[0]);
    sv[1] = move_up (sv[1]);
    report ("\"what\":\"pair_fd\",\"fds\":[%d,%d]", sv[0], sv[1]);
  }
  set_kind (sv[0], SOCKET_PAIR);
  set_kind (sv[1], SOCKET_PAIR);
  small_buffers (sv[0]);
  small_buffers (sv[1]);
  return 0;
}


int
epoll_ctl (int epfd, int op, int fd, struct epoll_event *event)
{
  if (on && EPOLL_CTL_ADD == op && by_mhd (CALLER) && epoll_adds >= 0
      && ++epoll_adds == fail_epoll_nth)
  {
    epoll_adds = -1;
    report ("\"what\":\"epoll_ctl\",\"nth\":%d,\"fd\":%d,\"errno\":%d",
            fail_epoll_nth, fd, ENOMEM);
    errno = ENOMEM;
    return -1;
  }
  return REAL (epoll_ctl)(epfd, op, fd, event);
}


void *
calloc (size_t n, size_t size)
{
  if (NULL == real_calloc)
  {
    /* Inside dlsym, resolving calloc itself. */
    size_t want = (n * size + 15) & ~(size_t) 15;
    if (atomic_load (&resolving) && early_used + want <= sizeof (early))
    {
      void *p = early + early_used;
      early_used += want;
      return p; /* zeroed: static storage, never handed out twice */
    }
    atomic_store (&resolving, true);
    real_calloc = real ("calloc");
    atomic_store (&resolving, false);
  }
  bool after_101 = calloc_armed && by_mhd (CALLER);
  if (after_101)
    calloc_armed = false; /* once for each 101 */
  if (after_101
      || (create_callocs >= 0 && by_mhd (CALLER) && ++create_callocs == fail_create_nth))
  {
    report ("\"what\":\"calloc\",\"size\":%zu,\"errno\":%d", n * size, ENOMEM);
    errno = ENOMEM;
    return NULL;
  }
  return real_calloc (n, size);
}


int
accept4 (int fd, struct sockaddr *addr, socklen_t *len, int flags)
{
  int r = REAL (accept4)(fd, addr, len, flags);
  if (r >= 0 && by_mhd (CALLER))
    atomic_store (&accepted, true);
  return r;
}


/* fail=create_calloc:K counts MHD's callocs inside this call. The types are
 * the header's, as pointers: this library does not build against MHD. */
void *
MHD_create_response_for_upgrade (void *upgrade_handler, void *upgrade_handler_cls)
{
  static void *(*next)(void *, void *);
  void *r;
  if (NULL == next)
    next = (void *(*)(void *, void *)) real ("MHD_create_response_for_upgrade");
  if (on && fail_create_nth > 0 && atomic_load (&accepted))
    create_callocs = 0;
  r = next (upgrade_handler, upgrade_handler_cls);
  create_callocs = -1;
  return r;
}


void
free (void *p)
{
  static void (*real_free)(void *);
  static atomic_bool resolving_free;
  if ((unsigned char *) p >= early && (unsigned char *) p < early + sizeof (early))
    return; /* from the arena above */
  if (NULL == real_free)
  {
    if (atomic_exchange (&resolving_free, true))
      return; /* freed by dlsym while it finds free: left, once */
    real_free = real ("free");
  }
  real_free (p);
}


__attribute__((constructor)) static void
configure (void)
{
  const char *spec = getenv ("CONFORMANCE_FAULTS");
  char copy[512];
  char *save = NULL;
  if (NULL == spec || '\0' == *spec)
    return;
  if (strlen (spec) >= sizeof (copy))
    bad ("list too long: ", spec);
  strcpy (copy, spec);
  for (char *item = strtok_r (copy, ",", &save); NULL != item;
       item = strtok_r (NULL, ",", &save))
  {
    char *value = strchr (item, '=');
    if (NULL == value)
      bad (item, " (no '=')");
    *value++ = '\0';
    if (0 == strcmp (item, "sockbuf"))
      sockbuf = (int) number ("sockbuf=", value, 1 << 24);
    else if (0 == strcmp (item, "eintr"))
      eintr_one_in = (unsigned) number ("eintr=", value, 1000000);
    else if (0 == strcmp (item, "lowres"))
      lowres_one_in = (unsigned) number ("lowres=", value, 1000000);
    else if (0 == strcmp (item, "waitfail"))
      waitfail_one_in = (unsigned) number ("waitfail=", value, 1000000);
    else if (0 == strcmp (item, "seed"))
      seed = strtoull (value, NULL, 10);
    else if (0 == strcmp (item, "pair_fd"))
      pair_fd_min = (int) number ("pair_fd=", value, MAX_FD - 64);
    else if (0 == strcmp (item, "fail") && 0 == strcmp (value, "socketpair"))
      fail_socketpair = true;
    else if (0 == strcmp (item, "fail") && 0 == strcmp (value, "calloc"))
      fail_calloc = true;
    else if (0 == strcmp (item, "fail") && 0 == strncmp (value, "epoll_ctl:", 10))
      fail_epoll_nth = (int) number ("fail=epoll_ctl:", value + 10, 2);
    else if (0 == strcmp (item, "fail") && 0 == strncmp (value, "create_calloc:", 14))
      fail_create_nth = (int) number ("fail=create_calloc:", value + 14, 2);
    else
      bad (item, value - 1);
  }
  if (0 != pair_fd_min)
  {
    struct rlimit rl;
    if (0 == getrlimit (RLIMIT_NOFILE, &rl)
        && rl.rlim_cur < (rlim_t) pair_fd_min + 64)
    {
      rl.rlim_cur = (rlim_t) pair_fd_min + 64;
      if (rl.rlim_max < rl.rlim_cur || 0 != setrlimit (RLIMIT_NOFILE, &rl))
      {
        fprintf (stderr, "faults: pair_fd=%d needs a limit of open files above it "
                 "(ulimit -n %d)\n", pair_fd_min, pair_fd_min + 64);
        _exit (2);
      }
    }
  }
  dl_iterate_phdr (&note_object, NULL);
  if (0 == mhd_code.hi)
  {
    fprintf (stderr, "faults: libmicrohttpd is not loaded in this process\n");
    _exit (2);
  }
  on = true;
}
