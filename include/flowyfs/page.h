/*
 * page.h - what the HTML pages share (runs/<id>/report.html and the
 * --http dashboard): the inline stylesheet, the page frame, reading a
 * file of the tree through the views (never the host filesystem), and
 * small HTML pieces (status badges, tables from TSV). Every piece of text
 * from the tree is escaped (svg_escape).
 */
#ifndef FLOWYFS_PAGE_H
#define FLOWYFS_PAGE_H

#include <stddef.h>

#include "flowyfs/flowy.h"

struct strbuf;

/* Start an HTML document: doctype, <head> with title (escaped), the
 * inline stylesheet and head_extra (trusted, may be NULL), <body>. */
void page_begin(struct strbuf *sb, const char *title, const char *head_extra);
void page_end(struct strbuf *sb);

/* Read the file at path (relative to the mount root, "runs/3/status")
 * through the view that owns it, as a read-only open would. With max > 0
 * at most max bytes: the first ones, or the last ones when tail is set.
 * 0 with *out malloc'd (NUL-terminated, length in *len when len is not
 * NULL) or the view's -errno (-EISDIR for a directory or symlink). */
int page_read(struct flowy *f, const char *path, size_t max, int tail, char **out,
              size_t *len);

/* <span class="st st-STATUS">STATUS</span>, escaped. */
void page_status(struct strbuf *sb, const char *status);

/* A TSV text (header row first) as <table class=cls id=id> (id may be
 * NULL); each cell escaped. The header cells are <th data-col=N>. */
void page_tsv_table(struct strbuf *sb, const char *tsv, const char *cls,
                    const char *id);

#endif
