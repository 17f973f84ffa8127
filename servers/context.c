/* What every part of the reference server reaches for, below all of them:
 * the connection context MHD keeps for us (the connection notifier in
 * main.c sets it), the external loop's wake-up, and the request on whose
 * behalf this thread runs. main.c, scenarios.c and upgraded.c call these;
 * this file calls none of them. */
#define _GNU_SOURCE
#include "refserver.h"

#include <unistd.h>

_Thread_local const char *current_rid;


struct conn *
conn_of (struct MHD_Connection *connection)
{
  const union MHD_ConnectionInfo *ci =
    MHD_get_connection_info (connection,
                             MHD_CONNECTION_INFO_SOCKET_CONTEXT);
  return NULL == ci ? NULL : ci->socket_context;
}


void
server_wake (struct server *srv)
{
  /* A full pipe already means a wake-up is pending. */
  if (-1 != srv->wake_fd[1])
    (void) ! write (srv->wake_fd[1], "w", 1);
}
