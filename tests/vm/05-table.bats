#!/usr/bin/env bats
# The table line: module autoload, round trip through `dmsetup table`, and
# the refusal (with a ti->error a user can act on) of every malformed line.

setup() {
	load helpers
	dt_setup_devices
	MD=$(dt_majmin "$MD_DEV")
	DATA=$(dt_majmin "$DATA_DEV")
	LEN=$(blockdev --getsz "$DATA_DEV")
}

teardown() {
	dt_cleanup
}

@test "dmsetup create loads the dm-dirtytrack module on demand" {
	if [ -d /sys/module/dm_dirtytrack ]; then
		modprobe -r dm-dirtytrack
	fi
	[ ! -d /sys/module/dm_dirtytrack ]
	dmsetup create dt0 --table "0 $LEN dirtytrack $MD_DEV $DATA_DEV 128"
	[ -d /sys/module/dm_dirtytrack ]
	lsmod | grep -q '^dm_dirtytrack '
	dmsetup targets | grep -q '^dirtytrack '
}

@test "dmsetup table prints the table line back with major:minor devices" {
	dmsetup create dt0 --table "0 $LEN dirtytrack $MD_DEV $DATA_DEV 128"
	[ "$(dmsetup table dt0)" = "0 $LEN dirtytrack $MD $DATA 128" ]
}

@test "dmsetup table prints the crash_safe feature back" {
	dmsetup create dt0 --table "0 $LEN dirtytrack $MD $DATA 256 1 crash_safe"
	[ "$(dmsetup table dt0)" = "0 $LEN dirtytrack $MD $DATA 256 1 crash_safe" ]
}

# reload_round_trip TABLE: create dt0 from TABLE, reload it from the line
# `dmsetup table` prints, and expect the same line back.
reload_round_trip() {
	local line
	dmsetup create dt0 --table "$1"
	line=$(dmsetup table dt0)
	dmsetup load dt0 --table "$line"
	dmsetup resume dt0
	[ "$(dmsetup table dt0)" = "$line" ]
}

@test "a table reloaded from the printed line is accepted unchanged" {
	reload_round_trip "0 $LEN dirtytrack $MD_DEV $DATA_DEV 128"
}

@test "a crash_safe table reloaded from the printed line is accepted unchanged" {
	reload_round_trip "0 $LEN dirtytrack $MD_DEV $DATA_DEV 128 1 crash_safe"
}

@test "a table with too few arguments is refused" {
	dmsetup_expect_error "0 $LEN dirtytrack $MD $DATA" "Invalid argument count"
	dmsetup_expect_error "0 $LEN dirtytrack $MD" "Invalid argument count"
	dmsetup_expect_error "0 $LEN dirtytrack" "Invalid argument count"
}

@test "a nonexistent metadata device is refused" {
	dmsetup_expect_error "0 $LEN dirtytrack /dev/nonexistent $DATA 128" "Error opening metadata device"
}

@test "a nonexistent data device is refused" {
	dmsetup_expect_error "0 $LEN dirtytrack $MD /dev/nonexistent 128" "Error opening data device"
}

@test "a cluster size that is zero, not a power of two, too small or too large is refused" {
	local cs
	for cs in 0 12 4 4194304 abc; do
		dmsetup_expect_error "0 $LEN dirtytrack $MD $DATA $cs" "Invalid cluster size"
	done
}

@test "the smallest and largest cluster sizes are accepted" {
	local cs
	for cs in 8 2097152; do
		dmsetup create dt0 --table "0 $LEN dirtytrack $MD $DATA $cs"
		[ "$(dmsetup table dt0)" = "0 $LEN dirtytrack $MD $DATA $cs" ]
		dmsetup remove dt0
		# a fresh metadata device for the next geometry
		dd if=/dev/zero of="$MD_DEV" bs=1M count=1 oflag=direct status=none
	done
}

@test "an unknown feature is refused by name" {
	dmsetup_expect_error "0 $LEN dirtytrack $MD $DATA 128 1 frobnicate" "Unknown feature: frobnicate"
}

@test "the same device for metadata and data is refused" {
	dmsetup_expect_error "0 $LEN dirtytrack $DATA $DATA 128" "Metadata and data devices must differ"
}
