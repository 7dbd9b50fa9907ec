#!/usr/bin/env bats
# The benchmark's in-VM half (scripts/bench-guest) still runs and prints a
# well-formed result table. A behaviour check with 1 s cases: no timing is
# judged here, only that every case ran and reported numbers.
#
# A check of the benchmark harness, not of the target, and four minutes a
# kernel: make stress runs it (the line below), make check does not.
# dt-stress-only

setup_file() {
	load helpers
	dmesg_mark
	export DT_DMESG_MARK
	export DT_BENCH_OUT=$BATS_FILE_TMPDIR/bench.out
	# Once for the whole file: the run takes a minute or two under TCG.
	# (setup_file runs under set -e: keep the status for the first test.)
	local rc=0
	timeout 900 /dt/scripts/bench-guest --quick >"$DT_BENCH_OUT" 2>"$BATS_FILE_TMPDIR/bench.err" || rc=$?
	echo "$rc" >"$BATS_FILE_TMPDIR/bench.rc"
	# The point-in-time section, which a plain run leaves out, at two
	# frozen fractions.
	export DT_PIT_OUT=$BATS_FILE_TMPDIR/pit.out
	rc=0
	timeout 900 /dt/scripts/bench-guest --quick --sections pit --pit-frozen-pcts 10,50 \
		>"$DT_PIT_OUT" 2>"$BATS_FILE_TMPDIR/pit.err" || rc=$?
	echo "$rc" >"$BATS_FILE_TMPDIR/pit.rc"
}

setup() {
	load helpers
	OUT=$DT_BENCH_OUT
	TABLE=$BATS_TEST_TMPDIR/table.md
	sed -n '/^BENCH-TABLE-BEGIN$/,/^BENCH-TABLE-END$/p' "$OUT" | sed '1d;$d' >"$TABLE"
}

# rows HEADING: the data rows of the Markdown table under "#### HEADING...".
rows() {
	awk -v h="#### $1" '
		index($0, h) == 1 { found = 1; next }
		found && /^#### / { exit }
		found && /^\|/ && !/^\|---/ { n++; if (n > 1) print }' "$TABLE"
}

# A table cell that is a number.
number_re='^[0-9]+(\.[0-9]+)?$'

@test "bench-guest --quick succeeds and prints one result table" {
	echo "stderr:"; tail -n 20 "$BATS_FILE_TMPDIR/bench.err"
	[ "$(cat "$BATS_FILE_TMPDIR/bench.rc")" = 0 ]
	[ "$(grep -c '^BENCH-TABLE-BEGIN$' "$OUT")" = 1 ]
	[ "$(grep -c '^BENCH-TABLE-END$' "$OUT")" = 1 ]
	grep -q "^### Kernel $(uname -r)\$" "$TABLE"
}

@test "every workload ran on every target, interleaved" {
	[ "$(grep -c "^BENCH-IO " "$OUT")" = 24 ]
	for wl in rand4k-1 rand4k-2 seq1m; do
		[ "$(grep "^BENCH-IO $wl " "$OUT" | awk '{ print $3 }' | tr '\n' ' ')" = "raw linear dirty held fresh csdirty csfresh era " ]
	done
	# Each record: positive IOPS, MiB/s and I/O count; a share only for first touch.
	awk '/^BENCH-IO / {
		if (!($5 > 0 && $6 > 0 && $7 > 0)) { print "bad record: " $0; bad = 1 }
		if (($3 == "fresh" || $3 == "csfresh") != ($8 != "-")) { print "bad share: " $0; bad = 1 }
		if ($8 != "-" && !($8 > 0 && $8 <= 1)) { print "share out of range: " $0; bad = 1 }
	} END { exit bad }' "$OUT"
}

@test "the write tables have a number in every cell" {
	run rows "Writes: medians"
	echo "$output"
	[ "${#lines[@]}" = 3 ]
	run rows "Writes: ratios"
	echo "$output"
	[ "${#lines[@]}" = 3 ]
	run rows "Writes: per-repetition ratios"
	echo "$output"
	[ "${#lines[@]}" = 3 ]
	rows "Writes: per-repetition ratios" | awk -F' *\\| *' '{
		for (i = 3; i < NF; i++) if ($i !~ /^[0-9]+\.[0-9]+( \([0-9.]+-[0-9.]+\))?$/) { print "bad cell: " $i; bad = 1 }
	} END { exit bad }'
	for heading in "Writes: medians" "Writes: ratios"; do
		rows "$heading" | awk -F' *\\| *' -v re="$number_re" '{
			for (i = 3; i < NF; i++)
				if ($i !~ re && !($i == "IOPS" || $i == "MiB/s")) { print "not a number: " $i " in " $0; bad = 1 }
		} END { exit bad }'
	done
}

@test "the dump table has every format at both densities, with sizes" {
	run rows "dirtyctl dump"
	echo "$output"
	[ "${#lines[@]}" = 10 ]
	for pct in 1 50; do
		for fmt in ranges bytes json ddrescue; do
			row=$(rows "dirtyctl dump" | grep "^| $pct% .*| $fmt |")
			echo "$row" | awk -F' *\\| *' -v re="$number_re" '{
				for (i = 3; i < NF; i++) if ($i !~ re && i != 5) { print "bad cell " i ": " $0; exit 1 }
				if ($9 <= 0) { print "no output: " $0; exit 1 } }'
		done
	done
	# 1% and 50% of the clusters, roughly.
	n=$(sed -n 's/^#### dirtyctl dump: \([0-9]*\) clusters.*/\1/p' "$TABLE")
	d1=$(rows "dirtyctl dump" | awk -F' *\\| *' '$2 == "1%" { print $3; exit }')
	d50=$(rows "dirtyctl dump" | awk -F' *\\| *' '$2 == "50%" { print $3; exit }')
	echo "clusters $n, dirty $d1 and $d50"
	[ "$d1" -gt $((n / 200)) ] && [ "$d1" -lt $((n / 50)) ]
	[ "$d50" -gt $((n * 45 / 100)) ] && [ "$d50" -lt $((n * 55 / 100)) ]
}

@test "suspend, resume and memory per cluster are reported" {
	run rows "Suspend, resume, memory"
	echo "$output"
	[ "${#lines[@]}" = 6 ]
	rows "Suspend, resume, memory" | awk -F' *\\| *' -v re="$number_re" '$3 !~ re { print "bad: " $0; bad = 1 } END { exit bad }'
}

@test "era_invalidate lists exactly the clusters dirtyctl has" {
	# era_restore needs O_DIRECT on tmpfs (Linux 6.6+) to build era metadata
	# in the guest; before that bench-guest says so and skips the section.
	if ! dd if=/dev/zero of="$BATS_TEST_TMPDIR/odirect" bs=4096 count=1 oflag=direct status=none 2>/dev/null; then
		grep -q '^# .*era: skipped: era_restore needs O_DIRECT' "$BATS_FILE_TMPDIR/bench.err"
		skip "tmpfs has no O_DIRECT on $(uname -r): era metadata cannot be built in the guest"
	fi
	run rows "Changed-block list against era_invalidate"
	echo "$output"
	[ "${#lines[@]}" = 2 ]
	rows "Changed-block list against era_invalidate" | awk -F' *\\| *' '
		$3 != $8 { print "dirtyctl has " $3 " clusters, era_invalidate " $8; bad = 1 }
		$5 <= 0 || $7 <= 0 { print "no output: " $0; bad = 1 }
		END { exit bad }'
}

@test "the goals table judges every goal" {
	run rows "Goals"
	echo "$output"
	[ "${#lines[@]}" = 12 ]
	rows "Goals" | awk -F' *\\| *' '$5 != "yes" && $5 != "no" { print "unjudged: " $0; bad = 1 } END { exit bad }'
}

@test "the point-in-time section reports every set-up at each frozen fraction" {
	echo "stderr:"; tail -n 20 "$BATS_FILE_TMPDIR/pit.err"
	[ "$(cat "$BATS_FILE_TMPDIR/pit.rc")" = 0 ]
	# 5 set-ups a fraction, 1 repetition: positive IOPS and run time; no
	# store use with the writer outside the frozen set, and dm-snapshot's
	# (read after the run) with it everywhere.
	[ "$(grep -c '^BENCH-PIT ' "$DT_PIT_OUT")" = 10 ]
	for pct in 10 50; do
		[ "$(grep "^BENCH-PIT .* frozen_pct=$pct " "$DT_PIT_OUT" | awk '{ print $2 ":" $3 }' | tr '\n' ' ')" = \
			"none:all store:all snap:all none:out store:out " ]
	done
	awk '/^BENCH-PIT / {
		for (i = 4; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
		if (!(v["iops"] > 0 && v["run_s"] > 0)) { print "bad record: " $0; bad = 1 }
		if ($2 ":" $3 == "store:out" && v["store_max_sectors"] != 0) { print "store used: " $0; bad = 1 }
		if ($2 ":" $3 == "snap:all" && !(v["store_max_sectors"] > 0)) { print "no store use: " $0; bad = 1 }
	} END { exit bad }' "$DT_PIT_OUT"
	# One table a fraction, and its three goals judged.
	sed -n '/^BENCH-TABLE-BEGIN$/,/^BENCH-TABLE-END$/p' "$DT_PIT_OUT" >"$TABLE"
	[ "$(grep -c '^Frozen set: ' "$TABLE")" = 2 ]
	run rows "Goals"
	echo "$output"
	[ "${#lines[@]}" = 6 ]
	rows "Goals" | awk -F' *\\| *' '$5 != "yes" && $5 != "no" { print "unjudged: " $0; bad = 1 } END { exit bad }'
}

@test "the benchmark leaves no device behind and the kernel log clean" {
	[ -z "$(dmsetup ls 2>/dev/null | grep '^bench-' || true)" ]
	[ ! -d /sys/module/brd ]
	dmesg_check
}
