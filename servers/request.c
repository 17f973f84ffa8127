/* The request object (MHD's req_cls) and what it keeps of the request:
 * the digests of its headers and arguments (U-CB-7), and its freeing.
 * Calls nothing of the other files: the access handler (scenarios.c) makes
 * requests, the upgrade handler (upgraded.c) compares views, main.c's
 * completion callback frees them. */
#include "refserver.h"

#include <gnutls/crypto.h>
#include <stdlib.h>
#include <string.h>

struct view_hash
{
  gnutls_hash_hd_t h;
  unsigned int count;
};


static enum MHD_Result
hash_value (void *cls, enum MHD_ValueKind kind, const char *key,
            const char *value)
{
  struct view_hash *vh = cls;
  (void) kind;
  /* Key and value, each with its terminating NUL: no two lists hash alike. */
  gnutls_hash (vh->h, key, strlen (key) + 1);
  gnutls_hash (vh->h, NULL == value ? "" : value,
               NULL == value ? 1 : strlen (value) + 1);
  vh->count++;
  return MHD_YES;
}


static void
hash_values (struct MHD_Connection *c, enum MHD_ValueKind kind,
             unsigned char digest[32], unsigned int *count)
{
  struct view_hash vh = { NULL, 0 };
  memset (digest, 0, 32);
  if (0 != gnutls_hash_init (&vh.h, GNUTLS_DIG_SHA256))
    return;
  MHD_get_connection_values (c, kind, &hash_value, &vh);
  gnutls_hash_deinit (vh.h, digest);
  *count = vh.count;
}


void
request_view (struct MHD_Connection *c, struct request_view *view)
{
  hash_values (c, MHD_HEADER_KIND, view->headers, &view->header_count);
  hash_values (c, MHD_GET_ARGUMENT_KIND, view->args, &view->arg_count);
}


void
request_free (struct request *r)
{
  if (NULL == r)
    return;
  free (r->url_copy);
  if (NULL != r->body_hash)
    gnutls_hash_deinit (r->body_hash, NULL);
  free (r);
}
