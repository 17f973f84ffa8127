/* Shared types of the upgrade-conformance reference server. */
#ifndef REFSERVER_H
#define REFSERVER_H

#include <microhttpd.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Request header by which a client names its request; every event about
 * that request carries the value as "rid". */
#define RID_HEADER "X-Conformance-Id"
#define RID_MAX 64

struct script;
struct scenario;

/* What a request asks of the script on its upgraded socket: the query
 * keys of the same names, read by the parsers of querykeys.c's table,
 * which says what each means. A key left out is 0. */
struct script_params
{
  size_t n;
  uint64_t until;
  int idle_ms;         /* -1: no limit */
  unsigned int pauses;
  unsigned int hold;   /* HOLD_READ, HOLD_WRITE or both */
  int sockbuf;         /* 0: as MHD gave the socket */
  uint64_t inoff;
};
#define HOLD_READ 1u  /* the application stops reading at each hold point */
#define HOLD_WRITE 2u /* the client stops reading at each hold point */

/* The whole server: handed to MHD as the cls of every callback. */
struct server
{
  struct MHD_Daemon *daemon;
  /* Readable once shutdown starts: wakes every upgraded-socket thread. */
  int stop_fd[2];
  /* External-polling modes: poked after MHD_resume_connection, the one
   * wake-up the manual asks of the application (never after CLOSE). */
  int wake_fd[2];
  pthread_mutex_t lock;
  pthread_cond_t workers_idle;
  unsigned int workers; /* live upgraded-socket threads */
  /* server_stop has counted the workers it waits for (under lock): a
   * handler called after that closes its connection itself. */
  bool stopping;
  /* Upgraded connections handed to the application and not yet closed by
   * a successful CLOSE action: GET /stats reports it, for leak checks. */
  atomic_int live_handles;
  /* Set once MHD_stop_daemon() ran with upgraded connections still open
   * (--stop-with-open, U-STOP-2): their handles are gone. */
  atomic_bool daemon_stopped;
  /* One upgrade response queued on many connections (U-RESP-5). */
  struct MHD_Response *shared_upgrade;
  char shared_cls; /* its cls: only the address matters */
  int idle_ms;     /* --idle-ms: scripts' default wait limit, -1: none */
};

/* One HTTP request: MHD's req_cls. Freed by the completion callback. */
struct request
{
  struct server *srv;
  char rid[RID_MAX];
  const struct scenario *scenario;
  const char *method;  /* MHD's strings: valid while the request lives */
  const char *version;
  const char *url;
  uint64_t body_bytes;
  void *body_hash; /* gnutls_hash_hd_t: SHA-256 of the body MHD handed over */
  /* The request as the access handler first saw it (U-CB-7): the URL, and
   * digests of the headers and the arguments MHD listed, in order. */
  char *url_copy;
  struct request_view
  {
    unsigned char headers[32], args[32];
    unsigned int header_count, arg_count;
  } view;
};

/* One TCP connection: MHD's socket_context, set by the connection
 * notifier. The upgrade handler reads what was expected of it from here,
 * not from its own arguments, so that it can check those arguments. */
struct conn
{
  struct server *srv;
  unsigned int peer_port;
  struct request *req;       /* the request being served, if any */
  const void *expected_cls;  /* cls of the upgrade response queued */
  const struct script *then; /* what to do on the upgraded socket */
  struct script_params p;    /* and how */
  long long access_tid;      /* thread that last ran the access handler */
  char rid[RID_MAX];         /* survives the request object */
  char handler_cls;          /* the upgrade response's cls: only its address counts */
};

/* rawecho.c: the benchmark's echo without MHD; returns the exit status. */
int raw_echo_main (const char *key_pem, const char *cert_pem, int sigfd);

/* scenarios.c */
enum MHD_Result
access_handler (void *cls, struct MHD_Connection *connection,
                const char *url, const char *method, const char *version,
                const char *upload_data, size_t *upload_data_size,
                void **req_cls);
/* scripts.c: the after-upgrade script named @a name (NULL if unknown). */
const struct script *script_find (const char *name);
/* scripts.c: each script's name and description, by @a format (two %s). */
void scripts_print (FILE *out, const char *format);
/* upgraded.c (the runner; upgraded.h is its own and its scripts' header) */
void
upgrade_handler (void *cls, struct MHD_Connection *connection, void *req_cls,
                 const char *extra_in, size_t extra_in_size,
                 MHD_socket sock, struct MHD_UpgradeResponseHandle *urh);
/* Waits (bounded) until every upgraded-socket thread has finished. */
bool upgraded_wait_idle (struct server *srv, int timeout_ms);
/* GET /release?of=RID: ends the current read hold of the pressure script
 * on the upgraded connection of request RID; &hold=write (@a write_hold):
 * the client has stopped reading; &n=N (@a step, 0: unchanged): the bytes
 * between holds from now on; &sent=N (@a input_end): the client's stream
 * ends after N bytes. False if there is no such script. */
bool upgraded_release (struct server *srv, const char *rid, bool write_hold,
                       uint64_t step, uint64_t input_end);

/* querykeys.c (calls nothing of the others): whether a request to @a path
 * may carry the query key @a key. */
bool query_key_accepted (const char *path, const char *key);
/* querykeys.c: the script's parameters from the query of @a c, for
 * @a path; idle= absent or 0: @a default_idle_ms. */
void script_params_read (struct MHD_Connection *c, const char *path,
                         int default_idle_ms, struct script_params *p);
/* querykeys.c: the keys, for refserver --help and, as JSON, --keys. */
void query_keys_usage (FILE *out);
void query_keys_json (FILE *out);

/* request.c (calls nothing of the others): frees a request and what it
 * holds. */
void request_free (struct request *r);
/* request.c: the headers and arguments MHD lists for @a c now. */
void request_view (struct MHD_Connection *c, struct request_view *view);

/* context.c (calls nothing of the others): the request whose callback runs
 * on this thread (the access handler, the upgrade handler, a script), or
 * NULL: MHD's log lines written meanwhile carry its id. */
extern _Thread_local const char *current_rid;
/* context.c: the connection context MHD keeps for @a connection. */
struct conn *conn_of (struct MHD_Connection *connection);
/* context.c: makes an external loop run MHD at once. */
void server_wake (struct server *srv);

#endif
