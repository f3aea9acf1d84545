/*
 * render/page.c - the frame and pieces shared by the HTML pages (the run
 * report and the dashboard). Data comes from the tree itself: page_read
 * opens a path through the route table and its view, exactly what a
 * read-only open(2) on the mount would get, so the pages show nothing a
 * `cat` could not and cannot reach outside the tree.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "flowyfs/handle.h"
#include "flowyfs/page.h"
#include "flowyfs/svg.h"
#include "flowyfs/util.h"
#include "flowyfs/view.h"

static const char css[] =
	"<style>\n"
	"body{font-family:Helvetica,Arial,sans-serif;margin:0;color:#222;background:#fafafa}\n"
	"header{background:#263238;color:#fff;padding:10px 20px}\n"
	"header a{color:#cfd8dc;margin-right:16px;text-decoration:none}\n"
	"header b{margin-right:24px}\n"
	"main{padding:16px 20px}\n"
	"h1{font-size:20px}h2{font-size:16px;margin-top:28px;border-bottom:1px solid #ddd}\n"
	"table{border-collapse:collapse;margin:8px 0;background:#fff}\n"
	"td,th{border:1px solid #ddd;padding:3px 8px;text-align:left;font-size:13px;"
	"vertical-align:top}\n"
	"th{background:#eceff1;cursor:default}\n"
	"th.sortable{cursor:pointer}\n"
	"td.best{background:#d7f5dd;font-weight:bold}\n"
	"pre{background:#fff;border:1px solid #ddd;padding:6px;font-size:12px;"
	"overflow:auto;max-height:320px;white-space:pre-wrap}\n"
	".pic{overflow:auto;border:1px solid #ddd;background:#fff;max-width:100%}\n"
	".metric{display:inline-block;vertical-align:top;margin:0 8px 8px 0}\n"
	".st{padding:1px 6px;border-radius:3px;font-size:12px;background:#eee}\n"
	".st-succeeded{background:#b7e4c7}.st-cached{background:#cfe3f7}"
	".st-running{background:#ffe08a}.st-failed{background:#f4a6a6}"
	".st-queued,.st-pending{background:#eeeeee}.st-cancelled,.st-interrupted"
	"{background:#d6d6d6}.st-valid{background:#b7e4c7}.st-invalid{background:#f4a6a6}\n"
	".hash{font-family:monospace;font-size:12px}\n"
	".err{color:#b71c1c}\n"
	"</style>\n";

void page_begin(struct strbuf *sb, const char *title, const char *head_extra)
{
	strbuf_puts(sb, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
	            "<title>");
	svg_escape(sb, title);
	strbuf_puts(sb, "</title>\n");
	strbuf_puts(sb, css);
	if (head_extra)
		strbuf_puts(sb, head_extra);
	strbuf_puts(sb, "</head>\n<body>\n");
}

void page_end(struct strbuf *sb)
{
	strbuf_puts(sb, "</body></html>\n");
}

/* Read what an FH_FD handle holds (the last max bytes with tail). */
static int read_fd(int fd, size_t max, int tail, struct strbuf *sb)
{
	off_t size = lseek(fd, 0, SEEK_END), off = 0;
	if (size < 0)
		return -errno;
	if (max && (size_t)size > max && tail)
		off = size - (off_t)max;
	for (;;) {
		size_t want = 65536;
		if (max && sb->len + want > max)
			want = max - sb->len;
		if (!want)
			break;
		strbuf_grow(sb, want);
		ssize_t n = pread(fd, sb->buf + sb->len, want, off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			break;
		sb->len += (size_t)n;
		sb->buf[sb->len] = '\0';
		off += n;
	}
	return 0;
}

int page_read(struct flowy *f, const char *path, size_t max, int tail, char **out,
              size_t *len)
{
	struct fh *h = xcalloc(1, sizeof *h);
	struct strbuf sb = {0};
	h->fd = -1;
	const struct view *v = route_find(path);
	int rc = v && v->open ? v->open(f, path, O_RDONLY, h) : -EISDIR;
	if (rc < 0)
		goto out;
	if (h->kind == FH_BUF) {
		size_t off = 0, n = h->len;
		if (max && n > max) {
			off = tail ? n - max : 0;
			n = max;
		}
		strbuf_add(&sb, h->buf + off, n);
	} else if (h->kind == FH_FD) {
		rc = read_fd(h->fd, max, tail, &sb);
	} else {
		rc = -EINVAL; /* blobs and command sinks are not shown */
	}
out:
	handle_free(h);
	if (rc < 0) {
		strbuf_release(&sb);
		return rc;
	}
	strbuf_grow(&sb, 1); /* an empty file is "" too */
	if (len)
		*len = sb.len;
	*out = strbuf_detach(&sb, NULL);
	return 0;
}

void page_status(struct strbuf *sb, const char *status)
{
	strbuf_puts(sb, "<span class=\"st st-");
	svg_escape(sb, status);
	strbuf_puts(sb, "\">");
	svg_escape(sb, status);
	strbuf_puts(sb, "</span>");
}

void page_tsv_table(struct strbuf *sb, const char *tsv, const char *cls,
                    const char *id)
{
	strbuf_puts(sb, "<table class=\"");
	svg_escape(sb, cls);
	strbuf_puts(sb, "\"");
	if (id) {
		strbuf_puts(sb, " id=\"");
		svg_escape(sb, id);
		strbuf_puts(sb, "\"");
	}
	strbuf_puts(sb, ">\n");
	int row = 0;
	for (const char *l = tsv; *l; row++) {
		size_t n = strcspn(l, "\n");
		strbuf_puts(sb, row ? "<tr>" : "<thead><tr>");
		int col = 0;
		for (const char *c = l; c <= l + n; col++) {
			size_t k = strcspn(c, "\t\n");
			if (c + k > l + n)
				k = (size_t)(l + n - c);
			if (row)
				strbuf_puts(sb, "<td>");
			else
				strbuf_printf(sb, "<th data-col=\"%d\">", col);
			svg_escape_n(sb, c, k);
			strbuf_puts(sb, row ? "</td>" : "</th>");
			c += k + 1;
		}
		strbuf_puts(sb, row ? "</tr>\n" : "</tr></thead>\n<tbody>\n");
		l += n;
		if (*l)
			l++;
	}
	strbuf_puts(sb, row ? "</tbody></table>\n" : "</table>\n");
}
