/* WebSocket (RFC 6455) on MHD's upgrade: see websocket.c. */
#ifndef WEBSOCKET_H
#define WEBSOCKET_H

#include <microhttpd.h>
#include <stddef.h>

/* Sec-WebSocket-Accept: base64 of a SHA-1 digest, 28 characters. */
#define WS_ACCEPT_SIZE 29
/* ws_check_handshake's answer when only the version is wrong (426). */
#define WS_BAD_VERSION "Sec-WebSocket-Version is not 13"

/* Checks an opening handshake as RFC 6455 section 4.2.1 asks. Returns NULL
 * and fills @a accept when it may be upgraded; otherwise what is wrong
 * (WS_BAD_VERSION for a version other than 13: answer 426). */
const char *ws_check_handshake (struct MHD_Connection *c, const char *method,
                                const char *version,
                                char accept[WS_ACCEPT_SIZE]);

/* The subprotocol to answer with (Sec-WebSocket-Protocol): the first of
 * the server's that the client offered; NULL when it offered none of them. */
const char *ws_choose_protocol (struct MHD_Connection *c);

/* Echoes WebSocket messages on @a sock (extra_in first) until the closing
 * handshake, the client's end, a protocol error, @a idle_ms without
 * progress or the server's stop (@a stop_fd readable). Reports a "ws_end"
 * event; returns how it ended: closed, failed, eof, error, idle,
 * server-stop, out-of-memory. */
const char *ws_echo (int sock, const char *extra_in, size_t extra_in_size,
                     int idle_ms, int stop_fd, const char *rid);

#endif
