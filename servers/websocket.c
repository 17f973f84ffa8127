/* WebSocket (RFC 6455) on MHD's upgrade: the opening handshake's checks
 * (section 4.2.1) and answer (4.2.2), then an echo endpoint on the upgraded
 * socket. Framing is wslay's (event API); SHA-1 and base64 are GnuTLS's.
 * Nothing of the framing is parsed here. */
#define _GNU_SOURCE
#include "events.h"
#include "refserver.h"
#include "websocket.h"

#include <errno.h>
#include <stdio.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <wslay/wslay.h>

#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
/* Messages up to this size are echoed; the cases send 16 MiB. */
#define WS_MAX_MESSAGE (64u << 20)


/* Does the comma-separated header @a value list @a token (any case)? */
static bool
has_token (const char *value, const char *token)
{
  size_t n = strlen (token);
  const char *p = value;
  while (NULL != p && '\0' != *p)
  {
    const char *end = strchr (p, ',');
    size_t len = NULL == end ? strlen (p) : (size_t) (end - p);
    while (len > 0 && (' ' == *p || '\t' == *p))
    {
      p++;
      len--;
    }
    while (len > 0 && (' ' == p[len - 1] || '\t' == p[len - 1]))
      len--;
    if (len == n && 0 == strncasecmp (p, token, n))
      return true;
    p = NULL == end ? NULL : end + 1;
  }
  return false;
}


static const char *
header (struct MHD_Connection *c, const char *name)
{
  return MHD_lookup_connection_value (c, MHD_HEADER_KIND, name);
}


const char *
ws_check_handshake (struct MHD_Connection *c, const char *method,
                    const char *version, char accept[WS_ACCEPT_SIZE])
{
  const char *key = header (c, "Sec-WebSocket-Key");
  const char *ver = header (c, "Sec-WebSocket-Version");
  const char *upgrade = header (c, MHD_HTTP_HEADER_UPGRADE);
  const char *connection = header (c, MHD_HTTP_HEADER_CONNECTION);
  gnutls_datum_t b64, raw = { NULL, 0 };
  unsigned char digest[20];
  char concat[128];
  gnutls_datum_t in, out = { NULL, 0 };
  bool key_ok;

  if (0 != strcmp (method, MHD_HTTP_METHOD_GET))
    return "not GET";
  if (0 != strcmp (version, MHD_HTTP_VERSION_1_1))
    return "not HTTP/1.1";
  if (NULL == header (c, MHD_HTTP_HEADER_HOST))
    return "no Host";
  if (NULL == upgrade || ! has_token (upgrade, "websocket"))
    return "no Upgrade: websocket";
  if (NULL == connection || ! has_token (connection, "Upgrade"))
    return "no Connection: Upgrade";
  if (NULL == key)
    return "no Sec-WebSocket-Key";
  /* A base64-encoded 16-byte value (section 4.1, item 7). */
  b64.data = (unsigned char *) key;
  b64.size = (unsigned int) strlen (key);
  key_ok = 24 == b64.size && 0 == gnutls_base64_decode2 (&b64, &raw)
           && 16 == raw.size;
  gnutls_free (raw.data);
  if (! key_ok)
    return "Sec-WebSocket-Key is not 16 bytes in base64";
  if (NULL == ver)
    return "no Sec-WebSocket-Version";
  if (0 != strcmp (ver, "13"))
    return WS_BAD_VERSION; /* section 4.4: 426, naming the version we speak */
  snprintf (concat, sizeof (concat), "%s%s", key, WS_GUID);
  if (0 != gnutls_hash_fast (GNUTLS_DIG_SHA1, concat, strlen (concat), digest))
    return "SHA-1 failed";
  in.data = digest;
  in.size = sizeof (digest);
  if (0 != gnutls_base64_encode2 (&in, &out) || out.size >= WS_ACCEPT_SIZE)
  {
    gnutls_free (out.data);
    return "base64 failed";
  }
  memcpy (accept, out.data, out.size);
  accept[out.size] = '\0';
  gnutls_free (out.data);
  return NULL;
}


/* The subprotocols the echo endpoint speaks (all alike: an echo), in the
 * server's order of preference (RFC 6455 section 4.2.2, item 5.4: the
 * server picks one the client offered). */
static const char *const ws_protocols[] = { "chat.conformance",
                                            "echo.conformance" };


const char *
ws_choose_protocol (struct MHD_Connection *c)
{
  const char *offered = header (c, "Sec-WebSocket-Protocol");
  size_t i;
  if (NULL == offered)
    return NULL;
  for (i = 0; i < sizeof (ws_protocols) / sizeof (ws_protocols[0]); i++)
    if (has_token (offered, ws_protocols[i]))
      return ws_protocols[i];
  return NULL;
}


/* -- the echo endpoint ---------------------------------------------------- */

struct ws
{
  const char *rid;
  int sock;
  const char *extra_in; /* not yet handed to wslay */
  size_t extra_left;
  bool peer_gone;       /* recv() saw the end of the stream, or an error */
  int sock_errno;
  uint64_t messages;    /* data messages echoed */
  uint64_t bytes;       /* their payload bytes */
};


static ssize_t
ws_recv (wslay_event_context_ptr ctx, uint8_t *buf, size_t len, int flags,
         void *user_data)
{
  struct ws *w = user_data;
  ssize_t r;
  (void) flags;
  if (w->extra_left > 0)
  {
    /* extra_in is the start of the frame stream (U-WS-5). */
    size_t n = w->extra_left < len ? w->extra_left : len;
    memcpy (buf, w->extra_in, n);
    w->extra_in += n;
    w->extra_left -= n;
    return (ssize_t) n;
  }
  r = recv (w->sock, buf, len, 0);
  if (r > 0)
    return r;
  if (r < 0 && (EAGAIN == errno || EWOULDBLOCK == errno || EINTR == errno))
  {
    wslay_event_set_error (ctx, WSLAY_ERR_WOULDBLOCK);
    return -1;
  }
  w->peer_gone = true;
  w->sock_errno = r < 0 ? errno : 0;
  wslay_event_set_error (ctx, WSLAY_ERR_CALLBACK_FAILURE);
  return -1;
}


static ssize_t
ws_send (wslay_event_context_ptr ctx, const uint8_t *data, size_t len,
         int flags, void *user_data)
{
  struct ws *w = user_data;
  ssize_t r = send (w->sock, data, len,
                    MSG_NOSIGNAL | (0 != (flags & WSLAY_MSG_MORE) ? MSG_MORE
                                    : 0));
  if (r >= 0)
    return r;
  if (EAGAIN == errno || EWOULDBLOCK == errno || EINTR == errno)
    wslay_event_set_error (ctx, WSLAY_ERR_WOULDBLOCK);
  else
  {
    w->peer_gone = true;
    w->sock_errno = errno;
    wslay_event_set_error (ctx, WSLAY_ERR_CALLBACK_FAILURE);
  }
  return -1;
}


static void
ws_on_msg (wslay_event_context_ptr ctx,
           const struct wslay_event_on_msg_recv_arg *arg, void *user_data)
{
  struct ws *w = user_data;
  struct wslay_event_msg echo = { arg->opcode, arg->msg, arg->msg_length };
  struct event e;
  if (WSLAY_TEXT_FRAME != arg->opcode && WSLAY_BINARY_FRAME != arg->opcode)
  {
    /* wslay answers ping and close itself; report what came. */
    ev_begin (&e, "ws_control", w->rid);
    ev_int (&e, "opcode", arg->opcode);
    ev_int (&e, "length", (long long) arg->msg_length);
    if (WSLAY_CONNECTION_CLOSE == arg->opcode)
      ev_int (&e, "status_code", arg->status_code);
    ev_end (&e);
    return;
  }
  w->messages++;
  w->bytes += arg->msg_length;
  if (0 != wslay_event_queue_msg (ctx, &echo))
  {
    ev_begin (&e, "ws_queue_failed", w->rid);
    ev_end (&e);
  }
}


static ssize_t
frame_send (const uint8_t *data, size_t len, int flags, void *user_data)
{
  struct ws *w = user_data;
  ssize_t r;
  (void) flags;
  r = send (w->sock, data, len, MSG_NOSIGNAL);
  return r > 0 ? r : -1;
}


/* wslay queues a close without a status code when its frame parser fails
 * (an oversized or fragmented control frame, a bad length): send 1002
 * instead, through wslay's frame layer (RFC 6455 section 7.1.7). */
static void
ws_fail_protocol (struct ws *w)
{
  static const uint8_t code[2] = { 1002 >> 8, 1002 & 0xff };
  struct wslay_frame_callbacks cb = { &frame_send, NULL, NULL };
  wslay_frame_context_ptr fc;
  struct wslay_frame_iocb io = { .fin = 1, .opcode = WSLAY_CONNECTION_CLOSE,
                                 .payload_length = 2, .data = code,
                                 .data_length = 2 };
  if (0 != wslay_frame_context_init (&fc, &cb, w))
    return;
  /* Four bytes on a fresh socket buffer: no partial write to finish. */
  (void) wslay_frame_send (fc, &io);
  wslay_frame_context_free (fc);
}


/* Waits for the socket (events) or the server's stop; returns 1 ready,
 * 0 idle limit, -1 stop or error (how says which). */
static int
ws_wait (struct ws *w, short events, int stop_fd, int idle_ms,
         const char **how)
{
  struct pollfd p[2] = {
    { .fd = w->sock, .events = events },
    { .fd = stop_fd, .events = POLLIN },
  };
  for (;;)
  {
    int r = poll (p, 2, idle_ms);
    if (r < 0 && EINTR == errno)
      continue;
    if (0 == r)
    {
      *how = "idle";
      return 0;
    }
    if (r < 0)
    {
      w->sock_errno = errno;
      *how = "error";
      return -1;
    }
    if (0 != p[1].revents)
    {
      *how = "server-stop";
      return -1;
    }
    return 1;
  }
}


const char *
ws_echo (int sock, const char *extra_in, size_t extra_in_size, int idle_ms,
         int stop_fd, const char *rid)
{
  struct ws w = { .rid = rid, .sock = sock, .extra_in = extra_in,
                  .extra_left = extra_in_size };
  struct wslay_event_callbacks cb = { .recv_callback = &ws_recv,
                                      .send_callback = &ws_send,
                                      .on_msg_recv_callback = &ws_on_msg };
  wslay_event_context_ptr ctx = NULL;
  const char *how = NULL;
  struct event e;

  if (0 != wslay_event_context_server_init (&ctx, &cb, &w))
    how = "out-of-memory";
  else
  {
    wslay_event_config_set_max_recv_msg_length (ctx, WS_MAX_MESSAGE);
    while (NULL == how)
    {
      bool want_read = wslay_event_want_read (ctx);
      bool want_write = wslay_event_want_write (ctx);
      /* extra_in is read before the socket is asked for anything. */
      bool ready = want_read && w.extra_left > 0;
      if (! want_read && ! want_write)
      {
        how = wslay_event_get_close_received (ctx) ? "closed" : "failed";
        break;
      }
      if (! ready)
      {
        int r = ws_wait (&w, (short) ((want_read ? POLLIN : 0)
                                      | (want_write ? POLLOUT : 0)),
                         stop_fd, idle_ms, &how);
        if (r <= 0)
          break;
      }
      if (want_read && 0 != wslay_event_recv (ctx))
      {
        if (w.peer_gone)
          how = 0 == w.sock_errno ? "eof" : "error";
        else
        {
          ws_fail_protocol (&w);
          how = "failed";
        }
        break;
      }
      if (wslay_event_want_write (ctx) && 0 != wslay_event_send (ctx))
      {
        how = "error";
        break;
      }
    }
  }
  ev_begin (&e, "ws_end", rid);
  ev_str (&e, "how", how);
  ev_int (&e, "messages", (long long) w.messages);
  ev_int (&e, "bytes", (long long) w.bytes);
  if (NULL != ctx)
  {
    ev_bool (&e, "close_received", wslay_event_get_close_received (ctx));
    ev_bool (&e, "close_sent", wslay_event_get_close_sent (ctx));
  }
  if (0 != w.sock_errno)
    ev_str (&e, "errno", strerror (w.sock_errno));
  ev_end (&e);
  if (NULL != ctx)
    wslay_event_context_free (ctx);
  return how;
}
