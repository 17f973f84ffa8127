/* Internal to the code of the upgraded connection (upgraded.c, scripts.c,
 * pressure.c, sockio.c): the connection's state and what a script is. */
#ifndef UPGRADED_H
#define UPGRADED_H

#include "refserver.h"

#include <sys/types.h>

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

struct script
{
  const char *name;
  /* What it does, said once: refserver --help and --scripts list it. */
  const char *description;
  /* Runs inside the upgrade handler, on MHD's thread (may be NULL). */
  void (*in_handler) (struct upgraded *u);
  /* Then runs on a thread of its own (NULL: the script is done, and the
   * handler CLOSEs). After it, its thread CLOSEs. */
  void (*run) (struct upgraded *u);
};

/* sockio.c (calls nothing of the others): the upgraded socket's reads,
 * writes and waits, and MHD_upgrade_action, each reporting its events. */
/* The byte at offset @a i of every pattern stream the server sends. */
unsigned char pattern_byte (uint64_t i);
/* Event sock_error: @a what failed with @a err. */
void report_errno (struct upgraded *u, const char *what, int err);
/* Waits until the socket is ready for @a events, the server is stopping or
 * idle= ms passed; true when ready (u->stopped_by says why not). */
bool wait_ready (struct upgraded *u, short events);
bool send_all (struct upgraded *u, const void *data, size_t n);
/* @a n pattern bytes, then event sent. */
bool send_pattern (struct upgraded *u, size_t n);
/* Reads what is there; 0 at the peer's end of stream, -1 on error or stop. */
ssize_t recv_some (struct upgraded *u, void *buf, size_t cap);
/* Why the last wait or transfer failed: "idle", "error", "server-stop". */
const char *stop_reason (const struct upgraded *u);
/* MHD_upgrade_action (@a a, called @a name in the events) with its events;
 * none once MHD_stop_daemon() freed the handle. */
enum MHD_Result upgraded_action (struct upgraded *u, enum MHD_UpgradeAction a,
                                 const char *name);
/* getsockopt() as a number, or -1 - errno when it fails. */
long long sockopt (MHD_socket sock, int level, int name);

/* pressure.c (calls sockio.c): the pressure script, U-SOCK-4. */
void run_pressure (struct upgraded *u);

#endif
