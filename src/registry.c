/*
 * registry.c - the model registry over SQLite (registry.h). A version is a
 * (model, number, hash) row with where it came from; the hash is unique
 * within its model, so the same content never becomes two versions. An
 * alias is a (model, name, version) row; every change of what an alias
 * points at appends one row to the history, in the same transaction.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flowyfs/registry.h"
#include "flowyfs/util.h"

int registry_model_name_valid(const char *name)
{
	size_t n = strlen(name);
	if (!n || n > REGISTRY_NAME_MAX || name[0] == '.' || name[0] == '-')
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = name[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-'))
			return 0;
	}
	return 1;
}

int registry_version_parse(const char *name, int64_t *out)
{
	if (name[0] != 'v' || !name[1] || name[1] == '0' || strlen(name) > 18)
		return -EINVAL;
	int64_t v = 0;
	for (const char *p = name + 1; *p; p++) {
		if (*p < '0' || *p > '9')
			return -EINVAL;
		v = v * 10 + (*p - '0');
	}
	*out = v;
	return 0;
}

int registry_alias_name_valid(const char *name, const char **why)
{
	static const char *const reserved[] = {"versions.tsv", "history", ".ctl",
	                                       ".status", NULL};
	const char *w = NULL;
	int64_t v;
	if (!registry_model_name_valid(name))
		w = "an alias name is [A-Za-z0-9_][A-Za-z0-9_.-]*, at most 128 bytes";
	else if (registry_version_parse(name, &v) == 0)
		w = "v<N> names a version, not an alias";
	for (size_t i = 0; !w && reserved[i]; i++)
		if (!strcmp(name, reserved[i]))
			w = "that name is one of the model's own files";
	if (w && why)
		*why = w;
	return !w;
}

/* End a function's transaction: commit on success (rc >= 0), else roll
 * back; unlocks. Returns rc, or the commit's error. */
static int txn_end(db *d, int rc)
{
	if (rc < 0) {
		db_rollback(d);
	} else {
		int c = db_commit(d);
		if (c < 0)
			rc = c;
	}
	db_unlock(d);
	return rc;
}

static int txn_begin(db *d)
{
	db_lock(d);
	return db_begin(d);
}

int registry_model_exists(db *d, const char *model)
{
	int64_t one = 0;
	db_lock(d);
	int rc = db_get_int(d, &one, "SELECT 1 FROM registry_models WHERE name=?", "t",
	                    model);
	db_unlock(d);
	return rc < 0 ? rc : rc == 0;
}

int registry_model_create(db *d, const char *model)
{
	if (!registry_model_name_valid(model))
		return -EINVAL;
	int rc = txn_begin(d);
	if (!rc)
		rc = registry_model_exists(d, model);
	if (rc == 1)
		rc = -EEXIST;
	if (!rc)
		rc = db_exec(d, "INSERT INTO registry_models(name, created) VALUES(?, ?)",
		             "td", model, util_now());
	return txn_end(d, rc);
}

int registry_model_remove(db *d, const char *model)
{
	int64_t n = 0;
	int rc = txn_begin(d);
	if (!rc)
		rc = registry_model_exists(d, model);
	if (rc == 0)
		rc = -ENOENT;
	if (rc == 1)
		rc = db_get_int(d, &n, "SELECT count(*) FROM registry_versions WHERE model=?",
		                "t", model);
	if (!rc && n)
		rc = -ENOTEMPTY;
	if (!rc)
		rc = db_exec(d, "DELETE FROM registry_models WHERE name=?", "t", model);
	if (!rc)
		rc = db_exec(d, "DELETE FROM registry_aliases WHERE model=?", "t", model);
	if (!rc)
		rc = db_exec(d, "DELETE FROM registry_history WHERE model=?", "t", model);
	return txn_end(d, rc);
}

int registry_version_add(db *d, const char *model, const char *hex,
                         const struct registry_origin *o, int create, int64_t *out)
{
	static const struct registry_origin none;
	int64_t v = 0;
	if (!o)
		o = &none;
	if (!cas_hex_valid(hex) || !registry_model_name_valid(model))
		return -EINVAL;
	int rc = txn_begin(d);
	if (!rc)
		rc = registry_model_exists(d, model);
	if (rc == 0 && !create)
		rc = -ENOENT;
	else if (rc == 0)
		rc = db_exec(d, "INSERT INTO registry_models(name, created) VALUES(?, ?)",
		             "td", model, util_now());
	else if (rc == 1)
		rc = 0;
	if (!rc) {
		rc = db_get_int(d, &v, "SELECT version FROM registry_versions WHERE model=? "
		                "AND hash=?", "tt", model, hex);
		if (rc == 0)
			rc = 1; /* already a version */
		else if (rc == 1)
			rc = db_get_int(d, &v, "SELECT coalesce(max(version), 0) + 1 FROM "
			                "registry_versions WHERE model=?", "t", model);
		if (rc == 0)
			rc = db_exec(d, "INSERT INTO registry_versions(model, version, hash, "
			             "pipeline, run_id, step, output, created) VALUES(?, ?, ?, ?, "
			             "nullif(?, 0), ?, ?, ?)", "tittittd", model, v, hex,
			             o->pipeline, o->run, o->step, o->output, util_now());
	}
	if (rc >= 0 && out)
		*out = v;
	return txn_end(d, rc);
}

int registry_version_hash(db *d, const char *model, int64_t v,
                          char hex[CAS_HEX_LEN + 1])
{
	char *h = NULL;
	db_lock(d);
	int rc = db_get_text(d, &h, "SELECT hash FROM registry_versions WHERE model=? "
	                     "AND version=?", "ti", model, v);
	db_unlock(d);
	if (rc == 1)
		rc = -ENOENT;
	if (!rc)
		snprintf(hex, CAS_HEX_LEN + 1, "%s", h);
	free(h);
	return rc;
}

/* What alias points at in *v (0: nothing): 0 or -errno. Lock held. */
static int alias_version(db *d, const char *model, const char *alias, int64_t *v)
{
	*v = 0;
	int rc = db_get_int(d, v, "SELECT version FROM registry_aliases WHERE model=? "
	                    "AND alias=?", "tt", model, alias);
	return rc == 1 ? 0 : rc;
}

static int history_add(db *d, const char *model, const char *alias, int64_t from,
                       int64_t to, uid_t uid)
{
	return db_exec(d, "INSERT INTO registry_history(model, alias, time, from_v, to_v, "
	               "uid) VALUES(?, ?, ?, nullif(?, 0), nullif(?, 0), ?)", "ttdiii",
	               model, alias, util_now(), from, to, (int64_t)uid);
}

/* Point alias at v (0: remove it), recording the move. Lock held, in a
 * transaction. */
static int alias_move(db *d, const char *model, const char *alias, int64_t v, uid_t uid)
{
	int64_t was = 0;
	int rc = alias_version(d, model, alias, &was);
	if (rc || was == v)
		return rc;
	if (v)
		rc = db_exec(d, "INSERT OR REPLACE INTO registry_aliases(model, alias, version) "
		             "VALUES(?, ?, ?)", "tti", model, alias, v);
	else
		rc = db_exec(d, "DELETE FROM registry_aliases WHERE model=? AND alias=?", "tt",
		             model, alias);
	return rc ? rc : history_add(d, model, alias, was, v, uid);
}

int registry_alias_set(db *d, const char *model, const char *alias, int64_t v,
                       uid_t uid)
{
	char hex[CAS_HEX_LEN + 1];
	if (!registry_alias_name_valid(alias, NULL))
		return -EINVAL;
	int rc = txn_begin(d);
	if (!rc)
		rc = registry_version_hash(d, model, v, hex);
	if (!rc)
		rc = alias_move(d, model, alias, v, uid);
	return txn_end(d, rc);
}

int registry_alias_remove(db *d, const char *model, const char *alias, uid_t uid)
{
	int64_t was = 0;
	int rc = txn_begin(d);
	if (!rc)
		rc = alias_version(d, model, alias, &was);
	if (!rc && !was)
		rc = -ENOENT;
	if (!rc)
		rc = alias_move(d, model, alias, 0, uid);
	return txn_end(d, rc);
}

int registry_alias_rename(db *d, const char *model, const char *from,
                          const char *to, uid_t uid)
{
	int64_t v = 0, moves = 0, created = 0;
	if (!registry_alias_name_valid(to, NULL))
		return -EINVAL;
	int rc = txn_begin(d);
	if (!rc)
		rc = alias_version(d, model, from, &v);
	if (!rc && !v)
		rc = -ENOENT;
	if (!rc && !strcmp(from, to))
		return txn_end(d, 0);
	if (!rc)
		rc = db_get_int(d, &moves, "SELECT count(*) FROM registry_history WHERE "
		                "model=? AND alias=?", "tt", model, from);
	if (!rc)
		rc = db_get_int(d, &created, "SELECT count(*) FROM registry_history WHERE "
		                "model=? AND alias=? AND from_v IS NULL", "tt", model, from);
	if (!rc && moves == 1 && created == 1) /* a temporary name: no trace */
		rc = db_exec(d, "DELETE FROM registry_history WHERE model=? AND alias=?", "tt",
		             model, from);
	if (!rc)
		rc = db_exec(d, "DELETE FROM registry_aliases WHERE model=? AND alias=?", "tt",
		             model, from);
	if (!rc && !(moves == 1 && created == 1))
		rc = history_add(d, model, from, v, 0, uid);
	if (!rc)
		rc = alias_move(d, model, to, v, uid);
	return txn_end(d, rc);
}

int registry_alias_get(db *d, const char *model, const char *alias, int64_t *v,
                       char hex[CAS_HEX_LEN + 1])
{
	char h[CAS_HEX_LEN + 1];
	db_lock(d);
	int rc = alias_version(d, model, alias, v);
	if (!rc && !*v)
		rc = -ENOENT;
	if (!rc)
		rc = registry_version_hash(d, model, *v, hex ? hex : h);
	db_unlock(d);
	return rc;
}
