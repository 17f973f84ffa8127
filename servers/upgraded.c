/* What the reference server does with an upgraded connection: the upgrade
 * handler reports its arguments, then a script chosen by the request
 * (query parameter "then", scripts.c) drives the socket. Scripts run on a
 * thread of their own, so MHD's event loop is never blocked, except the
 * few whose point is to act inside the handler. Every script ends with
 * MHD_UPGRADE_ACTION_CLOSE, which this runner (script_thread, or
 * handle_upgrade for a script that runs in the handler only) does: a
 * script itself never closes. */
#define _GNU_SOURCE
#include "events.h"
#include "upgraded.h"

#include <errno.h>
#include <fcntl.h>
#include <gnutls/crypto.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

/* The upgraded connections whose scripts run, for /release. Under
 * srv->lock; one server per process. */
static struct upgraded *live;


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
  upgraded_action (u, MHD_UPGRADE_ACTION_CLOSE, "close");
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
    upgraded_action (u, MHD_UPGRADE_ACTION_CLOSE, "close");
    upgraded_free (u);
    return;
  }
  pthread_mutex_lock (&u->srv->lock);
  bool stopping = u->srv->stopping;
  if (! stopping)
    u->srv->workers++;
  pthread_mutex_unlock (&u->srv->lock);
  if (stopping)
  {
    /* The server stops and no longer waits for scripts: this handle is
     * good only until the handler returns (MHD_stop_daemon then frees
     * it), so the manual's order, every upgraded connection closed before
     * the stop, is kept here. (Seen: 0.9.75, pool-https, a script's CLOSE
     * after MHD_stop_daemon had freed the handle, SIGSEGV.) */
    struct event e;
    ev_begin (&e, "upgraded_while_stopping", u->rid);
    ev_end (&e);
    upgraded_action (u, MHD_UPGRADE_ACTION_CLOSE, "close");
    upgraded_free (u);
    return;
  }
  pthread_attr_init (&attr);
  pthread_attr_setdetachstate (&attr, PTHREAD_CREATE_DETACHED);
  int err = pthread_create (&t, &attr, &script_thread, u);
  pthread_attr_destroy (&attr);
  if (0 != err)
  {
    report_errno (u, "pthread_create", err);
    upgraded_action (u, MHD_UPGRADE_ACTION_CLOSE, "close");
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
