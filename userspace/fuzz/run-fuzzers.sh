#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-only OR MIT
#
# run-fuzzers.sh NAME... - run fuzz/fuzz-NAME for $FUZZ_SECONDS seconds
# each from a fresh seed corpus in $FUZZ_DIR/NAME; one TAP line each.
# A crash leaves its reproducer in $FUZZ_DIR/NAME/ and fails the run.

set -u
seconds=${FUZZ_SECONDS:-20}
workdir=${FUZZ_DIR:-fuzz/work}
n=0
failed=0

echo "1..$#"
for name in "$@"; do
	n=$((n + 1))
	work=$workdir/$name
	rm -rf "$work"
	mkdir -p "$work/corpus"
	./fuzz/make-seeds "$name" "$work/corpus" || exit 1
	case $name in
	superblock) max_len=16400 ;;
	*) max_len=8192 ;;
	esac
	if ./fuzz/fuzz-"$name" "$work/corpus" -max_total_time="$seconds" \
		-max_len="$max_len" -timeout=10 -rss_limit_mb=2048 \
		-artifact_prefix="$work/" -print_final_stats=1 \
		>"$work/log" 2>&1; then
		runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/log")
		echo "ok $n - fuzzer $name ran ${seconds}s without a crash"
		echo "# $name: ${runs:-?} inputs run, corpus in $work/corpus"
	else
		echo "not ok $n - fuzzer $name ran ${seconds}s without a crash"
		tail -n 40 "$work/log" | sed 's/^/# /'
		failed=1
	fi
done
exit $failed
