/* Mutant MHDs: an LD_PRELOAD library that interposes MHD's upgrade API and
 * the socket calls of the reference server, so that MHD appears to have one
 * realistic upgrade bug, chosen by CONFORMANCE_MUTANT=NAME. The suite must
 * fail against every mutant: a case no mutant can make fail checks nothing.
 *
 * Only what the reference server calls is interposed, with the arguments it
 * passes (MHD_set_response_options and MHD_upgrade_action are forwarded
 * without extra variadic arguments, as the server never passes any). */
#define _GNU_SOURCE
#define PRELOAD_NAME "mutants"
#include "preload.h"

#include <dlfcn.h>
#include <errno.h>
#include <gnutls/gnutls.h>
#include <microhttpd.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

/* The mutants; what each breaks is said once, in names[] below. */
enum mutant
{
  M_NONE,
  M_FLAG_IGNORED,
  M_UPGRADE_REFUSED,
  M_QUEUE_LIES_YES,
  M_STATUS_UNCHECKED,
  M_CREATE_FAILS,
  M_NULL_HANDLER_ACCEPTED,
  M_CLOSE_HEADER_ACCEPTED,
  M_RF_IGNORED,
  M_CLS_WRONG,
  M_EXTRA_DROPPED,
  M_EXTRA_TRUNCATED,
  M_EXTRA_GARBLED,
  M_EXTRA_SPURIOUS,
  M_CLOSE_NOOP,
  M_CLOSE_RST,
  M_CLOSE_IN_HANDLER_IGNORED,
  M_CORK_NOOP,
  M_UNKNOWN_ACTION_YES,
  M_CONNECTION_DUPLICATED,
  M_REASON_CHANGED,
  M_UPGRADE_VALUE_CHANGED,
  M_UPGRADE_VALUE_TRUNCATED,
  M_HTTP10_UPGRADED,
  M_SHUTDOWN_IGNORED,
  M_SHUTDOWN_CLOSES,
  M_FIN_LOST,
  M_HANDLER_CRASH,
  M_HEAD_AFTER_HANDLER,
  M_REQ_CLS_WRONG,
  M_HANDLER_HEADERS_GONE,
  M_RECV_STALLS_IN_HANDLER,
  M_STREAM_CORRUPT_LARGE,
  M_IDLE_TIMEOUT,
  M_STOP_HANGS,
  M_RESUME_LOST,
  M_SUSPEND_BREAKS_UPGRADED,
  M_UPGRADE_CAP_48,
  M_FEATURE_UPGRADE_NO,
  M_COUNT_LEAKS,
  M_SOCKOPT_LIES,
  M_LIMIT_RELEASED_EARLY,
  M_WS_ACCEPT_WRONG,
  M_WS_CLOSE_CODE_WRONG,
  M_WS_HANDSHAKE_FORGED,
  M_TIMEOUT_IGNORED,
  /* MHD's TLS forwarding of upgraded connections (HTTPS only): */
  M_PARTIAL_TO_CLIENT,
  M_PARTIAL_TO_APP,
  M_NO_CLOSE_NOTIFY,
  M_BYTE_AFTER_RECORD,
  M_STALL_AFTER_EAGAIN,
  M_EXTRA_ALSO_ON_SOCKET,
  M_CLS_SOCKET_CONTEXT,
  M_REQ_CLS_FIRST,
  M_SUSPEND_ACCEPTED,
  M_CLOSE_WAITS_FOR_LOOP,
  M_STOP_LEAKS,
  M_AMBIGUOUS_ACCEPTED,
  M_APP_TOKEN_DOUBLED,
  M_QUEUE_DURING_STOP,
  M_HOST_UNCHECKED,
  M_HANDLER_VIEW_CORRUPT,
  M_CLOSE_AFTER_SHUTDOWN,
  M_SKIP_AFTER_UPGRADE,
  M_TLS_PENDING_FORGOTTEN,
  M_SUSPEND_ACCEPTED_LATE,
  M_HEAD_COUNTED_EARLY,
  M_UPGRADE_LEAKS,
  /* Partial results of MHD's TLS forwarding (HTTPS; what U-FAULT-1 injects): */
  M_EAGAIN_ENDS,
  M_SHORT_SEND_WHOLE,
  M_INTERRUPT_FATAL,
  /* What the system may do (U-FAULT-2, U-FAULT-3): */
  M_FAILED_SETUP_KEEPS_SOCKET,
  M_CLOSE_AFTER_RESET,
  M_PAIR_ERROR_ENDS_BOTH,
  M_CREATE_NO_MEMORY_CRASHES,
  M_WAIT_FAILURE_FATAL,
};

/* Each mutant with the rule (or comma-separated rules) it was built to
 * break: the kill matrix runs it against that rule's cases, which must
 * catch it. A mutant only a sanitizer sees is listed with the word
 * "sanitize": the kill matrix runs it with --sanitize. U-WS-6 (real
 * clients) names the clients that must each catch it: every one, or
 * with ":FEATURE" those that can do that (harness/interop/base.py; "early":
 * a client that sends its first frame in the handshake's write, the only
 * way extra_in reaches a WebSocket endpoint). */
static const struct
{
  const char *name;
  enum mutant m;
  bool sanitize;
  const char *rules;
  const char *breaks; /* what the mutant does wrong: refserver's listing and the kill matrix say it */
} names[] = {
  { "flag-ignored", M_FLAG_IGNORED, false, "U-FLAG-3",
    "MHD_ALLOW_UPGRADE always on" },
  { "upgrade-refused", M_UPGRADE_REFUSED, false, "U-FLAG-2",
    "every upgrade response refused" },
  { "queue-lies-yes", M_QUEUE_LIES_YES, false, "U-FLAG-3",
    "a refused queue call returns MHD_YES" },
  { "status-unchecked", M_STATUS_UNCHECKED, false, "U-QUEUE-1",
    "an upgrade response goes out as 101 whatever the status" },
  { "create-fails", M_CREATE_FAILS, false, "U-RESP-1",
    "MHD_create_response_for_upgrade returns NULL" },
  { "null-handler-accepted", M_NULL_HANDLER_ACCEPTED, false, "U-RESP-1",
    "MHD_create_response_for_upgrade returns a response for a NULL handler" },
  { "close-header-accepted", M_CLOSE_HEADER_ACCEPTED, false, "U-RESP-4",
    "Connection: close \"added\" to an upgrade response" },
  { "rf-ignored", M_RF_IGNORED, false, "U-QUEUE-6",
    "HTTP/1.0 reply flags silently not set" },
  { "cls-wrong", M_CLS_WRONG, false, "U-CB-2",
    "the handler gets another cls" },
  { "extra-dropped", M_EXTRA_DROPPED, false, "U-EXTRA-1,U-WS-6:early",
    "extra_in lost" },
  { "extra-truncated", M_EXTRA_TRUNCATED, false, "U-EXTRA-1,U-WS-6:early",
    "last byte of extra_in lost" },
  { "extra-garbled", M_EXTRA_GARBLED, false, "U-EXTRA-1,U-WS-6:early",
    "first byte of extra_in changed" },
  { "extra-spurious", M_EXTRA_SPURIOUS, false, "U-EXTRA-5,U-WS-6",
    "a byte in extra_in that the client never sent" },
  { "close-noop", M_CLOSE_NOOP, false, "U-ACT-1",
    "CLOSE returns MHD_YES and does nothing" },
  { "close-rst", M_CLOSE_RST, false, "U-ACT-1",
    "CLOSE resets the connection, discarding unsent data" },
  { "close-in-handler-ignored", M_CLOSE_IN_HANDLER_IGNORED, false, "U-ACT-5",
    "CLOSE inside the handler does nothing" },
  { "cork-noop", M_CORK_NOOP, false, "U-ACT-3",
    "CORK_ON/OFF return MHD_YES and do nothing" },
  { "unknown-action-yes", M_UNKNOWN_ACTION_YES, false, "U-ACT-4",
    "unknown actions and NULL handles accepted" },
  { "connection-duplicated", M_CONNECTION_DUPLICATED, false, "U-RESP-2",
    "the 101 carries Connection: Upgrade twice" },
  { "reason-changed", M_REASON_CHANGED, false, "U-RESP-2",
    "\"101 Switching Protocols\" becomes \"101 OK\"" },
  { "upgrade-value-changed", M_UPGRADE_VALUE_CHANGED, false, "U-HDR-2",
    "the Upgrade value goes out lower-cased" },
  { "upgrade-value-truncated", M_UPGRADE_VALUE_TRUNCATED, false, "U-HDR-2",
    "an Upgrade value past 255 bytes goes out cut" },
  { "http10-upgraded", M_HTTP10_UPGRADED, false, "U-QUEUE-5",
    "an HTTP/1.0 request is treated as HTTP/1.1" },
  { "shutdown-ignored", M_SHUTDOWN_IGNORED, false, "U-HALF-1",
    "shutdown(SHUT_WR) on the upgraded socket ignored" },
  { "shutdown-closes", M_SHUTDOWN_CLOSES, false, "U-HALF-1",
    "shutdown(SHUT_WR) closes both directions" },
  { "fin-lost", M_FIN_LOST, false, "U-HALF-2",
    "the client's end of stream never reaches the app" },
  { "handler-crash", M_HANDLER_CRASH, false, "U-FLAG-2",
    "the process dies when a connection is upgraded" },
  { "head-after-handler", M_HEAD_AFTER_HANDLER, false, "U-CB-1",
    "the 101 goes out only after the handler returned" },
  { "req-cls-wrong", M_REQ_CLS_WRONG, false, "U-CB-3",
    "the handler gets another req_cls" },
  { "handler-headers-gone", M_HANDLER_HEADERS_GONE, false, "U-CB-4",
    "request headers unreadable inside the handler" },
  { "recv-stalls-in-handler", M_RECV_STALLS_IN_HANDLER, false, "U-CB-6",
    "no data flows while the handler blocks" },
  { "stream-corrupt-large", M_STREAM_CORRUPT_LARGE, false, "U-EXTRA-2,U-WS-6",
    "the byte at 1 MiB flipped on an upgraded socket (the size U-EXTRA-2 and U-WS-3 name; U-SOCK-1 moves less)" },
  { "idle-timeout", M_IDLE_TIMEOUT, false, "U-TMO-1",
    "upgraded connections closed after 1.5 s" },
  { "stop-hangs", M_STOP_HANGS, false, "U-STOP-1",
    "MHD_stop_daemon never returns" },
  { "resume-lost", M_RESUME_LOST, false, "U-SUSP-1",
    "MHD_resume_connection from another thread lost" },
  { "suspend-breaks-upgraded", M_SUSPEND_BREAKS_UPGRADED, false, "U-SUSP-2",
    "suspending an upgraded connection closes it" },
  { "upgrade-cap-48", M_UPGRADE_CAP_48, false, "U-LOAD-1",
    "beyond 48 live upgrades, new ones are closed" },
  { "feature-upgrade-no", M_FEATURE_UPGRADE_NO, false, "U-API-4",
    "MHD_is_feature_supported (UPGRADE) says no" },
  { "count-leaks", M_COUNT_LEAKS, false, "U-LIMIT-2",
    "a closed upgraded connection stays counted" },
  { "sockopt-lies", M_SOCKOPT_LIES, false, "U-SOCK-3",
    "TCP options on an upgraded socket \"succeed\"" },
  { "limit-released-early", M_LIMIT_RELEASED_EARLY, false, "U-LIMIT-1",
    "an upgraded connection leaves the connection limit" },
  { "ws-accept-wrong", M_WS_ACCEPT_WRONG, false, "U-WS-1,U-WS-6",
    "Sec-WebSocket-Accept goes out changed" },
  { "ws-close-code-wrong", M_WS_CLOSE_CODE_WRONG, false, "U-WS-2,U-WS-6",
    "the status code of the server's close frames changed" },
  { "ws-handshake-forged", M_WS_HANDSHAKE_FORGED, false, "U-WS-4",
    "the application is shown a valid WebSocket handshake" },
  { "timeout-ignored", M_TIMEOUT_IGNORED, false, "U-TMO-2",
    "MHD_OPTION_CONNECTION_TIMEOUT has no effect" },
  { "tls-partial-to-client", M_PARTIAL_TO_CLIENT, false, "U-SOCK-1",
    "after a partial send to the client, already-sent bytes stay in front" },
  { "tls-partial-to-app", M_PARTIAL_TO_APP, false, "U-SOCK-1",
    "after a partial send on the socket pair, towards the application, already-sent bytes stay in front" },
  { "tls-no-close-notify", M_NO_CLOSE_NOTIFY, false, "U-ACT-1",
    "no TLS close_notify when an upgraded connection is cleaned up" },
  { "tls-byte-after-record", M_BYTE_AFTER_RECORD, false, "U-SOCK-1",
    "one byte changed after the first 16 KiB sent to the client" },
  { "tls-stall-after-eagain", M_STALL_AFTER_EAGAIN, false, "U-SOCK-4",
    "forwarding stops after a send that would block" },
  { "extra-also-on-socket", M_EXTRA_ALSO_ON_SOCKET, false, "U-EXTRA-1,U-WS-6:early",
    "extra_in is delivered again on the socket" },
  { "cls-socket-context", M_CLS_SOCKET_CONTEXT, false, "U-CB-2",
    "the handler gets the socket context as cls" },
  { "req-cls-first", M_REQ_CLS_FIRST, false, "U-CB-3",
    "the handler gets the first value of *req_cls, not the last" },
  { "suspend-accepted", M_SUSPEND_ACCEPTED, false, "U-SUSP-2",
    "suspending an upgraded connection: no refusal" },
  { "close-waits-for-loop", M_CLOSE_WAITS_FOR_LOOP, false, "U-ACT-6",
    "CLOSE from another thread waits for the loop's next run" },
  { "stop-leaks", M_STOP_LEAKS, true, "U-STOP-1",
    "MHD_stop_daemon leaks memory (seen with --sanitize)" },
  { "ambiguous-accepted", M_AMBIGUOUS_ACCEPTED, false, "U-QUEUE-7",
    "a request's Transfer-Encoding is not seen: ambiguous framing accepted" },
  { "app-token-doubled", M_APP_TOKEN_DOUBLED, false, "U-RESP-6",
    "the application's own Connection: Upgrade adds the token twice more" },
  { "queue-during-stop", M_QUEUE_DURING_STOP, false, "U-QUEUE-9",
    "an upgrade queued while MHD_stop_daemon runs \"succeeds\"" },
  { "host-unchecked", M_HOST_UNCHECKED, false, "U-REQ-6",
    "a missing or repeated Host is not seen" },
  { "handler-view-corrupt", M_HANDLER_VIEW_CORRUPT, false, "U-CB-7",
    "inside the handler a header value reads changed" },
  { "close-after-shutdown-refused", M_CLOSE_AFTER_SHUTDOWN, false, "U-HALF-4",
    "after shutdown(SHUT_RDWR), CLOSE returns MHD_NO" },
  { "skip-after-upgrade", M_SKIP_AFTER_UPGRADE, false, "U-LOAD-2",
    "after an upgrade, the pass skips the other connections' reads" },
  { "tls-pending-forgotten", M_TLS_PENDING_FORGOTTEN, false, "U-EXTRA-2",
    "decrypted bytes GnuTLS still holds are not seen after the upgrade" },
  { "suspend-accepted-late", M_SUSPEND_ACCEPTED_LATE, false, "U-SUSP-2",
    "suspending an upgraded connection after its handler: no refusal" },
  { "head-counted-early", M_HEAD_COUNTED_EARLY, false, "U-CB-1",
    "a 101 head larger than 16 KiB counts as sent after its first send" },
  { "upgrade-leaks", M_UPGRADE_LEAKS, false, "U-LIMIT-2",
    "every CLOSE leaves 4 KiB of the heap behind" },
  { "tls-eagain-ends", M_EAGAIN_ENDS, false, "U-FAULT-1",
    "a send that would block ends that way of the forwarding" },
  { "tls-short-send-whole", M_SHORT_SEND_WHOLE, false, "U-FAULT-1",
    "a short send counts as whole: the unsent tail is dropped" },
  { "tls-interrupt-fatal", M_INTERRUPT_FATAL, false, "U-FAULT-1",
    "an interrupted TLS read or write (EINTR) ends the forwarding" },
  { "failed-setup-keeps-socket", M_FAILED_SETUP_KEEPS_SOCKET, false, "U-FAULT-2",
    "an upgrade without a socket pair leaves the client's socket open" },
  { "close-after-reset-refused", M_CLOSE_AFTER_RESET, false, "U-FAULT-3",
    "after the client's reset, CLOSE returns MHD_NO and cleans nothing up" },
  { "pair-error-ends-both-ways", M_PAIR_ERROR_ENDS_BOTH, false, "U-HALF-3",
    "a failed send to the application (EPIPE) ends the other way too" },
  { "create-no-memory-crashes", M_CREATE_NO_MEMORY_CRASHES, false, "U-FAULT-2",
    "a failed allocation in MHD_create_response_for_upgrade is used: the process dies" },
  { "wait-failure-fatal", M_WAIT_FAILURE_FATAL, false, "U-FAULT-1",
    "a failed select()/poll() (ENOMEM, EAGAIN) ends the TLS forwarding" },
};

static enum mutant active;

__attribute__((constructor)) static void
choose (void)
{
  const char *want = getenv ("CONFORMANCE_MUTANT");
  if (NULL == want || '\0' == *want)
    return;
  if (0 == strcmp (want, "list"))
  {
    /* For the kill matrix (harness/reports/killmatrix.py): "NAME RULES
     * [sanitize]", a tab and what it breaks, per mutant; then stop. */
    for (size_t i = 0; i < sizeof (names) / sizeof (names[0]); i++)
      printf ("%s %s%s\t%s\n", names[i].name, names[i].rules,
              names[i].sanitize ? " sanitize" : "", names[i].breaks);
    fflush (stdout);
    _exit (0);
  }
  for (size_t i = 0; i < sizeof (names) / sizeof (names[0]); i++)
    if (0 == strcmp (want, names[i].name))
      active = names[i].m;
  if (M_NONE == active)
  {
    fprintf (stderr, "mutants: unknown CONFORMANCE_MUTANT=%s; known:", want);
    for (size_t i = 0; i < sizeof (names) / sizeof (names[0]); i++)
      fprintf (stderr, " %s", names[i].name);
    fprintf (stderr, "\n");
    _exit (2);
  }
}


/* Small tables: upgrade responses made through us, upgraded sockets and
 * their handles. Bounded; a mutant run has few at a time. */
#define SLOTS 1024
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static const void *upgrade_responses[SLOTS];
/* What MHD forwards one way of an upgraded TLS connection (the TLS
 * mutants): bytes so far, and the stale front a faulty partial send left. */
struct way
{
  unsigned long long bytes;
  unsigned int calls;
  unsigned char stale[65536];
  size_t stale_len;
  bool stalled; /* M_STALL_AFTER_EAGAIN: a send would have blocked */
  bool flipped; /* M_BYTE_AFTER_RECORD: done */
};
static struct
{
  struct MHD_UpgradeResponseHandle *urh;
  int sock;
  struct MHD_Connection *connection;
  bool shut_both; /* M_CLOSE_AFTER_SHUTDOWN: the application shut sock down both ways */
  bool peer_reset; /* M_CLOSE_AFTER_RESET: a read or write on sock met the client's reset */
  /* M_EXTRA_ALSO_ON_SOCKET: extra_in, to be read again from the socket. */
  char *again;
  size_t again_len, again_at;
} upgraded[SLOTS];
/* HTTPS: what MHD forwards for an upgraded connection, from the handler's
 * call until MHD lets the TLS session go (gnutls_deinit). Not in upgraded[],
 * which lets a slot go when CLOSE returns: MHD forwards what is left, and
 * sends its close_notify, on its own thread after that. */
static struct
{
  gnutls_session_t tls;
  int mhd_sock; /* MHD's end of the socket pair; -1 once MHD closed it */
  struct way to_client, to_app;
} forwarding[SLOTS];
/* Socket pairs MHD made: the application's end and MHD's. */
static struct
{
  int app, mhd;
} pairs[SLOTS];
static __thread bool in_handler;
static volatile bool stopping; /* MHD_stop_daemon was called */
static __thread bool upgraded_this_pass; /* M_SKIP_AFTER_UPGRADE */
static __thread bool in_loop; /* inside MHD_run or MHD_run_from_select */
static const void *pending_close[SLOTS]; /* M_CLOSE_WAITS_FOR_LOOP: handles */
static __thread bool in_close; /* inside MHD_upgrade_action (CLOSE) */
static __thread int handler_sock = -1; /* the socket of the running handler */
static unsigned long long sent_bytes[SLOTS]; /* per upgraded[] slot */
static unsigned int closes_done;             /* M_COUNT_LEAKS, under lock */
static char held_head[8192];                 /* M_HEAD_AFTER_HANDLER */
static size_t held_len;
static int held_fd = -1;

static void
table_put (const void **t, const void *p)
{
  pthread_mutex_lock (&lock);
  for (size_t i = 0; i < SLOTS; i++)
    if (NULL == t[i])
    {
      t[i] = p;
      break;
    }
  pthread_mutex_unlock (&lock);
}


static bool
table_take (const void **t, const void *p, bool remove)
{
  bool found = false;
  pthread_mutex_lock (&lock);
  for (size_t i = 0; i < SLOTS && ! found; i++)
    if (t[i] == p && NULL != p)
    {
      found = true;
      if (remove)
        t[i] = NULL;
    }
  pthread_mutex_unlock (&lock);
  return found;
}


static int
sock_of (struct MHD_UpgradeResponseHandle *urh)
{
  int sock = -1;
  pthread_mutex_lock (&lock);
  for (size_t i = 0; i < SLOTS; i++)
    if (upgraded[i].urh == urh && NULL != urh)
      sock = upgraded[i].sock;
  pthread_mutex_unlock (&lock);
  return sock;
}


/* M_CLOSE_AFTER_RESET: marks @a fd's connection when a call on it met the
 * client's reset (@a r and errno are that call's); errno is kept. */
static void
note_reset (int fd, ssize_t r)
{
  int err = errno;
  if (r >= 0 || (ECONNRESET != err && EPIPE != err))
    return;
  pthread_mutex_lock (&lock);
  for (size_t i = 0; i < SLOTS; i++)
    if (NULL != upgraded[i].urh && upgraded[i].sock == fd)
      upgraded[i].peer_reset = true;
  pthread_mutex_unlock (&lock);
  errno = err;
}


/* M_FAILED_SETUP_KEEPS_SOCKET: the descriptor of the last 101 sent whose
 * upgrade handler has not run yet; MHD closing it means the upgrade could
 * not be set up. */
static atomic_int head_fd = -1;


static bool
is_upgraded_sock (int fd)
{
  bool found = false;
  pthread_mutex_lock (&lock);
  for (size_t i = 0; i < SLOTS; i++)
    if (NULL != upgraded[i].urh && upgraded[i].sock == fd)
      found = true;
  pthread_mutex_unlock (&lock);
  return found;
}


static void *
idle_killer (void *arg)
{
  int sock = (int) (intptr_t) arg;
  usleep (1500 * 1000);
  if (is_upgraded_sock (sock))
    REAL (shutdown)(sock, SHUT_RDWR);
  return NULL;
}


static void
start_idle_killer (int sock)
{
  pthread_t t;
  if (0 == pthread_create (&t, NULL, &idle_killer, (void *) (intptr_t) sock))
    pthread_detach (t);
}


/* M_REQ_CLS_FIRST: the value the access handler left in *req_cls after
 * its first call, per connection. */
static struct
{
  struct MHD_Connection *connection;
  void *req_cls;
} first_values[SLOTS];


static void *
first_req_cls (struct MHD_Connection *connection, void *last)
{
  void *first = last;
  pthread_mutex_lock (&lock);
  for (size_t i = 0; i < SLOTS; i++)
    if (first_values[i].connection == connection)
      first = first_values[i].req_cls;
  pthread_mutex_unlock (&lock);
  return first;
}


struct wrapped
{
  MHD_UpgradeHandler handler;
  void *cls;
};

static void
trampoline (void *cls, struct MHD_Connection *connection, void *req_cls,
            const char *extra_in, size_t extra_in_size, MHD_socket sock,
            struct MHD_UpgradeResponseHandle *urh)
{
  struct wrapped *w = cls;
  char *copy = NULL;

  size_t live = 0;
  atomic_store (&head_fd, -1); /* set up: the handler runs */
  pthread_mutex_lock (&lock);
  const union MHD_ConnectionInfo *tls =
    MHD_get_connection_info (connection, MHD_CONNECTION_INFO_GNUTLS_SESSION);
  for (size_t i = 0; i < SLOTS; i++)
    if (NULL == upgraded[i].urh || upgraded[i].sock == sock)
    {
      memset (&upgraded[i], 0, sizeof (upgraded[i]));
      upgraded[i].urh = urh;
      upgraded[i].sock = sock;
      upgraded[i].connection = connection;
      sent_bytes[i] = 0;
      break;
    }
  for (size_t i = 0; i < SLOTS && NULL != tls; i++)
    if (NULL == forwarding[i].tls || forwarding[i].tls == tls->tls_session)
    {
      memset (&forwarding[i], 0, sizeof (forwarding[i]));
      forwarding[i].tls = tls->tls_session;
      forwarding[i].mhd_sock = -1;
      for (size_t j = 0; j < SLOTS; j++)
        if (pairs[j].app == sock && pairs[j].mhd > 0)
          forwarding[i].mhd_sock = pairs[j].mhd;
      break;
    }
  for (size_t i = 0; i < SLOTS; i++)
    live += (NULL != upgraded[i].urh);
  pthread_mutex_unlock (&lock);
  if (M_UPGRADE_CAP_48 == active && live > 48)
    REAL (shutdown)(sock, SHUT_RDWR);
  if (M_IDLE_TIMEOUT == active)
    start_idle_killer (sock);

  switch (active)
  {
  case M_EXTRA_DROPPED:
    extra_in_size = 0;
    break;
  case M_EXTRA_TRUNCATED:
    if (extra_in_size > 0)
      extra_in_size--;
    break;
  case M_EXTRA_GARBLED:
    if (extra_in_size > 0 && NULL != (copy = malloc (extra_in_size)))
    {
      memcpy (copy, extra_in, extra_in_size);
      copy[0] ^= 0x20;
      extra_in = copy;
    }
    break;
  case M_EXTRA_SPURIOUS:
    if (0 == extra_in_size)
    {
      extra_in = "X";
      extra_in_size = 1;
    }
    break;
  default:
    break;
  }
  if (M_HANDLER_CRASH == active)
    abort ();
  if (M_EXTRA_ALSO_ON_SOCKET == active && extra_in_size > 0)
  {
    pthread_mutex_lock (&lock);
    for (size_t i = 0; i < SLOTS; i++)
      if (upgraded[i].urh == urh && NULL != (upgraded[i].again = malloc (extra_in_size)))
      {
        memcpy (upgraded[i].again, extra_in, extra_in_size);
        upgraded[i].again_len = extra_in_size;
        upgraded[i].again_at = 0;
      }
    pthread_mutex_unlock (&lock);
  }
  void *handler_cls = w->cls;
  if (M_CLS_WRONG == active)
    handler_cls = w;
  if (M_CLS_SOCKET_CONTEXT == active)
  {
    const union MHD_ConnectionInfo *ci =
      MHD_get_connection_info (connection, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    handler_cls = NULL == ci ? NULL : ci->socket_context;
  }
  if (M_REQ_CLS_FIRST == active)
    req_cls = first_req_cls (connection, req_cls);
  in_handler = true;
  handler_sock = sock;
  upgraded_this_pass = true;
  w->handler (handler_cls, connection, M_REQ_CLS_WRONG == active ? (void *) w : req_cls,
              extra_in, extra_in_size, sock, urh);
  in_handler = false;
  if (M_HEAD_AFTER_HANDLER == active)
  {
    pthread_mutex_lock (&lock);
    if (held_fd == sock)
    {
      REAL (send)(sock, held_head, held_len, MSG_NOSIGNAL);
      held_fd = -1;
    }
    pthread_mutex_unlock (&lock);
  }
  free (copy);
}


struct MHD_Response *
MHD_create_response_for_upgrade (MHD_UpgradeHandler handler, void *cls)
{
  struct wrapped *w;
  struct MHD_Response *r;
  if (M_CREATE_FAILS == active)
    return NULL;
  if (NULL == handler)
  {
    if (M_NULL_HANDLER_ACCEPTED == active)
      return MHD_create_response_from_buffer (0, (void *) "",
                                              MHD_RESPMEM_PERSISTENT);
    return REAL (MHD_create_response_for_upgrade)(NULL, cls);
  }
  w = malloc (sizeof (*w)); /* lives as long as the process: a test tool */
  if (NULL == w)
    return NULL;
  w->handler = handler;
  w->cls = cls;
  r = REAL (MHD_create_response_for_upgrade)(&trampoline, w);
  if (NULL == r && M_CREATE_NO_MEMORY_CRASHES == active)
    raise (SIGSEGV); /* as a write through the NULL that calloc() gave */
  if (NULL != r)
    table_put (upgrade_responses, r);
  return r;
}


void
MHD_destroy_response (struct MHD_Response *response)
{
  table_take (upgrade_responses, response, true);
  REAL (MHD_destroy_response)(response);
}


enum MHD_Result
MHD_queue_response (struct MHD_Connection *connection,
                    unsigned int status_code, struct MHD_Response *response)
{
  bool upgrade = table_take (upgrade_responses, response, false);
  enum MHD_Result r;
  if (upgrade && M_UPGRADE_REFUSED == active)
    return MHD_NO;
  if (upgrade && M_QUEUE_DURING_STOP == active && stopping)
    return MHD_YES; /* as if queued: nothing will go out */
  if (upgrade && M_STATUS_UNCHECKED == active)
    status_code = MHD_HTTP_SWITCHING_PROTOCOLS;
  r = REAL (MHD_queue_response)(connection, status_code, response);
  if (MHD_NO == r && M_QUEUE_LIES_YES == active)
    return MHD_YES;
  return r;
}


enum MHD_Result
MHD_add_response_header (struct MHD_Response *response, const char *header,
                         const char *content)
{
  if (M_CLOSE_HEADER_ACCEPTED == active
      && 0 == strcasecmp (header, MHD_HTTP_HEADER_CONNECTION)
      && 0 == strcasecmp (content, "close"))
    return MHD_YES;
  if (M_WS_ACCEPT_WRONG == active && NULL != content && '\0' != *content
      && 0 == strcasecmp (header, "Sec-WebSocket-Accept"))
  {
    char changed[64];
    snprintf (changed, sizeof (changed), "%s", content);
    changed[0] = 'A' == changed[0] ? 'B' : 'A';
    return REAL (MHD_add_response_header)(response, header, changed);
  }
  if (M_APP_TOKEN_DOUBLED == active && table_take (upgrade_responses, response, false)
      && 0 == strcasecmp (header, MHD_HTTP_HEADER_CONNECTION) && NULL != content
      && 0 == strcasecmp (content, "Upgrade"))
    return REAL (MHD_add_response_header)(response, header, "Upgrade, Upgrade");
  return REAL (MHD_add_response_header)(response, header, content);
}


enum MHD_Result
MHD_set_response_options (struct MHD_Response *response,
                          enum MHD_ResponseFlags flags, ...)
{
  if (M_RF_IGNORED == active)
    return MHD_YES;
  return REAL (MHD_set_response_options)(response, flags, MHD_RO_END);
}


enum MHD_Result
MHD_upgrade_action (struct MHD_UpgradeResponseHandle *urh,
                    enum MHD_UpgradeAction action, ...)
{
  bool known = (NULL != urh) && (MHD_UPGRADE_ACTION_CLOSE == action
                                 || MHD_UPGRADE_ACTION_CORK_ON == action
                                 || MHD_UPGRADE_ACTION_CORK_OFF == action);
  if (! known && M_UNKNOWN_ACTION_YES == active)
    return MHD_YES;
  if (MHD_UPGRADE_ACTION_CLOSE == action && NULL != urh)
  {
    if (M_UPGRADE_LEAKS == active)
    {
      /* The handle's memory, never freed (as a forgotten urh would be). */
      volatile char *lost = malloc (4096);
      if (NULL != lost)
        lost[0] = 1;
      lost = NULL;
    }
    if (M_CLOSE_NOOP == active || (M_CLOSE_IN_HANDLER_IGNORED == active
                                   && in_handler))
      return MHD_YES;
    if (M_CLOSE_AFTER_SHUTDOWN == active || M_CLOSE_AFTER_RESET == active)
    {
      /* As if MHD had torn the connection down on the hang-up (after the
       * application's shutdown both ways), or had left it (after the
       * client's reset): CLOSE is refused, nothing is cleaned up. */
      bool refuse = false;
      pthread_mutex_lock (&lock);
      for (size_t i = 0; i < SLOTS; i++)
        if (upgraded[i].urh == urh)
          refuse = M_CLOSE_AFTER_SHUTDOWN == active ? upgraded[i].shut_both
                   : upgraded[i].peer_reset;
      pthread_mutex_unlock (&lock);
      if (refuse)
        return MHD_NO;
    }
    if (M_CLOSE_WAITS_FOR_LOOP == active && ! in_handler && ! in_loop)
    {
      table_put (pending_close, urh);
      return MHD_YES; /* done at the external loop's next MHD_run */
    }
    if (M_CLOSE_RST == active)
    {
      struct linger lg = { 1, 0 };
      int sock = sock_of (urh);
      if (sock >= 0)
        REAL (setsockopt)(sock, SOL_SOCKET, SO_LINGER, &lg, sizeof (lg));
    }
  }
  if (M_CORK_NOOP == active && (MHD_UPGRADE_ACTION_CORK_ON == action
                                || MHD_UPGRADE_ACTION_CORK_OFF == action))
    return MHD_YES;
  in_close = true;
  enum MHD_Result r = REAL (MHD_upgrade_action)(urh, action);
  in_close = false;
  if (MHD_UPGRADE_ACTION_CLOSE == action && MHD_YES == r)
  {
    /* The socket number may now be reused by a plain HTTP connection. */
    pthread_mutex_lock (&lock);
    for (size_t i = 0; i < SLOTS; i++)
      if (upgraded[i].urh == urh)
        upgraded[i].urh = NULL;
    closes_done++;
    pthread_mutex_unlock (&lock);
  }
  return r;
}


const union MHD_DaemonInfo *
MHD_get_daemon_info (struct MHD_Daemon *daemon,
                     enum MHD_DaemonInfoType info_type, ...)
{
  /* The reference server asks only for types that take no extra argument. */
  static __thread union MHD_DaemonInfo leaked;
  const union MHD_DaemonInfo *info = REAL (MHD_get_daemon_info)(daemon,
                                                                 info_type);
  if (M_COUNT_LEAKS != active || NULL == info
      || MHD_DAEMON_INFO_CURRENT_CONNECTIONS != info_type)
    return info;
  pthread_mutex_lock (&lock);
  leaked.num_connections = info->num_connections + closes_done;
  pthread_mutex_unlock (&lock);
  return &leaked;
}


/* M_LIMIT_RELEASED_EARLY: one more connection than the limit asked for, as
 * if the upgraded connection had left MHD's count. M_TIMEOUT_IGNORED: no
 * connection timeout, whatever was asked. */
static void
mutate_option (struct MHD_OptionItem *i)
{
  if (M_LIMIT_RELEASED_EARLY == active
      && MHD_OPTION_CONNECTION_LIMIT == i->option)
    i->value++;
  if (M_TIMEOUT_IGNORED == active
      && MHD_OPTION_CONNECTION_TIMEOUT == i->option)
    i->value = 0;
}


/* Walks the options the reference server passes (main.c, start_daemon) to
 * its MHD_OPTION_ARRAY and mutates each item; stops at any option it does
 * not know. */
static void
mutate_option_array (va_list ap)
{
  for (;;)
  {
    enum MHD_OPTION o = va_arg (ap, enum MHD_OPTION);
    switch (o)
    {
    case MHD_OPTION_EXTERNAL_LOGGER:
    case MHD_OPTION_NOTIFY_CONNECTION:
    case MHD_OPTION_NOTIFY_COMPLETED:
      (void) va_arg (ap, void (*)(void)); /* the callback */
      (void) va_arg (ap, void *);         /* its cls */
      break;
    case MHD_OPTION_SOCK_ADDR:
      (void) va_arg (ap, void *);
      break;
    case MHD_OPTION_ARRAY:
      for (struct MHD_OptionItem *i = va_arg (ap, struct MHD_OptionItem *);
           MHD_OPTION_END != i->option; i++)
        mutate_option (i);
      return;
    default:
      return;
    }
  }
}


/* M_WS_HANDSHAKE_FORGED: the access handler MHD calls, which tells the
 * application every request is a GET of HTTP/1.1. M_REQ_CLS_FIRST: it
 * notes the value of *req_cls after the first call. */
static MHD_AccessHandlerCallback real_access;

static enum MHD_Result
forged_access (void *cls, struct MHD_Connection *connection, const char *url,
               const char *method, const char *version,
               const char *upload_data, size_t *upload_data_size,
               void **req_cls)
{
  bool first = NULL == *req_cls;
  enum MHD_Result r;
  if (M_WS_HANDSHAKE_FORGED == active)
  {
    method = MHD_HTTP_METHOD_GET;
    version = MHD_HTTP_VERSION_1_1;
  }
  r = real_access (cls, connection, url, method, version, upload_data,
                   upload_data_size, req_cls);
  if (M_REQ_CLS_FIRST == active && first)
  {
    pthread_mutex_lock (&lock);
    size_t free_slot = SLOTS;
    for (size_t i = 0; i < SLOTS; i++)
    {
      if (first_values[i].connection == connection)
        free_slot = i;
      else if (SLOTS == free_slot && NULL == first_values[i].connection)
        free_slot = i;
    }
    if (free_slot < SLOTS)
    {
      first_values[free_slot].connection = connection;
      first_values[free_slot].req_cls = *req_cls;
    }
    pthread_mutex_unlock (&lock);
  }
  return r;
}


struct MHD_Daemon *
MHD_start_daemon (unsigned int flags, uint16_t port,
                  MHD_AcceptPolicyCallback apc, void *apc_cls,
                  MHD_AccessHandlerCallback dh, void *dh_cls, ...)
{
  struct MHD_Daemon *d;
  va_list ap;
  if (M_FLAG_IGNORED == active)
    flags |= MHD_ALLOW_UPGRADE;
  if ((M_WS_HANDSHAKE_FORGED == active || M_REQ_CLS_FIRST == active)
      && NULL != dh)
  {
    real_access = dh;
    dh = &forged_access;
  }
  if (M_LIMIT_RELEASED_EARLY == active || M_TIMEOUT_IGNORED == active)
  {
    va_start (ap, dh_cls);
    mutate_option_array (ap);
    va_end (ap);
  }
  va_start (ap, dh_cls);
  d = MHD_start_daemon_va (flags, port, apc, apc_cls, dh, dh_cls, ap);
  va_end (ap);
  return d;
}


/* Rewrites a 101 head on its way out. Returns the new length, or 0 to
 * leave the buffer as it is. */
static size_t
rewrite_head (const char *in, size_t len, char *out, size_t cap)
{
  static const char status[] = "HTTP/1.1 101 Switching Protocols\r\n";
  const char *p;
  if (len < sizeof (status) - 1 || 0 != memcmp (in, status,
                                                sizeof (status) - 1)
      || len + 64 > cap)
    return 0;
  switch (active)
  {
  case M_REASON_CHANGED:
    memcpy (out, "HTTP/1.1 101 OK\r\n", 17);
    memcpy (out + 17, in + sizeof (status) - 1, len - (sizeof (status) - 1));
    return len - (sizeof (status) - 1) + 17;
  case M_CONNECTION_DUPLICATED:
    memcpy (out, in, sizeof (status) - 1);
    memcpy (out + sizeof (status) - 1, "Connection: Upgrade\r\n", 21);
    memcpy (out + sizeof (status) - 1 + 21, in + sizeof (status) - 1,
            len - (sizeof (status) - 1));
    return len + 21;
  case M_UPGRADE_VALUE_CHANGED:
    memcpy (out, in, len);
    p = memmem (out, len, "\r\nUpgrade: ", 11);
    for (char *c = p ? (char *) p + 11 : NULL; c && c < out + len && '\r' != *c;
         c++)
      if (*c >= 'A' && *c <= 'Z')
        *c = (char) (*c + 32);
    return NULL == p ? 0 : len;
  case M_UPGRADE_VALUE_TRUNCATED:
  {
    /* As if the value were kept in a byte-sized length field. */
    const char *v = memmem (in, len, "\r\nUpgrade: ", 11);
    const char *end = NULL == v ? NULL : memmem (v + 11, len - (size_t) (v + 11 - in), "\r\n", 2);
    if (NULL == end || end - (v + 11) <= 255)
      return 0;
    size_t keep = (size_t) (v + 11 - in) + 255;
    memcpy (out, in, keep);
    memcpy (out + keep, end, len - (size_t) (end - in));
    return keep + (len - (size_t) (end - in));
  }
  default:
    return 0;
  }
}


static ssize_t
send_rewritten (int fd, const void *buf, size_t len, int flags,
                ssize_t (*send_fn)(int, const void *, size_t, int))
{
  char out[8192];
  size_t n = rewrite_head (buf, len, out, sizeof (out));
  if (0 == n)
    return send_fn (fd, buf, len, flags);
  /* Small heads on loopback go out whole; report the caller's length. */
  ssize_t r = send_fn (fd, out, n, flags);
  return r == (ssize_t) n ? (ssize_t) len : (r < 0 ? r : 0);
}


/* M_WS_CLOSE_CODE_WRONG: wslay sends a frame's header and its payload in
 * two send() calls. After a close frame's header (0x88, length >= 2) on an
 * upgraded socket, the next send starts with the status code: 1000 becomes
 * 1001, any other code 1000. */
static __thread int close_header_fd = -1; /* per thread: another connection's sends between header and payload */

static ssize_t
send_close_code_changed (int fd, const void *buf, size_t len, int flags)
{
  const unsigned char *b = buf;
  bool code_next;
  code_next = close_header_fd == fd && len >= 2;
  close_header_fd = (2 == len && 0x88 == b[0] && (b[1] & 0x7f) >= 2) ? fd : -1;
  if (code_next)
  {
    unsigned char copy[128];
    unsigned int code = ((unsigned int) b[0] << 8) | b[1];
    size_t n = len < sizeof (copy) ? len : sizeof (copy);
    memcpy (copy, buf, n);
    code = 1000 == code ? 1001 : 1000;
    copy[0] = (unsigned char) (code >> 8);
    copy[1] = (unsigned char) (code & 0xff);
    return REAL (send)(fd, copy, n, flags);
  }
  return REAL (send)(fd, buf, len, flags);
}


/* M_STREAM_CORRUPT_LARGE: the byte at offset 1 MiB - 1 of what the
 * application sends on an upgraded socket goes out changed, however the
 * sends split the stream: counted by what send() took, so a short send or
 * EAGAIN leaves the byte for the send that carries it. */
static ssize_t
send_corrupted_at_1mib (int fd, const void *buf, size_t len, int flags)
{
  const unsigned long long at = (1u << 20) - 1;
  unsigned long long *sent = NULL;
  unsigned long long before = 0;
  char *copy = NULL;
  ssize_t r;
  pthread_mutex_lock (&lock);
  for (size_t i = 0; i < SLOTS; i++)
    if (NULL != upgraded[i].urh && upgraded[i].sock == fd)
      sent = &sent_bytes[i];
  if (NULL != sent)
    before = *sent;
  pthread_mutex_unlock (&lock);
  if (NULL != sent && before <= at && at < before + len
      && NULL != (copy = malloc (len)))
  {
    memcpy (copy, buf, len);
    copy[at - before] ^= 0x01;
  }
  r = REAL (send)(fd, NULL != copy ? copy : buf, len, flags);
  free (copy);
  if (NULL != sent && r > 0)
  {
    pthread_mutex_lock (&lock);
    *sent += (unsigned long long) r;
    pthread_mutex_unlock (&lock);
  }
  return r;
}


static ssize_t send_to_app (int fd, const void *buf, size_t len);

/* M_HEAD_COUNTED_EARLY: what the first send of a large 101 head sends. */
#define HEAD_SENT_FIRST 16384


ssize_t
send (int fd, const void *buf, size_t len, int flags)
{
  if (M_CLOSE_AFTER_RESET == active)
  {
    ssize_t r = REAL (send)(fd, buf, len, flags);
    note_reset (fd, r);
    return r;
  }
  if (len >= 12 && 0 == memcmp (buf, "HTTP/1.1 101", 12))
    head_fd = fd;
  ssize_t to_app = send_to_app (fd, buf, len);
  if (-2 != to_app)
    return to_app;
  if (M_HEAD_COUNTED_EARLY == active && len > HEAD_SENT_FIRST
      && 0 == memcmp (buf, "HTTP/1.1 101", 12))
  {
    ssize_t r = REAL (send)(fd, buf, HEAD_SENT_FIRST, flags);
    return r > 0 ? (ssize_t) len : r; /* the rest is never sent */
  }
  if (M_HEAD_AFTER_HANDLER == active && len >= 12 && len <= sizeof (held_head)
      && 0 == memcmp (buf, "HTTP/1.1 101", 12))
  {
    pthread_mutex_lock (&lock);
    memcpy (held_head, buf, len);
    held_len = len;
    held_fd = fd;
    pthread_mutex_unlock (&lock);
    return (ssize_t) len;
  }
  if (M_STREAM_CORRUPT_LARGE == active && len > 0)
    return send_corrupted_at_1mib (fd, buf, len, flags);
  if (M_WS_CLOSE_CODE_WRONG == active && is_upgraded_sock (fd))
    return send_close_code_changed (fd, buf, len, flags);
  return send_rewritten (fd, buf, len, flags, REAL (send));
}


/* M_HOST_UNCHECKED: a request head read with no Host header gets one (if
 * there is room); a second Host header is renamed. */
static void
forge_host (void *buf, ssize_t *r, size_t cap)
{
  char *b = buf;
  char *end = memmem (b, (size_t) *r, "\r\n\r\n", 4);
  char *first = memmem (b, (size_t) *r, "\r\nHost:", 7);
  if (NULL == end || ! (0 == strncmp (b, "GET ", 4) || 0 == strncmp (b, "POST ", 5)))
    return;
  if (NULL == first || first > end)
  {
    char *eol = memmem (b, (size_t) *r, "\r\n", 2);
    if ((size_t) *r + 9 > cap || NULL == eol)
      return;
    memmove (eol + 9, eol, (size_t) (b + *r - eol));
    memcpy (eol, "\r\nHost: x", 9);
    *r += 9;
    return;
  }
  char *second = memmem (first + 2, (size_t) (end - first - 2), "\r\nHost:", 7);
  if (NULL != second)
    second[2] = 'X';
}


ssize_t
recv (int fd, void *buf, size_t len, int flags)
{
  if (M_SKIP_AFTER_UPGRADE == active && upgraded_this_pass && ! is_upgraded_sock (fd)
      && ! in_handler)
  {
    /* The rest of this pass reads nothing more: what is there waits for
     * the next readiness, which an edge-triggered loop never reports. */
    errno = EAGAIN;
    return -1;
  }
  if (M_EXTRA_ALSO_ON_SOCKET == active && len > 0)
  {
    ssize_t n = -1;
    pthread_mutex_lock (&lock);
    for (size_t i = 0; i < SLOTS && n < 0; i++)
      if (NULL != upgraded[i].urh && upgraded[i].sock == fd && NULL != upgraded[i].again)
      {
        size_t left = upgraded[i].again_len - upgraded[i].again_at;
        n = (ssize_t) (left < len ? left : len);
        memcpy (buf, upgraded[i].again + upgraded[i].again_at, (size_t) n);
        upgraded[i].again_at += (size_t) n;
        if (upgraded[i].again_at == upgraded[i].again_len)
        {
          free (upgraded[i].again);
          upgraded[i].again = NULL;
        }
      }
    pthread_mutex_unlock (&lock);
    if (n >= 0)
      return n;
  }
  ssize_t r = REAL (recv)(fd, buf, len, flags);
  if (M_CLOSE_AFTER_RESET == active)
    note_reset (fd, r);
  if (M_HTTP10_UPGRADED == active && r > 0)
  {
    char *p = memmem (buf, (size_t) r, " HTTP/1.0\r\n", 11);
    if (NULL != p)
      p[8] = '1';
  }
  if (M_HOST_UNCHECKED == active && r > 0 && ! is_upgraded_sock (fd))
    forge_host (buf, &r, len);
  if (M_AMBIGUOUS_ACCEPTED == active && r > 0 && ! is_upgraded_sock (fd))
  {
    /* The header's name changed in place: MHD never sees the coding. */
    char *p = memmem (buf, (size_t) r, "\r\nTransfer-Encoding:", 20);
    if (NULL != p)
      memcpy (p + 2, "X-Transfer-Encodi", 17); /* same length, colon kept */
  }
  if (M_RECV_STALLS_IN_HANDLER == active && in_handler && r > 0 && is_upgraded_sock (fd))
  {
    errno = EAGAIN; /* what was read is lost: nothing flows in the handler */
    return -1;
  }
  if (M_FIN_LOST == active && 0 == r && is_upgraded_sock (fd))
  {
    errno = EAGAIN;
    return -1;
  }
  return r;
}


int
setsockopt (int fd, int level, int name, const void *value, socklen_t len)
{
  /* A socket pair pretending to be TCP: the call "works", nothing happens. */
  if (M_SOCKOPT_LIES == active && IPPROTO_TCP == level && is_upgraded_sock (fd))
    return 0;
  return REAL (setsockopt)(fd, level, name, value, len);
}


int
shutdown (int fd, int how)
{
  if (M_CLOSE_AFTER_SHUTDOWN == active && SHUT_RDWR == how && is_upgraded_sock (fd))
  {
    pthread_mutex_lock (&lock);
    for (size_t i = 0; i < SLOTS; i++)
      if (NULL != upgraded[i].urh && upgraded[i].sock == fd)
        upgraded[i].shut_both = true;
    pthread_mutex_unlock (&lock);
  }
  if (SHUT_WR == how && is_upgraded_sock (fd))
  {
    if (M_SHUTDOWN_IGNORED == active)
      return 0;
    if (M_SHUTDOWN_CLOSES == active)
      how = SHUT_RDWR;
  }
  return REAL (shutdown)(fd, how);
}


const char *
MHD_lookup_connection_value (struct MHD_Connection *connection,
                             enum MHD_ValueKind kind, const char *key)
{
  if (M_HANDLER_HEADERS_GONE == active && in_handler)
    return NULL;
  if (M_HANDLER_VIEW_CORRUPT == active && in_handler && MHD_HEADER_KIND == kind && NULL != key
      && 0 == strcasecmp (key, "Host"))
    return "overwritten";
  if (M_WS_HANDSHAKE_FORGED == active && MHD_HEADER_KIND == kind
      && NULL != key)
  {
    /* RFC 6455's example handshake, whatever the client sent. */
    static const char *const forged[][2] = {
      { "Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==" },
      { "Sec-WebSocket-Version", "13" },
      { "Upgrade", "websocket" },
      { "Connection", "Upgrade" },
    };
    for (size_t i = 0; i < sizeof (forged) / sizeof (forged[0]); i++)
      if (0 == strcasecmp (key, forged[i][0]))
        return forged[i][1];
  }
  return REAL (MHD_lookup_connection_value)(connection, kind, key);
}


void
MHD_stop_daemon (struct MHD_Daemon *daemon)
{
  stopping = true;
  if (M_STOP_HANGS == active)
    for (;;)
      pause (); /* until killed: no deadline of the harness, however scaled, outlasts it */
  if (M_STOP_LEAKS == active)
  {
    /* What a stop that forgets a connection's memory looks like to
     * LeakSanitizer: a block nothing points to any more. */
    volatile char *lost = malloc (4096);
    if (NULL != lost)
      lost[0] = 1;
    lost = NULL;
  }
  REAL (MHD_stop_daemon)(daemon);
}


void
MHD_resume_connection (struct MHD_Connection *connection)
{
  /* MHD's own CLOSE path resumes too, from whatever thread: lose only
   * the application's resumes (made outside any upgrade handle). */
  if (M_RESUME_LOST == active && ! in_close)
    return;
  REAL (MHD_resume_connection)(connection);
}


void
MHD_suspend_connection (struct MHD_Connection *connection)
{
  if (M_SUSPEND_ACCEPTED == active && in_handler)
    return; /* as if it had been done: no refusal, no log line */
  if (M_SUSPEND_ACCEPTED_LATE == active && ! in_handler)
  {
    /* A guard that looks at the wrong field: out of the handler, an
     * upgraded connection is not seen as one. What MHD would do next
     * (suspend it, breaking its connection lists) LD_PRELOAD cannot; the
     * missing refusal is what a case sees. */
    bool upgraded_connection = false;
    pthread_mutex_lock (&lock);
    for (size_t i = 0; i < SLOTS; i++)
      if (NULL != upgraded[i].urh && upgraded[i].connection == connection)
        upgraded_connection = true;
    pthread_mutex_unlock (&lock);
    if (upgraded_connection)
      return;
  }
  if (M_SUSPEND_BREAKS_UPGRADED == active && in_handler)
  {
    if (handler_sock >= 0)
      REAL (shutdown)(handler_sock, SHUT_RDWR);
  }
  REAL (MHD_suspend_connection)(connection);
}


enum MHD_Result
MHD_is_feature_supported (enum MHD_FEATURE feature)
{
  if (M_FEATURE_UPGRADE_NO == active && MHD_FEATURE_UPGRADE == feature)
    return MHD_NO;
  return REAL (MHD_is_feature_supported)(feature);
}


int
close (int fd)
{
  int expected = fd;
  if (M_FAILED_SETUP_KEEPS_SOCKET == active && fd >= 0
      && atomic_compare_exchange_strong (&head_fd, &expected, -1))
    return 0; /* never closed: the client's connection stays, the descriptor leaks */
  pthread_mutex_lock (&lock);
  for (size_t i = 0; i < SLOTS && fd >= 0; i++)
    if (NULL != forwarding[i].tls && forwarding[i].mhd_sock == fd)
      forwarding[i].mhd_sock = -1; /* the number may be reused */
  pthread_mutex_unlock (&lock);
  return REAL (close)(fd);
}


/* -- MHD's TLS forwarding (HTTPS): the socket pair and GnuTLS's records --- */

int
socketpair (int domain, int type, int protocol, int sv[2])
{
  int r = REAL (socketpair)(domain, type, protocol, sv);
  if (0 != r)
    return r;
  /* MHD keeps sv[1] and hands sv[0] to the application (response.c). */
  pthread_mutex_lock (&lock);
  for (size_t i = 0; i < SLOTS; i++)
    if (pairs[i].app == sv[0] || pairs[i].mhd == sv[0]
        || pairs[i].app == sv[1] || pairs[i].mhd == sv[1])
      pairs[i].app = pairs[i].mhd = 0;
  for (size_t i = 0; i < SLOTS; i++)
    if (0 == pairs[i].mhd)
    {
      pairs[i].app = sv[0];
      pairs[i].mhd = sv[1];
      break;
    }
  pthread_mutex_unlock (&lock);
  return 0;
}


/* The forwarding state of one way: to the client by TLS session, to the
 * application by MHD's socket; NULL if it is not an upgraded connection's.
 * Called under lock. */
static struct way *
way_of (gnutls_session_t tls, int mhd_sock)
{
  for (size_t i = 0; i < SLOTS; i++)
    if (NULL != forwarding[i].tls)
    {
      if (NULL != tls && forwarding[i].tls == tls)
        return &forwarding[i].to_client;
      if (mhd_sock >= 0 && forwarding[i].mhd_sock == mhd_sock)
        return &forwarding[i].to_app;
    }
  return NULL;
}


/* M_PARTIAL_TO_*: once 16 KiB went one way, every 8th send is cut to half;
 * the bytes it did send stay at the front of the buffer, as if the forwarder
 * had not moved the rest up: the next send repeats them and the end of what
 * was buffered is lost. @a real_send sends and returns the count (or < 0).
 * Called with @a w looked up under lock; the lock is not held. */
static ssize_t
forward_partially (struct way *w, const void *data, size_t size,
                   ssize_t (*real_send)(const void *, size_t, void *),
                   void *ctx)
{
  unsigned char copy[65536];
  const unsigned char *out = data;
  ssize_t r;
  if (0 != w->stale_len && size > 0)
  {
    size_t n = size < sizeof (copy) ? size : sizeof (copy);
    size_t stale = w->stale_len < n ? w->stale_len : n;
    memcpy (copy, data, n);
    memcpy (copy, w->stale, stale);
    w->stale_len = 0;
    r = real_send (copy, n, ctx);
  }
  else if (w->bytes >= 16384 && size >= 2 && 0 == (++w->calls % 8)
           && size - size / 2 <= sizeof (w->stale))
  {
    r = real_send (data, size / 2, ctx);
    if (r > 0)
    {
      w->stale_len = size - (size_t) r;
      memcpy (w->stale, out, w->stale_len);
    }
  }
  else
    r = real_send (data, size, ctx);
  if (r > 0)
    w->bytes += (unsigned long long) r;
  return r;
}


static ssize_t
tls_send (const void *data, size_t size, void *ctx)
{
  return REAL (gnutls_record_send)((gnutls_session_t) ctx, data, size);
}


ssize_t
gnutls_record_send (gnutls_session_t session, const void *data, size_t size)
{
  struct way *w;
  ssize_t r;
  if (size >= 12 && 0 == memcmp (data, "HTTP/1.1 101", 12))
    head_fd = gnutls_transport_get_int (session);
  pthread_mutex_lock (&lock);
  w = way_of (session, -1);
  pthread_mutex_unlock (&lock);
  if (NULL == w && M_HEAD_COUNTED_EARLY == active && size > HEAD_SENT_FIRST
      && 0 == memcmp (data, "HTTP/1.1 101", 12))
  {
    r = REAL (gnutls_record_send)(session, data, HEAD_SENT_FIRST);
    return r > 0 ? (ssize_t) size : r; /* the rest is never sent */
  }
  if (NULL == w)
    return REAL (gnutls_record_send)(session, data, size);
  switch (active)
  {
  case M_PARTIAL_TO_CLIENT:
    return forward_partially (w, data, size, &tls_send, session);
  case M_STALL_AFTER_EAGAIN:
    if (w->stalled)
      return GNUTLS_E_AGAIN;
    r = REAL (gnutls_record_send)(session, data, size);
    if (GNUTLS_E_AGAIN == r)
      w->stalled = true;
    return r;
  case M_EAGAIN_ENDS:
    r = REAL (gnutls_record_send)(session, data, size);
    return GNUTLS_E_AGAIN == r ? GNUTLS_E_PUSH_ERROR : r;
  case M_SHORT_SEND_WHOLE:
    r = REAL (gnutls_record_send)(session, data, size);
    return (r > 0 && (size_t) r < size) ? (ssize_t) size : r;
  case M_INTERRUPT_FATAL:
    r = REAL (gnutls_record_send)(session, data, size);
    return GNUTLS_E_INTERRUPTED == r ? GNUTLS_E_PUSH_ERROR : r;
  case M_BYTE_AFTER_RECORD:
    /* The byte at offset 16384, whichever send carries it: a first send
     * of exactly one record (16 KiB) leaves it to the next. */
    if (! w->flipped && w->bytes <= 16384 && w->bytes + size > 16384)
    {
      unsigned char copy[65536];
      size_t n = size < sizeof (copy) ? size : sizeof (copy);
      size_t at = (size_t) (16384 - w->bytes);
      memcpy (copy, data, n);
      if (at < n)
        copy[at] ^= 0x01;
      r = REAL (gnutls_record_send)(session, copy, n);
      if (r > (ssize_t) at)
        w->flipped = true;
    }
    else
      r = REAL (gnutls_record_send)(session, data, size);
    if (r > 0)
      w->bytes += (unsigned long long) r;
    return r;
  default:
    return REAL (gnutls_record_send)(session, data, size);
  }
}


/* Whether @a session is an upgraded connection's. */
static bool
is_upgraded_session (gnutls_session_t session)
{
  bool found;
  pthread_mutex_lock (&lock);
  found = NULL != way_of (session, -1);
  pthread_mutex_unlock (&lock);
  return found;
}


void
gnutls_deinit (gnutls_session_t session)
{
  pthread_mutex_lock (&lock);
  for (size_t i = 0; i < SLOTS; i++)
    if (forwarding[i].tls == session)
      forwarding[i].tls = NULL; /* its address may be reused */
  pthread_mutex_unlock (&lock);
  REAL (gnutls_deinit)(session);
}


ssize_t
gnutls_record_recv (gnutls_session_t session, void *data, size_t size)
{
  ssize_t r = REAL (gnutls_record_recv)(session, data, size);
  if (M_INTERRUPT_FATAL == active && GNUTLS_E_INTERRUPTED == r
      && is_upgraded_session (session))
    return GNUTLS_E_PULL_ERROR;
  return r;
}


size_t
gnutls_record_check_pending (gnutls_session_t session)
{
  if (M_TLS_PENDING_FORGOTTEN == active && is_upgraded_session (session))
    return 0; /* what GnuTLS holds waits for the next bytes on the socket */
  return REAL (gnutls_record_check_pending)(session);
}


int
gnutls_bye (gnutls_session_t session, gnutls_close_request_t how)
{
  if (M_NO_CLOSE_NOTIFY == active && is_upgraded_session (session))
    return GNUTLS_E_SUCCESS; /* the alert is never sent */
  return REAL (gnutls_bye)(session, how);
}


static ssize_t
pair_send (const void *data, size_t size, void *ctx)
{
  return REAL (send)(*(int *) ctx, data, size, MSG_NOSIGNAL);
}


/* send() on MHD's end of an upgraded connection's socket pair, or -2 if
 * @a fd is not one (or no TLS mutant is active). */
static ssize_t
send_to_app (int fd, const void *buf, size_t len)
{
  struct way *w;
  ssize_t r;
  if (M_PARTIAL_TO_APP != active && M_STALL_AFTER_EAGAIN != active
      && M_EAGAIN_ENDS != active && M_SHORT_SEND_WHOLE != active
      && M_PAIR_ERROR_ENDS_BOTH != active && M_WAIT_FAILURE_FATAL != active)
    return -2;
  pthread_mutex_lock (&lock);
  w = way_of (NULL, fd);
  pthread_mutex_unlock (&lock);
  if (NULL == w)
    return -2;
  if (M_WAIT_FAILURE_FATAL == active)
  {
    /* The system's failed waits are the fault library's to make (it is
     * preloaded ahead of this one): it counts them for this mutant. */
    static unsigned (*wait_failures)(void);
    if (NULL == wait_failures)
      wait_failures = (unsigned (*)(void)) dlsym (RTLD_DEFAULT, "conformance_wait_failures");
    if (NULL != wait_failures && wait_failures () > 0)
    {
      (void) shutdown (fd, SHUT_RDWR); /* the forwarding ends, as on an error */
      errno = EPIPE;
      return -1;
    }
    return REAL (send)(fd, buf, len, MSG_NOSIGNAL);
  }
  if (M_PAIR_ERROR_ENDS_BOTH == active)
  {
    r = REAL (send)(fd, buf, len, MSG_NOSIGNAL);
    int err = errno;
    if (r < 0 && EPIPE == err)
      (void) shutdown (fd, SHUT_RD); /* MHD reads its end no more: the
                                        application's sends fail too */
    errno = err;
    return r;
  }
  if (M_PARTIAL_TO_APP == active)
    return forward_partially (w, buf, len, &pair_send, &fd);
  if (M_EAGAIN_ENDS == active || M_SHORT_SEND_WHOLE == active)
  {
    r = REAL (send)(fd, buf, len, MSG_NOSIGNAL);
    if (r < 0 && (EAGAIN == errno || EWOULDBLOCK == errno) && M_EAGAIN_ENDS == active)
      errno = EPIPE; /* as if the application had gone */
    if (r > 0 && (size_t) r < len && M_SHORT_SEND_WHOLE == active)
      return (ssize_t) len;
    return r;
  }
  if (w->stalled)
  {
    errno = EAGAIN;
    return -1;
  }
  r = REAL (send)(fd, buf, len, MSG_NOSIGNAL);
  if (r < 0 && (EAGAIN == errno || EWOULDBLOCK == errno))
    w->stalled = true;
  return r;
}


/* M_CLOSE_WAITS_FOR_LOOP: the CLOSEs asked from other threads happen when
 * an external loop runs MHD again, not before. */
static void
run_pending_closes (void)
{
  struct MHD_UpgradeResponseHandle *todo[SLOTS];
  size_t n = 0;
  pthread_mutex_lock (&lock);
  for (size_t i = 0; i < SLOTS; i++)
    if (NULL != pending_close[i])
    {
      todo[n++] = (struct MHD_UpgradeResponseHandle *) pending_close[i];
      pending_close[i] = NULL;
    }
  pthread_mutex_unlock (&lock);
  in_loop = true;
  for (size_t i = 0; i < n; i++)
    MHD_upgrade_action (todo[i], MHD_UPGRADE_ACTION_CLOSE);
  in_loop = false;
}


enum MHD_Result
MHD_run (struct MHD_Daemon *daemon)
{
  enum MHD_Result r;
  if (M_CLOSE_WAITS_FOR_LOOP == active)
    run_pending_closes ();
  in_loop = true;
  r = REAL (MHD_run)(daemon);
  in_loop = false;
  return r;
}


#ifdef MHD_run_from_select
/* MHD 1.0: MHD_run_from_select is a macro over MHD_run_from_select2. */
enum MHD_Result
MHD_run_from_select2 (struct MHD_Daemon *daemon, const fd_set *read_fd_set,
                      const fd_set *write_fd_set, const fd_set *except_fd_set,
                      unsigned int fd_setsize)
{
  enum MHD_Result r;
  if (M_CLOSE_WAITS_FOR_LOOP == active)
    run_pending_closes ();
  in_loop = true;
  r = REAL (MHD_run_from_select2)(daemon, read_fd_set, write_fd_set,
                                  except_fd_set, fd_setsize);
  in_loop = false;
  return r;
}
#else
enum MHD_Result
MHD_run_from_select (struct MHD_Daemon *daemon, const fd_set *read_fd_set,
                     const fd_set *write_fd_set, const fd_set *except_fd_set)
{
  enum MHD_Result r;
  if (M_CLOSE_WAITS_FOR_LOOP == active)
    run_pending_closes ();
  in_loop = true;
  r = REAL (MHD_run_from_select)(daemon, read_fd_set, write_fd_set,
                                 except_fd_set);
  in_loop = false;
  return r;
}
#endif


/* M_SKIP_AFTER_UPGRADE: a new pass of a loop begins at each wait. */
int
epoll_wait (int epfd, struct epoll_event *events, int maxevents, int timeout)
{
  upgraded_this_pass = false;
  return REAL (epoll_wait)(epfd, events, maxevents, timeout);
}


/* M_HANDLER_VIEW_CORRUPT: inside the handler, the first header MHD lists
 * reads changed, as if MHD's buffer had been reused under it. */
struct corrupting
{
  MHD_KeyValueIterator iterator;
  void *cls;
  bool first;
};


static enum MHD_Result
corrupt_first (void *cls, enum MHD_ValueKind kind, const char *key,
               const char *value)
{
  struct corrupting *c = cls;
  bool first = c->first;
  c->first = false;
  return c->iterator (c->cls, kind, key, first ? "overwritten" : value);
}


int
MHD_get_connection_values (struct MHD_Connection *connection,
                           enum MHD_ValueKind kind,
                           MHD_KeyValueIterator iterator, void *iterator_cls)
{
  if (M_HANDLER_VIEW_CORRUPT == active && in_handler && MHD_HEADER_KIND == kind
      && NULL != iterator)
  {
    struct corrupting c = { iterator, iterator_cls, true };
    return REAL (MHD_get_connection_values)(connection, kind, &corrupt_first, &c);
  }
  return REAL (MHD_get_connection_values)(connection, kind, iterator,
                                          iterator_cls);
}
