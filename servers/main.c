/* The upgrade-conformance reference server: starts one MHD daemon in the
 * threading mode and with the options given on the command line, reports
 * everything MHD tells it as JSON lines (events.h), and serves the
 * scenarios of scenarios.c until SIGTERM or SIGINT. */
#define _GNU_SOURCE
#include "crash.h"
#include "events.h"
#include "refserver.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/select.h>
#include <sys/signalfd.h>
#include <unistd.h>

enum loop_kind
{
  LOOP_INTERNAL, /* MHD runs its own threads */
  LOOP_SELECT,   /* MHD_get_fdset2 + select + MHD_run_from_select */
  LOOP_EPOLL     /* poll on MHD's epoll fd + MHD_run */
};

/* The MODES table of the rule catalogue. */
struct mode
{
  const char *name; /* as given to --mode */
  const char *id;   /* the catalogue's mode ID */
  unsigned int flags;
  unsigned int pool_size;
  enum loop_kind loop;
};

static const struct mode modes[] = {
  { "select", "M-SELECT", MHD_USE_INTERNAL_POLLING_THREAD, 0, LOOP_INTERNAL },
  { "poll", "M-POLL", MHD_USE_POLL_INTERNAL_THREAD, 0, LOOP_INTERNAL },
  { "epoll", "M-EPOLL", MHD_USE_EPOLL_INTERNAL_THREAD, 0, LOOP_INTERNAL },
  { "pool", "M-POOL", MHD_USE_EPOLL_INTERNAL_THREAD, 2, LOOP_INTERNAL },
  { "pool-select", "M-POOL-SELECT", MHD_USE_INTERNAL_POLLING_THREAD, 2,
    LOOP_INTERNAL },
  { "pool-poll", "M-POOL-POLL", MHD_USE_POLL_INTERNAL_THREAD, 2,
    LOOP_INTERNAL },
  { "tpc", "M-TPC",
    MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD, 0,
    LOOP_INTERNAL },
  { "tpc-poll", "M-TPC-POLL",
    MHD_USE_THREAD_PER_CONNECTION | MHD_USE_POLL_INTERNAL_THREAD, 0,
    LOOP_INTERNAL },
  { "ext-select", "M-EXT-SELECT", 0, 0, LOOP_SELECT },
  { "ext-epoll", "M-EXT-EPOLL", MHD_USE_EPOLL, 0, LOOP_EPOLL },
};

/* Which of the two enabling flags the daemon is started with. */
static const struct
{
  const char *name;
  unsigned int flags;
} flag_sets[] = {
  { "upgrade", MHD_ALLOW_UPGRADE },
  { "suspend", MHD_ALLOW_SUSPEND_RESUME },
  { "both", MHD_ALLOW_UPGRADE | MHD_ALLOW_SUSPEND_RESUME },
  { "none", 0 },
};

struct config
{
  const struct mode *mode;
  const char *flags_name;
  unsigned int flags;
  unsigned int timeout;       /* MHD_OPTION_CONNECTION_TIMEOUT, 0: unset */
  size_t memory_limit;        /* MHD_OPTION_CONNECTION_MEMORY_LIMIT */
  unsigned int conn_limit;    /* MHD_OPTION_CONNECTION_LIMIT */
  unsigned int port;
  bool stop_with_open;        /* break the contract at shutdown (U-STOP-2) */
  int idle_ms;                /* scripts' default wait limit, -1: none */
  int stop_wait_ms;           /* how long a stop waits for the scripts */
  bool raw_echo;              /* no MHD: the benchmark's reference echo */
  char *tls_key;              /* PEM contents, not paths */
  char *tls_cert;
};


static void
usage (FILE *out)
{
  fprintf (out,
           "usage: refserver --mode MODE [options]\n"
           "       refserver --version\n"
           "       refserver --keys      the query keys, as JSON\n"
           "       refserver --scripts   the scripts (then=NAME): name, a tab,\n"
           "                             what it does\n"
           "Serves the upgrade-conformance scenarios on 127.0.0.1 and\n"
           "reports each MHD call as one JSON object per line.\n\n"
           "  --mode MODE              select poll epoll pool pool-select\n"
           "                           pool-poll tpc tpc-poll ext-select\n"
           "                           ext-epoll\n"
           "  --flags SET              upgrade (default) suspend both none\n"
           "  --timeout SECONDS        MHD_OPTION_CONNECTION_TIMEOUT\n"
           "  --memory-limit BYTES     MHD_OPTION_CONNECTION_MEMORY_LIMIT\n"
           "  --connection-limit N     MHD_OPTION_CONNECTION_LIMIT\n"
           "  --port PORT              default 0: any free port\n"
           "  --tls-key FILE --tls-cert FILE   serve HTTPS\n"
           "  --events-fd FD           write events there (default 1)\n"
           "  --idle-ms MS             an upgraded-socket script that waits\n"
           "                           MS ms for its socket gives up and\n"
           "                           CLOSEs (default: waits for ever;\n"
           "                           a request's idle= overrides it)\n"
           "  --stop-wait-ms MS        on SIGTERM, wait MS ms (default 5000)\n"
           "                           for the upgraded-socket scripts to\n"
           "                           end; later: exit status 4\n"
           "  --raw-echo               no MHD: a plain (or, with --tls-key\n"
           "                           and --tls-cert, GnuTLS) echo server,\n"
           "                           the benchmark's reference\n"
           "  --stop-with-open         on SIGTERM, call MHD_stop_daemon while\n"
           "                           upgraded connections are still open\n"
           "                           (breaks the manual's contract: U-STOP-2)\n");
}


static char *
read_file (const char *path)
{
  FILE *f = fopen (path, "rb");
  char *buf = NULL;
  long len;
  if (NULL == f)
    return NULL;
  if (0 == fseek (f, 0, SEEK_END) && (len = ftell (f)) >= 0
      && 0 == fseek (f, 0, SEEK_SET) && NULL != (buf = malloc ((size_t) len
                                                               + 1)))
  {
    if ((size_t) len != fread (buf, 1, (size_t) len, f))
    {
      free (buf);
      buf = NULL;
    }
    else
      buf[len] = '\0';
  }
  fclose (f);
  return buf;
}


static bool
parse_uint (const char *s, unsigned long long max, unsigned long long *out)
{
  char *end;
  errno = 0;
  unsigned long long v = strtoull (s, &end, 10);
  if (0 != errno || end == s || '\0' != *end || v > max)
    return false;
  *out = v;
  return true;
}


static void
die_usage (const char *msg, const char *what)
{
  fprintf (stderr, "refserver: %s%s%s\n", msg, NULL == what ? "" : ": ",
           NULL == what ? "" : what);
  usage (stderr);
  exit (2);
}


/* The value of a numeric option (@a bad names it in the message), at most
 * @a max; exits with the usage when it is not such a number. */
static unsigned long long
uint_option (const char *bad, unsigned long long max)
{
  unsigned long long v;
  if (! parse_uint (optarg, max, &v))
    die_usage (bad, optarg);
  return v;
}


static void
parse_args (int argc, char **argv, struct config *cfg)
{
  static const struct option longopts[] = {
    { "mode", required_argument, NULL, 'm' },
    { "flags", required_argument, NULL, 'f' },
    { "timeout", required_argument, NULL, 't' },
    { "memory-limit", required_argument, NULL, 'M' },
    { "connection-limit", required_argument, NULL, 'c' },
    { "port", required_argument, NULL, 'p' },
    { "tls-key", required_argument, NULL, 'k' },
    { "tls-cert", required_argument, NULL, 'C' },
    { "events-fd", required_argument, NULL, 'e' },
    { "stop-with-open", no_argument, NULL, 'S' },
    { "idle-ms", required_argument, NULL, 'i' },
    { "stop-wait-ms", required_argument, NULL, 'w' },
    { "raw-echo", no_argument, NULL, 'R' },
    { "version", no_argument, NULL, 'V' },
    { "keys", no_argument, NULL, 'K' },
    { "scripts", no_argument, NULL, 'L' },
    { "help", no_argument, NULL, 'h' },
    { NULL, 0, NULL, 0 },
  };
  unsigned long long v;
  int o;

  cfg->flags_name = "upgrade";
  cfg->idle_ms = -1;
  cfg->stop_wait_ms = 5000;
  cfg->flags = MHD_ALLOW_UPGRADE;
  while (-1 != (o = getopt_long (argc, argv, "", longopts, NULL)))
  {
    switch (o)
    {
    case 'm':
      for (size_t i = 0; i < sizeof (modes) / sizeof (modes[0]); i++)
        if (0 == strcmp (optarg, modes[i].name)
            || 0 == strcmp (optarg, modes[i].id))
          cfg->mode = &modes[i];
      if (NULL == cfg->mode)
        die_usage ("unknown mode", optarg);
      break;
    case 'f':
      cfg->flags_name = NULL;
      for (size_t i = 0; i < sizeof (flag_sets) / sizeof (flag_sets[0]); i++)
        if (0 == strcmp (optarg, flag_sets[i].name))
        {
          cfg->flags_name = flag_sets[i].name;
          cfg->flags = flag_sets[i].flags;
        }
      if (NULL == cfg->flags_name)
        die_usage ("unknown flag set", optarg);
      break;
    case 't':
      cfg->timeout = (unsigned int) uint_option ("bad --timeout", 86400);
      break;
    case 'M':
      cfg->memory_limit = (size_t) uint_option ("bad --memory-limit", SIZE_MAX);
      break;
    case 'c':
      cfg->conn_limit = (unsigned int) uint_option ("bad --connection-limit", 1000000);
      break;
    case 'p':
      cfg->port = (unsigned int) uint_option ("bad --port", 65535);
      break;
    case 'k':
    case 'C':
      {
        char *pem = read_file (optarg);
        if (NULL == pem)
        {
          fprintf (stderr, "refserver: cannot read %s: %s\n", optarg,
                   strerror (errno));
          exit (2);
        }
        *('k' == o ? &cfg->tls_key : &cfg->tls_cert) = pem;
        break;
      }
    case 'e':
      if (! parse_uint (optarg, 65535, &v) || fcntl ((int) v, F_GETFD) < 0)
        die_usage ("bad --events-fd", optarg);
      events_init ((int) v);
      break;
    case 'S':
      cfg->stop_with_open = true;
      break;
    case 'R':
      cfg->raw_echo = true;
      break;
    case 'i':
      if (! parse_uint (optarg, 86400000, &v) || 0 == v)
        die_usage ("bad --idle-ms", optarg);
      cfg->idle_ms = (int) v;
      break;
    case 'w':
      if (! parse_uint (optarg, 86400000, &v) || 0 == v)
        die_usage ("bad --stop-wait-ms", optarg);
      cfg->stop_wait_ms = (int) v;
      break;
    case 'V':
      printf ("{\"mhd_version\":\"%s\",\"feature_upgrade\":%s,"
              "\"feature_tls\":%s}\n", MHD_get_version (),
              MHD_YES == MHD_is_feature_supported (MHD_FEATURE_UPGRADE)
              ? "true" : "false",
              MHD_YES == MHD_is_feature_supported (MHD_FEATURE_TLS)
              ? "true" : "false");
      exit (0);
    case 'K':
      query_keys_json (stdout);
      exit (0);
    case 'L':
      scripts_print (stdout, "%s\t%s\n");
      exit (0);
    case 'h':
      usage (stdout);
      query_keys_usage (stdout);
      fprintf (stdout, "\nScripts for the upgraded socket (then=NAME):\n");
      scripts_print (stdout, "  %-24s %s\n");
      exit (0);
    default:
      usage (stderr);
      exit (2);
    }
  }
  if (optind != argc)
    die_usage ("unexpected argument", argv[optind]);
  if (NULL == cfg->mode && ! cfg->raw_echo)
    die_usage ("--mode is required", NULL);
  if ((NULL == cfg->tls_key) != (NULL == cfg->tls_cert))
    die_usage ("--tls-key and --tls-cert go together", NULL);
}


static void
notify_connection (void *cls, struct MHD_Connection *connection,
                   void **socket_context,
                   enum MHD_ConnectionNotificationCode toe)
{
  struct server *srv = cls;
  struct event e;
  if (MHD_CONNECTION_NOTIFY_STARTED == toe)
  {
    struct conn *c = calloc (1, sizeof (*c));
    const union MHD_ConnectionInfo *ci =
      MHD_get_connection_info (connection,
                               MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    if (NULL == c)
      return;
    c->srv = srv;
    if (NULL != ci && NULL != ci->client_addr)
    {
      const struct sockaddr *sa = ci->client_addr;
      if (AF_INET == sa->sa_family)
        c->peer_port = ntohs (((const struct sockaddr_in *) sa)->sin_port);
      else if (AF_INET6 == sa->sa_family)
        c->peer_port = ntohs (((const struct sockaddr_in6 *) sa)->sin6_port);
    }
    *socket_context = c;
    ev_begin (&e, "conn_started", NULL);
    ev_int (&e, "peer_port", c->peer_port);
    ev_end (&e);
  }
  else
  {
    struct conn *c = *socket_context;
    ev_begin (&e, "conn_closed", NULL == c ? NULL : c->rid);
    ev_int (&e, "peer_port", NULL == c ? -1 : (long long) c->peer_port);
    ev_end (&e);
    free (c);
    *socket_context = NULL;
  }
}


static void
notify_completed (void *cls, struct MHD_Connection *connection,
                  void **req_cls, enum MHD_RequestTerminationCode toe)
{
  struct request *r = *req_cls;
  struct conn *c = conn_of (connection);
  struct event e;
  (void) cls;
  ev_begin (&e, "completed", NULL == r ? NULL : r->rid);
  ev_int (&e, "toe", toe);
  ev_end (&e);
  if (NULL != c && c->req == r)
    c->req = NULL;
  request_free (r);
  *req_cls = NULL;
}


static void
mhd_logger (void *cls, const char *fmt, va_list ap)
{
  char msg[1024];
  struct event e;
  int n;
  (void) cls;
  n = vsnprintf (msg, sizeof (msg), fmt, ap);
  if (n < 0)
    return;
  if ((size_t) n >= sizeof (msg))
    n = sizeof (msg) - 1;
  while (n > 0 && '\n' == msg[n - 1])
    n--;
  ev_begin (&e, "mhd_log", current_rid);
  ev_strn (&e, "msg", msg, (size_t) n);
  ev_end (&e);
}


static void
drain (int fd)
{
  char buf[256];
  while (read (fd, buf, sizeof (buf)) > 0)
    ;
}


static void
report_loop_error (const char *what, int err)
{
  struct event e;
  ev_begin (&e, "loop_error", NULL);
  ev_str (&e, "what", what);
  ev_int (&e, "errno", err);
  ev_end (&e);
}


/* How long an external loop may block: what MHD_get_timeout says, or -1
 * (no limit) when it says none. No cap of our own: a loop that woke up
 * by itself now and then would do MHD's work. */
static int
loop_timeout (struct server *srv, MHD_UNSIGNED_LONG_LONG *to_ms)
{
  if (MHD_YES != MHD_get_timeout (srv->daemon, to_ms))
    return -1;
  return *to_ms > INT_MAX ? INT_MAX : (int) *to_ms;
}


/* Runs until a signal arrives on @a sigfd. */
static void
run_loop (struct server *srv, const struct mode *mode, int sigfd)
{
  int mhd_epoll_fd = -1;
  if (LOOP_EPOLL == mode->loop)
  {
    const union MHD_DaemonInfo *di =
      MHD_get_daemon_info (srv->daemon, MHD_DAEMON_INFO_EPOLL_FD);
    if (NULL == di)
    {
      report_loop_error ("MHD_DAEMON_INFO_EPOLL_FD", 0);
      return;
    }
    mhd_epoll_fd = di->epoll_fd;
  }
  for (;;)
  {
    MHD_UNSIGNED_LONG_LONG to_ms = 0;
    int wait_ms = -1;

    if (LOOP_SELECT == mode->loop)
    {
      /* As the manual orders it: the descriptors, then the timeout, then
       * select, then MHD_run_from_select. The loop waits on nothing else
       * but the signals that stop the server and the one wake-up the
       * manual asks for (server_wake, after MHD_resume_connection). */
      fd_set rs, ws, es;
      MHD_socket max = -1;
      FD_ZERO (&rs);
      FD_ZERO (&ws);
      FD_ZERO (&es);
      if (MHD_YES != MHD_get_fdset2 (srv->daemon, &rs, &ws, &es, &max,
                                     FD_SETSIZE))
      {
        report_loop_error ("MHD_get_fdset2", 0);
        return;
      }
      wait_ms = loop_timeout (srv, &to_ms);
      struct timeval tv = { wait_ms / 1000, (wait_ms % 1000) * 1000 };
      FD_SET (sigfd, &rs);
      FD_SET (srv->wake_fd[0], &rs);
      if (sigfd > max)
        max = sigfd;
      if (srv->wake_fd[0] > max)
        max = srv->wake_fd[0];
      if (select (max + 1, &rs, &ws, &es, wait_ms < 0 ? NULL : &tv) < 0)
      {
        if (EINTR == errno)
          continue;
        report_loop_error ("select", errno);
        return;
      }
      if (FD_ISSET (sigfd, &rs))
        return;
      if (FD_ISSET (srv->wake_fd[0], &rs))
        drain (srv->wake_fd[0]);
      if (MHD_YES != MHD_run_from_select (srv->daemon, &rs, &ws, &es))
        report_loop_error ("MHD_run_from_select", 0);
      continue;
    }
    if (LOOP_EPOLL == mode->loop)
      wait_ms = loop_timeout (srv, &to_ms);

    struct pollfd p[3] = {
      { .fd = sigfd, .events = POLLIN },
      { .fd = srv->wake_fd[0], .events = POLLIN },
      { .fd = mhd_epoll_fd, .events = POLLIN },
    };
    int np = (LOOP_EPOLL == mode->loop) ? 3 : 1;
    if (poll (p, (nfds_t) np, wait_ms) < 0)
    {
      if (EINTR == errno)
        continue;
      report_loop_error ("poll", errno);
      return;
    }
    if (0 != p[0].revents)
      return;
    if (LOOP_EPOLL == mode->loop)
    {
      if (0 != p[1].revents)
        drain (srv->wake_fd[0]);
      if (MHD_YES != MHD_run (srv->daemon))
        report_loop_error ("MHD_run", 0);
    }
  }
}


static struct MHD_Daemon *
start_daemon (struct server *srv, const struct config *cfg)
{
  struct MHD_OptionItem opts[8];
  size_t n = 0;
  struct sockaddr_in addr;
  unsigned int flags = cfg->mode->flags | cfg->flags | MHD_USE_ERROR_LOG;

  memset (&addr, 0, sizeof (addr));
  addr.sin_family = AF_INET;
  addr.sin_port = htons ((uint16_t) cfg->port);
  addr.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
  if (0 != cfg->timeout)
    opts[n++] = (struct MHD_OptionItem) {
      MHD_OPTION_CONNECTION_TIMEOUT, (intptr_t) cfg->timeout, NULL
    };
  if (0 != cfg->memory_limit)
    opts[n++] = (struct MHD_OptionItem) {
      MHD_OPTION_CONNECTION_MEMORY_LIMIT, (intptr_t) cfg->memory_limit, NULL
    };
  if (0 != cfg->conn_limit)
    opts[n++] = (struct MHD_OptionItem) {
      MHD_OPTION_CONNECTION_LIMIT, (intptr_t) cfg->conn_limit, NULL
    };
  if (0 != cfg->mode->pool_size)
    opts[n++] = (struct MHD_OptionItem) {
      MHD_OPTION_THREAD_POOL_SIZE, (intptr_t) cfg->mode->pool_size, NULL
    };
  if (NULL != cfg->tls_key)
  {
    flags |= MHD_USE_TLS;
    opts[n++] = (struct MHD_OptionItem) {
      MHD_OPTION_HTTPS_MEM_KEY, 0, cfg->tls_key
    };
    opts[n++] = (struct MHD_OptionItem) {
      MHD_OPTION_HTTPS_MEM_CERT, 0, cfg->tls_cert
    };
  }
  opts[n++] = (struct MHD_OptionItem) { MHD_OPTION_END, 0, NULL };

  /* The logger comes first, so that MHD reports option errors there. */
  return MHD_start_daemon (flags, (uint16_t) cfg->port, NULL, NULL,
                           &access_handler, srv,
                           MHD_OPTION_EXTERNAL_LOGGER, &mhd_logger, srv,
                           MHD_OPTION_SOCK_ADDR, (struct sockaddr *) &addr,
                           MHD_OPTION_NOTIFY_CONNECTION, &notify_connection,
                           srv,
                           MHD_OPTION_NOTIFY_COMPLETED, &notify_completed,
                           srv,
                           MHD_OPTION_ARRAY, opts,
                           MHD_OPTION_END);
}


static void
report_ready (struct server *srv, const struct config *cfg)
{
  const union MHD_DaemonInfo *port =
    MHD_get_daemon_info (srv->daemon, MHD_DAEMON_INFO_BIND_PORT);
  const union MHD_DaemonInfo *fl =
    MHD_get_daemon_info (srv->daemon, MHD_DAEMON_INFO_FLAGS);
  unsigned int flags = NULL == fl ? 0 : (unsigned int) fl->flags;
  struct event e;

  ev_begin (&e, "ready", NULL);
  ev_int (&e, "port", NULL == port ? -1 : port->port);
  ev_str (&e, "mhd_version", MHD_get_version ());
  ev_str (&e, "mode", cfg->mode->id);
  ev_str (&e, "flags", cfg->flags_name);
  ev_bool (&e, "tls", NULL != cfg->tls_key);
  ev_bool (&e, "info_flags_known", NULL != fl);
  ev_int (&e, "info_flags", flags);
  ev_bool (&e, "info_allow_upgrade", 0 != (flags & MHD_ALLOW_UPGRADE));
  /* MHD_ALLOW_SUSPEND_RESUME includes MHD_USE_ITC; its own bit is 8192. */
  ev_bool (&e, "info_allow_suspend_resume", 0 != (flags & 8192));
  ev_bool (&e, "feature_upgrade",
           MHD_YES == MHD_is_feature_supported (MHD_FEATURE_UPGRADE));
  ev_int (&e, "pid", (long long) getpid ());
  ev_end (&e);
}


/* Every thread, MHD's included, inherits this mask; only the main loop
 * takes the signals, through the signalfd returned (-1 on failure). */
static int
take_signals (void)
{
  sigset_t sigs;
  sigemptyset (&sigs);
  sigaddset (&sigs, SIGTERM);
  sigaddset (&sigs, SIGINT);
  pthread_sigmask (SIG_BLOCK, &sigs, NULL);
  signal (SIGPIPE, SIG_IGN);
  return signalfd (-1, &sigs, SFD_CLOEXEC | SFD_NONBLOCK);
}


/* The shared upgrade response (U-RESP-5) and the daemon; false (with a
 * fatal event) if either cannot be made. */
static bool
server_start (struct server *srv, const struct config *cfg)
{
  struct event e;
  pthread_mutex_init (&srv->lock, NULL);
  pthread_cond_init (&srv->workers_idle, NULL);
  atomic_init (&srv->live_handles, 0);
  srv->shared_upgrade = MHD_create_response_for_upgrade (&upgrade_handler,
                                                         &srv->shared_cls);
  if (NULL == srv->shared_upgrade
      || MHD_YES != MHD_add_response_header (srv->shared_upgrade,
                                             MHD_HTTP_HEADER_UPGRADE,
                                             "conformance/1"))
  {
    ev_begin (&e, "fatal", NULL);
    ev_str (&e, "error", "cannot create the shared upgrade response");
    ev_end (&e);
    return false;
  }
  srv->daemon = start_daemon (srv, cfg);
  if (NULL == srv->daemon)
  {
    ev_begin (&e, "fatal", NULL);
    ev_str (&e, "error", "MHD_start_daemon failed (see mhd_log events)");
    ev_str (&e, "mode", cfg->mode->id);
    ev_end (&e);
    return false;
  }
  report_ready (srv, cfg);
  return true;
}


/* Stops in the manual's order: every upgraded connection closed (its
 * script woken by stop_fd, which CLOSEs), then MHD_stop_daemon(); with
 * --stop-with-open the other way round, on purpose (U-STOP-2). True if
 * every script ended in time. */
static bool
server_stop (struct server *srv, const struct config *cfg)
{
  struct event e;
  bool idle;
  pthread_mutex_lock (&srv->lock);
  srv->stopping = true;
  unsigned int open_upgrades = srv->workers;
  pthread_mutex_unlock (&srv->lock);
  ev_begin (&e, "stopping", NULL);
  ev_int (&e, "upgraded_open", open_upgrades);
  ev_bool (&e, "stop_with_open", cfg->stop_with_open);
  ev_end (&e);
  if (cfg->stop_with_open)
  {
    /* Break the contract: stop MHD first; the scripts, woken afterwards,
     * leave the (freed) handles alone. */
    srv->daemon_stopped = true; /* before: MHD may wake a script while stopping */
    MHD_stop_daemon (srv->daemon);
    ev_begin (&e, "daemon_stopped", NULL);
    ev_end (&e);
    close (srv->stop_fd[1]);
    idle = upgraded_wait_idle (srv, cfg->stop_wait_ms);
  }
  else
  {
    /* Closing stop_fd's write end wakes every script. */
    close (srv->stop_fd[1]);
    idle = upgraded_wait_idle (srv, cfg->stop_wait_ms);
    ev_begin (&e, "workers_idle", NULL);
    ev_bool (&e, "result", idle);
    ev_end (&e);
    MHD_stop_daemon (srv->daemon);
  }
  MHD_destroy_response (srv->shared_upgrade);
  ev_begin (&e, "stopped", NULL);
  ev_end (&e);
  return idle;
}


int
main (int argc, char **argv)
{
  struct config cfg;
  struct server srv;
  int sigfd;
  int rc;

  memset (&cfg, 0, sizeof (cfg));
  memset (&srv, 0, sizeof (srv));
  parse_args (argc, argv, &cfg);
  srv.idle_ms = cfg.idle_ms;
  crash_report_install ();

  /* Never outlive the harness that started us, even after a SIGKILL. */
  prctl (PR_SET_PDEATHSIG, SIGTERM);
  if (1 == getppid ())
    return 1;
  sigfd = take_signals ();
  if (sigfd < 0 || 0 != pipe2 (srv.stop_fd, O_CLOEXEC)
      || 0 != pipe2 (srv.wake_fd, O_CLOEXEC | O_NONBLOCK))
  {
    perror ("refserver: setup");
    return 1;
  }
  if (cfg.raw_echo)
    rc = raw_echo_main (cfg.tls_key, cfg.tls_cert, sigfd);
  else if (! server_start (&srv, &cfg))
    rc = 3;
  else
  {
    run_loop (&srv, cfg.mode, sigfd);
    /* The harness sends SIGKILL when a stop takes too long, but it cannot
     * when it is gone itself (PR_SET_PDEATHSIG sends SIGTERM, e.g. after
     * pytest-xdist ended a worker): a stop that hangs (MHD 0.9.75's
     * MHD_stop_daemon in thread-per-connection modes with a connection
     * left suspended) must not keep this process forever. SIGALRM's
     * default action ends it; the limit scales with --idle-ms, as the
     * harness's own deadlines do. */
    alarm ((unsigned int) (srv.idle_ms > 0 ? 2 * (srv.idle_ms / 1000) + 30
                           : 120));
    rc = server_stop (&srv, &cfg) ? 0 : 4;
  }
  free (cfg.tls_key);
  free (cfg.tls_cert);
  return rc;
}
