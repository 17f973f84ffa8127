/* The HTTP side of the reference server: the URL path names a scenario,
 * the query string its parameters. Each scenario builds and queues one
 * response and reports every MHD return value on the way. */
#define _GNU_SOURCE
#include "events.h"
#include "refserver.h"
#include "websocket.h"

#include <dirent.h>
#include <malloc.h>
#include <poll.h>
#include <gnutls/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

/* Upgrade header value when the request does not choose one. */
#define DEFAULT_PROTOCOL "conformance/1"

struct scenario
{
  const char *path;
  enum MHD_Result (*run) (struct request *r, struct MHD_Connection *c);
  /* The query keys it reads: querykeys.c's table, by path. */
};


static const char *
arg (struct MHD_Connection *c, const char *key)
{
  return MHD_lookup_connection_value (c, MHD_GET_ARGUMENT_KIND, key);
}


static bool
flag_arg (struct MHD_Connection *c, const char *key)
{
  const char *v = arg (c, key);
  return NULL != v && 0 != strcmp (v, "0");
}


static unsigned long
num_arg (struct MHD_Connection *c, const char *key, unsigned long dflt)
{
  const char *v = arg (c, key);
  return NULL == v ? dflt : strtoul (v, NULL, 10);
}


static struct MHD_Response *
text_response (const char *text)
{
#if MHD_VERSION >= 0x00097701
  return MHD_create_response_from_buffer_static (strlen (text), text);
#else
  return MHD_create_response_from_buffer (strlen (text), (void *) text,
                                          MHD_RESPMEM_PERSISTENT);
#endif
}


static void
report_result (const char *rid, const char *ev, const char *what,
               enum MHD_Result result)
{
  struct event e;
  ev_begin (&e, ev, rid);
  ev_str (&e, "what", what);
  ev_bool (&e, "result", MHD_YES == result);
  ev_end (&e);
}


static enum MHD_Result
add_header (struct request *r, struct MHD_Response *resp, const char *name,
            const char *value)
{
  enum MHD_Result ret = MHD_add_response_header (resp, name, value);
  struct event e;
  ev_begin (&e, "add_header", r->rid);
  ev_str (&e, "name", name);
  ev_str (&e, "value", value);
  ev_bool (&e, "result", MHD_YES == ret);
  ev_end (&e);
  return ret;
}


static enum MHD_Result
queue (struct request *r, struct MHD_Connection *c, const char *what,
       unsigned int status, struct MHD_Response *resp)
{
  enum MHD_Result ret = MHD_queue_response (c, status, resp);
  struct event e;
  ev_begin (&e, "queue", r->rid);
  ev_str (&e, "what", what);
  ev_int (&e, "status", status & ~MHD_ICY_FLAG);
  ev_bool (&e, "icy", 0 != (status & MHD_ICY_FLAG));
  ev_bool (&e, "result", MHD_YES == ret);
  ev_end (&e);
  return ret;
}


/* Queues @a resp (reported as @a what) and lets go of it. */
static enum MHD_Result
queue_once (struct request *r, struct MHD_Connection *c, const char *what,
            unsigned int status, struct MHD_Response *resp)
{
  enum MHD_Result ret = queue (r, c, what, status, resp);
  MHD_destroy_response (resp);
  return ret;
}


/* Queues a text made for this request (copied), reported as @a what. */
static enum MHD_Result
queue_text_copy (struct request *r, struct MHD_Connection *c, const char *what,
                 unsigned int status, const char *text)
{
  struct MHD_Response *resp =
    MHD_create_response_from_buffer (strlen (text), (void *) text,
                                     MHD_RESPMEM_MUST_COPY);
  if (NULL == resp)
  {
    report_result (r->rid, "create_response", what, MHD_NO);
    return MHD_NO;
  }
  return queue_once (r, c, what, status, resp);
}


/* Queues a plain text response, reported as @a what. */
static enum MHD_Result
queue_text (struct request *r, struct MHD_Connection *c, const char *what,
            unsigned int status, const char *text, const char *extra_header)
{
  struct MHD_Response *resp = text_response (text);
  if (NULL == resp)
  {
    report_result (r->rid, "create_response", what, MHD_NO);
    return MHD_NO;
  }
  if (NULL != extra_header)
    add_header (r, resp, extra_header, "1");
  return queue_once (r, c, what, status, resp);
}


/* After MHD refused a response: answer 500 with X-Refused, so the client
 * can tell "refused, and nothing of it sent" from anything MHD made up. */
static enum MHD_Result
refused (struct request *r, struct MHD_Connection *c)
{
  if (flag_arg (c, "nofallback"))
    return MHD_NO; /* MHD ends the request itself (U-NOTIFY-2) */
  return queue_text (r, c, "fallback", MHD_HTTP_INTERNAL_SERVER_ERROR,
                     "refused\n", "X-Refused");
}


/* queue_once, and the fallback answer if MHD refused. */
static enum MHD_Result
queue_or_refused (struct request *r, struct MHD_Connection *c,
                  const char *what, unsigned int status,
                  struct MHD_Response *resp)
{
  return MHD_YES == queue_once (r, c, what, status, resp) ? MHD_YES
         : refused (r, c);
}


/* An upgrade response whose handler is upgrade_handler with a cls of its
 * own (the connection's handler_cls: neither the socket context nor
 * req_cls, which MHD also holds, so that a mix-up shows), reported; NULL
 * if MHD refused to make one. */
static struct MHD_Response *
upgrade_response (struct request *r, struct conn *cc)
{
  struct MHD_Response *resp = MHD_create_response_for_upgrade (&upgrade_handler,
                                                               &cc->handler_cls);
  report_result (r->rid, "create_response", "upgrade",
                 NULL == resp ? MHD_NO : MHD_YES);
  if (NULL != resp)
    cc->expected_cls = &cc->handler_cls;
  return resp;
}


struct thread_queue
{
  struct MHD_Connection *c;
  unsigned int status;
  struct MHD_Response *resp;
  enum MHD_Result ret;
};


static void *
queue_thread (void *arg)
{
  struct thread_queue *q = arg;
  q->ret = MHD_queue_response (q->c, q->status, q->resp);
  return NULL;
}


/* MHD_queue_response() called from a thread that is not the connection's,
 * while the access handler waits for it (U-QUEUE-8). */
static enum MHD_Result
queue_from_other_thread (struct request *r, struct MHD_Connection *c,
                         unsigned int status, struct MHD_Response *resp)
{
  struct thread_queue q = { c, status, resp, MHD_NO };
  pthread_t t;
  struct event e;
  int err = pthread_create (&t, NULL, &queue_thread, &q);
  if (0 == err)
    pthread_join (t, NULL);
  ev_begin (&e, "queue", r->rid);
  ev_str (&e, "what", "upgrade-other-thread");
  ev_int (&e, "status", status);
  ev_bool (&e, "result", MHD_YES == q.ret);
  ev_int (&e, "pthread_error", err);
  ev_end (&e);
  return q.ret;
}


struct suspended_queue
{
  struct request *r;
  struct MHD_Connection *c;
  struct MHD_Response *resp;
};


static void *
queue_while_suspended (void *arg)
{
  struct suspended_queue *q = arg;
  /* Once resumed, the connection may upgrade, finish and free q->r before
   * this thread runs again: take what is needed afterwards now. */
  struct server *srv = q->r->srv;
  enum MHD_Result ret = MHD_queue_response (q->c, MHD_HTTP_SWITCHING_PROTOCOLS,
                                            q->resp);
  struct event e;
  ev_begin (&e, "queue", q->r->rid);
  ev_str (&e, "what", "upgrade-while-suspended");
  ev_int (&e, "status", MHD_HTTP_SWITCHING_PROTOCOLS);
  ev_bool (&e, "result", MHD_YES == ret);
  ev_end (&e);
  MHD_destroy_response (q->resp);
  MHD_resume_connection (q->c);
  /* The one wake-up the manual asks of the application (microhttpd.h,
   * MHD_resume_connection): "If you are using this function in "external"
   * sockets polling mode, you must make sure to run MHD_run() and
   * MHD_get_timeout() afterwards". */
  server_wake (srv);
  free (q);
  return NULL;
}


/* U-SUSP-1: suspend the connection, queue the upgrade from another thread
 * while it is suspended, then resume it. */
static enum MHD_Result
suspend_then_upgrade (struct request *r, struct MHD_Connection *c,
                      struct MHD_Response *resp)
{
  struct suspended_queue *q = malloc (sizeof (*q));
  pthread_t t;
  pthread_attr_t attr;
  int err;
  if (NULL == q)
    return MHD_NO;
  *q = (struct suspended_queue) { r, c, resp };
  MHD_suspend_connection (c);
  pthread_attr_init (&attr);
  pthread_attr_setdetachstate (&attr, PTHREAD_CREATE_DETACHED);
  err = pthread_create (&t, &attr, &queue_while_suspended, q);
  pthread_attr_destroy (&attr);
  if (0 != err)
  {
    MHD_resume_connection (c);
    free (q);
    return MHD_NO;
  }
  return MHD_YES;
}


/* U-QUEUE-9: holds the access handler until MHD's stop shows on this
 * connection's thread: MHD_stop_daemon shuts the connection's socket down
 * (thread per connection) or the listening socket (a thread pool), after it
 * marked the daemon as stopping. Bounded by @a idle_ms (idle=). Reports
 * when it was released and why. */
static void
hold_until_stop (struct request *r, struct MHD_Connection *c, int idle_ms)
{
  const union MHD_ConnectionInfo *ci =
    MHD_get_connection_info (c, MHD_CONNECTION_INFO_CONNECTION_FD);
  const union MHD_DaemonInfo *di =
    MHD_get_daemon_info (r->srv->daemon, MHD_DAEMON_INFO_LISTEN_FD);
  struct pollfd p[2] = {
    { .fd = NULL == ci ? -1 : ci->connect_fd, .events = POLLRDHUP },
    { .fd = NULL == di ? -1 : di->listen_fd, .events = 0 }, /* POLLHUP: shut down */
  };
  struct event e;
  int n;
  ev_begin (&e, "held_for_stop", r->rid);
  ev_end (&e);
  n = poll (p, 2, idle_ms);
  ev_begin (&e, "stop_seen", r->rid);
  ev_bool (&e, "seen", n > 0);
  ev_bool (&e, "connection_shut", n > 0 && 0 != (p[0].revents & (POLLRDHUP | POLLHUP)));
  ev_bool (&e, "listen_shut", n > 0 && 0 != (p[1].revents & POLLHUP));
  ev_end (&e);
}


#define PAD_VALUE 4000

/* pad=N: headers "X-Pad-I: ppp..." whose lines ("X-Pad-I: " + value +
 * CRLF) add up to N bytes as near as whole lines allow (the last value is
 * shortened; at least one byte each). One event says what went in: each
 * header as its own event would be the head twice over in the log. */
static void
add_padding (struct request *r, struct MHD_Response *resp, size_t n)
{
  static char value[PAD_VALUE + 1];
  size_t added = 0;
  unsigned int headers = 0, refused = 0;
  struct event e;
  if (0 == n)
    return;
  if ('\0' == value[0])
    memset (value, 'p', PAD_VALUE);
  while (added < n)
  {
    char name[32];
    int len = snprintf (name, sizeof (name), "X-Pad-%u", headers + 1);
    size_t line = (size_t) len + 4; /* ": " and CRLF */
    size_t v = n - added > line + PAD_VALUE ? PAD_VALUE
               : n - added > line ? n - added - line : 1;
    if (MHD_YES != MHD_add_response_header (resp, name, value + PAD_VALUE - v))
      refused++;
    headers++;
    added += line + v;
  }
  ev_begin (&e, "pad_headers", r->rid);
  ev_int (&e, "headers", headers);
  ev_int (&e, "bytes", (long long) added);
  ev_int (&e, "refused", refused);
  ev_end (&e);
}


/* GET /upgrade?... : queue a 101 made with MHD_create_response_for_upgrade,
 * as the query asks: querykeys.c's table says what each key does (and
 * `refserver --help` lists them). */
static enum MHD_Result
scenario_upgrade (struct request *r, struct MHD_Connection *c)
{
  struct conn *cc = conn_of (c);
  const char *then = arg (c, "then");
  const char *proto = arg (c, "proto");
  const char *extra_conn = arg (c, "conn");
  const char *rf = arg (c, "rf");
  bool shared = flag_arg (c, "shared");
  unsigned int status = (unsigned int) num_arg (c, "status", 101);
  struct MHD_Response *resp;
  enum MHD_Result ret;

  if (NULL == cc)
    return MHD_NO;
  cc->then = script_find (NULL == then ? "echo" : then);
  if (NULL == cc->then)
    return queue_text (r, c, "bad-request", MHD_HTTP_BAD_REQUEST,
                       "unknown script\n", NULL);
  script_params_read (c, r->scenario->path, r->srv->idle_ms, &cc->p);
  if (flag_arg (c, "icy"))
    status |= MHD_ICY_FLAG;

  if (shared)
  {
    /* Prepared once at start; no per-request changes to shared headers. */
    resp = r->srv->shared_upgrade;
    cc->expected_cls = &r->srv->shared_cls;
  }
  else
  {
    resp = upgrade_response (r, cc);
    if (NULL == resp)
      return refused (r, c);
    if (NULL == proto || 0 != strcmp (proto, "-"))
      add_header (r, resp, MHD_HTTP_HEADER_UPGRADE,
                  NULL == proto ? DEFAULT_PROTOCOL : proto);
    if (NULL != extra_conn)
      add_header (r, resp, MHD_HTTP_HEADER_CONNECTION, extra_conn);
    add_padding (r, resp, num_arg (c, "pad", 0));
    if (flag_arg (c, "del_conn"))
      report_result (r->rid, "del_header", "Connection: Upgrade",
                     MHD_del_response_header (resp,
                                              MHD_HTTP_HEADER_CONNECTION,
                                              "Upgrade"));
    if (NULL != rf && 0 == strcmp (rf, "http10"))
      report_result (r->rid, "set_options", rf,
                     MHD_set_response_options (
                       resp,
                       MHD_RF_HTTP_1_0_COMPATIBLE_STRICT
                       | MHD_RF_HTTP_1_0_SERVER,
                       MHD_RO_END));
  }

  if (flag_arg (c, "suspend") && ! shared)
    return suspend_then_upgrade (r, c, resp); /* it owns resp now */
  if (flag_arg (c, "at_stop"))
    hold_until_stop (r, c, cc->p.idle_ms);
  if (flag_arg (c, "thread"))
    ret = queue_from_other_thread (r, c, status, resp);
  else
    ret = queue (r, c, "upgrade", status, resp);
  if (MHD_YES == ret && flag_arg (c, "twice"))
    queue_text (r, c, "second", MHD_HTTP_OK, "second\n", NULL);
  if (! shared)
    MHD_destroy_response (resp);
  return MHD_YES == ret ? MHD_YES : refused (r, c);
}


/* GET /plain-101: status 101 on an ordinary response with a body, an
 * Upgrade header and no upgrade handler (U-QUEUE-2). */
static enum MHD_Result
scenario_plain_101 (struct request *r, struct MHD_Connection *c)
{
  struct MHD_Response *resp = text_response ("not-an-upgrade\n");
  if (NULL == resp)
    return MHD_NO;
  add_header (r, resp, MHD_HTTP_HEADER_UPGRADE, DEFAULT_PROTOCOL);
  return queue_or_refused (r, c, "plain-101", MHD_HTTP_SWITCHING_PROTOCOLS,
                           resp);
}


/* GET /null-handler: MHD_create_response_for_upgrade (NULL, ...) must fail
 * without crashing (U-RESP-1); then an ordinary 200. */
static enum MHD_Result
scenario_null_handler (struct request *r, struct MHD_Connection *c)
{
  struct MHD_Response *resp = MHD_create_response_for_upgrade (NULL, r);
  report_result (r->rid, "create_response", "upgrade-null-handler",
                 NULL == resp ? MHD_NO : MHD_YES);
  if (NULL != resp)
    MHD_destroy_response (resp);
  return queue_text (r, c, "hello", MHD_HTTP_OK, "hello\n", NULL);
}


/* Open file descriptors of this process (-1 if /proc cannot say). */
static long long
open_fds (void)
{
  DIR *d = opendir ("/proc/self/fd");
  long long n = 0;
  const struct dirent *de;
  if (NULL == d)
    return -1;
  while (NULL != (de = readdir (d)))
    if ('.' != de->d_name[0])
      n++;
  closedir (d);
  return n - 1; /* the listing's own descriptor */
}


/* Bytes this process has allocated from the C library's heap now, every
 * arena and mmap'd chunk included (glibc's mallinfo2). */
static long long
heap_bytes (void)
{
  struct mallinfo2 mi = mallinfo2 ();
  return (long long) (mi.uordblks + mi.hblkhd);
}


/* GET /stats: what a case may leave behind (the leak check's figures):
 * MHD_DAEMON_INFO_CURRENT_CONNECTIONS (this connection included), open
 * descriptors, upgraded handles not closed yet, upgraded-socket threads;
 * and the heap in use (U-LIMIT-2's memory per upgrade). */
static enum MHD_Result
scenario_stats (struct request *r, struct MHD_Connection *c)
{
  const union MHD_DaemonInfo *di =
    MHD_get_daemon_info (r->srv->daemon, MHD_DAEMON_INFO_CURRENT_CONNECTIONS);
  struct event e;
  unsigned int workers;
  pthread_mutex_lock (&r->srv->lock);
  workers = r->srv->workers;
  pthread_mutex_unlock (&r->srv->lock);
  ev_begin (&e, "stats", r->rid);
  ev_int (&e, "connections", NULL == di ? -1 : (long long) di->num_connections);
  ev_int (&e, "fds", open_fds ());
  ev_int (&e, "upgraded_handles", atomic_load (&r->srv->live_handles));
  ev_int (&e, "upgraded_threads", (long long) workers);
  ev_int (&e, "heap_bytes", heap_bytes ());
  ev_end (&e);
  return queue_text (r, c, "stats", MHD_HTTP_OK, "stats\n", NULL);
}


/* GET /ws: a WebSocket opening handshake, checked as RFC 6455 section
 * 4.2.1 asks (websocket.c). A valid one gets 101 with Upgrade: websocket and
 * Sec-WebSocket-Accept, and the "ws" script (an echo endpoint on wslay);
 * a wrong version 426 with Sec-WebSocket-Version: 13; anything else 400.
 * Neither of those is upgraded. A subprotocol the client offers and the
 * server speaks is answered (Sec-WebSocket-Protocol, ws_choose_protocol).
 * Its query keys (idle=, rid=, nofallback=): querykeys.c. */
static enum MHD_Result
scenario_ws (struct request *r, struct MHD_Connection *c)
{
  struct conn *cc = conn_of (c);
  char accept[WS_ACCEPT_SIZE];
  const char *wrong = ws_check_handshake (c, r->method, r->version, accept);
  struct MHD_Response *resp;
  struct event e;

  const char *protocol = ws_choose_protocol (c);

  /* What the client's handshake looked like, beside what was wrong with it:
   * real clients differ there (U-WS-6). */
  ev_begin (&e, "ws_handshake", r->rid);
  ev_str (&e, "wrong", wrong);
  ev_str (&e, "protocols", MHD_lookup_connection_value (
            c, MHD_HEADER_KIND, "Sec-WebSocket-Protocol"));
  ev_str (&e, "extensions", MHD_lookup_connection_value (
            c, MHD_HEADER_KIND, "Sec-WebSocket-Extensions"));
  ev_str (&e, "origin", MHD_lookup_connection_value (c, MHD_HEADER_KIND,
                                                     "Origin"));
  ev_str (&e, "protocol", NULL == wrong ? protocol : NULL);
  ev_end (&e);
  if (NULL == cc)
    return MHD_NO;
  if (NULL != wrong)
  {
    bool version = 0 == strcmp (wrong, WS_BAD_VERSION);
    resp = text_response (version ? "unsupported WebSocket version\n"
                          : "bad WebSocket handshake\n");
    if (NULL == resp)
      return MHD_NO;
    if (version)
      add_header (r, resp, "Sec-WebSocket-Version", "13");
    return queue_once (r, c, version ? "ws-426" : "ws-400",
                       version ? MHD_HTTP_UPGRADE_REQUIRED
                       : MHD_HTTP_BAD_REQUEST, resp);
  }
  cc->then = script_find ("ws");
  script_params_read (c, r->scenario->path, r->srv->idle_ms, &cc->p);
  resp = upgrade_response (r, cc);
  if (NULL == resp)
    return refused (r, c);
  add_header (r, resp, MHD_HTTP_HEADER_UPGRADE, "websocket");
  add_header (r, resp, "Sec-WebSocket-Accept", accept);
  if (NULL != protocol)
    add_header (r, resp, "Sec-WebSocket-Protocol", protocol);
  return queue_or_refused (r, c, "upgrade", MHD_HTTP_SWITCHING_PROTOCOLS,
                           resp);
}


/* GET /release?of=RID: the pressure script of request RID stops holding
 * its reading (U-SOCK-4); &hold=write: the client has stopped reading;
 * &n=N: N bytes between holds from now on; &sent=N: the client's stream
 * ends after N bytes. 200 if there was such
 * a script, 404 if not. */
static enum MHD_Result
scenario_release (struct request *r, struct MHD_Connection *c)
{
  const char *of = arg (c, "of");
  const char *sent = arg (c, "sent");
  bool found = NULL != of
               && upgraded_release (r->srv, of, NULL != arg (c, "hold"),
                                    num_arg (c, "n", 0),
                                    NULL == sent ? UINT64_MAX
                                    : strtoull (sent, NULL, 10));
  struct event e;
  ev_begin (&e, "release", r->rid);
  ev_str (&e, "of", of);
  ev_bool (&e, "found", found);
  ev_end (&e);
  return queue_text (r, c, "release", found ? MHD_HTTP_OK : MHD_HTTP_NOT_FOUND,
                     found ? "released\n" : "no such upgraded connection\n",
                     NULL);
}


static enum MHD_Result
scenario_hello (struct request *r, struct MHD_Connection *c)
{
  return queue_text (r, c, "hello", MHD_HTTP_OK, "hello\n", NULL);
}


static const struct scenario scenarios[] = {
  { "/upgrade", &scenario_upgrade },
  { "/plain-101", &scenario_plain_101 },
  { "/null-handler", &scenario_null_handler },
  { "/hello", &scenario_hello },
  { "/stats", &scenario_stats },
  { "/release", &scenario_release },
  { "/ws", &scenario_ws },
};


struct key_check
{
  const struct scenario *scenario;
  const char *unknown; /* the first key the scenario's path does not accept */
};


static enum MHD_Result
check_key (void *cls, enum MHD_ValueKind kind, const char *key,
           const char *value)
{
  struct key_check *kc = cls;
  (void) kind;
  (void) value;
  if (query_key_accepted (kc->scenario->path, key))
    return MHD_YES;
  kc->unknown = key;
  return MHD_NO; /* stops the iteration */
}


/* The first query key of the request that its scenario does not read, or
 * NULL. */
static const char *
unknown_argument (struct MHD_Connection *c, const struct scenario *scenario)
{
  struct key_check kc = { scenario, NULL };
  MHD_get_connection_values (c, MHD_GET_ARGUMENT_KIND, &check_key, &kc);
  return kc.unknown;
}


static const struct scenario *
scenario_find (const char *url)
{
  for (size_t i = 0; i < sizeof (scenarios) / sizeof (scenarios[0]); i++)
    if (0 == strcmp (scenarios[i].path, url))
      return &scenarios[i];
  return NULL;
}


/* What the access handler was given as the request body (U-REQ-3/4). */
static void
report_body (struct request *r)
{
  unsigned char digest[32];
  struct event e;
  gnutls_hash_hd_t copy = NULL;
  if (NULL != r->body_hash)
    copy = gnutls_hash_copy (r->body_hash);
  ev_begin (&e, "body", r->rid);
  ev_int (&e, "bytes", (long long) r->body_bytes);
  if (NULL != copy)
  {
    gnutls_hash_deinit (copy, digest);
    ev_hex (&e, "sha256", digest, sizeof (digest));
  }
  ev_end (&e);
}


static struct request *
request_new (struct server *srv, struct MHD_Connection *c, const char *url,
             const char *method, const char *version)
{
  struct request *r = calloc (1, sizeof (*r));
  struct conn *cc = conn_of (c);
  const char *rid = MHD_lookup_connection_value (c, MHD_HEADER_KIND,
                                                 RID_HEADER);
  /* A browser cannot add a header to its WebSocket handshake: its request
   * id comes in the query (/ws?rid=ID). */
  if (NULL == rid)
    rid = MHD_lookup_connection_value (c, MHD_GET_ARGUMENT_KIND, "rid");
  struct event e;

  if (NULL == r)
    return NULL;
  if (0 != gnutls_hash_init ((gnutls_hash_hd_t *) &r->body_hash,
                             GNUTLS_DIG_SHA256))
    r->body_hash = NULL;
  r->srv = srv;
  snprintf (r->rid, sizeof (r->rid), "%s", NULL == rid ? "" : rid);
  r->scenario = scenario_find (url);
  r->method = method;
  r->version = version;
  r->url = url;
  r->url_copy = strdup (url);
  request_view (c, &r->view);
  if (NULL != cc)
  {
    cc->req = r;
    memcpy (cc->rid, r->rid, sizeof (cc->rid));
  }
  ev_begin (&e, "request", r->rid);
  ev_str (&e, "method", method);
  ev_str (&e, "url", url);
  ev_str (&e, "version", version);
  ev_int (&e, "peer_port", NULL == cc ? -1 : (long long) cc->peer_port);
  ev_end (&e);
  return r;
}


/* A new request object holding what @a r held, which it frees: the value
 * the access handler leaves in *req_cls on its last call differs from the
 * one it left on the first (U-CB-3). NULL-safe on allocation failure: then
 * @a r itself. */
static struct request *
request_moved (struct request *r, struct MHD_Connection *c)
{
  struct request *moved = malloc (sizeof (*moved));
  struct conn *cc = conn_of (c);
  if (NULL == moved)
    return r;
  *moved = *r;
  if (NULL != cc && cc->req == r)
    cc->req = moved;
  free (r);
  return moved;
}


/* The access handler proper (access_handler: the same, with MHD's log
 * lines meanwhile attributed to the request). */
static enum MHD_Result
handle_access (struct server *srv, struct MHD_Connection *c, const char *url,
               const char *method, const char *version,
               const char *upload_data, size_t *upload_data_size,
               void **req_cls)
{
  struct request *r = *req_cls;
  (void) upload_data;

  if (NULL == r)
  {
    r = request_new (srv, c, url, method, version);
    if (NULL == r)
      return MHD_NO;
    *req_cls = r;
    current_rid = r->rid;
    /* "at=headers" acts before MHD reads any body; by default the request
     * is answered once it is complete, as most applications do. */
    if (NULL == arg (c, "at") || 0 != strcmp (arg (c, "at"), "headers"))
      return MHD_YES;
  }
  else if (0 != *upload_data_size)
  {
    r->body_bytes += *upload_data_size;
    if (NULL != r->body_hash)
      gnutls_hash (r->body_hash, upload_data, *upload_data_size);
    *upload_data_size = 0;
    return MHD_YES;
  }
  {
    struct conn *cc = conn_of (c);
    if (NULL != cc)
      cc->access_tid = (long long) syscall (SYS_gettid);
  }
  if (NULL == r->scenario)
    return queue_text (r, c, "not-found", MHD_HTTP_NOT_FOUND,
                       "no such scenario\n", NULL);
  const char *unknown = unknown_argument (c, r->scenario);
  if (NULL != unknown)
  {
    /* A misspelt key must not make a case test something else. */
    char text[256];
    snprintf (text, sizeof (text), "unknown parameter %s\n", unknown);
    return queue_text_copy (r, c, "bad-request", MHD_HTTP_BAD_REQUEST, text);
  }
  report_body (r);
  /* The last call: the value the upgrade handler must get as req_cls is
   * the one left now, not the first one (U-CB-3). */
  r = request_moved (r, c);
  *req_cls = r;
  current_rid = r->rid;
  return r->scenario->run (r, c);
}


enum MHD_Result
access_handler (void *cls, struct MHD_Connection *c, const char *url,
                const char *method, const char *version,
                const char *upload_data, size_t *upload_data_size,
                void **req_cls)
{
  struct request *r = *req_cls;
  enum MHD_Result ret;
  current_rid = NULL == r ? NULL : r->rid;
  ret = handle_access (cls, c, url, method, version, upload_data,
                       upload_data_size, req_cls);
  current_rid = NULL;
  return ret;
}
