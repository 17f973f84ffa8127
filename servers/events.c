#include "events.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int channel_fd = 1;
static pthread_mutex_t channel_lock = PTHREAD_MUTEX_INITIALIZER;

void
events_init (int fd)
{
  channel_fd = fd;
}


static void
put (struct event *e, const char *s, size_t n)
{
  /* Leave room for the closing "}\n". */
  if (e->overflow || e->len + n + 2 > sizeof (e->buf))
  {
    e->overflow = true;
    return;
  }
  memcpy (e->buf + e->len, s, n);
  e->len += n;
}


static void
put_s (struct event *e, const char *s)
{
  put (e, s, strlen (s));
}


static void
put_json_string (struct event *e, const char *s, size_t n)
{
  put_s (e, "\"");
  for (size_t i = 0; i < n; i++)
  {
    unsigned char c = (unsigned char) s[i];
    char esc[8];
    if ('"' == c || '\\' == c)
    {
      esc[0] = '\\';
      esc[1] = (char) c;
      put (e, esc, 2);
    }
    else if (c < 0x20 || c >= 0x7f)
    {
      /* Non-ASCII bytes are escaped one by one, so the line stays valid
       * JSON whatever MHD hands us; the harness sees the byte values. */
      snprintf (esc, sizeof (esc), "\\u%04x", c);
      put_s (e, esc);
    }
    else
      put (e, (const char *) &s[i], 1);
  }
  put_s (e, "\"");
}


static void
put_key (struct event *e, const char *key)
{
  put_s (e, ",");
  put_json_string (e, key, strlen (key));
  put_s (e, ":");
}


void
ev_begin (struct event *e, const char *name, const char *rid)
{
  struct timespec ts;
  char num[64];

  e->len = 0;
  e->overflow = false;
  put_s (e, "{\"ev\":");
  put_json_string (e, name, strlen (name));
  if (NULL != rid)
  {
    put_key (e, "rid");
    put_json_string (e, rid, strlen (rid));
  }
  clock_gettime (CLOCK_MONOTONIC, &ts);
  snprintf (num, sizeof (num), ",\"t\":%lld.%06ld",
            (long long) ts.tv_sec, ts.tv_nsec / 1000);
  put_s (e, num);
}


void
ev_str (struct event *e, const char *key, const char *value)
{
  put_key (e, key);
  if (NULL == value)
    put_s (e, "null");
  else
    put_json_string (e, value, strlen (value));
}


void
ev_strn (struct event *e, const char *key, const char *value, size_t n)
{
  put_key (e, key);
  put_json_string (e, value, n);
}


void
ev_int (struct event *e, const char *key, long long value)
{
  char num[32];
  put_key (e, key);
  snprintf (num, sizeof (num), "%lld", value);
  put_s (e, num);
}


void
ev_bool (struct event *e, const char *key, bool value)
{
  put_key (e, key);
  put_s (e, value ? "true" : "false");
}


void
ev_hex (struct event *e, const char *key, const void *data, size_t n)
{
  static const char digits[] = "0123456789abcdef";
  const unsigned char *p = data;
  put_key (e, key);
  put_s (e, "\"");
  for (size_t i = 0; i < n; i++)
  {
    char h[2] = { digits[p[i] >> 4], digits[p[i] & 15] };
    put (e, h, 2);
  }
  put_s (e, "\"");
}


void
ev_end (struct event *e)
{
  if (e->overflow)
  {
    /* Never emit a truncated object: say that it was too long instead. */
    e->len = 0;
    e->overflow = false;
    put_s (e, "{\"ev\":\"event_overflow\"");
  }
  put_s (e, "}\n");
  pthread_mutex_lock (&channel_lock);
  for (size_t off = 0; off < e->len;)
  {
    ssize_t n = write (channel_fd, e->buf + off, e->len - off);
    if (n <= 0)
      break; /* The harness went away; nothing sensible left to do. */
    off += (size_t) n;
  }
  pthread_mutex_unlock (&channel_lock);
}
