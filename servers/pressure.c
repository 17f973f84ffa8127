/* The pressure script (U-SOCK-4, backpressure): both directions at once,
 * with holds that fill the path between a reader that stops and a writer
 * that always has more. harness/pressure.py is its client side. */
#define _GNU_SOURCE
#include "events.h"
#include "upgraded.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>


/* The counted stream (harness/client.py: counted): in every 4 KiB block
 * an 8-byte big-endian block number, then the pattern. Unlike the pattern
 * alone it has no period, so a lost, repeated or reordered piece of any
 * size shows, at the latest at the next block number. @a origin shifts the stream (the block
 * numbers too), so that the two directions differ. */
static unsigned char
counted_byte (uint64_t i)
{
  uint64_t block = i / 4096;
  unsigned int at = (unsigned int) (i % 4096);
  if (at < 8)
    return (unsigned char) (block >> (8 * (7 - at)));
  return pattern_byte (block + at);
}


static void
fill_counted (unsigned char *buf, size_t len, uint64_t origin)
{
  for (size_t i = 0; i < len; i++)
    buf[i] = counted_byte (origin + i);
}



/* The pressure script's state (run_pressure). */
struct pressure
{
  struct upgraded *u;
  uint64_t got, sent;          /* input read, output sent */
  uint64_t read_mark;          /* input read when the last read hold ended */
  uint64_t out_budget;         /* output allowed until the next write hold */
  unsigned char out[65536];    /* the output's next piece */
  size_t out_at, out_len;
  long long mismatch;          /* first input offset that differs, -1 */
  unsigned int rk, wk;         /* holds begun so far, per direction */
  bool read_held;              /* not reading until the client releases */
  bool write_held;             /* waiting for the client to stop reading */
  bool filling;                /* ... it has: sending until blocked */
  bool out_ended;              /* the output is over (event enough) */
  const char *how;             /* why it ended; NULL while it runs */
};


static void
report_hold (struct pressure *ps, const char *ev, const char *dir,
             unsigned int k)
{
  struct event e;
  ev_begin (&e, ev, ps->u->rid);
  if (NULL != dir)
    ev_str (&e, "dir", dir);
  ev_int (&e, "k", k);
  ev_int (&e, "read", (long long) ps->got);
  ev_int (&e, "sent", (long long) ps->sent);
  ev_end (&e);
}


static bool
read_hold_due (const struct pressure *ps)
{
  const struct script_params *p = &ps->u->p;
  return 0 != (p->hold & HOLD_READ) && ! ps->read_held && ps->rk < p->pauses
         && ps->got >= ps->read_mark + atomic_load (&ps->u->step);
}


/* Reads what is there (up to the next read hold point, or the end the
 * client named), checking it against the client's counted stream. */
static void
pressure_read (struct pressure *ps)
{
  struct upgraded *u = ps->u;
  unsigned char in[65536];
  for (;;)
  {
    uint64_t end = atomic_load (&u->input_end);
    if (ps->got >= end || read_hold_due (ps))
      return;
    ssize_t n = recv (u->sock, in, end - ps->got < sizeof (in)
                      ? (size_t) (end - ps->got) : sizeof (in), 0);
    if (n > 0)
    {
      for (ssize_t i = 0; i < n && ps->mismatch < 0; i++)
        if (in[i] != counted_byte (u->p.inoff + ps->got + (uint64_t) i))
          ps->mismatch = (long long) (ps->got + (uint64_t) i);
      ps->got += (uint64_t) n;
      continue;
    }
    if (0 == n)
      ps->how = "eof";
    else if (EAGAIN != errno && EWOULDBLOCK != errno && EINTR != errno)
    {
      report_errno (u, "recv", errno);
      ps->how = "error";
    }
    return;
  }
}


/* Sends until the socket takes no more, or up to the output's budget
 * (while filling during a write hold: without limit). */
static void
pressure_send (struct pressure *ps)
{
  struct upgraded *u = ps->u;
  for (;;)
  {
    if (0 == ps->out_len)
    {
      if (ps->out_ended || ps->write_held
          || (! ps->filling && ps->sent >= ps->out_budget))
        return;
      ps->out_len = sizeof (ps->out);
      ps->out_at = 0;
      fill_counted (ps->out, ps->out_len, ps->sent);
    }
    ssize_t n = send (u->sock, ps->out + ps->out_at,
                      ps->out_len - ps->out_at, MSG_NOSIGNAL);
    if (n > 0)
    {
      ps->sent += (uint64_t) n;
      ps->out_at += (size_t) n;
      if (ps->out_at == ps->out_len)
        ps->out_len = 0;
      continue;
    }
    if (n < 0 && (EAGAIN == errno || EWOULDBLOCK == errno))
    {
      if (ps->filling)
      {
        /* The application's sending has stopped: the path is full. */
        struct event e;
        ps->filling = false;
        ps->out_budget = ps->sent + atomic_load (&u->step);
        ev_begin (&e, "write_held", u->rid);
        ev_int (&e, "k", ps->wk);
        ev_int (&e, "sent", (long long) ps->sent);
        ev_end (&e);
      }
    }
    else if (n < 0 && EINTR != errno)
    {
      report_errno (u, "send", errno);
      ps->how = "error";
    }
    return;
  }
}


/* Begins and ends holds as the streams reach their points. */
static void
pressure_holds (struct pressure *ps)
{
  struct upgraded *u = ps->u;
  const struct script_params *p = &u->p;
  if (read_hold_due (ps))
  {
    ps->read_held = true;
    report_hold (ps, "hold", "read", ++ps->rk);
  }
  if (ps->read_held && atomic_load (&u->released) >= ps->rk)
  {
    ps->read_held = false;
    ps->read_mark = ps->got;
    report_hold (ps, "released", NULL, ps->rk);
  }
  if (! ps->out_ended && ! ps->write_held && ! ps->filling
      && 0 == ps->out_len && ps->sent >= ps->out_budget)
  {
    if (0 != (p->hold & HOLD_WRITE) && ps->wk < p->pauses)
    {
      /* Asks the client to stop reading; fills once it says it has. */
      ps->write_held = true;
      report_hold (ps, "hold", "write", ++ps->wk);
    }
    else if (0 == (p->hold & HOLD_WRITE) && ps->wk < p->pauses)
    {
      ps->wk++; /* no write holds: the output is pauses+1 steps */
      ps->out_budget += atomic_load (&u->step);
    }
    else
    {
      struct event e;
      ps->out_ended = true;
      ev_begin (&e, "enough", u->rid);
      ev_int (&e, "read", (long long) ps->got);
      ev_int (&e, "sent", (long long) ps->sent);
      ev_end (&e);
    }
  }
  if (ps->write_held && atomic_load (&u->acked) >= ps->wk)
  {
    ps->write_held = false;
    ps->filling = true;
    /* The socket may be full already: then no POLLOUT would come to tell
     * that the sending has stopped. Try now. */
    pressure_send (ps);
  }
}


/* U-SOCK-4, backpressure. Sends the counted stream and reads the client's
 * (checking it against the counted stream from inoff= on), both at once,
 * never blocking one direction on the other. Each hold fills the whole
 * path between the side that stops reading and the writer, which always
 * has more to send; between holds each stream moves a step (n=, and from
 * the client's next /release?...&n=N on, N: the client makes it what the
 * path held, so that every buffer drains between two fills):
 *   hold=read: after each n= bytes read it stops reading (event hold, dir
 *     read) until the client, its own sending blocked, releases it (GET
 *     /release?of=RID; event released);
 *   hold=write: after each n= bytes sent it asks the client to stop
 *     reading (event hold, dir write); once the client says it has (GET
 *     /release?of=RID&hold=write) it sends until its socket takes no more
 *     (event write_held), and the client reads again;
 *   hold=both: both, each at its own points.
 * After pauses= holds and n= more bytes its output ends (event enough,
 * with its length); its input ends where the client says (GET
 * /release?of=RID&sent=N). Then pressure_end: how, bytes read and sent,
 * the offset of the first input byte that differs from the counted
 * stream (-1: none). */
void
run_pressure (struct upgraded *u)
{
  struct pressure *ps = calloc (1, sizeof (*ps));
  struct event e;
  char drop[64];
  if (NULL == ps)
  {
    report_errno (u, "calloc", ENOMEM);
    return;
  }
  ps->u = u;
  ps->mismatch = -1;
  ps->out_budget = atomic_load (&u->step);
  /* extra_in is input like any other (the cases send nothing eagerly). */
  for (size_t i = 0; i < u->extra_in_size && ps->mismatch < 0; i++)
    if ((unsigned char) u->extra_in[i] != counted_byte (u->p.inoff + i))
      ps->mismatch = (long long) i;
  ps->got = u->extra_in_size;
  while (NULL == ps->how)
  {
    pressure_holds (ps);
    if (NULL != ps->how)
      break;
    uint64_t input_end = atomic_load (&u->input_end);
    if (ps->out_ended && 0 == ps->out_len && ps->got >= input_end)
    {
      ps->how = ps->got == input_end ? "done" : "overrun";
      break;
    }
    bool more_out = ! ps->out_ended && ! ps->write_held
                    && (ps->filling || 0 != ps->out_len
                        || ps->sent < ps->out_budget);
    struct pollfd fds[3] = {
      { .fd = u->sock,
        .events = (short) ((! ps->read_held && ps->got < input_end
                            ? POLLIN : 0) | (more_out ? POLLOUT : 0)) },
      { .fd = u->srv->stop_fd[0], .events = POLLIN },
      { .fd = u->release_fd[0], .events = POLLIN },
    };
    int r = poll (fds, 3, u->p.idle_ms);
    if (r < 0 && EINTR == errno)
      continue;
    if (r <= 0)
    {
      if (r < 0)
        report_errno (u, "poll", errno);
      ps->how = 0 == r ? "idle" : "error";
      break;
    }
    if (0 != fds[2].revents)
      while (read (u->release_fd[0], drop, sizeof (drop)) > 0)
        ;
    if (0 != fds[1].revents)
      ps->how = "server-stop";
    else if (0 != (fds[0].revents & POLLERR))
      ps->how = "error";
    else
    {
      if (0 != (fds[0].revents & (POLLIN | POLLHUP)) && ! ps->read_held)
        pressure_read (ps);
      if (NULL == ps->how && 0 != (fds[0].revents & POLLOUT))
        pressure_send (ps);
    }
  }
  ev_begin (&e, "pressure_end", u->rid);
  ev_str (&e, "how", ps->how);
  ev_int (&e, "read", (long long) ps->got);
  ev_int (&e, "sent", (long long) ps->sent);
  ev_int (&e, "first_mismatch", ps->mismatch);
  ev_int (&e, "holds_read", ps->rk);
  ev_int (&e, "holds_write", ps->wk);
  ev_end (&e);
  free (ps);
}
