/* The benchmark's reference: the same echo as the upgraded scripts, with
 * no MHD in between. Plain TCP, or TLS with GnuTLS (the TLS library MHD
 * itself uses), one thread per connection, on 127.0.0.1, port 0. Only
 * ./conformance bench starts it (refserver --raw-echo). */
#define _GNU_SOURCE
#include "events.h"
#include "refserver.h"

#include <errno.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

struct echo_conn
{
  int fd;
  gnutls_certificate_credentials_t cred; /* NULL: plain TCP */
};


static void
send_plain (int fd, const char *p, size_t n)
{
  while (n > 0)
  {
    ssize_t w = send (fd, p, n, MSG_NOSIGNAL);
    if (w < 0 && EINTR == errno)
      continue;
    if (w <= 0)
      return;
    p += w;
    n -= (size_t) w;
  }
}


/* Like the upgraded echo script: 64 KiB reads, and every byte read goes
 * through SHA-256 (the script reports the digest), so that the reference
 * does the same work, minus MHD. */
static void
echo_plain (int fd, gnutls_hash_hd_t h)
{
  static __thread char buf[65536];
  for (;;)
  {
    ssize_t r = recv (fd, buf, sizeof (buf), 0);
    if (r < 0 && EINTR == errno)
      continue;
    if (r <= 0)
      return;
    gnutls_hash (h, buf, (size_t) r);
    send_plain (fd, buf, (size_t) r);
  }
}


static void
echo_tls (int fd, gnutls_certificate_credentials_t cred, gnutls_hash_hd_t h)
{
  static __thread char buf[65536];
  gnutls_session_t s;
  int r;
  if (GNUTLS_E_SUCCESS != gnutls_init (&s, GNUTLS_SERVER))
    return;
  if (GNUTLS_E_SUCCESS != gnutls_set_default_priority (s)
      || GNUTLS_E_SUCCESS != gnutls_credentials_set (s,
                                                     GNUTLS_CRD_CERTIFICATE,
                                                     cred))
  {
    gnutls_deinit (s);
    return;
  }
  gnutls_transport_set_int (s, fd);
  do
    r = gnutls_handshake (s);
  while (r < 0 && 0 == gnutls_error_is_fatal (r));
  while (r >= 0)
  {
    ssize_t n = gnutls_record_recv (s, buf, sizeof (buf));
    if (GNUTLS_E_AGAIN == n || GNUTLS_E_INTERRUPTED == n)
      continue;
    if (n <= 0)
      break;
    gnutls_hash (h, buf, (size_t) n);
    for (ssize_t off = 0; off < n;)
    {
      ssize_t w = gnutls_record_send (s, buf + off, (size_t) (n - off));
      if (GNUTLS_E_AGAIN == w || GNUTLS_E_INTERRUPTED == w)
        continue;
      if (w < 0)
      {
        r = -1;
        break;
      }
      off += w;
    }
  }
  gnutls_bye (s, GNUTLS_SHUT_WR);
  gnutls_deinit (s);
}


static void *
echo_thread (void *arg)
{
  struct echo_conn *c = arg;
  int one = 1;
  gnutls_hash_hd_t h;
  setsockopt (c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof (one));
  if (0 == gnutls_hash_init (&h, GNUTLS_DIG_SHA256))
  {
    if (NULL == c->cred)
      echo_plain (c->fd, h);
    else
      echo_tls (c->fd, c->cred, h);
    gnutls_hash_deinit (h, NULL);
  }
  close (c->fd);
  free (c);
  return NULL;
}


int
raw_echo_main (const char *key_pem, const char *cert_pem, int sigfd)
{
  gnutls_certificate_credentials_t cred = NULL;
  struct sockaddr_in sa = { .sin_family = AF_INET,
                            .sin_addr.s_addr = htonl (INADDR_LOOPBACK) };
  socklen_t len = sizeof (sa);
  struct event e;
  int lfd = socket (AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

  if (NULL != key_pem)
  {
    gnutls_datum_t k = { (unsigned char *) key_pem,
                         (unsigned int) strlen (key_pem) };
    gnutls_datum_t c = { (unsigned char *) cert_pem,
                         (unsigned int) strlen (cert_pem) };
    if (GNUTLS_E_SUCCESS != gnutls_certificate_allocate_credentials (&cred)
        || GNUTLS_E_SUCCESS != gnutls_certificate_set_x509_key_mem (
          cred, &c, &k, GNUTLS_X509_FMT_PEM))
    {
      fprintf (stderr, "refserver: --raw-echo: bad TLS key or certificate\n");
      return 3;
    }
  }
  if (lfd < 0 || 0 != bind (lfd, (struct sockaddr *) &sa, sizeof (sa))
      || 0 != listen (lfd, 64)
      || 0 != getsockname (lfd, (struct sockaddr *) &sa, &len))
  {
    perror ("refserver: --raw-echo");
    return 3;
  }
  ev_begin (&e, "ready", NULL);
  ev_int (&e, "port", ntohs (sa.sin_port));
  ev_bool (&e, "raw_echo", true);
  ev_bool (&e, "tls", NULL != cred);
  ev_str (&e, "mhd_version", "none");
  ev_end (&e);
  for (;;)
  {
    struct pollfd p[2] = { { .fd = lfd, .events = POLLIN },
                           { .fd = sigfd, .events = POLLIN } };
    if (poll (p, 2, -1) < 0 && EINTR != errno)
      break;
    if (0 != p[1].revents)
      break;
    if (0 == p[0].revents)
      continue;
    int fd = accept4 (lfd, NULL, NULL, SOCK_CLOEXEC);
    struct echo_conn *c = malloc (sizeof (*c));
    pthread_t t;
    if (fd < 0 || NULL == c)
    {
      if (fd >= 0)
        close (fd);
      free (c);
      continue;
    }
    c->fd = fd;
    c->cred = cred;
    if (0 != pthread_create (&t, NULL, &echo_thread, c))
    {
      close (fd);
      free (c);
      continue;
    }
    pthread_detach (t);
  }
  close (lfd);
  ev_begin (&e, "stopped", NULL);
  ev_end (&e);
  return 0;
}
