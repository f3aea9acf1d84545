/* test_inode.c - the inode table: lookups, counts, forgetting, renames. */
#include <stdlib.h>

#include "check.h"
#include "flowyfs/inode.h"

TEST(root_is_one_and_lives_forever)
{
	inode_table *t = inode_table_new();
	char *p = inode_path(t, INODE_ROOT);
	CHECK_STR(p, "");
	free(p);
	inode_unref(t, INODE_ROOT, 100);
	p = inode_path(t, INODE_ROOT);
	CHECK_STR(p, "");
	free(p);
	inode_table_free(t);
}

TEST(same_path_same_inode_until_forgotten)
{
	inode_table *t = inode_table_new();
	uint64_t a = inode_ref(t, "runs/1/status");
	uint64_t b = inode_ref(t, "runs/1/status");
	CHECK_INT(a, b);
	CHECK_INT(inode_count(t), 2);
	inode_unref(t, a, 1);
	char *p = inode_path(t, a);
	CHECK_STR(p, "runs/1/status");
	free(p);
	inode_unref(t, a, 1);
	CHECK(inode_path(t, a) == NULL);
	uint64_t c = inode_ref(t, "runs/1/status");
	CHECK(c != a); /* numbers are never reused */
	inode_table_free(t);
}

TEST(child_paths)
{
	inode_table *t = inode_table_new();
	char *p = inode_child_path(t, INODE_ROOT, "pipelines");
	CHECK_STR(p, "pipelines");
	uint64_t i = inode_ref(t, p);
	free(p);
	p = inode_child_path(t, i, "demo");
	CHECK_STR(p, "pipelines/demo");
	free(p);
	CHECK(inode_child_path(t, 999999, "x") == NULL);
	inode_table_free(t);
}

TEST(rename_moves_subtree_and_replaces_target)
{
	inode_table *t = inode_table_new();
	uint64_t dir = inode_ref(t, "pipelines/a");
	uint64_t file = inode_ref(t, "pipelines/a/s.json");
	uint64_t other = inode_ref(t, "pipelines/ab/s.json");
	uint64_t target = inode_ref(t, "pipelines/b");
	inode_rename(t, "pipelines/a", "pipelines/b");
	char *p = inode_path(t, dir);
	CHECK_STR(p, "pipelines/b");
	free(p);
	p = inode_path(t, file);
	CHECK_STR(p, "pipelines/b/s.json");
	free(p);
	p = inode_path(t, other); /* a prefix of the name, not of the path */
	CHECK_STR(p, "pipelines/ab/s.json");
	free(p);
	p = inode_path(t, target);
	CHECK(p && strcmp(p, "pipelines/b") != 0);
	free(p);
	CHECK_INT(inode_ref(t, "pipelines/b"), dir);
	inode_table_free(t);
}

TEST(unlinked_node_keeps_its_number_but_not_its_path)
{
	inode_table *t = inode_table_new();
	uint64_t old = inode_ref(t, "pipelines/p/f");
	inode_unlinked(t, "pipelines/p/f");
	char *p = inode_path(t, old);
	CHECK(p && !strncmp(p, INODE_DEAD_PREFIX, strlen(INODE_DEAD_PREFIX)));
	free(p);
	uint64_t fresh = inode_ref(t, "pipelines/p/f");
	CHECK(fresh != old);
	CHECK_INT(inode_count(t), 3);
	inode_unref(t, old, 1);
	CHECK_INT(inode_count(t), 2);
	p = inode_path(t, fresh);
	CHECK_STR(p, "pipelines/p/f");
	free(p);
	inode_unlinked(t, "pipelines/none"); /* nothing there: no change */
	inode_unlinked(t, "");               /* the root never dies */
	CHECK_INT(inode_ref(t, ""), INODE_ROOT);
	CHECK_INT(inode_count(t), 2);
	inode_table_free(t);
}

TEST(many_nodes_grow_the_table)
{
	inode_table *t = inode_table_new();
	char path[64];
	for (int i = 0; i < 5000; i++) {
		snprintf(path, sizeof path, "runs/%d", i);
		inode_ref(t, path);
	}
	CHECK_INT(inode_count(t), 5001);
	snprintf(path, sizeof path, "runs/%d", 4321);
	uint64_t a = inode_ref(t, path);
	char *p = inode_path(t, a);
	CHECK_STR(p, "runs/4321");
	free(p);
	inode_table_free(t);
}

int main(void)
{
	RUN(root_is_one_and_lives_forever);
	RUN(same_path_same_inode_until_forgotten);
	RUN(child_paths);
	RUN(rename_moves_subtree_and_replaces_target);
	RUN(unlinked_node_keeps_its_number_but_not_its_path);
	RUN(many_nodes_grow_the_table);
	return CHECK_DONE();
}
