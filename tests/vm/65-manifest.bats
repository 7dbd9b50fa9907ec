#!/usr/bin/env bats
# The hash manifest against the real target: the self-check of tracking
# finds a write that bypassed the target, and after an unclean shutdown the
# backup job copies only the clusters that really changed.

bats_require_minimum_version 1.5.0

setup() {
	load helpers
	load target
	load backup
	CB=65536 # the manifest's clusters, and the target's here (128 sectors)
}

teardown() {
	dt_cleanup
}

@test "self-check: a write to the data device below the target is reported, tracked writes are not" {
	bk_setup 128
	bk_ok
	bk_ok # the manifest now records the device's current sequence
	dt_write /dev/mapper/dt0 $((10 * 128)) 8 # tracked
	run --separate-stderr dt-manifest check dt0 "$BK_IMAGE.manifest" --all
	echo "$output"; echo "$stderr"
	[ "$status" -eq 0 ] && [ -z "$output" ]
	# below the target, in cluster 20 and in the last cluster
	dt_write "$DATA_DEV" $((20 * 128 + 7)) 1
	dt_write "$DATA_DEV" $(($(blockdev --getsz "$DATA_DEV") - 1)) 1
	run --separate-stderr dt-manifest check dt0 "$BK_IMAGE.manifest" --all
	echo "$output"; echo "$stderr"
	[ "$status" -eq 1 ]
	local last=$(($(blockdev --getsize64 "$DATA_DEV") - CB))
	[ "$output" = "dt0: cluster at $((20 * CB)) ($CB bytes) changed but is not marked dirty: a write bypassed tracking
dt0: cluster at $last ($CB bytes) changed but is not marked dirty: a write bypassed tracking" ]
	# a sample finds it too when it covers every clean cluster
	run --separate-stderr dt-manifest check dt0 "$BK_IMAGE.manifest" --sample 100000
	[ "$status" -eq 1 ]
	# an incremental run cannot know of them; a full copy repairs the image
	bk_ok
	run --separate-stderr dt-manifest changed dt0 "$BK_IMAGE.manifest"
	[ "$status" -eq 1 ]
	[ "$output" = "$((20 * CB)) $CB
$last $CB" ]
	bk_ok --full
	bk_assert_equal
}

@test "after an unclean shutdown the next run writes only the clusters written before it" {
	bk_setup 128
	bk_ok
	dt_write /dev/mapper/dt0 $((3 * 128)) 8        # cluster 3
	dt_write /dev/mapper/dt0 $((40 * 128 + 100)) 200 # clusters 40 and 41
	bk_ok
	dt_write /dev/mapper/dt0 $((7 * 128)) 1          # cluster 7
	dt_write /dev/mapper/dt0 $((100 * 128 + 127)) 2  # clusters 100 and 101
	dt_write /dev/mapper/dt0 $((200 * 128)) 128      # cluster 200, rewritten
	# The metadata device as a power cut would leave it now (the valid flag
	# cleared on disk), put back under the target after a clean removal.
	dd if="$MD_DEV" of="$BATS_TEST_TMPDIR/md.crash" bs=64k iflag=direct status=none
	dmsetup remove dt0
	dd if="$BATS_TEST_TMPDIR/md.crash" of="$MD_DEV" bs=64k oflag=direct conv=notrunc status=none
	dt_create dt0 128
	[ "$(dt_status dt0 health)" = unclean_shutdown ]
	[ "$(dt_status dt0 dirty)" = "$(dt_status dt0 clusters)" ]
	bk_ok
	echo "mode: $(bk_mode), copied $(bk_copied)"
	[[ "$(bk_mode)" == *"copied only the clusters whose hash differs from the manifest)" ]]
	[ "$(bk_copied)" = $((4 * CB)) ]
	bk_assert_equal
	"$BK_JOB" --verify "$BK_IMAGE"
	# and the history continues with ordinary runs
	dt_write /dev/mapper/dt0 $((50 * 128)) 8
	bk_ok
	[ "$(bk_mode)" = incremental ]
	[ "$(bk_copied)" = "$CB" ]
	bk_assert_equal
}

# bk_assert_manifest_fresh: the manifest the job kept equals one built from
# scratch from the image, with the same identity.
bk_assert_manifest_fresh() {
	local uuid seq
	uuid=$(dt-manifest show "$BK_IMAGE" | sed -n 's/^uuid: //p')
	seq=$(dt-manifest show "$BK_IMAGE" | sed -n 's/^sequence: //p')
	dt-manifest build "$BK_IMAGE" -m "$BATS_TEST_TMPDIR/fresh" --uuid "$uuid" --sequence "$seq"
	cmp "$BK_IMAGE.manifest" "$BATS_TEST_TMPDIR/fresh"
}

@test "hash while copying: after each run the manifest equals a fresh build, the copy's hashes used" {
	# 4 KiB target clusters: the run's extents start and end inside the
	# manifest's 64 KiB clusters, which the copier reads back.
	bk_setup 8
	bk_ok
	bk_assert_manifest_fresh
	dt_write /dev/mapper/dt0 $((3 * 128 + 16)) 8        # inside cluster 3
	dt_write /dev/mapper/dt0 $((10 * 128)) 256           # clusters 10 and 11, whole
	dt_write /dev/mapper/dt0 $((20 * 128 + 120)) 16      # across clusters 20 and 21
	dt_write /dev/mapper/dt0 $(($(blockdev --getsz /dev/mapper/dt0) - 1)) 1 # the last sector
	bk_ok
	[ "$(bk_mode)" = incremental ]
	[[ "$output" != *"refused"* && "$output" != *"rebuilt"* ]]
	bk_assert_manifest_fresh
	bk_assert_equal
	"$BK_JOB" --verify "$BK_IMAGE"
	# one sector: a run whose only extent lies inside one manifest cluster
	dt_write /dev/mapper/dt0 $((30 * 128 + 1)) 1
	bk_ok
	bk_assert_manifest_fresh
}
