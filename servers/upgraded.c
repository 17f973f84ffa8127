/* What the reference server does with an upgraded connection: the upgrade
 * handler reports its arguments, then a script chosen by the request
 * (query parameter "then") drives the socket. Scripts run on a thread of
 * their own, so MHD's event loop is never blocked, except the few whose
 * point is to act inside the handler. Every script ends with
 * MHD_UPGRADE_ACTION_CLOSE. */
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
  size_t n;
  uint64_t until;
  int idle_ms;
  const char *stopped_by; /* why the last wait or transfer failed */
  MHD_socket sock;
  /* The client's TCP socket as MHD holds it: the same as sock over plain
   * HTTP; over HTTPS MHD pumps TLS between it and a socket pair. */
  MHD_socket tcp_fd;
  struct MHD_UpgradeResponseHandle *urh;
  struct MHD_Connection *connection;
  char *extra_in;
  size_t extra_in_size;
};

struct script
{
  const char *name;
  /* Runs inside the upgrade handler, on MHD's thread (may be NULL). */
  void (*in_handler) (struct upgraded *u);
  /* Then runs on a thread of its own (NULL: the script is done). */
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
    int r = poll (p, 2, u->idle_ms);
    if (r < 0 && EINTR == errno)
      continue;
    if (0 == r)
    {
      struct event e;
      ev_begin (&e, "idle_timeout", u->rid);
      ev_int (&e, "ms", u->idle_ms);
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
  if (MHD_UPGRADE_ACTION_CLOSE == a)
  {
    if (MHD_YES == r)
      atomic_fetch_sub (&u->srv->live_handles, 1);
    server_wake (u->srv);
  }
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
  if (0 != u->until && total >= u->until)
  {
    *how = "until";
    return 0;
  }
  if (0 != u->until && u->until - total < cap)
    cap = (size_t) (u->until - total);
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


static void
run_echo (struct upgraded *u)
{
  echo_until_eof (u);
  action (u, MHD_UPGRADE_ACTION_CLOSE, "close");
}


static void
run_close (struct upgraded *u)
{
  action (u, MHD_UPGRADE_ACTION_CLOSE, "close");
}


static void
run_send_close (struct upgraded *u)
{
  send_pattern (u, u->n);
  action (u, MHD_UPGRADE_ACTION_CLOSE, "close");
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

  if (send_pattern (u, u->n))
  {
    int r = shutdown (u->sock, SHUT_WR);
    struct event e;
    ev_begin (&e, "shutdown", u->rid);
    ev_bool (&e, "result", 0 == r);
    ev_int (&e, "errno", 0 == r ? 0 : errno);
    ev_end (&e);
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
  action (u, MHD_UPGRADE_ACTION_CLOSE, "close");
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
  bool sent = send_pattern (u, u->n);
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
  action (u, MHD_UPGRADE_ACTION_CLOSE, "close");
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
  action (u, MHD_UPGRADE_ACTION_CLOSE, "close");
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
  action (u, MHD_UPGRADE_ACTION_CLOSE, "close");
}


/* U-CB-1: waits (at most 2 s) inside the handler for the client's answer to
 * the 101, which it can only send once the whole 101 arrived. */
static void
in_handler_wait_reply (struct upgraded *u)
{
  struct pollfd p = { .fd = u->sock, .events = POLLIN };
  char buf[256];
  ssize_t n = 0;
  struct event e;
  int r = poll (&p, 1, 2000);
  if (r > 0)
    n = recv (u->sock, buf, sizeof (buf), 0);
  ev_begin (&e, "reply_in_handler", u->rid);
  ev_bool (&e, "got_reply", n > 0);
  ev_strn (&e, "reply", buf, n > 0 ? (size_t) n : 0);
  ev_end (&e);
  action (u, MHD_UPGRADE_ACTION_CLOSE, "close");
}


/* U-CB-6 (thread-per-connection modes): the whole echo inside the handler. */
static void
in_handler_echo (struct upgraded *u)
{
  echo_until_eof (u);
  action (u, MHD_UPGRADE_ACTION_CLOSE, "close");
}


static void
in_handler_send_close (struct upgraded *u)
{
  run_send_close (u);
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


/* /ws: a WebSocket echo endpoint (websocket.c), then CLOSE. */
static void
run_ws (struct upgraded *u)
{
  ws_echo (u->sock, u->extra_in, u->extra_in_size, u->idle_ms,
           u->srv->stop_fd[0], u->rid);
  action (u, MHD_UPGRADE_ACTION_CLOSE, "close");
}


static const struct script scripts[] = {
  { "echo", NULL, &run_echo },
  { "close", NULL, &run_close },
  { "close-in-handler", &in_handler_send_close, NULL },
  { "send-close", NULL, &run_send_close },
  { "shutdown", NULL, &run_shutdown },
  { "cork", NULL, &run_cork },
  { "sockopts", NULL, &run_sockopts },
  { "bad-action", NULL, &run_bad_action },
  { "wait-in-handler", &in_handler_wait_reply, NULL },
  { "block-in-handler", &in_handler_echo, NULL },
  { "suspend-upgraded", &in_handler_suspend, &run_echo },
  { "ws", NULL, &run_ws },
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
  free (u->extra_in);
  free (u);
}


static void *
script_thread (void *arg)
{
  struct upgraded *u = arg;
  struct server *srv = u->srv;
  u->script->run (u);
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


void
upgrade_handler (void *cls, struct MHD_Connection *connection, void *req_cls,
                 const char *extra_in, size_t extra_in_size,
                 MHD_socket sock, struct MHD_UpgradeResponseHandle *urh)
{
  /* The connection context, not cls or req_cls, says what to do: those two
   * are what this handler checks. */
  struct conn *c = conn_of (connection);
  struct upgraded *u;
  pthread_t t;
  pthread_attr_t attr;

  if (NULL == c)
  {
    /* Cannot happen unless MHD lost our socket context; still close. */
    struct event e;
    ev_begin (&e, "upgraded_without_context", NULL);
    ev_end (&e);
    MHD_upgrade_action (urh, MHD_UPGRADE_ACTION_CLOSE);
    return;
  }
  report_handler_call (c, cls, req_cls, extra_in, extra_in_size, sock);
  report_connection_handle (c, connection);

  u = calloc (1, sizeof (*u));
  if (NULL != u && extra_in_size > 0)
  {
    u->extra_in = malloc (extra_in_size);
    if (NULL == u->extra_in)
    {
      free (u);
      u = NULL;
    }
    else
      memcpy (u->extra_in, extra_in, extra_in_size);
  }
  if (NULL == u)
  {
    struct event e;
    ev_begin (&e, "out_of_memory", c->rid);
    ev_end (&e);
    MHD_upgrade_action (urh, MHD_UPGRADE_ACTION_CLOSE);
    server_wake (c->srv);
    return;
  }
  u->srv = c->srv;
  atomic_fetch_add (&u->srv->live_handles, 1);
  memcpy (u->rid, c->rid, sizeof (u->rid));
  u->script = c->then;
  u->n = c->n;
  u->until = c->until;
  u->idle_ms = c->idle_ms;
  u->sock = sock;
  u->tcp_fd = tcp_socket_of (connection, sock);
  u->urh = urh;
  u->connection = connection;
  u->extra_in_size = extra_in_size;

  if (NULL != u->script->in_handler)
    u->script->in_handler (u);
  if (NULL == u->script->run)
  {
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
