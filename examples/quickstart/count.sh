#!/bin/sh
# count.sh SHARDS_DIR COUNTS_TSV TOP_TXT: word counts (word<TAB>count,
# sorted by count then word) and the $FLOWY_PARAM_top most frequent words.
set -e
cat "$1"/* | tr -s ' ' '\n' | grep -v '^[0-9]*$' | sort | uniq -c |
	awk '{print $2 "\t" $1}' | sort -t "$(printf '\t')" -k2,2nr -k1,1 > "$2"
head -n "$FLOWY_PARAM_top" "$2" | cut -f1 > "$3"
echo "{\"words\": $(wc -l < "$2"), \"top\": $FLOWY_PARAM_top}" >> "$FLOWY_METRICS"
