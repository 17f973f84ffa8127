/* The upgraded socket's reads, writes and waits, and MHD_upgrade_action,
 * each reporting its events: what the scripts (scripts.c, pressure.c) and
 * the runner (upgraded.c) share. Below them: it calls none of them. */
#define _GNU_SOURCE
#include "events.h"
#include "upgraded.h"

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>


/* The byte at offset @a i of every pattern stream the server sends; the
 * harness computes the same. A period of 251 makes loss, duplication and
 * reordering of any block size visible. */
unsigned char
pattern_byte (uint64_t i)
{
  return (unsigned char) (i % 251);
}


void
report_errno (struct upgraded *u, const char *what, int err)
{
  struct event e;
  ev_begin (&e, "sock_error", u->rid);
  ev_str (&e, "what", what);
  ev_int (&e, "errno", err);
  ev_str (&e, "error", strerror (err));
  ev_end (&e);
}


/* Waits until @a sock is ready for @a events, the server is stopping or the
 * request's idle= time passed. Returns true when ready. Without idle= it
 * has no deadline of its own: the client or the server's shutdown ends it. */
bool
wait_ready (struct upgraded *u, short events)
{
  struct pollfd p[2] = {
    { .fd = u->sock, .events = events },
    { .fd = u->srv->stop_fd[0], .events = POLLIN },
  };
  for (;;)
  {
    int r = poll (p, 2, u->p.idle_ms);
    if (r < 0 && EINTR == errno)
      continue;
    if (0 == r)
    {
      struct event e;
      ev_begin (&e, "idle_timeout", u->rid);
      ev_int (&e, "ms", u->p.idle_ms);
      ev_end (&e);
      u->stopped_by = "idle";
      return false;
    }
    if (r < 0)
    {
      report_errno (u, "poll", errno);
      u->stopped_by = "error";
      return false;
    }
    if (0 != p[1].revents)
    {
      struct event e;
      ev_begin (&e, "worker_stopped", u->rid);
      ev_end (&e);
      u->stopped_by = "server-stop";
      return false;
    }
    if (0 != p[0].revents)
      return true;
  }
}


bool
send_all (struct upgraded *u, const void *data, size_t n)
{
  const char *p = data;
  while (n > 0)
  {
    ssize_t r = send (u->sock, p, n, MSG_NOSIGNAL);
    if (r > 0)
    {
      p += r;
      n -= (size_t) r;
      continue;
    }
    if (r < 0 && EINTR == errno)
      continue;
    if (r < 0 && (EAGAIN == errno || EWOULDBLOCK == errno))
    {
      if (! wait_ready (u, POLLOUT))
        return false;
      continue;
    }
    report_errno (u, "send", errno);
    u->stopped_by = "error";
    return false;
  }
  return true;
}


bool
send_pattern (struct upgraded *u, size_t n)
{
  unsigned char chunk[16384];
  uint64_t off = 0;
  while (off < n)
  {
    size_t len = n - off < sizeof (chunk) ? n - off : sizeof (chunk);
    for (size_t i = 0; i < len; i++)
      chunk[i] = pattern_byte (off + i);
    if (! send_all (u, chunk, len))
      return false;
    off += len;
  }
  struct event e;
  ev_begin (&e, "sent", u->rid);
  ev_int (&e, "bytes", (long long) n);
  ev_end (&e);
  return true;
}


/* Reads what is there; 0 at the peer's end of stream, -1 on error or stop. */
ssize_t
recv_some (struct upgraded *u, void *buf, size_t cap)
{
  for (;;)
  {
    ssize_t r = recv (u->sock, buf, cap, 0);
    if (r >= 0)
      return r;
    if (EINTR == errno)
      continue;
    if (EAGAIN == errno || EWOULDBLOCK == errno)
    {
      if (! wait_ready (u, POLLIN))
        return -1;
      continue;
    }
    report_errno (u, "recv", errno);
    u->stopped_by = "error";
    return -1;
  }
}


const char *
stop_reason (const struct upgraded *u)
{
  return NULL == u->stopped_by ? "error" : u->stopped_by;
}


enum MHD_Result
upgraded_action (struct upgraded *u, enum MHD_UpgradeAction a,
                 const char *name)
{
  enum MHD_Result r;
  struct event e;
  if (u->srv->daemon_stopped)
  {
    /* MHD_stop_daemon() already freed the handle (STOP-2). */
    ev_begin (&e, "action_skipped", u->rid);
    ev_str (&e, "action", name);
    ev_end (&e);
    return MHD_NO;
  }
  if (MHD_UPGRADE_ACTION_CLOSE == a)
  {
    /* Marks, in the event order, the moment the application asks to close. */
    ev_begin (&e, "close_requested", u->rid);
    ev_end (&e);
  }
  r = MHD_upgrade_action (u->urh, a);
  ev_begin (&e, "action", u->rid);
  ev_str (&e, "action", name);
  ev_bool (&e, "result", MHD_YES == r);
  ev_end (&e);
  /* No wake-up of an external loop after CLOSE: the manual asks none of
   * the application (U-ACT-6), so whatever MHD leaves undone shows. */
  if (MHD_UPGRADE_ACTION_CLOSE == a && MHD_YES == r)
    atomic_fetch_sub (&u->srv->live_handles, 1);
  return r;
}


/* getsockopt() as a number, or -1 - errno when it fails. */
long long
sockopt (MHD_socket sock, int level, int name)
{
  int v = 0;
  socklen_t len = sizeof (v);
  if (0 != getsockopt (sock, level, name, &v, &len))
    return -1 - (long long) errno;
  return v;
}
