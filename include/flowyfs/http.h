/*
 * http.h - --http ADDR:PORT: the live dashboard served by libmicrohttpd.
 * Read-only (GET and HEAD); every page is rendered by dash.c from the
 * tree's views. The listening socket is bound before the daemon detaches
 * (so a taken port fails the start with a clear message), the server
 * threads start after.
 */
#ifndef FLOWYFS_HTTP_H
#define FLOWYFS_HTTP_H

#include "flowyfs/flowy.h"

struct http;

/* Connections served at once; more wait in the kernel's backlog. */
#define HTTP_MAX_CONNECTIONS 1024
/* Seconds an idle (or slow) connection is kept. */
#define HTTP_TIMEOUT 15

/* Bind and listen on spec: "PORT", ":PORT" or "ADDR:PORT" (ADDR an IPv4
 * address, "[IPv6]" or a host name; loopback when omitted). 0 with *fd
 * set, or -errno with *err (malloc'd) saying what failed. */
int http_listen(const char *spec, int *fd, char **err);

/* Serve the dashboard of f on the listening socket fd (taken over, also
 * on failure). 0 with *out set, or -errno (logged). */
int http_start(struct http **out, struct flowy *f, int fd);

/* Stop serving: no new connections, waiting pages answered at once, then
 * every connection thread joined. NULL is a no-op. */
void http_stop(struct http *h);

#endif
