/*
 * http.c - the --http server: libmicrohttpd with a thread per connection
 * (a live page's long poll may wait; a slow client holds only its own
 * thread, and is dropped after HTTP_TIMEOUT seconds of silence), poll(2)
 * rather than select(2) so descriptors past 1024 work. Only GET and HEAD
 * are answered; a request body is read and thrown away. The pages come
 * from dash.c; this file only speaks HTTP.
 */
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <microhttpd.h>

#include "flowyfs/dash.h"
#include "flowyfs/http.h"
#include "flowyfs/log.h"
#include "flowyfs/util.h"

struct http {
	struct MHD_Daemon *d;
	struct flowy *f;
	int stop;
};

int http_listen(const char *spec, int *fd, char **err)
{
	char host[256] = "127.0.0.1";
	const char *colon = strrchr(spec, ':'), *port = colon ? colon + 1 : spec;
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
	                         .ai_flags = AI_NUMERICSERV | AI_PASSIVE}, *ai = NULL;
	*fd = -1;
	*err = NULL;
	if (colon && colon > spec) {
		size_t n = (size_t)(colon - spec);
		if (spec[0] == '[' && n >= 2 && spec[n - 1] == ']') {
			spec++;
			n -= 2;
		}
		if (n >= sizeof host) {
			*err = xasprintf("--http %s: address too long", spec);
			return -EINVAL;
		}
		memcpy(host, spec, n);
		host[n] = '\0';
	}
	char *end;
	long p = strtol(port, &end, 10);
	if (!*port || *end || p < 1 || p > 65535) {
		*err = xasprintf("--http %s: expected [ADDR:]PORT with PORT from 1 to 65535",
		                 spec);
		return -EINVAL;
	}
	int g = getaddrinfo(host, port, &hints, &ai);
	if (g) {
		*err = xasprintf("--http %s: %s", host, gai_strerror(g));
		return -EINVAL;
	}
	int rc = 0, one = 1;
	*fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
	if (*fd < 0 ||
	    setsockopt(*fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
	    bind(*fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(*fd, 256) < 0) {
		rc = -errno;
		*err = xasprintf("--http %s:%s: %s", host, port, strerror(errno));
		if (*fd >= 0)
			close(*fd);
		*fd = -1;
	}
	freeaddrinfo(ai);
	return rc;
}

static enum MHD_Result answer(struct MHD_Connection *c, int status, const char *type,
                              char *body, size_t len, const char *version)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(len, body,
	                                                         MHD_RESPMEM_MUST_FREE);
	if (!r) {
		free(body);
		return MHD_NO;
	}
	int ok = MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type) == MHD_YES &&
	         MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store") == MHD_YES &&
	         MHD_add_response_header(r, "X-Content-Type-Options", "nosniff") == MHD_YES &&
	         MHD_add_response_header(r, "Content-Security-Policy",
	                                 "default-src 'none'; script-src 'unsafe-inline'; "
	                                 "style-src 'unsafe-inline'; img-src 'self'; "
	                                 "connect-src 'self'") == MHD_YES &&
	         (!version || !*version ||
	          MHD_add_response_header(r, "X-Version", version) == MHD_YES) &&
	         (status != MHD_HTTP_METHOD_NOT_ALLOWED ||
	          MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, "GET, HEAD") == MHD_YES);
	enum MHD_Result res = ok ? MHD_queue_response(c, (unsigned)status, r) : MHD_NO;
	MHD_destroy_response(r);
	return res;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url,
                              const char *method, const char *version,
                              const char *upload, size_t *upload_size, void **state)
{
	static int seen;
	struct http *h = cls;
	if (!*state) { /* headers only so far: wait for the end of the request */
		*state = &seen;
		return MHD_YES;
	}
	if (*upload_size) { /* a body nobody asked for: read and drop it */
		*upload_size = 0;
		return MHD_YES;
	}
	if (strcmp(method, MHD_HTTP_METHOD_GET) && strcmp(method, MHD_HTTP_METHOD_HEAD))
		return answer(c, MHD_HTTP_METHOD_NOT_ALLOWED, "text/plain; charset=utf-8",
		              xstrdup("read-only: GET and HEAD only\n"),
		              strlen("read-only: GET and HEAD only\n"), NULL);
	struct dash_reply rep = {0};
	dash_handle(h->f, url, MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "live"),
	            MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "before"), &h->stop,
	            &rep);
	return answer(c, rep.status, rep.type, rep.body, rep.len, rep.version);
}

static void log_mhd(void *cls, const char *fmt, va_list ap)
{
	char buf[512];
	vsnprintf(buf, sizeof buf, fmt, ap);
	buf[strcspn(buf, "\n")] = '\0';
	log_debug("http: %s", buf);
}

int http_start(struct http **out, struct flowy *f, int fd)
{
	struct http *h = xcalloc(1, sizeof *h);
	h->f = f;
	h->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION |
	                        MHD_USE_POLL | MHD_USE_ITC | MHD_USE_ERROR_LOG,
	                        0, NULL, NULL, handle, h,
	                        MHD_OPTION_LISTEN_SOCKET, fd,
	                        MHD_OPTION_CONNECTION_LIMIT, (unsigned)HTTP_MAX_CONNECTIONS,
	                        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)HTTP_TIMEOUT,
	                        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)65536,
	                        MHD_OPTION_EXTERNAL_LOGGER, log_mhd, NULL,
	                        MHD_OPTION_END);
	if (!h->d) {
		log_error("http: cannot start the server");
		close(fd);
		free(h);
		return -EIO;
	}
	*out = h;
	return 0;
}

void http_stop(struct http *h)
{
	if (!h)
		return;
	MHD_socket s = MHD_quiesce_daemon(h->d);
	__atomic_store_n(&h->stop, 1, __ATOMIC_RELAXED);
	MHD_stop_daemon(h->d);
	if (s != MHD_INVALID_SOCKET)
		close(s);
	free(h);
}
