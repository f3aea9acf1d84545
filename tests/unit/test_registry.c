/* test_registry.c - the model registry over a fresh database: version
 * numbering (the same content never twice), name and alias validation,
 * alias moves and their history, the ln -sfn rename, model removal. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "flowyfs/db.h"
#include "flowyfs/registry.h"
#include "flowyfs/util.h"

static char dir[] = "/tmp/flowyfs-test-registry-XXXXXX";
static int seq;

static const char *const H1 = "1111111111111111111111111111111111111111111111111111111111111111";
static const char *const H2 = "2222222222222222222222222222222222222222222222222222222222222222";
static const char *const H3 = "3333333333333333333333333333333333333333333333333333333333333333";

static db *fresh(void)
{
	char *p = xasprintf("%s/%d.db", dir, seq++), *err = NULL;
	db *d = NULL;
	if (db_open(&d, p, &err) < 0) {
		fprintf(stderr, "db_open: %s\n", err ? err : "?");
		exit(1);
	}
	free(p);
	return d;
}

/* The history as "alias from to uid" lines. */
static char *history(db *d, const char *model)
{
	struct strbuf sb = {0};
	db_lock(d);
	sqlite3_stmt *st = db_prepare(d, "SELECT alias, coalesce(from_v, 0), "
	                              "coalesce(to_v, 0), uid FROM registry_history "
	                              "WHERE model=? ORDER BY id", "t", model);
	while (st && sqlite3_step(st) == SQLITE_ROW)
		strbuf_printf(&sb, "%s %lld %lld %lld\n", sqlite3_column_text(st, 0),
		              (long long)sqlite3_column_int64(st, 1),
		              (long long)sqlite3_column_int64(st, 2),
		              (long long)sqlite3_column_int64(st, 3));
	db_finish(d, st);
	db_unlock(d);
	strbuf_puts(&sb, "");
	return strbuf_detach(&sb, NULL);
}

TEST(versions_are_numbered_and_never_repeat_content)
{
	db *d = fresh();
	int64_t v = 0;
	struct registry_origin o = {"p", 7, "train", "model"};
	CHECK_INT(registry_version_add(d, "clf", H1, &o, 0, &v), -ENOENT);
	CHECK_INT(registry_version_add(d, "clf", H1, &o, 1, &v), 0);
	CHECK_INT(v, 1);
	CHECK_INT(registry_version_add(d, "clf", H2, NULL, 0, &v), 0);
	CHECK_INT(v, 2);
	CHECK_INT(registry_version_add(d, "clf", H1, &o, 1, &v), 1);
	CHECK_INT(v, 1);
	CHECK_INT(registry_version_add(d, "clf", H3, &o, 1, &v), 0);
	CHECK_INT(v, 3);
	/* another model numbers on its own */
	CHECK_INT(registry_version_add(d, "other", H3, &o, 1, &v), 0);
	CHECK_INT(v, 1);
	char hex[CAS_HEX_LEN + 1];
	CHECK_INT(registry_version_hash(d, "clf", 2, hex), 0);
	CHECK_STR(hex, H2);
	CHECK_INT(registry_version_hash(d, "clf", 4, hex), -ENOENT);
	CHECK_INT(registry_version_add(d, "clf", "xyz", &o, 1, &v), -EINVAL);
	CHECK_INT(registry_version_add(d, "bad/name", H1, &o, 1, &v), -EINVAL);
	db_close(d);
}

TEST(names_and_aliases_are_validated)
{
	int64_t v = 0;
	const char *why = NULL;
	CHECK(registry_model_name_valid("clf"));
	CHECK(registry_model_name_valid("a.b-c_9"));
	CHECK(!registry_model_name_valid(""));
	CHECK(!registry_model_name_valid(".hidden"));
	CHECK(!registry_model_name_valid("a/b"));
	CHECK(!registry_model_name_valid("a b"));
	char *longname = xcalloc(1, 130);
	memset(longname, 'a', 129);
	CHECK(!registry_model_name_valid(longname));
	longname[128] = '\0';
	CHECK(registry_model_name_valid(longname));
	free(longname);
	CHECK(registry_alias_name_valid("production", NULL));
	CHECK(registry_alias_name_valid("v", NULL));
	CHECK(registry_alias_name_valid("v1a", NULL));
	CHECK(!registry_alias_name_valid("v3", &why));
	CHECK_STR(why, "v<N> names a version, not an alias");
	CHECK(!registry_alias_name_valid("history", &why));
	CHECK(!registry_alias_name_valid("versions.tsv", NULL));
	CHECK(!registry_alias_name_valid(".ctl", NULL));
	CHECK(!registry_alias_name_valid("a@b", NULL));
	CHECK_INT(registry_version_parse("v12", &v), 0);
	CHECK_INT(v, 12);
	CHECK_INT(registry_version_parse("v0", &v), -EINVAL);
	CHECK_INT(registry_version_parse("v01", &v), -EINVAL);
	CHECK_INT(registry_version_parse("v", &v), -EINVAL);
	CHECK_INT(registry_version_parse("w1", &v), -EINVAL);
	CHECK_INT(registry_version_parse("v1x", &v), -EINVAL);
}

TEST(alias_moves_are_recorded)
{
	db *d = fresh();
	int64_t v = 0;
	char hex[CAS_HEX_LEN + 1];
	CHECK_INT(registry_model_create(d, "clf"), 0);
	CHECK_INT(registry_model_create(d, "clf"), -EEXIST);
	CHECK_INT(registry_model_create(d, "a/b"), -EINVAL);
	CHECK_INT(registry_version_add(d, "clf", H1, NULL, 0, NULL), 0);
	CHECK_INT(registry_version_add(d, "clf", H2, NULL, 0, NULL), 0);
	CHECK_INT(registry_alias_set(d, "clf", "production", 3, 1000), -ENOENT);
	CHECK_INT(registry_alias_set(d, "clf", "v2", 1, 1000), -EINVAL);
	CHECK_INT(registry_alias_set(d, "nomodel", "production", 1, 1000), -ENOENT);
	CHECK_INT(registry_alias_set(d, "clf", "production", 1, 1000), 0);
	CHECK_INT(registry_alias_set(d, "clf", "production", 1, 1000), 0); /* no move */
	CHECK_INT(registry_alias_set(d, "clf", "production", 2, 1001), 0);
	CHECK_INT(registry_alias_get(d, "clf", "production", &v, hex), 0);
	CHECK_INT(v, 2);
	CHECK_STR(hex, H2);
	/* ln -sfn v1 production: a temporary link, renamed over */
	CHECK_INT(registry_alias_set(d, "clf", "CuXYZ123", 1, 1002), 0);
	CHECK_INT(registry_alias_rename(d, "clf", "CuXYZ123", "production", 1002), 0);
	CHECK_INT(registry_alias_get(d, "clf", "CuXYZ123", &v, NULL), -ENOENT);
	CHECK_INT(registry_alias_get(d, "clf", "production", &v, NULL), 0);
	CHECK_INT(v, 1);
	CHECK_INT(registry_alias_remove(d, "clf", "production", 1003), 0);
	CHECK_INT(registry_alias_remove(d, "clf", "production", 1003), -ENOENT);
	char *h = history(d, "clf");
	CHECK_STR(h, "production 0 1 1000\nproduction 1 2 1001\nproduction 2 1 1002\n"
	             "production 1 0 1003\n");
	free(h);
	db_close(d);
}

TEST(renaming_a_real_alias_records_both_ends)
{
	db *d = fresh();
	int64_t v = 0;
	CHECK_INT(registry_version_add(d, "m", H1, NULL, 1, NULL), 0);
	CHECK_INT(registry_version_add(d, "m", H2, NULL, 1, NULL), 0);
	CHECK_INT(registry_alias_set(d, "m", "staging", 1, 5), 0);
	CHECK_INT(registry_alias_set(d, "m", "staging", 2, 5), 0);
	CHECK_INT(registry_alias_rename(d, "m", "staging", "prod", 6), 0);
	CHECK_INT(registry_alias_rename(d, "m", "nothere", "prod", 6), -ENOENT);
	CHECK_INT(registry_alias_rename(d, "m", "prod", "v1", 6), -EINVAL);
	CHECK_INT(registry_alias_get(d, "m", "prod", &v, NULL), 0);
	CHECK_INT(v, 2);
	char *h = history(d, "m");
	CHECK_STR(h, "staging 0 1 5\nstaging 1 2 5\nstaging 2 0 6\nprod 0 2 6\n");
	free(h);
	db_close(d);
}

TEST(only_an_empty_model_is_removed)
{
	db *d = fresh();
	CHECK_INT(registry_model_create(d, "empty"), 0);
	CHECK_INT(registry_model_exists(d, "empty"), 1);
	CHECK_INT(registry_model_remove(d, "empty"), 0);
	CHECK_INT(registry_model_exists(d, "empty"), 0);
	CHECK_INT(registry_model_remove(d, "empty"), -ENOENT);
	CHECK_INT(registry_version_add(d, "full", H1, NULL, 1, NULL), 0);
	CHECK_INT(registry_model_remove(d, "full"), -ENOTEMPTY);
	db_close(d);
}

TEST(a_failed_add_inside_a_transaction_dooms_it)
{
	db *d = fresh();
	db_lock(d);
	CHECK_INT(db_begin(d), 0);
	CHECK_INT(registry_version_add(d, "clf", H1, NULL, 1, NULL), 0);
	CHECK_INT(registry_version_add(d, "clf", H2, NULL, 1, NULL), 0);
	db_rollback(d);
	db_unlock(d);
	CHECK_INT(registry_model_exists(d, "clf"), 0);
	db_close(d);
}

int main(void)
{
	if (!mkdtemp(dir))
		return 1;
	RUN(versions_are_numbered_and_never_repeat_content);
	RUN(names_and_aliases_are_validated);
	RUN(alias_moves_are_recorded);
	RUN(renaming_a_real_alias_records_both_ends);
	RUN(only_an_empty_model_is_removed);
	RUN(a_failed_add_inside_a_transaction_dooms_it);
	util_rm_rf(dir);
	return CHECK_DONE();
}
