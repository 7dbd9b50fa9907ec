#!/usr/bin/env bats
# The hash manifest (userspace/dt-manifest, Documentation/manifest.md) on a
# host: images are plain files, the backup job runs against the fake
# dirtyctl of 61-backup-protocol.bats over a loop device. No VM needed.

bats_require_minimum_version 1.5.0

setup_file() {
	ROOT=$(cd "$BATS_TEST_DIRNAME/../.." && pwd)
	export ROOT
	make -s -C "$ROOT/userspace" dt-manifest dt-copy-extents >&2
}

setup() {
	DTM=$ROOT/userspace/dt-manifest
	T=$BATS_TEST_TMPDIR
	UUID=5b8a4c2e-0000-4000-8000-00000000000a
	IMG=$T/image
	# 2 MiB and 3 sectors: the last 64 KiB cluster is short.
	head -c $((2 * 1024 * 1024 + 1536)) /dev/urandom >"$IMG"
}

teardown() {
	[[ -n ${LOOP:-} ]] && losetup -d "$LOOP"
	return 0
}

# flip OFFSET [FILE]: invert one byte.
flip() {
	local f=${2:-$IMG} b
	b=$(od -An -tu1 -j "$1" -N1 "$f")
	printf "\\$(printf %03o $((255 - b)))" | dd of="$f" bs=1 seek="$1" conv=notrunc status=none
}

trusted() {
	"$DTM" show "$IMG" "$@" >/dev/null 2>&1
}

@test "verify names one flipped byte's cluster, and only it" {
	"$DTM" build "$IMG"
	run "$DTM" verify "$IMG"
	[ "$status" -eq 0 ] && [ -z "$output" ]
	flip 1000000
	run --separate-stderr "$DTM" verify "$IMG"
	[ "$status" -eq 1 ]
	[ "$output" = "983040 65536" ]
	# in the short last cluster: its real length
	flip 1000000
	flip $((2 * 1024 * 1024 + 100))
	run --separate-stderr "$DTM" verify "$IMG"
	[ "$status" -eq 1 ]
	[ "$output" = "2097152 1536" ]
}

@test "verify over many read chunks (a reader thread) names clusters in every chunk" {
	head -c $((20 * 1024 * 1024 + 512)) /dev/urandom >"$IMG"
	"$DTM" build "$IMG"
	flip 5
	flip $((9 * 1024 * 1024 + 3))
	flip $((20 * 1024 * 1024 + 511))
	run --separate-stderr "$DTM" verify "$IMG"
	[ "$status" -eq 1 ]
	[ "$output" = "$(printf '0 65536\n9437184 65536\n20971520 512')" ]
	# and a rebuild from the damaged image is what update gives it
	"$DTM" build "$IMG" -m "$T/fresh"
	printf '0 1\n9437187 1\n20971520 512\n' | "$DTM" update "$IMG" --extents -
	cmp "$IMG.manifest" "$T/fresh"
}

@test "verify on several hashing threads names exactly the clusters one thread names, in order" {
	local t one
	head -c $((40 * 1024 * 1024 + 1024)) /dev/urandom >"$IMG"
	"$DTM" build "$IMG" --threads 1 -m "$T/one"
	for t in 2 3 8; do
		"$DTM" build "$IMG" --threads "$t"
		cmp "$IMG.manifest" "$T/one"
	done
	flip 5            # the first chunk
	flip 8388609      # the first cluster of the second chunk
	flip 25165823     # the last cluster of a chunk
	flip $((40 * 1024 * 1024 + 1000)) # the short last cluster
	one=$("$DTM" verify "$IMG" --threads 1 2>/dev/null) || [ $? -eq 1 ]
	[ "$one" = "$(printf '0 65536\n8388608 65536\n25100288 65536\n41943040 1024')" ]
	for t in 2 3 8; do
		run --separate-stderr "$DTM" verify "$IMG" --threads "$t"
		[ "$status" -eq 1 ] && [ "$output" = "$one" ]
		[[ "$stderr" == *"4 of 641 clusters (197632 bytes) differ"* ]]
	done
	run "$DTM" verify "$IMG" --threads 0
	[ "$status" -eq 2 ]
}

@test "verify that cannot write its report stops every thread and exits 2" {
	head -c $((20 * 1024 * 1024)) /dev/urandom >"$IMG"
	# one-sector clusters: 40960 of them, all different, a report of 500 KB
	"$DTM" build "$IMG" -c 1 -m "$T/m"
	head -c $((20 * 1024 * 1024)) /dev/urandom >"$T/other"
	run timeout 120 sh -c '"$0" verify "$1" -m "$2" --threads 3 >/dev/full' "$DTM" "$T/other" "$T/m"
	[ "$status" -eq 2 ]
	[[ "$output" == *"write standard output: No space left on device"* ]]
}

@test "update rehashes only the listed extents and verify then passes" {
	"$DTM" build "$IMG" --uuid "$UUID" --sequence 1
	flip 70000
	flip 1500000
	echo "69632 4096" >"$T/ext"
	"$DTM" update "$IMG" --extents "$T/ext" --uuid "$UUID" --sequence 2
	# the unlisted change is still found: update did not rehash everything
	run --separate-stderr "$DTM" verify "$IMG"
	[ "$status" -eq 1 ]
	[ "$output" = "1441792 65536" ]
	echo "1500000 1" | "$DTM" update "$IMG" --extents - --uuid "$UUID" --sequence 3
	"$DTM" verify "$IMG" --expect-uuid "$UUID" --expect-sequence 3
	# the same as a manifest built from scratch
	"$DTM" build "$IMG" -m "$T/fresh" --uuid "$UUID" --sequence 3
	cmp "$IMG.manifest" "$T/fresh"
}

@test "two manifests give exactly the differing extents, coalesced, in dump's formats" {
	cp "$IMG" "$T/b"
	flip 10 "$T/b"              # cluster 0
	flip 70000 "$T/b"           # cluster 1: coalesced with 0
	flip 655360 "$T/b"          # cluster 10
	flip $((2 * 1024 * 1024)) "$T/b" # the short last cluster
	"$DTM" build "$IMG"
	"$DTM" build "$T/b"
	run "$DTM" diff "$IMG.manifest" "$T/b.manifest"
	[ "$status" -eq 1 ]
	[ "$output" = "$(printf '0 131072\n655360 65536\n2097152 1536')" ]
	run "$DTM" diff "$IMG.manifest" "$T/b.manifest" --format ranges
	[ "$output" = "$(printf '0 256\n1280 128\n4096 3')" ]
	run "$DTM" diff "$IMG.manifest" "$T/b.manifest" --format json
	[ "$(jq -c '[.extents[].offset]' <<<"$output")" = "[0,655360,2097152]" ]
	run "$DTM" diff "$IMG.manifest" "$IMG.manifest"
	[ "$status" -eq 0 ] && [ -z "$output" ]
	"$DTM" build "$T/b" -m "$T/b4k" -c 8
	run "$DTM" diff "$IMG.manifest" "$T/b4k"
	[ "$status" -eq 2 ]
}

@test "a crash at any step of an update leaves a manifest that is rebuilt or right, never wrong" {
	local step
	for step in tmp-half-written before-rename after-rename; do
		"$DTM" build "$IMG" --uuid "$UUID" --sequence 1
		flip 300000
		echo "300000 1" >"$T/ext"
		run env DT_MANIFEST_CRASH_AT=$step "$DTM" update "$IMG" --extents "$T/ext" \
			--uuid "$UUID" --sequence 2
		[ "$status" -ne 0 ]
		# right (verify passes) or not trusted (stale, old sequence), never trusted and wrong
		if trusted --expect-sequence 2; then
			"$DTM" verify "$IMG"
		fi
		run "$DTM" verify "$IMG"
		[ "$status" -ne 1 ]
		# the next update with the expected history rebuilds or continues it right
		"$DTM" update "$IMG" --extents "$T/ext" --uuid "$UUID" --sequence 2 \
			--expect-uuid "$UUID" --expect-sequence 1
		"$DTM" verify "$IMG" --expect-sequence 2
	done
}

@test "kill -9 in the middle of an update, at random times, never leaves a wrong trusted manifest" {
	local i
	head -c 64M /dev/urandom >"$IMG"
	"$DTM" build "$IMG" --uuid "$UUID" --sequence 1
	echo "0 67108864" >"$T/ext"
	for i in 1 2 3 4 5; do
		flip $((i * 1000000))
		"$DTM" update "$IMG" --extents "$T/ext" --uuid "$UUID" --sequence $((i + 1)) &
		sleep "0.0$((RANDOM % 10))"
		kill -9 $! 2>/dev/null || true
		wait $! || true
		# trusted for the new history only if right
		if trusted --expect-sequence $((i + 1)); then
			run "$DTM" verify "$IMG"
			[ "$status" -eq 0 ] || { echo "trusted and wrong after kill $i: $output"; false; }
		fi
		"$DTM" update "$IMG" --extents "$T/ext" --uuid "$UUID" --sequence $((i + 1))
		"$DTM" verify "$IMG"
	done
}

@test "a leftover or truncated temporary file is never read; a truncated manifest is rebuilt" {
	"$DTM" build "$IMG" --uuid "$UUID" --sequence 1
	head -c 700 "$IMG.manifest" >"$IMG.manifest.tmp"
	"$DTM" verify "$IMG"
	truncate -s -32 "$IMG.manifest"
	run --separate-stderr "$DTM" verify "$IMG"
	[ "$status" -eq 2 ]
	[[ "$stderr" == *"truncated"* ]]
	echo "0 512" >"$T/ext"
	run --separate-stderr "$DTM" update "$IMG" --extents "$T/ext" --uuid "$UUID" --sequence 2
	[ "$status" -eq 0 ]
	[[ "$stderr" == *"rebuilding it from $IMG: the manifest truncated"* ]]
	"$DTM" verify "$IMG"
	[ ! -e "$IMG.manifest.tmp" ]
}

@test "a manifest for another uuid or sequence is rebuilt by update and refused by verify" {
	"$DTM" build "$IMG" --uuid "$UUID" --sequence 5
	flip 5000 # the manifest no longer describes the image
	echo "1048576 512" >"$T/ext"
	run --separate-stderr "$DTM" verify "$IMG" --expect-sequence 6
	[ "$status" -eq 2 ]
	[[ "$stderr" == *"is for sequence 5, expected 6"* ]]
	run --separate-stderr "$DTM" update "$IMG" --extents "$T/ext" --uuid "$UUID" --sequence 7 \
		--expect-uuid 5b8a4c2e-0000-4000-8000-00000000000b --expect-sequence 5
	[ "$status" -eq 0 ]
	[[ "$stderr" == *"is for another device uuid"* ]]
	# rebuilt from the image: the flipped byte is part of it now
	"$DTM" verify "$IMG" --expect-uuid "$UUID" --expect-sequence 7
	"$DTM" invalidate "$IMG"
	run --separate-stderr "$DTM" verify "$IMG"
	[ "$status" -eq 2 ]
	[[ "$stderr" == *"stale"* ]]
}

@test "check: a clean cluster that changed is reported as a write that bypassed tracking" {
	"$DTM" build "$IMG" --uuid "$UUID" --sequence 1
	flip 200000 # cluster 3, "dirty"
	flip 900000 # cluster 13, "clean"
	echo "196608 65536" >"$T/dirty"
	run --separate-stderr "$DTM" check "$IMG" "$IMG.manifest" --all --dirty-extents "$T/dirty"
	[ "$status" -eq 1 ]
	[ "$output" = "$IMG: cluster at 851968 (65536 bytes) changed but is not marked dirty: a write bypassed tracking" ]
	echo "851968 1" >>"$T/dirty"
	run --separate-stderr "$DTM" check "$IMG" "$IMG.manifest" --all --dirty-extents "$T/dirty"
	[ "$status" -eq 0 ] && [ -z "$output" ]
	[[ "$stderr" == *"31 of 31 clean clusters checked, 0 changed"* ]]
}

@test "usage errors exit 2 and name the problem" {
	run "$DTM" frobnicate x
	[ "$status" -eq 2 ] && [[ "$output" == *"unknown command 'frobnicate'"* ]]
	run "$DTM" update "$IMG"
	[ "$status" -eq 2 ] && [[ "$output" == *"--extents FILE is required"* ]]
	run "$DTM" build "$IMG" --uuid "$UUID"
	[ "$status" -eq 2 ]
	run "$DTM" build "$IMG" -c 3
	[ "$status" -eq 2 ]
	run "$DTM" verify "$T/missing"
	[ "$status" -eq 2 ]
	run "$DTM" --help
	[ "$status" -eq 0 ]
}

# ------------------------------------------------------------------------
# Hash while copying: dt-copy-extents --hash-to, dt-manifest --leaves

CPX() {
	"$ROOT/userspace/dt-copy-extents" "$@"
}

# A source that differs from $IMG in the extents of $T/ext: clusters
# whole and in part, across the copier's 1 MiB chunks, adjacent, out of
# order, overlapping, all-zero (punched by --sparse) and the short last one.
leaves_setup() {
	cp "$IMG" "$T/src"
	head -c $((2 * 1024 * 1024 + 1536)) /dev/urandom | dd of="$T/src" conv=notrunc status=none
	dd if=/dev/zero of="$T/src" bs=65536 seek=5 count=2 conv=notrunc status=none
	cat >"$T/ext" <<-EOF
	69632 8192
	999424 303104
	131072 65536
	196608 4096
	200704 61440
	327680 131072
	2097152 1536
	1040000 100000
	EOF
}

@test "hash while copying: update --leaves gives the manifest of a fresh build, without reading the image" {
	leaves_setup
	"$DTM" build "$IMG" --uuid "$UUID" --sequence 1
	run --separate-stderr CPX --sparse --hash-to "$T/leaves" -- "$T/src" "$IMG" <"$T/ext"
	[ "$status" -eq 0 ] && [ -z "$stderr" ]
	run --separate-stderr "$DTM" update "$IMG" --extents "$T/ext" --leaves "$T/leaves" \
		--uuid "$UUID" --sequence 2
	[ "$status" -eq 0 ] && [ -z "$stderr" ]
	"$DTM" build "$IMG" -m "$T/fresh" --uuid "$UUID" --sequence 2
	cmp "$IMG.manifest" "$T/fresh"
	# The update took the copy's hashes: a cluster changed behind the copy's
	# back after it (whole in the copy, so hashed from memory) is not seen.
	cp "$IMG" "$T/src"
	flip 70000 "$T/src" # cluster 1
	flip 400000 "$T/src" # cluster 6, all zero before
	echo "65536 65536" >"$T/e2"
	echo "393216 65536" >>"$T/e2"
	CPX --sparse --hash-to "$T/leaves" -- "$T/src" "$IMG" <"$T/e2"
	flip 400001
	"$DTM" update "$IMG" --extents "$T/e2" --leaves "$T/leaves"
	run --separate-stderr "$DTM" verify "$IMG"
	[ "$status" -eq 1 ]
	[ "$output" = "393216 65536" ]
}

@test "hash while copying in parts: a leaves file per copy, the later hash of a cluster wins, one refused file refuses all" {
	leaves_setup
	"$DTM" build "$IMG" --uuid "$UUID" --sequence 1
	# The extents in two copies, as a point-in-time run copies in chunks.
	head -n 4 "$T/ext" >"$T/ext1"
	tail -n +5 "$T/ext" >"$T/ext2"
	CPX --sparse --hash-to "$T/l1" -- "$T/src" "$IMG" <"$T/ext1"
	CPX --sparse --hash-to "$T/l2" -- "$T/src" "$IMG" <"$T/ext2"
	cp "$IMG.manifest" "$T/before"
	run --separate-stderr "$DTM" update "$IMG" --extents "$T/ext" --leaves "$T/l1" --leaves "$T/l2" \
		--uuid "$UUID" --sequence 2
	[ "$status" -eq 0 ] && [ -z "$stderr" ]
	"$DTM" build "$IMG" -m "$T/fresh" --uuid "$UUID" --sequence 2
	cmp "$IMG.manifest" "$T/fresh"
	# Only the first copy's file: it covers fewer clusters than the
	# extents list, so it is refused and the clusters are read instead.
	cp "$T/before" "$IMG.manifest"
	run --separate-stderr "$DTM" update "$IMG" --extents "$T/ext" --leaves "$T/l1" \
		--uuid "$UUID" --sequence 2
	[ "$status" -eq 0 ]
	[[ $stderr == *"l1: leaves refused (they cover other clusters than $T/ext lists): rehashing from $IMG"* ]]
	cmp "$IMG.manifest" "$T/fresh"
	# A damaged second file refuses both, named.
	cp "$T/l2" "$T/l2bad"
	truncate -s -1 "$T/l2bad"
	cp "$T/before" "$IMG.manifest"
	run --separate-stderr "$DTM" update "$IMG" --extents "$T/ext" --leaves "$T/l1" --leaves "$T/l2bad" \
		--uuid "$UUID" --sequence 2
	[ "$status" -eq 0 ]
	[[ $stderr == "dt-manifest: $T/l2bad: leaves refused ("* ]]
	cmp "$IMG.manifest" "$T/fresh"
	# Cluster 1 copied twice, from two sources: the image holds the second
	# copy, and so does the manifest when the files come in copy order.
	cp "$T/src" "$T/src2"
	flip 70000 "$T/src2"
	echo "65536 65536" >"$T/e1"
	CPX --hash-to "$T/m1" -- "$T/src" "$IMG" <"$T/e1"
	CPX --hash-to "$T/m2" -- "$T/src2" "$IMG" <"$T/e1"
	"$DTM" update "$IMG" --extents "$T/e1" --leaves "$T/m1" --leaves "$T/m2"
	"$DTM" verify "$IMG"
	# in the other order the first copy's hash is kept: verify sees it
	"$DTM" update "$IMG" --extents "$T/e1" --leaves "$T/m2" --leaves "$T/m1"
	run --separate-stderr "$DTM" verify "$IMG"
	[ "$status" -eq 1 ]
	[ "$output" = "65536 65536" ]
}

@test "hash while copying: clusters larger than the copier's chunks, BLAKE2b, a full copy into a new file" {
	head -c $((5 * 1024 * 1024 + 512)) /dev/urandom >"$T/src"
	# 2 MiB clusters: a cluster spans two 1 MiB chunks of the copier
	printf '0 %s\n' $((5 * 1024 * 1024 + 512)) >"$T/ext"
	CPX --hash-to "$T/leaves" -a blake2b256 -c 4096 -- "$T/src" "$T/new" <"$T/ext"
	# build takes every cluster from the leaves (nothing left to read)
	run --separate-stderr "$DTM" build "$T/new" -a blake2b256 -c 4096 --leaves "$T/leaves"
	[ "$status" -eq 0 ] && [ -z "$stderr" ]
	"$DTM" build "$T/src" -m "$T/fresh" -a blake2b256 -c 4096
	cmp "$T/new.manifest" "$T/fresh"
	# an extent inside one 2 MiB cluster: read back from the destination
	flip 3000000 "$T/src"
	echo "2999808 512" | CPX --hash-to "$T/leaves" -a blake2b256 -c 4096 -- "$T/src" "$T/new"
	echo "2999808 512" >"$T/e2"
	"$DTM" update "$T/new" --extents "$T/e2" --leaves "$T/leaves"
	"$DTM" build "$T/src" -m "$T/fresh" -a blake2b256 -c 4096
	cmp "$T/new.manifest" "$T/fresh"
	# leaves of another cluster size than the manifest's are refused
	echo "0 512" | CPX --hash-to "$T/leaves" -- "$T/src" "$T/new"
	echo "0 512" >"$T/e2"
	run --separate-stderr "$DTM" update "$T/new" --extents "$T/e2" --leaves "$T/leaves"
	[ "$status" -eq 0 ]
	[[ "$stderr" == *"leaves refused (another algorithm or cluster size than the manifest's)"* ]]
	run "$DTM" build "$T/new" --leaves x
	run "$DTM" verify "$T/new" --leaves x
	[ "$status" -eq 2 ]
	run CPX -c 3 --hash-to x a b
	[ "$status" -eq 2 ]
	run CPX -a sha256 a b
	[ "$status" -eq 2 ]
}

@test "a truncated or damaged leaves file is refused, never trusted: the extents are rehashed" {
	local how size
	leaves_setup
	for how in truncate-1 truncate-trailer truncate-half flip-hash flip-index other-extents empty missing; do
		cp "$IMG" "$T/img"
		"$DTM" build "$T/img" --uuid "$UUID" --sequence 1
		CPX --sparse --hash-to "$T/leaves" -- "$T/src" "$T/img" <"$T/ext"
		# The image changes behind the copy in a copied cluster: leaves
		# that were used would miss it, a rehash sees it.
		flip 140000 "$T/img"
		size=$(stat -c %s "$T/leaves")
		cp "$T/ext" "$T/ext.used"
		case $how in
		truncate-1) truncate -s -1 "$T/leaves" ;;
		truncate-trailer) truncate -s -64 "$T/leaves" ;;
		truncate-half) truncate -s $((size / 2)) "$T/leaves" ;;
		flip-hash) flip 40 "$T/leaves" ;;
		flip-index) flip 16 "$T/leaves" ;;
		other-extents) echo "1900544 4096" >>"$T/ext.used" ;;
		empty) : >"$T/leaves" ;;
		missing) rm "$T/leaves" ;;
		esac
		run --separate-stderr "$DTM" update "$T/img" --extents "$T/ext.used" \
			--leaves "$T/leaves" --uuid "$UUID" --sequence 2
		[ "$status" -eq 0 ] || { echo "$how: $stderr"; false; }
		[[ "$stderr" == *"$T/leaves: leaves refused ("*"): rehashing from $T/img"* ]] ||
			{ echo "$how: $stderr"; false; }
		"$DTM" build "$T/img" -m "$T/fresh" --uuid "$UUID" --sequence 2
		cmp "$T/img.manifest" "$T/fresh" || { echo "$how: the refused leaves were used"; false; }
	done
}

# ------------------------------------------------------------------------
# The backup job keeps the manifest (fake dirtyctl over a loop device)

job_setup() {
	[[ $(id -u) == 0 ]] || skip "needs root for a loop device"
	export DIRTYCTL=$ROOT/tests/host/fake-dirtyctl
	export DT_COPY_EXTENTS=$ROOT/userspace/dt-copy-extents
	export DT_MANIFEST=$DTM
	export FAKE_DT=$T/fake
	mkdir -p "$FAKE_DT"
	echo "$UUID" >"$FAKE_DT/uuid"
	echo 0 >"$FAKE_DT/sequence"
	echo ok >"$FAKE_DT/health"
	echo 8 >"$FAKE_DT/cluster_sectors"
	: >"$FAKE_DT/live"
	DATA=$T/data.raw
	head -c 4M /dev/urandom >"$DATA"
	LOOP=$(losetup -f --show "$DATA")
	BIMG=$T/backup.img
}

backup() {
	"$ROOT/scripts/dirtytrack-backup" "$@" "$LOOP" "$BIMG"
}

fake_write() {
	dd if=/dev/urandom of="$LOOP" bs=512 seek="$1" count="$2" oflag=direct conv=notrunc status=none
	"$DIRTYCTL" mark "$LOOP" "$1" "$2"
}

state() {
	sed -n "s/^$1=//p" "$BIMG.state"
}

@test "the job keeps IMAGE.manifest with the state's uuid and sequence; --verify checks the image" {
	job_setup
	backup 2>/dev/null
	run "$DTM" show "$BIMG" --expect-uuid "$UUID" --expect-sequence "$(state sequence)"
	[ "$status" -eq 0 ] || { echo "$output"; false; }
	fake_write 100 300
	fake_write 6000 8
	backup 2>/dev/null
	[ "$(state sequence)" = 2 ]
	"$DTM" show "$BIMG" --expect-uuid "$UUID" --expect-sequence 2
	run "$ROOT/scripts/dirtytrack-backup" --verify "$BIMG"
	[ "$status" -eq 0 ] && [ -z "$output" ]
	# the manifest equals one built from scratch: the update rehashed what changed
	"$DTM" build "$BIMG" -m "$T/fresh" --uuid "$UUID" --sequence 2
	cmp "$BIMG.manifest" "$T/fresh"
	flip 3000000 "$BIMG"
	run --separate-stderr "$ROOT/scripts/dirtytrack-backup" --verify "$BIMG"
	[ "$status" -eq 1 ]
	[ "$output" = "2949120 65536" ]
}

@test "the job hashes while copying; leaves damaged after the copy are refused and rehashed" {
	job_setup
	backup 2>/dev/null
	# A copier that damages its leaves file once the copy is done.
	cat >"$T/copier" <<-EOF
	#!/bin/bash
	"$ROOT/userspace/dt-copy-extents" "\$@" || exit
	prev=
	for a in "\$@"; do
		if [[ \$prev == --hash-to ]]; then
			\${DAMAGE:-true} "\$a"
		fi
		prev=\$a
	done
	EOF
	chmod +x "$T/copier"
	export DT_COPY_EXTENTS=$T/copier
	fake_write 100 300
	run --separate-stderr backup
	[ "$status" -eq 0 ] || { echo "$stderr"; false; }
	[[ "$output" != *"refused"* ]]
	"$DTM" build "$BIMG" -m "$T/fresh" --uuid "$UUID" --sequence 2
	cmp "$BIMG.manifest" "$T/fresh"
	fake_write 3000 16
	DAMAGE="truncate -s -10" run --separate-stderr backup
	[ "$status" -eq 0 ] || { echo "$stderr"; false; }
	[[ "$output" == *"manifest backup.img.manifest: the copy's hashes were refused (truncated (no trailer)): rehashed from the image"* ]]
	"$DTM" build "$BIMG" -m "$T/fresh" --uuid "$UUID" --sequence 3
	cmp "$BIMG.manifest" "$T/fresh"
	"$ROOT/scripts/dirtytrack-backup" --verify "$BIMG"
	# a full copy builds the manifest from the copy's hashes too
	run --separate-stderr backup --full
	[ "$status" -eq 0 ] || { echo "$stderr"; false; }
	"$DTM" build "$BIMG" -m "$T/fresh" --uuid "$UUID" --sequence 4
	cmp "$BIMG.manifest" "$T/fresh"
}

@test "--verify without a trusted manifest exits 2 and says why" {
	job_setup
	backup 2>/dev/null
	rm "$BIMG.manifest"
	run --separate-stderr "$ROOT/scripts/dirtytrack-backup" --verify "$BIMG"
	[ "$status" -eq 2 ]
	[[ "$stderr" == *"does not exist"* ]]
	run "$ROOT/scripts/dirtytrack-backup" --verify "$T/never-backed-up.img"
	[ "$status" -eq 2 ]
	# a run in progress holds the lock: not a verdict on the image
	backup 2>/dev/null
	exec {fd}>>"$BIMG.lock"
	flock "$fd"
	run --separate-stderr "$ROOT/scripts/dirtytrack-backup" --verify "$BIMG"
	exec {fd}>&-
	[ "$status" -eq 2 ]
	[[ "$stderr" == *"cannot verify while a backup run holds"* ]]
}

@test "after an unclean shutdown the run copies only the clusters whose hash differs" {
	job_setup
	backup 2>/dev/null
	fake_write 100 300   # bytes 51200..204800: manifest clusters 0..3
	fake_write 6000 1    # cluster 46
	echo unclean_shutdown >"$FAKE_DT/health"
	seq 0 1023 >"$FAKE_DT/live"
	run --separate-stderr backup
	[ "$status" -eq 0 ] || { echo "$stderr"; false; }
	[[ "$output" == *": incremental (unclean shutdown: every cluster is dirty; copied only the clusters whose hash differs from the manifest), 2 extents, 327680 bytes copied, "* ]]
	cmp "$LOOP" "$BIMG"
	"$ROOT/scripts/dirtytrack-backup" --verify "$BIMG"
}

@test "a run killed in its copy leaves a stale manifest, which the next run rebuilds" {
	job_setup
	backup 2>/dev/null
	fake_write 100 8
	FAKE_DT_FAIL=commit run backup
	[ "$status" -eq 1 ]
	run "$DTM" show "$BIMG"
	[[ "$output" == *"stale: yes"* ]]
	run --separate-stderr "$ROOT/scripts/dirtytrack-backup" --verify "$BIMG"
	[ "$status" -eq 2 ]
	run --separate-stderr backup
	[ "$status" -eq 0 ] || { echo "$stderr"; false; }
	[[ "$output" == *"manifest backup.img.manifest rebuilt: stale"* ]]
	"$ROOT/scripts/dirtytrack-backup" --verify "$BIMG"
	cmp "$LOOP" "$BIMG"
}

@test "check asks dirtyctl for the live set: a write that bypassed tracking is reported, a marked one is not" {
	job_setup
	backup 2>/dev/null
	fake_write 100 8 # tracked: marked in the live set
	run --separate-stderr "$DTM" check "$LOOP" "$BIMG.manifest" --all
	[ "$status" -eq 0 ] || { echo "$output $stderr"; false; }
	[[ "$stderr" == *"63 of 63 clean clusters checked, 0 changed"* ]]
	# a write that the target never saw
	dd if=/dev/urandom of="$LOOP" bs=512 seek=5000 count=1 oflag=direct conv=notrunc status=none
	run --separate-stderr "$DTM" check "$LOOP" "$BIMG.manifest" --all
	[ "$status" -eq 1 ]
	[ "$output" = "$LOOP: cluster at 2555904 (65536 bytes) changed but is not marked dirty: a write bypassed tracking" ]
	# a sample of 1 cluster of 63 reports nothing or that cluster
	run --separate-stderr "$DTM" check "$LOOP" "$BIMG.manifest" --sample 1 --seed 3
	[[ "$stderr" == *" of 63 clean clusters checked"* ]]
	# the frozen set of a run in progress counts as dirty too
	"$DIRTYCTL" mark "$LOOP" 5000 1
	"$DIRTYCTL" checkpoint "$LOOP"
	run --separate-stderr "$DTM" check "$LOOP" "$BIMG.manifest" --all
	[ "$status" -eq 0 ] || { echo "$output $stderr"; false; }
	"$DIRTYCTL" rollback "$LOOP"
	# a manifest of another point of the history is refused
	echo 7 >"$FAKE_DT/sequence"
	run --separate-stderr "$DTM" check "$LOOP" "$BIMG.manifest" --all
	[ "$status" -eq 2 ]
	[[ "$stderr" == *"not of the device's current history"* ]]
}
