#!/usr/bin/env bats
# crash_safe mode: the stored bitmap is always a superset of what changed.

setup() {
	load helpers
	load target
	dt_setup_devices
}

teardown() {
	local rc=0
	dt_cleanup || rc=1
	if [ -n "${DT_BRD:-}" ]; then
		modprobe -r brd || rc=1
	fi
	return $rc
}

# dt_stored_clusters MD_DEV [live|frozen]: clusters set in a stored bitmap,
# read straight from the metadata device (layout: dm-dirtytrack-abi.h).
dt_stored_clusters() {
	local md=$1 set=${2:-live} bb block
	bb=$(dd if="$md" bs=4096 count=1 iflag=direct status=none | od -An -tu8 -j72 -N8 | tr -d ' ')
	block=1
	[ "$set" = live ] || block=$((1 + bb))
	dd if="$md" bs=4096 skip=$block count=$bb iflag=direct status=none |
		od -An -v -tu1 -w1 | awk '{ v = $1; for (b = 0; b < 8; b++) { if (v % 2) print (NR - 1) * 8 + b; v = int(v / 2) } }'
}

@test "crash_safe is shown in the table and the status" {
	dt_create dt0 128 "" 1 crash_safe
	[[ "$(dmsetup table dt0)" == *" 128 1 crash_safe" ]]
	[ "$(dt_status dt0 mode)" = crash_safe ]
	dmsetup table dt0 | dmsetup load dt0
	dmsetup resume dt0
	[ "$(dt_status dt0 mode)" = crash_safe ]
}

@test "the valid flag stays set while writes run" {
	dt_create dt0 128 "" 1 crash_safe
	dt_sb_valid "$MD_DEV"
	dt_write /dev/mapper/dt0 $((3 * 128)) 8
	dt_sb_valid "$MD_DEV"
}

@test "a write's cluster is on disk once the write has completed" {
	dt_create dt0 8 "" 1 crash_safe
	dt_write /dev/mapper/dt0 $((77 * 8)) 8
	dd if=/dev/urandom of=/dev/mapper/dt0 bs=1M seek=2 count=1 oflag=direct status=none
	dmsetup message dt0 0 mark $((3000 * 8)) 1
	[ "$(dt_stored_clusters "$MD_DEV" | dt_ranges)" = "77 512-767 3000" ]
	[ "$(dt_clusters dt0 | dt_ranges)" = "77 512-767 3000" ]
}

@test "write-intent writes round out to a metadata device with 4 KiB sectors" {
	# Bitmap writes go out in 512-byte sectors where the device allows it;
	# on a 4 KiB-sector device a 512-byte write would fail with EIO.
	losetup -d "$MD_DEV"
	MD_DEV=$(losetup -f --show --sector-size 4096 "$MD_FILE")
	DT_LOOP_DEVS+=("$MD_DEV")
	[ "$(blockdev --getss "$MD_DEV")" = 4096 ]
	dt_create dt0 8 "" 1 crash_safe
	dt_write /dev/mapper/dt0 $((77 * 8)) 8
	dt_write /dev/mapper/dt0 $((5000 * 8)) 8
	[ "$(dt_status dt0 health)" = ok ]
	[ "$(dt_stored_clusters "$MD_DEV" | dt_ranges)" = "77 5000" ]
}

@test "checkpoint, commit and rollback keep the stored sets a superset" {
	dt_create dt0 128 "" 1 crash_safe
	dt_write /dev/mapper/dt0 0 8
	dmsetup message dt0 0 checkpoint
	[ "$(dt_stored_clusters "$MD_DEV" frozen | dt_ranges)" = 0 ]
	dt_write /dev/mapper/dt0 $((2 * 128)) 8
	# the live area still holds cluster 0 until it is rewritten: a superset
	[[ " $(dt_stored_clusters "$MD_DEV" | dt_ranges) " == *" 2 "* ]]
	dmsetup message dt0 0 rollback
	[ "$(dt_stored_clusters "$MD_DEV" | dt_ranges)" = "0 2" ]
	dmsetup message dt0 0 checkpoint
	dmsetup message dt0 0 commit
	[ "$(dt_status dt0 sequence)" = 1 ]
	[ "$(( $(dt_sb_flags "$MD_DEV") & 2 ))" = 0 ]
	[ "$(dt_sb_sequence "$MD_DEV")" = 1 ]
}

# race_then_burst NAME: checkpoints while every block is written once
# (dt_checkpoint_race), then two writers at once on the whole device; then
# the stored live set must cover the live set in memory.
race_then_burst() {
	dt_checkpoint_race "$1"
	fio --name=burst --filename=/dev/mapper/"$1" --rw=randwrite --bs=4k --direct=1 \
	    --ioengine=libaio --iodepth=8 --numjobs=2 --time_based --runtime=2 \
	    --output=/dev/null
	dt_stored_clusters "$MD_DEV" | sort -un >"$BATS_TEST_TMPDIR/stored"
	dt_clusters "$1" live | sort -un >"$BATS_TEST_TMPDIR/memory"
	echo "$(wc -l <"$BATS_TEST_TMPDIR/memory") clusters in memory, $(wc -l <"$BATS_TEST_TMPDIR/stored") stored"
	[ -s "$BATS_TEST_TMPDIR/memory" ]
	[ -z "$(comm -23 "$BATS_TEST_TMPDIR/memory" "$BATS_TEST_TMPDIR/stored" | head)" ]
}

# DT_CHECKPOINT_RACE_ROUNDS (default 1) races, each on a fresh device.
@test "checkpoint while each block is written once loses nothing in crash_safe mode" {
	local round
	dt_race_create dt0 1 crash_safe
	for round in $(seq "${DT_CHECKPOINT_RACE_ROUNDS:-1}"); do
		[ "$round" = 1 ] || dt_race_again dt0 1 crash_safe
		echo "# race $round of ${DT_CHECKPOINT_RACE_ROUNDS:-1}" >&3
		race_then_burst dt0
	done
}

@test "metadata on brd, which completes in the writer's thread: checkpoints under writes lose nothing" {
	# On loop devices a work item completes each write-intent batch; brd
	# completes it inside the writer's own submission, where the next
	# batch is built and the held writes released.
	[ ! -d /sys/module/brd ]
	modprobe brd rd_nr=1 rd_size=4096
	DT_BRD=1
	MD_DEV=/dev/ram0
	dt_race_create dt0 1 crash_safe
	race_then_burst dt0
	[ "$(dt_status dt0 health)" = ok ]
}

@test "clear with a write in flight keeps its bit stored until the write is marked again" {
	# cluster 0's write stays 8 s in dm-delay, so it is in flight through
	# the clear and a write-intent batch of the new set for cluster 20,
	# which is in the same bitmap sector
	printf '%s\n' "0 8 delay $DATA_DEV 0 0 $DATA_DEV 0 8000" \
		"8 131064 delay $DATA_DEV 8 0" | dmsetup create slow
	DATA_DEV=/dev/mapper/slow dt_create dt0 8 "" 1 crash_safe
	dt_write /dev/mapper/dt0 0 8 &
	local w=$! c during
	sleep 1.5
	[ "$(dt_stored_clusters "$MD_DEV" | dt_ranges)" = 0 ]
	dmsetup message dt0 0 clear &
	c=$!
	sleep 1.5
	dt_write /dev/mapper/dt0 $((20 * 8)) 8
	during=$(dt_stored_clusters "$MD_DEV" | dt_ranges)
	echo "stored while cluster 0's write is in flight: $during"
	wait $w
	wait $c
	# the write may reach the data device at any moment: its bit stays
	[[ " $during " == *" 0 "* ]]
	[[ " $during " == *" 20 "* ]]
	[ "$(dt_stored_clusters "$MD_DEV" | dt_ranges)" = "0 20" ]
	[ "$(dt_clusters dt0 | dt_ranges)" = "0 20" ]
	[ "$(dt_status dt0 sequence)" = 1 ]
}

# Without availability the same writes are held, then fail (or go once the
# superblock stops vouching): tests/vm/35-metadata-errors.bats.
@test "with availability, a failed write-intent write never fails the data write and leaves the next activation all dirty" {
	local md_size=$(blockdev --getsz "$MD_DEV") size=$(blockdev --getsz "$DATA_DEV")
	local md=$MD_DEV
	dmsetup create mdflaky --table "0 $md_size linear $md 0"
	MD_DEV=/dev/mapper/mdflaky
	dt_create dt0 128 "" 2 crash_safe availability
	dt_write /dev/mapper/dt0 0 8
	[ "$(dt_status dt0 health)" = ok ]
	# from here every write to the metadata device fails
	dmsetup load mdflaky --table "0 $md_size flakey $md 0 0 3600 1 error_writes"
	dmsetup resume mdflaky
	dd if=/dev/urandom of="$BATS_TEST_TMPDIR/data" bs=64k count=4 status=none
	dd if="$BATS_TEST_TMPDIR/data" of=/dev/mapper/dt0 bs=64k seek=2 oflag=direct status=none
	cmp "$BATS_TEST_TMPDIR/data" <(dd if="$DATA_DEV" bs=64k skip=2 count=4 iflag=direct status=none)
	[ "$(dt_status dt0 health)" = metadata_error ]
	[ "$(dt_clusters dt0 | dt_ranges)" = "0 2-5" ]
	dmesg | grep -q "metadata write-intent bitmap write failed"
	# The device heals, but the stored bitmap may miss those writes: the
	# next activation must not trust it.
	dmsetup load mdflaky --table "0 $md_size linear $md 0"
	dmsetup resume mdflaky
	dmsetup remove dt0
	dt_create dt0 128 "" 2 crash_safe availability
	[ "$(dt_status dt0 health)" = unclean_shutdown ]
	[ "$(dt_clusters dt0 | dt_ranges)" = "0-$((size / 128 - 1))" ]
}
