/* The query keys the scenarios read, each declared once: the paths that
 * accept it, its value, what it does, and for a script's parameter its
 * parser into struct script_params. From this table come the 400 answer to
 * a key its path does not accept (scenarios.c), the key list of
 * `refserver --help`, the JSON of `refserver --keys` (from which
 * harness/urls.py builds URLs and refuses unknown keys), and a script's
 * parameters. Calls nothing of the other files. */
#include "refserver.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct query_key
{
  const char *name;
  /* The paths that accept it, each between spaces; "*": every path. */
  const char *paths;
  const char *value; /* the value's form, for the usage text */
  const char *about;
  /* Stores the value in the script's parameters; NULL: the scenario reads
   * the key itself. */
  void (*parse) (struct script_params *p, const char *value);
};


#define NUMBER_PARSER(field, type) \
  static void \
  parse_ ## field (struct script_params *p, const char *value) \
  { \
    p->field = (type) strtoull (value, NULL, 10); \
  }

NUMBER_PARSER (n, size_t)
NUMBER_PARSER (until, uint64_t)
NUMBER_PARSER (idle_ms, int)
NUMBER_PARSER (pauses, unsigned int)
NUMBER_PARSER (sockbuf, int)
NUMBER_PARSER (inoff, uint64_t)


static void
parse_hold (struct script_params *p, const char *value)
{
  p->hold = 0 == strcmp (value, "read") ? HOLD_READ
            : 0 == strcmp (value, "write") ? HOLD_WRITE
            : 0 == strcmp (value, "both") ? HOLD_READ | HOLD_WRITE : 0;
}


/* Descriptions hold no '"' or '\\': they go into JSON as they are. */
static const struct query_key query_keys[] = {
  { "at", "*", "headers", "act when the headers are in, before MHD reads any body (default: once the request is complete)", NULL },
  { "then", " /upgrade ", "S", "script on the upgraded socket (default echo)", NULL },
  { "proto", " /upgrade ", "V", "Upgrade header value; - leaves the header out", NULL },
  { "conn", " /upgrade ", "V", "add Connection: V as well", NULL },
  { "del_conn", " /upgrade ", "1", "MHD_del_response_header (Connection: Upgrade)", NULL },
  { "rf", " /upgrade ", "http10", "MHD_RF_HTTP_1_0_COMPATIBLE_STRICT | MHD_RF_HTTP_1_0_SERVER", NULL },
  { "status", " /upgrade ", "N", "queue with status N instead of 101", NULL },
  { "icy", " /upgrade ", "1", "queue with MHD_ICY_FLAG", NULL },
  { "twice", " /upgrade ", "1", "queue a second response after the first", NULL },
  { "thread", " /upgrade ", "1", "queue from another thread (U-QUEUE-8)", NULL },
  { "shared", " /upgrade ", "1", "queue the server's one shared upgrade response (U-RESP-5)", NULL },
  { "suspend", " /upgrade ", "1", "suspend, queue from another thread, resume (U-SUSP-1)", NULL },
  { "at_stop", " /upgrade ", "1", "hold the access handler until the daemon's stop shows, then queue (U-QUEUE-9)", NULL },
  { "pad", " /upgrade ", "N", "N bytes more in the 101's head: headers X-Pad-1.. (U-CB-1)", NULL },
  { "nofallback", " /upgrade /plain-101 /ws ", "1", "after MHD refused the response return MHD_NO instead of answering 500 with X-Refused", NULL },
  { "n", " /upgrade ", "N", "bytes the script sends (pressure: each stream between holds)", &parse_n },
  { "until", " /upgrade ", "N", "echo: CLOSE after N input bytes (extra_in counts), without waiting for the client's end of stream", &parse_until },
  { "idle", " /upgrade /ws ", "MS", "the script's wait for the socket gives up after MS ms (default: the server's --idle-ms)", &parse_idle_ms },
  { "sockbuf", " /upgrade ", "B", "SO_SNDBUF and SO_RCVBUF the script sets on its socket first", &parse_sockbuf },
  { "hold", " /upgrade ", "read|write|both", "pressure (U-SOCK-4): which side stops reading at each hold", &parse_hold },
  { "pauses", " /upgrade ", "P", "pressure: holds of each kind", &parse_pauses },
  { "inoff", " /upgrade ", "N", "pressure: origin of the client's counted stream", &parse_inoff },
  { "rid", " /ws ", "ID", "the request id, for a client that cannot send the X-Conformance-Id header (a browser)", NULL },
  { "of", " /release ", "RID", "the request whose pressure script stops holding its reading", NULL },
  { "hold", " /release ", "write", "the client has stopped reading", NULL },
  { "n", " /release ", "N", "bytes between holds from now on", NULL },
  { "sent", " /release ", "N", "the client's stream ends after N bytes", NULL },
};
#define QUERY_KEY_COUNT (sizeof (query_keys) / sizeof (query_keys[0]))


static bool
accepts (const struct query_key *k, const char *path)
{
  const char *at;
  size_t len = strlen (path);
  if (0 == strcmp (k->paths, "*"))
    return true;
  for (at = strstr (k->paths, path); NULL != at; at = strstr (at + 1, path))
    if (' ' == at[-1] && ' ' == at[len])
      return true;
  return false;
}


bool
query_key_accepted (const char *path, const char *key)
{
  if (0 == strncmp (key, "x-", 2))
    return true; /* free, for cases that need odd arguments (U-CB-7) */
  for (size_t i = 0; i < QUERY_KEY_COUNT; i++)
    if (0 == strcmp (query_keys[i].name, key) && accepts (&query_keys[i], path))
      return true;
  return false;
}


void
script_params_read (struct MHD_Connection *c, const char *path,
                    int default_idle_ms, struct script_params *p)
{
  *p = (struct script_params) { 0 };
  for (size_t i = 0; i < QUERY_KEY_COUNT; i++)
  {
    const char *v;
    if (NULL == query_keys[i].parse || ! accepts (&query_keys[i], path))
      continue;
    v = MHD_lookup_connection_value (c, MHD_GET_ARGUMENT_KIND,
                                     query_keys[i].name);
    if (NULL != v)
      query_keys[i].parse (p, v);
  }
  if (p->idle_ms <= 0)
    p->idle_ms = default_idle_ms;
}


void
query_keys_usage (FILE *out)
{
  fprintf (out, "\nQuery keys (any other is answered 400 unknown parameter;"
           " keys x-... are free):\n");
  for (size_t i = 0; i < QUERY_KEY_COUNT; i++)
  {
    const struct query_key *k = &query_keys[i];
    bool every = 0 == strcmp (k->paths, "*");
    /* " /a /b " without its outer spaces */
    fprintf (out, "  %s=%s  (%.*s)\n      %s\n", k->name, k->value,
             every ? 10 : (int) strlen (k->paths) - 2,
             every ? "every path" : k->paths + 1, k->about);
  }
}


void
query_keys_json (FILE *out)
{
  fprintf (out, "[");
  for (size_t i = 0; i < QUERY_KEY_COUNT; i++)
  {
    const struct query_key *k = &query_keys[i];
    const char *p = k->paths;
    const char *sep = "";
    fprintf (out, "%s{\"key\":\"%s\",\"paths\":[", 0 == i ? "" : ",\n ",
             k->name);
    /* " /a /b " -> "/a","/b"; "*" stays "*" */
    for (p += strspn (p, " "); '\0' != *p; p += strspn (p, " "))
    {
      size_t word = strcspn (p, " ");
      fprintf (out, "%s\"%.*s\"", sep, (int) word, p);
      sep = ",";
      p += word;
    }
    fprintf (out, "],\"value\":\"%s\",\"script_param\":%s,\"about\":\"%s\"}",
             k->value, NULL == k->parse ? "false" : "true", k->about);
  }
  fprintf (out, "]\n");
}
