/* The scripts for the upgraded socket, chosen by the request (query key
 * "then"): what each does between the upgrade handler's call and the
 * runner's CLOSE (upgraded.c). A script itself never closes. */
#define _GNU_SOURCE
#include "events.h"
#include "upgraded.h"
#include "websocket.h"

#include <errno.h>
#include <gnutls/crypto.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>


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
  on = upgraded_action (u, MHD_UPGRADE_ACTION_CORK_ON, "cork_on");
  long long cork_on = sockopt (u->tcp_fd, IPPROTO_TCP, TCP_CORK);
  long long sock_cork_on = sockopt (u->sock, IPPROTO_TCP, TCP_CORK);
  bool sent = send_pattern (u, u->p.n);
  off = upgraded_action (u, MHD_UPGRADE_ACTION_CORK_OFF, "cork_off");
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



static const struct script scripts[] = {
  { "echo", "echoes extra_in, then all it reads, until the client's end of stream (or until= bytes)",
    NULL, &echo_until_eof },
  { "close", "nothing: the runner's CLOSE at once, from the script's thread",
    NULL, &run_nothing },
  { "close-in-handler", "sends n= pattern bytes inside the handler, then CLOSEs there",
    &in_handler_send, NULL },
  { "send-close", "sends n= pattern bytes, then CLOSE",
    NULL, &run_send },
  { "send-wait", "sends n= pattern bytes, then no CLOSE until released or the server stops (U-STOP-2)",
    NULL, &run_send_wait },
  { "shutdown", "sends n= pattern bytes, shutdown(SHUT_WR), then reads until the client's end of stream (U-HALF-1/2)",
    NULL, &run_shutdown },
  { "cork", "CORK_ON, n= bytes, CORK_OFF, with TCP_CORK as seen after each; then echo (U-ACT-3)",
    NULL, &run_cork },
  { "sockopts", "TCP options and ioctl() on the upgraded socket, and whether they reach the TCP socket; then echo (U-SOCK-3)",
    NULL, &run_sockopts },
  { "bad-action", "MHD_upgrade_action with an unknown action and a NULL handle; then echo (U-ACT-4)",
    NULL, &run_bad_action },
  { "wait-in-handler", "waits inside the handler (idle= ms at most) for the client's answer to the 101 (U-CB-1)",
    &in_handler_wait_reply, NULL },
  { "wait-release-in-handler", "waits inside the handler for the client's answer on a connection of its own, /release (U-CB-1 over TLS)",
    &in_handler_wait_release, NULL },
  { "block-in-handler", "the whole echo inside the handler (U-CB-6)",
    &in_handler_echo, NULL },
  { "suspend-upgraded", "MHD_suspend_connection() on the upgraded connection inside the handler; then echo (U-SUSP-2)",
    &in_handler_suspend, &echo_until_eof },
  { "suspend-after-handler", "MHD_suspend_connection() from the script's thread once released; then echo (U-SUSP-2)",
    NULL, &run_suspend_after_handler },
  { "ws", "a WebSocket echo (websocket.c)",
    NULL, &run_ws },
  { "pressure", "both directions at once with holds that fill the path, checking the client's counted stream (U-SOCK-4, pressure.c)",
    NULL, &run_pressure },
  { "shutdown-both", "sends n= pattern bytes, shutdown(SHUT_RDWR), CLOSE once released (U-HALF-4)",
    NULL, &run_shutdown_both },
  { "shutdown-read", "shutdown(SHUT_RD); once released n= pattern bytes; once released again CLOSE (U-HALF-3)",
    NULL, &run_shutdown_read },
};


void
scripts_print (FILE *out, const char *format)
{
  for (size_t i = 0; i < sizeof (scripts) / sizeof (scripts[0]); i++)
    fprintf (out, format, scripts[i].name, scripts[i].description);
}


const struct script *
script_find (const char *name)
{
  for (size_t i = 0; i < sizeof (scripts) / sizeof (scripts[0]); i++)
    if (0 == strcmp (scripts[i].name, name))
      return &scripts[i];
  return NULL;
}
