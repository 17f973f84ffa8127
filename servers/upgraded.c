/* What the reference server does with an upgraded connection: the upgrade
 * handler reports its arguments, then a script chosen by the request
 * (query parameter "then") drives the socket. Scripts run on a thread of
 * their own, so MHD's event loop is never blocked, except the few whose
 * point is to act inside the handler. Every script ends with
 * MHD_UPGRADE_ACTION_CLOSE, which the runner (script_thread, or
 * handle_upgrade for a script that runs in the handler only) does: a
 * script itself never closes. */
#define _GNU_SOURCE
#include "events.h"
#include "refserver.h"
#include "websocket.h"

#include <errno.h>
#include <fcntl.h>
#include <gnutls/crypto.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

/* One upgraded connection, owned by the thread that runs its script. */
struct upgraded
{
  struct server *srv;
  char rid[RID_MAX];
  const struct script *script;
  struct script_params p;
  const char *stopped_by; /* why the last wait or transfer failed */
  MHD_socket sock;
  /* The client's TCP socket as MHD holds it: the same as sock over plain
   * HTTP; over HTTPS MHD pumps TLS between it and a socket pair. */
  MHD_socket tcp_fd;
  struct MHD_UpgradeResponseHandle *urh;
  struct MHD_Connection *connection;
  char *extra_in;
  size_t extra_in_size;
  /* GET /release?of=RID counts here; the pressure script waits on it. */
  atomic_uint released;
  atomic_uint acked; /* &hold=write: the client has stopped reading */
  _Atomic uint64_t step; /* &n=N: bytes between holds from now on */
  /* ... and where the client's stream ends (&sent=N; UINT64_MAX: open). */
  _Atomic uint64_t input_end;
  int release_fd[2];
  struct upgraded *next; /* in the server's list of live scripts */
};

/* The upgraded connections whose scripts run, for /release. Under
 * srv->lock; one server per process. */
static struct upgraded *live;

struct script
{
  const char *name;
  /* Runs inside the upgrade handler, on MHD's thread (may be NULL). */
  void (*in_handler) (struct upgraded *u);
  /* Then runs on a thread of its own (NULL: the script is done, and the
   * handler CLOSEs). After it, its thread CLOSEs. */
  void (*run) (struct upgraded *u);
};


/* The byte at offset @a i of every pattern stream the server sends; the
 * harness computes the same. A period of 251 makes loss, duplication and
 * reordering of any block size visible. */
static unsigned char
pattern_byte (uint64_t i)
{
  return (unsigned char) (i % 251);
}


static void
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
static bool
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


static bool
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


static bool
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
static ssize_t
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


static const char *
stop_reason (const struct upgraded *u)
{
  return NULL == u->stopped_by ? "error" : u->stopped_by;
}


static enum MHD_Result
action (struct upgraded *u, enum MHD_UpgradeAction a, const char *name)
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
static long long
sockopt (MHD_socket sock, int level, int name)
{
  int v = 0;
  socklen_t len = sizeof (v);
  if (0 != getsockopt (sock, level, name, &v, &len))
    return -1 - (long long) errno;
  return v;
}


/* The next piece of a script's input stream, of which @a total bytes were
 * read: its size, or 0 when the stream is over for the script, with @a how
 * saying why: "until" (until= bytes read), "eof" (the peer's end of
 * stream), or what stopped the read ("idle", "error", "server-stop"). */
static ssize_t
recv_input (struct upgraded *u, char *buf, size_t cap, uint64_t total,
            const char **how)
{
  if (0 != u->p.until && total >= u->p.until)
  {
    *how = "until";
    return 0;
  }
  if (0 != u->p.until && u->p.until - total < cap)
    cap = (size_t) (u->p.until - total);
  ssize_t r = recv_some (u, buf, cap);
  if (r > 0)
    return r;
  *how = (0 == r) ? "eof" : stop_reason (u);
  return 0;
}


/* Echoes extra_in, then everything read from the socket, until the
 * client's end of stream or, with until=N, N input bytes; then reports how
 * it ended ("eof", "until", or why it stopped: "idle", "error",
 * "server-stop") and the whole input stream (extra_in first) by size and
 * SHA-256 in one echo_end event. */
static void
echo_until_eof (struct upgraded *u)
{
  gnutls_hash_hd_t h;
  unsigned char digest[32];
  uint64_t total = u->extra_in_size;
  char buf[65536];
  const char *how = NULL;

  if (0 != gnutls_hash_init (&h, GNUTLS_DIG_SHA256))
  {
    report_errno (u, "gnutls_hash_init", EINVAL);
    return;
  }
  gnutls_hash (h, u->extra_in, u->extra_in_size);
  if (! send_all (u, u->extra_in, u->extra_in_size))
    how = stop_reason (u);
  while (NULL == how)
  {
    ssize_t r = recv_input (u, buf, sizeof (buf), total, &how);
    if (0 == r)
      break;
    gnutls_hash (h, buf, (size_t) r);
    total += (uint64_t) r;
    if (! send_all (u, buf, (size_t) r))
      how = stop_reason (u);
  }
  gnutls_hash_deinit (h, digest);
  struct event e;
  ev_begin (&e, "echo_end", u->rid);
  ev_str (&e, "how", how);
  ev_int (&e, "bytes", (long long) total);
  ev_hex (&e, "sha256", digest, sizeof (digest));
  ev_end (&e);
}


/* "close": nothing but the runner's CLOSE, from the script's thread. */
static void
run_nothing (struct upgraded *u)
{
  (void) u;
}


static void
run_send (struct upgraded *u)
{
  send_pattern (u, u->p.n);
}


/* Waits until the client has released the script k times in all (GET
 * /release?of=RID); false when it gave up (idle= ms without a release) or
 * the server stops: the script then CLOSEs all the same. */
static bool
wait_released (struct upgraded *u, unsigned int k)
{
  char drop[64];
  struct pollfd p[2] = {
    { .fd = u->release_fd[0], .events = POLLIN },
    { .fd = u->srv->stop_fd[0], .events = POLLIN },
  };
  while (atomic_load (&u->released) < k)
  {
    if (poll (p, 2, u->p.idle_ms) <= 0 || 0 != p[1].revents)
      return false;
    while (read (u->release_fd[0], drop, sizeof (drop)) > 0)
      ;
  }
  return true;
}


static void
report_shutdown (struct upgraded *u, int how, int r)
{
  int err = errno; /* shutdown()'s, before the event's calls */
  struct event e;
  ev_begin (&e, "shutdown", u->rid);
  ev_str (&e, "how", SHUT_RD == how ? "SHUT_RD" : SHUT_WR == how ? "SHUT_WR" : "SHUT_RDWR");
  ev_bool (&e, "result", 0 == r);
  ev_int (&e, "errno", 0 == r ? 0 : err);
  ev_end (&e);
}


/* Half-close: send n pattern bytes, shutdown(SHUT_WR), then keep reading,
 * reporting each arrival, so the client can prove the other direction is
 * still open; CLOSE after the client's end of stream or, with until=N, N
 * bytes read (event recv_end says which, as echo_end does). */
static void
run_shutdown (struct upgraded *u)
{
  char buf[65536];
  uint64_t total = 0;
  const char *how = NULL;

  if (send_pattern (u, u->p.n))
  {
    struct event e;
    report_shutdown (u, SHUT_WR, shutdown (u->sock, SHUT_WR));
    while (NULL == how)
    {
      ssize_t n = recv_input (u, buf, sizeof (buf), total, &how);
      if (0 == n)
        break;
      total += (uint64_t) n;
      ev_begin (&e, "received", u->rid);
      ev_int (&e, "total", (long long) total);
      ev_end (&e);
    }
    ev_begin (&e, "recv_end", u->rid);
    ev_str (&e, "how", how);
    ev_int (&e, "bytes", (long long) total);
    ev_end (&e);
  }
}


/* U-HALF-4: n pattern bytes, then shutdown(sock, SHUT_RDWR); then waits
 * (idle= at most) until the client, having seen the end, says so (GET
 * /release?of=RID), and CLOSEs: a CLOSE after the application shut its
 * socket down both ways. */
static void
run_shutdown_both (struct upgraded *u)
{
  if (send_pattern (u, u->p.n))
  {
    report_shutdown (u, SHUT_RDWR, shutdown (u->sock, SHUT_RDWR));
    (void) wait_released (u, 1);
  }
}


/* n pattern bytes, then no CLOSE until released or the server stops:
 * U-STOP-2 stops the daemon while the client has read none of them. */
static void
run_send_wait (struct upgraded *u)
{
  if (send_pattern (u, u->p.n))
    (void) wait_released (u, 1);
}


/* U-HALF-3 the other way: shutdown(sock, SHUT_RD); once released (the
 * client has sent after it, bytes that sock refuses: over HTTPS MHD's send
 * to the socket pair fails with EPIPE), n pattern bytes; once released
 * again (the client has them all), CLOSE. The second wait keeps the CLOSE,
 * and over plain HTTP the reset that closing a socket with unread bytes
 * sends, behind the client's read. */
static void
run_shutdown_read (struct upgraded *u)
{
  report_shutdown (u, SHUT_RD, shutdown (u->sock, SHUT_RD));
  if (wait_released (u, 1) && send_pattern (u, u->p.n))
    (void) wait_released (u, 2);
}


/* CORK_ON, n bytes, CORK_OFF, each with TCP_CORK of the client's TCP
 * socket (and of sock, which over HTTPS is not that socket) as seen right
 * after; then echo, so the client decides when it ends. */
static void
run_cork (struct upgraded *u)
{
  struct event e;
  enum MHD_Result on, off;
  long long cork_before = sockopt (u->tcp_fd, IPPROTO_TCP, TCP_CORK);
  on = action (u, MHD_UPGRADE_ACTION_CORK_ON, "cork_on");
  long long cork_on = sockopt (u->tcp_fd, IPPROTO_TCP, TCP_CORK);
  long long sock_cork_on = sockopt (u->sock, IPPROTO_TCP, TCP_CORK);
  bool sent = send_pattern (u, u->p.n);
  off = action (u, MHD_UPGRADE_ACTION_CORK_OFF, "cork_off");
  long long cork_off = sockopt (u->tcp_fd, IPPROTO_TCP, TCP_CORK);
  long long sock_cork_off = sockopt (u->sock, IPPROTO_TCP, TCP_CORK);
  ev_begin (&e, "cork", u->rid);
  ev_bool (&e, "on_result", MHD_YES == on);
  ev_bool (&e, "off_result", MHD_YES == off);
  ev_bool (&e, "sock_is_tcp_socket", u->sock == u->tcp_fd);
  ev_int (&e, "tcp_cork_before", cork_before);
  ev_int (&e, "tcp_cork_after_on", cork_on);
  ev_int (&e, "tcp_cork_after_off", cork_off);
  ev_int (&e, "sock_cork_after_on", sock_cork_on);
  ev_int (&e, "sock_cork_after_off", sock_cork_off);
  ev_end (&e);
  if (sent)
    echo_until_eof (u);
}


/* 0, or the errno of a failed call. */
static long long
call_errno (int r)
{
  return 0 == r ? 0 : (long long) errno;
}


/* U-SOCK-3: what TCP-level socket options and ioctl() do on sock, and
 * whether they reach the client's TCP socket; then echo. Each value is the
 * option (or -1 - errno when getsockopt failed), each call's result 0 or
 * its errno. */
static void
run_sockopts (struct upgraded *u)
{
  struct event e;
  int one = 1;
  int queued = -1;
  long long tcp_nodelay_before = sockopt (u->tcp_fd, IPPROTO_TCP, TCP_NODELAY);
  long long tcp_keepalive_before = sockopt (u->tcp_fd, SOL_SOCKET,
                                            SO_KEEPALIVE);
  long long get_nodelay = sockopt (u->sock, IPPROTO_TCP, TCP_NODELAY);
  long long set_nodelay = call_errno (setsockopt (u->sock, IPPROTO_TCP,
                                                  TCP_NODELAY, &one,
                                                  sizeof (one)));
  long long set_keepalive = call_errno (setsockopt (u->sock, SOL_SOCKET,
                                                    SO_KEEPALIVE, &one,
                                                    sizeof (one)));
  long long fionread = call_errno (ioctl (u->sock, FIONREAD, &queued));
  struct sockaddr_storage ss;
  socklen_t sslen = sizeof (ss);
  ev_begin (&e, "sockopts", u->rid);
  ev_bool (&e, "sock_is_tcp_socket", u->sock == u->tcp_fd);
  ev_int (&e, "family", 0 == getsockname (u->sock, (struct sockaddr *) &ss,
                                          &sslen) ? ss.ss_family : -1);
  ev_int (&e, "getsockopt_tcp_nodelay", get_nodelay);
  ev_int (&e, "setsockopt_tcp_nodelay", set_nodelay);
  ev_int (&e, "setsockopt_so_keepalive", set_keepalive);
  ev_int (&e, "ioctl_fionread", fionread);
  ev_int (&e, "tcp_nodelay_before", tcp_nodelay_before);
  ev_int (&e, "tcp_nodelay_after", sockopt (u->tcp_fd, IPPROTO_TCP,
                                            TCP_NODELAY));
  ev_int (&e, "tcp_keepalive_before", tcp_keepalive_before);
  ev_int (&e, "tcp_keepalive_after", sockopt (u->tcp_fd, SOL_SOCKET,
                                              SO_KEEPALIVE));
  ev_end (&e);
  echo_until_eof (u);
}


/* Misuse of MHD_upgrade_action: an action that does not exist and a NULL
 * handle. Then echo, so the client can check nothing changed. */
static void
run_bad_action (struct upgraded *u)
{
  struct event e;
  enum MHD_Result unknown, null_handle;
  unknown = MHD_upgrade_action (u->urh, (enum MHD_UpgradeAction) 0x7f);
  null_handle = MHD_upgrade_action (NULL, MHD_UPGRADE_ACTION_CLOSE);
  ev_begin (&e, "bad_action", u->rid);
  ev_bool (&e, "unknown_action_result", MHD_YES == unknown);
  ev_bool (&e, "null_handle_result", MHD_YES == null_handle);
  ev_end (&e);
  echo_until_eof (u);
}


/* U-CB-1: waits (at most idle= ms, which the case scales) inside the
 * handler for the client's answer to the 101, which it can only send once
 * the whole 101 arrived. */
static void
in_handler_wait_reply (struct upgraded *u)
{
  struct pollfd p = { .fd = u->sock, .events = POLLIN };
  char buf[256];
  ssize_t n = 0;
  struct event e;
  int r = poll (&p, 1, u->p.idle_ms);
  if (r > 0)
    n = recv (u->sock, buf, sizeof (buf), 0);
  ev_begin (&e, "reply_in_handler", u->rid);
  ev_bool (&e, "got_reply", n > 0);
  ev_strn (&e, "reply", buf, n > 0 ? (size_t) n : 0);
  ev_end (&e);
}


/* U-CB-1 over TLS (thread per connection): waits (idle= ms at most) inside
 * the handler for the client's answer to the 101 on a connection of its
 * own (GET /release?of=RID), sent once the whole 101 arrived. */
static void
in_handler_wait_release (struct upgraded *u)
{
  struct event e;
  bool released = wait_released (u, 1);
  ev_begin (&e, "reply_in_handler", u->rid);
  ev_bool (&e, "got_reply", released);
  ev_strn (&e, "reply", "", 0);
  ev_end (&e);
}


/* U-CB-6 (thread-per-connection modes): the whole echo inside the handler. */
static void
in_handler_echo (struct upgraded *u)
{
  echo_until_eof (u);
}


static void
in_handler_send (struct upgraded *u)
{
  run_send (u);
}


/* U-SUSP-2: MHD_suspend_connection() on the upgraded connection, from the
 * handler (MHD's own thread); the worker then echoes as usual. */
static void
in_handler_suspend (struct upgraded *u)
{
  struct event e;
  MHD_suspend_connection (u->connection);
  ev_begin (&e, "suspend_called", u->rid);
  ev_end (&e);
}


/* U-SUSP-2 after the handler returned: MHD_suspend_connection() from the
 * application's thread, once the client released it (GET /release?of=RID,
 * sent after it saw the handler_returned event; idle= ms at most), then the
 * echo as usual. */
static void
run_suspend_after_handler (struct upgraded *u)
{
  struct event e;
  bool released = wait_released (u, 1);
  if (released)
    MHD_suspend_connection (u->connection);
  ev_begin (&e, "suspend_called", u->rid);
  ev_bool (&e, "released", released);
  ev_end (&e);
  echo_until_eof (u);
}


/* /ws: a WebSocket echo endpoint (websocket.c). */
static void
run_ws (struct upgraded *u)
{
  ws_echo (u->sock, u->extra_in, u->extra_in_size, u->p.idle_ms,
           u->srv->stop_fd[0], u->rid);
}


/* The counted stream (harness/client.py: counted): in every 4 KiB block
 * an 8-byte big-endian block number, then the pattern. Unlike the pattern
 * alone it has no period, so a lost, repeated or reordered piece of any
 * size shows, at the latest at the next block number. @a origin shifts the stream (the block
 * numbers too), so that the two directions differ. */
static unsigned char
counted_byte (uint64_t i)
{
  uint64_t block = i / 4096;
  unsigned int at = (unsigned int) (i % 4096);
  if (at < 8)
    return (unsigned char) (block >> (8 * (7 - at)));
  return pattern_byte (block + at);
}


static void
fill_counted (unsigned char *buf, size_t len, uint64_t origin)
{
  for (size_t i = 0; i < len; i++)
    buf[i] = counted_byte (origin + i);
}


/* sockbuf=B: the application shrinks (or grows) the buffers of its own
 * socket, as an application may; reports what the kernel made of it. */
static void
set_sockbuf (struct upgraded *u)
{
  struct event e;
  int v = u->p.sockbuf;
  int snd = setsockopt (u->sock, SOL_SOCKET, SO_SNDBUF, &v, sizeof (v));
  int rcv = setsockopt (u->sock, SOL_SOCKET, SO_RCVBUF, &v, sizeof (v));
  ev_begin (&e, "sockbuf", u->rid);
  ev_int (&e, "asked", v);
  ev_int (&e, "sndbuf", 0 == snd ? sockopt (u->sock, SOL_SOCKET, SO_SNDBUF)
          : -1 - (long long) errno);
  ev_int (&e, "rcvbuf", 0 == rcv ? sockopt (u->sock, SOL_SOCKET, SO_RCVBUF)
          : -1 - (long long) errno);
  ev_end (&e);
}


/* The pressure script's state (run_pressure). */
struct pressure
{
  struct upgraded *u;
  uint64_t got, sent;          /* input read, output sent */
  uint64_t read_mark;          /* input read when the last read hold ended */
  uint64_t out_budget;         /* output allowed until the next write hold */
  unsigned char out[65536];    /* the output's next piece */
  size_t out_at, out_len;
  long long mismatch;          /* first input offset that differs, -1 */
  unsigned int rk, wk;         /* holds begun so far, per direction */
  bool read_held;              /* not reading until the client releases */
  bool write_held;             /* waiting for the client to stop reading */
  bool filling;                /* ... it has: sending until blocked */
  bool out_ended;              /* the output is over (event enough) */
  const char *how;             /* why it ended; NULL while it runs */
};


static void
report_hold (struct pressure *ps, const char *ev, const char *dir,
             unsigned int k)
{
  struct event e;
  ev_begin (&e, ev, ps->u->rid);
  if (NULL != dir)
    ev_str (&e, "dir", dir);
  ev_int (&e, "k", k);
  ev_int (&e, "read", (long long) ps->got);
  ev_int (&e, "sent", (long long) ps->sent);
  ev_end (&e);
}


static bool
read_hold_due (const struct pressure *ps)
{
  const struct script_params *p = &ps->u->p;
  return 0 != (p->hold & HOLD_READ) && ! ps->read_held && ps->rk < p->pauses
         && ps->got >= ps->read_mark + atomic_load (&ps->u->step);
}


/* Reads what is there (up to the next read hold point, or the end the
 * client named), checking it against the client's counted stream. */
static void
pressure_read (struct pressure *ps)
{
  struct upgraded *u = ps->u;
  unsigned char in[65536];
  for (;;)
  {
    uint64_t end = atomic_load (&u->input_end);
    if (ps->got >= end || read_hold_due (ps))
      return;
    ssize_t n = recv (u->sock, in, end - ps->got < sizeof (in)
                      ? (size_t) (end - ps->got) : sizeof (in), 0);
    if (n > 0)
    {
      for (ssize_t i = 0; i < n && ps->mismatch < 0; i++)
        if (in[i] != counted_byte (u->p.inoff + ps->got + (uint64_t) i))
          ps->mismatch = (long long) (ps->got + (uint64_t) i);
      ps->got += (uint64_t) n;
      continue;
    }
    if (0 == n)
      ps->how = "eof";
    else if (EAGAIN != errno && EWOULDBLOCK != errno && EINTR != errno)
    {
      report_errno (u, "recv", errno);
      ps->how = "error";
    }
    return;
  }
}


/* Sends until the socket takes no more, or up to the output's budget
 * (while filling during a write hold: without limit). */
static void
pressure_send (struct pressure *ps)
{
  struct upgraded *u = ps->u;
  for (;;)
  {
    if (0 == ps->out_len)
    {
      if (ps->out_ended || ps->write_held
          || (! ps->filling && ps->sent >= ps->out_budget))
        return;
      ps->out_len = sizeof (ps->out);
      ps->out_at = 0;
      fill_counted (ps->out, ps->out_len, ps->sent);
    }
    ssize_t n = send (u->sock, ps->out + ps->out_at,
                      ps->out_len - ps->out_at, MSG_NOSIGNAL);
    if (n > 0)
    {
      ps->sent += (uint64_t) n;
      ps->out_at += (size_t) n;
      if (ps->out_at == ps->out_len)
        ps->out_len = 0;
      continue;
    }
    if (n < 0 && (EAGAIN == errno || EWOULDBLOCK == errno))
    {
      if (ps->filling)
      {
        /* The application's sending has stopped: the path is full. */
        struct event e;
        ps->filling = false;
        ps->out_budget = ps->sent + atomic_load (&u->step);
        ev_begin (&e, "write_held", u->rid);
        ev_int (&e, "k", ps->wk);
        ev_int (&e, "sent", (long long) ps->sent);
        ev_end (&e);
      }
    }
    else if (n < 0 && EINTR != errno)
    {
      report_errno (u, "send", errno);
      ps->how = "error";
    }
    return;
  }
}


/* Begins and ends holds as the streams reach their points. */
static void
pressure_holds (struct pressure *ps)
{
  struct upgraded *u = ps->u;
  const struct script_params *p = &u->p;
  if (read_hold_due (ps))
  {
    ps->read_held = true;
    report_hold (ps, "hold", "read", ++ps->rk);
  }
  if (ps->read_held && atomic_load (&u->released) >= ps->rk)
  {
    ps->read_held = false;
    ps->read_mark = ps->got;
    report_hold (ps, "released", NULL, ps->rk);
  }
  if (! ps->out_ended && ! ps->write_held && ! ps->filling
      && 0 == ps->out_len && ps->sent >= ps->out_budget)
  {
    if (0 != (p->hold & HOLD_WRITE) && ps->wk < p->pauses)
    {
      /* Asks the client to stop reading; fills once it says it has. */
      ps->write_held = true;
      report_hold (ps, "hold", "write", ++ps->wk);
    }
    else if (0 == (p->hold & HOLD_WRITE) && ps->wk < p->pauses)
    {
      ps->wk++; /* no write holds: the output is pauses+1 steps */
      ps->out_budget += atomic_load (&u->step);
    }
    else
    {
      struct event e;
      ps->out_ended = true;
      ev_begin (&e, "enough", u->rid);
      ev_int (&e, "read", (long long) ps->got);
      ev_int (&e, "sent", (long long) ps->sent);
      ev_end (&e);
    }
  }
  if (ps->write_held && atomic_load (&u->acked) >= ps->wk)
  {
    ps->write_held = false;
    ps->filling = true;
    /* The socket may be full already: then no POLLOUT would come to tell
     * that the sending has stopped. Try now. */
    pressure_send (ps);
  }
}


/* U-SOCK-4, backpressure. Sends the counted stream and reads the client's
 * (checking it against the counted stream from inoff= on), both at once,
 * never blocking one direction on the other. Each hold fills the whole
 * path between the side that stops reading and the writer, which always
 * has more to send; between holds each stream moves a step (n=, and from
 * the client's next /release?...&n=N on, N: the client makes it what the
 * path held, so that every buffer drains between two fills):
 *   hold=read: after each n= bytes read it stops reading (event hold, dir
 *     read) until the client, its own sending blocked, releases it (GET
 *     /release?of=RID; event released);
 *   hold=write: after each n= bytes sent it asks the client to stop
 *     reading (event hold, dir write); once the client says it has (GET
 *     /release?of=RID&hold=write) it sends until its socket takes no more
 *     (event write_held), and the client reads again;
 *   hold=both: both, each at its own points.
 * After pauses= holds and n= more bytes its output ends (event enough,
 * with its length); its input ends where the client says (GET
 * /release?of=RID&sent=N). Then pressure_end: how, bytes read and sent,
 * the offset of the first input byte that differs from the counted
 * stream (-1: none). */
static void
run_pressure (struct upgraded *u)
{
  struct pressure *ps = calloc (1, sizeof (*ps));
  struct event e;
  char drop[64];
  if (NULL == ps)
  {
    report_errno (u, "calloc", ENOMEM);
    return;
  }
  ps->u = u;
  ps->mismatch = -1;
  ps->out_budget = atomic_load (&u->step);
  /* extra_in is input like any other (the cases send nothing eagerly). */
  for (size_t i = 0; i < u->extra_in_size && ps->mismatch < 0; i++)
    if ((unsigned char) u->extra_in[i] != counted_byte (u->p.inoff + i))
      ps->mismatch = (long long) i;
  ps->got = u->extra_in_size;
  while (NULL == ps->how)
  {
    pressure_holds (ps);
    if (NULL != ps->how)
      break;
    uint64_t input_end = atomic_load (&u->input_end);
    if (ps->out_ended && 0 == ps->out_len && ps->got >= input_end)
    {
      ps->how = ps->got == input_end ? "done" : "overrun";
      break;
    }
    bool more_out = ! ps->out_ended && ! ps->write_held
                    && (ps->filling || 0 != ps->out_len
                        || ps->sent < ps->out_budget);
    struct pollfd fds[3] = {
      { .fd = u->sock,
        .events = (short) ((! ps->read_held && ps->got < input_end
                            ? POLLIN : 0) | (more_out ? POLLOUT : 0)) },
      { .fd = u->srv->stop_fd[0], .events = POLLIN },
      { .fd = u->release_fd[0], .events = POLLIN },
    };
    int r = poll (fds, 3, u->p.idle_ms);
    if (r < 0 && EINTR == errno)
      continue;
    if (r <= 0)
    {
      if (r < 0)
        report_errno (u, "poll", errno);
      ps->how = 0 == r ? "idle" : "error";
      break;
    }
    if (0 != fds[2].revents)
      while (read (u->release_fd[0], drop, sizeof (drop)) > 0)
        ;
    if (0 != fds[1].revents)
      ps->how = "server-stop";
    else if (0 != (fds[0].revents & POLLERR))
      ps->how = "error";
    else
    {
      if (0 != (fds[0].revents & (POLLIN | POLLHUP)) && ! ps->read_held)
        pressure_read (ps);
      if (NULL == ps->how && 0 != (fds[0].revents & POLLOUT))
        pressure_send (ps);
    }
  }
  ev_begin (&e, "pressure_end", u->rid);
  ev_str (&e, "how", ps->how);
  ev_int (&e, "read", (long long) ps->got);
  ev_int (&e, "sent", (long long) ps->sent);
  ev_int (&e, "first_mismatch", ps->mismatch);
  ev_int (&e, "holds_read", ps->rk);
  ev_int (&e, "holds_write", ps->wk);
  ev_end (&e);
  free (ps);
}


static const struct script scripts[] = {
  { "echo", NULL, &echo_until_eof },
  { "close", NULL, &run_nothing },
  { "close-in-handler", &in_handler_send, NULL },
  { "send-close", NULL, &run_send },
  { "send-wait", NULL, &run_send_wait },
  { "shutdown", NULL, &run_shutdown },
  { "cork", NULL, &run_cork },
  { "sockopts", NULL, &run_sockopts },
  { "bad-action", NULL, &run_bad_action },
  { "wait-in-handler", &in_handler_wait_reply, NULL },
  { "wait-release-in-handler", &in_handler_wait_release, NULL },
  { "block-in-handler", &in_handler_echo, NULL },
  { "suspend-upgraded", &in_handler_suspend, &echo_until_eof },
  { "suspend-after-handler", NULL, &run_suspend_after_handler },
  { "ws", NULL, &run_ws },
  { "pressure", NULL, &run_pressure },
  { "shutdown-both", NULL, &run_shutdown_both },
  { "shutdown-read", NULL, &run_shutdown_read },
};


const struct script *
script_find (const char *name)
{
  for (size_t i = 0; i < sizeof (scripts) / sizeof (scripts[0]); i++)
    if (0 == strcmp (scripts[i].name, name))
      return &scripts[i];
  return NULL;
}


static void
upgraded_free (struct upgraded *u)
{
  struct upgraded **pp;
  pthread_mutex_lock (&u->srv->lock);
  for (pp = &live; NULL != *pp; pp = &(*pp)->next)
    if (*pp == u)
    {
      *pp = u->next;
      break;
    }
  pthread_mutex_unlock (&u->srv->lock);
  if (-1 != u->release_fd[0])
  {
    close (u->release_fd[0]);
    close (u->release_fd[1]);
  }
  free (u->extra_in);
  free (u);
}


bool
upgraded_release (struct server *srv, const char *rid, bool write_hold,
                  uint64_t step, uint64_t input_end)
{
  bool found = false;
  pthread_mutex_lock (&srv->lock);
  for (struct upgraded *u = live; NULL != u; u = u->next)
    if (0 == strcmp (u->rid, rid) && -1 != u->release_fd[1])
    {
      if (0 != step)
        atomic_store (&u->step, step);
      if (UINT64_MAX != input_end)
        atomic_store (&u->input_end, input_end);
      else
        atomic_fetch_add (write_hold ? &u->acked : &u->released, 1);
      (void) ! write (u->release_fd[1], "r", 1);
      found = true;
    }
  pthread_mutex_unlock (&srv->lock);
  return found;
}


static void *
script_thread (void *arg)
{
  struct upgraded *u = arg;
  struct server *srv = u->srv;
  current_rid = u->rid;
  if (0 != u->p.sockbuf)
    set_sockbuf (u);
  u->script->run (u);
  action (u, MHD_UPGRADE_ACTION_CLOSE, "close");
  upgraded_free (u);
  pthread_mutex_lock (&srv->lock);
  if (0 == --srv->workers)
    pthread_cond_broadcast (&srv->workers_idle);
  pthread_mutex_unlock (&srv->lock);
  return NULL;
}


static void
report_handler_call (struct conn *c, const void *cls, const void *req_cls,
                     const char *extra_in, size_t extra_in_size,
                     MHD_socket sock)
{
  struct event e;
  unsigned char digest[32];
  struct sockaddr_storage ss;
  socklen_t sslen = sizeof (ss);
  int fl = fcntl (sock, F_GETFL);
  int fdfl = fcntl (sock, F_GETFD);

  ev_begin (&e, "upgraded", c->rid);
  ev_bool (&e, "cls_ok", cls == c->expected_cls);
  ev_bool (&e, "req_cls_ok", NULL != c->req && req_cls == (void *) c->req);
  ev_int (&e, "extra_in_size", (long long) extra_in_size);
  gnutls_hash_fast (GNUTLS_DIG_SHA256, extra_in, extra_in_size, digest);
  ev_hex (&e, "extra_in_sha256", digest, sizeof (digest));
  /* The first bytes in full, for small eager sends and for the report. */
  ev_hex (&e, "extra_in_head", extra_in,
          extra_in_size < 256 ? extra_in_size : 256);
  ev_int (&e, "sock", (long long) sock);
  ev_bool (&e, "nonblocking", fl >= 0 && 0 != (fl & O_NONBLOCK));
  ev_bool (&e, "cloexec", fdfl >= 0 && 0 != (fdfl & FD_CLOEXEC));
  if (0 == getsockname (sock, (struct sockaddr *) &ss, &sslen))
    ev_int (&e, "family", ss.ss_family);
  ev_int (&e, "tcp_nodelay", sockopt (sock, IPPROTO_TCP, TCP_NODELAY));
  ev_int (&e, "tcp_cork", sockopt (sock, IPPROTO_TCP, TCP_CORK));
  ev_int (&e, "tid", (long long) syscall (SYS_gettid));
  ev_bool (&e, "same_thread_as_access_handler",
           (long long) syscall (SYS_gettid) == c->access_tid);
  ev_end (&e);
}


/* The connection's own TCP socket, asked inside the handler. */
static MHD_socket
tcp_socket_of (struct MHD_Connection *connection, MHD_socket fallback)
{
  const union MHD_ConnectionInfo *ci =
    MHD_get_connection_info (connection, MHD_CONNECTION_INFO_CONNECTION_FD);
  return NULL == ci ? fallback : ci->connect_fd;
}


/* U-CB-7: whether the request as MHD shows it inside the handler is still
 * what the access handler saw: the URL MHD gave it, headers, arguments. */
static void
report_request_view (struct conn *c, struct MHD_Connection *connection)
{
  struct event e;
  struct request_view now;
  const struct request *r = c->req;
  if (NULL == r)
    return;
  request_view (connection, &now);
  ev_begin (&e, "handler_view", c->rid);
  ev_bool (&e, "url_intact", NULL != r->url_copy
           && 0 == strcmp (r->url, r->url_copy));
  ev_str (&e, "url", r->url);
  ev_bool (&e, "headers_intact", now.header_count == r->view.header_count
           && 0 == memcmp (now.headers, r->view.headers, 32));
  ev_int (&e, "header_count", now.header_count);
  ev_bool (&e, "args_intact", now.arg_count == r->view.arg_count
           && 0 == memcmp (now.args, r->view.args, 32));
  ev_int (&e, "arg_count", now.arg_count);
  ev_end (&e);
}


/* U-CB-4: what the connection handle still says inside the handler. */
static void
report_connection_handle (struct conn *c, struct MHD_Connection *connection)
{
  struct event e;
  const union MHD_ConnectionInfo *ci =
    MHD_get_connection_info (connection, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
  const char *rid = MHD_lookup_connection_value (connection, MHD_HEADER_KIND,
                                                 RID_HEADER);
  long long port = -1;
  if (NULL != ci && NULL != ci->client_addr
      && AF_INET == ci->client_addr->sa_family)
    port = ntohs (((const struct sockaddr_in *) ci->client_addr)->sin_port);
  ev_begin (&e, "handler_connection", c->rid);
  ev_int (&e, "peer_port", port);
  ev_str (&e, "rid_header", rid);
  ev_end (&e);
}


static void
handle_upgrade (void *cls, struct MHD_Connection *connection, void *req_cls,
                const char *extra_in, size_t extra_in_size,
                MHD_socket sock, struct MHD_UpgradeResponseHandle *urh);


void
upgrade_handler (void *cls, struct MHD_Connection *connection, void *req_cls,
                 const char *extra_in, size_t extra_in_size,
                 MHD_socket sock, struct MHD_UpgradeResponseHandle *urh)
{
  const struct conn *c = conn_of (connection);
  /* MHD's log lines meanwhile belong to this request. */
  const char *outer = current_rid;
  /* A copy: a CLOSE inside the handler may end the connection's context. */
  char rid[RID_MAX];
  struct event e;
  snprintf (rid, sizeof (rid), "%s", NULL == c ? "" : c->rid);
  current_rid = NULL == c ? NULL : rid;
  handle_upgrade (cls, connection, req_cls, extra_in, extra_in_size, sock,
                  urh);
  ev_begin (&e, "handler_returned", current_rid);
  ev_end (&e);
  current_rid = outer;
}


/* The upgraded connection's state for its script, owned by the script
 * from now on; NULL when out of memory. */
static struct upgraded *
upgraded_new (struct conn *c, struct MHD_Connection *connection,
              const char *extra_in, size_t extra_in_size, MHD_socket sock,
              struct MHD_UpgradeResponseHandle *urh)
{
  struct upgraded *u = calloc (1, sizeof (*u));
  if (NULL != u && extra_in_size > 0)
  {
    u->extra_in = malloc (extra_in_size);
    if (NULL == u->extra_in)
    {
      free (u);
      return NULL;
    }
    memcpy (u->extra_in, extra_in, extra_in_size);
  }
  if (NULL == u)
    return NULL;
  u->srv = c->srv;
  u->release_fd[0] = u->release_fd[1] = -1;
  atomic_init (&u->released, 0);
  atomic_init (&u->acked, 0);
  atomic_init (&u->step, (uint64_t) c->p.n);
  atomic_init (&u->input_end, UINT64_MAX);
  atomic_fetch_add (&u->srv->live_handles, 1);
  memcpy (u->rid, c->rid, sizeof (u->rid));
  u->script = c->then;
  u->p = c->p;
  u->sock = sock;
  u->tcp_fd = tcp_socket_of (connection, sock);
  u->urh = urh;
  u->connection = connection;
  u->extra_in_size = extra_in_size;
  if (0 != pipe2 (u->release_fd, O_CLOEXEC | O_NONBLOCK))
    u->release_fd[0] = u->release_fd[1] = -1;
  pthread_mutex_lock (&u->srv->lock);
  u->next = live;
  live = u;
  pthread_mutex_unlock (&u->srv->lock);
  return u;
}


/* Runs the script: its part in the handler, then its thread, which CLOSEs
 * at the end; a script with no thread CLOSEs here, in the handler. */
static void
script_start (struct upgraded *u)
{
  pthread_t t;
  pthread_attr_t attr;
  if (NULL != u->script->in_handler)
    u->script->in_handler (u);
  if (NULL == u->script->run)
  {
    action (u, MHD_UPGRADE_ACTION_CLOSE, "close");
    upgraded_free (u);
    return;
  }
  pthread_mutex_lock (&u->srv->lock);
  u->srv->workers++;
  pthread_mutex_unlock (&u->srv->lock);
  pthread_attr_init (&attr);
  pthread_attr_setdetachstate (&attr, PTHREAD_CREATE_DETACHED);
  int err = pthread_create (&t, &attr, &script_thread, u);
  pthread_attr_destroy (&attr);
  if (0 != err)
  {
    report_errno (u, "pthread_create", err);
    action (u, MHD_UPGRADE_ACTION_CLOSE, "close");
    pthread_mutex_lock (&u->srv->lock);
    if (0 == --u->srv->workers)
      pthread_cond_broadcast (&u->srv->workers_idle);
    pthread_mutex_unlock (&u->srv->lock);
    upgraded_free (u);
  }
}


/* Reports what the handler was given, then hands the connection to its
 * script. */
static void
handle_upgrade (void *cls, struct MHD_Connection *connection, void *req_cls,
                const char *extra_in, size_t extra_in_size,
                MHD_socket sock, struct MHD_UpgradeResponseHandle *urh)
{
  /* The connection context, not cls or req_cls, says what to do: those two
   * are what this handler checks. */
  struct conn *c = conn_of (connection);
  struct upgraded *u;
  struct event e;

  if (NULL == c)
  {
    /* Cannot happen unless MHD lost our socket context; still close. */
    ev_begin (&e, "upgraded_without_context", NULL);
    ev_end (&e);
    MHD_upgrade_action (urh, MHD_UPGRADE_ACTION_CLOSE);
    return;
  }
  report_handler_call (c, cls, req_cls, extra_in, extra_in_size, sock);
  report_connection_handle (c, connection);
  report_request_view (c, connection);
  u = upgraded_new (c, connection, extra_in, extra_in_size, sock, urh);
  if (NULL == u)
  {
    ev_begin (&e, "out_of_memory", c->rid);
    ev_end (&e);
    MHD_upgrade_action (urh, MHD_UPGRADE_ACTION_CLOSE);
    return;
  }
  script_start (u);
}


bool
upgraded_wait_idle (struct server *srv, int timeout_ms)
{
  struct timespec until;
  bool idle;
  clock_gettime (CLOCK_REALTIME, &until);
  until.tv_sec += timeout_ms / 1000;
  until.tv_nsec += (long) (timeout_ms % 1000) * 1000000L;
  if (until.tv_nsec >= 1000000000L)
  {
    until.tv_sec++;
    until.tv_nsec -= 1000000000L;
  }
  pthread_mutex_lock (&srv->lock);
  while (0 != srv->workers)
    if (0 != pthread_cond_timedwait (&srv->workers_idle, &srv->lock, &until))
      break;
  idle = (0 == srv->workers);
  pthread_mutex_unlock (&srv->lock);
  return idle;
}
