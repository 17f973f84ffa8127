/* One JSON object per line on the event channel: the reference server's
 * whole report of what MHD told it. Lines are written with one write() under
 * a mutex, so events from different threads never interleave. */
#ifndef EVENTS_H
#define EVENTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct event
{
  char buf[4096];
  size_t len;
  bool overflow;
};

/* Where events go; set once before any thread starts. */
void events_init (int fd);

/* Start an event named @a name; @a rid is the request id the client sent
 * (X-Conformance-Id), or NULL for daemon-level events. */
void ev_begin (struct event *e, const char *name, const char *rid);
void ev_str (struct event *e, const char *key, const char *value);
void ev_strn (struct event *e, const char *key, const char *value, size_t n);
void ev_int (struct event *e, const char *key, long long value);
void ev_bool (struct event *e, const char *key, bool value);
void ev_hex (struct event *e, const char *key, const void *data, size_t n);
void ev_end (struct event *e);

#endif
