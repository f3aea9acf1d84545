#!/bin/sh
# Writes a small, deterministic corpus to stdout.
for i in 1 2 3 4 5 6 7 8 9 10; do
	echo "the quick brown fox jumps over the lazy dog $i"
	echo "a pipeline is a tree of files and the tree is the pipeline"
done
