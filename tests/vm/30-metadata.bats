#!/usr/bin/env bats
# The metadata device: format, valid flag, persistence, refusals, growth.

setup() {
	load helpers
	load target
	dt_setup_devices
}

teardown() {
	dt_cleanup
}

@test "the valid flag is cleared on disk while written and set after removal" {
	dt_create dt0 128
	dt_write /dev/mapper/dt0 0 8
	! dt_sb_valid "$MD_DEV" || false
	dmsetup remove dt0
	dt_sb_valid "$MD_DEV"
	# reactivated: still valid until the first write, cleared by it
	dt_create dt0 128
	dt_sb_valid "$MD_DEV"
	dt_write /dev/mapper/dt0 1024 8
	! dt_sb_valid "$MD_DEV" || false
}

@test "dirty clusters, uuid and sequence survive remove and create" {
	dt_create dt0 128
	dt_write /dev/mapper/dt0 0 8
	dt_write /dev/mapper/dt0 $((9 * 128)) 300
	dmsetup message dt0 0 mark $((100 * 128)) 1
	local uuid=$(dt_status dt0 uuid) before=$(dt_clusters dt0 | dt_ranges)
	[ "$before" = "0 9-11 100" ]
	dmsetup remove dt0
	dt_create dt0 128
	[ "$(dt_clusters dt0 | dt_ranges)" = "$before" ]
	[ "$(dt_status dt0 uuid)" = "$uuid" ]
	[ "$(dt_status dt0 dirty)" = 5 ]
	[ "$(dt_status dt0 health)" = ok ]
}

@test "a reloaded table takes over the metadata without losing a cluster" {
	dt_create dt0 128
	dt_write /dev/mapper/dt0 $((4 * 128)) 8
	dmsetup table dt0 | dmsetup load dt0
	dt_write /dev/mapper/dt0 $((6 * 128)) 8
	dmsetup resume dt0
	dt_write /dev/mapper/dt0 $((8 * 128)) 8
	[ "$(dt_clusters dt0 | dt_ranges)" = "4 6 8" ]
}

@test "status answers while the device is suspended and state changes are refused" {
	dt_create dt0 128
	dt_write /dev/mapper/dt0 0 8
	dmsetup suspend dt0
	run timeout 10 dmsetup status dt0
	[ "$status" -eq 0 ]
	[[ "$output" == *" 1 - default ok "* ]]
	run dmsetup message dt0 0 clear
	[ "$status" -ne 0 ]
	[ "$(dt_clusters dt0 | dt_ranges)" = 0 ]
	dmsetup resume dt0
	dmsetup message dt0 0 clear
	[ "$(dt_status dt0 dirty)" = 0 ]
}

@test "a metadata device holding something else is refused and left untouched" {
	dd if=/dev/urandom of="$MD_DEV" bs=4096 count=1 oflag=direct status=none
	local sum=$(sha256sum <"$MD_DEV")
	dmsetup_expect_error "0 $(blockdev --getsz "$DATA_DEV") dirtytrack $MD_DEV $DATA_DEV 128" \
		"Metadata device is not usable (bad magic: not a dirtytrack superblock); refusing to overwrite it"
	[ "$(sha256sum <"$MD_DEV")" = "$sum" ]
}

@test "a superblock with a bad checksum is refused" {
	dt_create dt0 128
	dmsetup remove dt0
	# flip a byte of the uuid
	printf '\x55' | dd of="$MD_DEV" bs=1 seek=20 conv=notrunc status=none
	dmsetup_expect_error "0 $(blockdev --getsz "$DATA_DEV") dirtytrack $MD_DEV $DATA_DEV 128" \
		"Metadata device is not usable (bad checksum)"
}

@test "a metadata device that is too small is refused with the size it needs" {
	local small=$BATS_TEST_TMPDIR/small-md
	truncate -s 4096 "$small"
	local dev=$(losetup -f --show "$small")
	dmsetup_expect_error "0 $(blockdev --getsz "$DATA_DEV") dirtytrack $dev $DATA_DEV 8" \
		"Metadata device too small: need 24 sectors, have 8"
	losetup -d "$dev"
}

@test "a different cluster size is refused" {
	dt_create dt0 128
	dmsetup remove dt0
	dmsetup_expect_error "0 $(blockdev --getsz "$DATA_DEV") dirtytrack $MD_DEV $DATA_DEV 256" \
		"Cluster size mismatch: metadata has 128 sectors, table has 256"
}

@test "a shorter table than the tracked size is refused" {
	local size=$(blockdev --getsz "$DATA_DEV")
	dt_create dt0 128
	dmsetup remove dt0
	dmsetup_expect_error "0 $((size / 2)) dirtytrack $MD_DEV $DATA_DEV 128" \
		"Data device shrank: metadata tracks $size sectors, table has $((size / 2))"
}

@test "growing the device keeps old clusters and marks the new ones dirty" {
	local size=$(blockdev --getsz "$DATA_DEV") small
	small=$((size / 2 - 64))		# ends in the middle of a cluster
	dt_create dt0 128 $small
	dt_write /dev/mapper/dt0 0 8
	dmsetup remove dt0
	dt_create dt0 128 $size
	local first_new=$((small / 128)) last=$((size / 128 - 1))
	[ "$(dt_clusters dt0 | dt_ranges)" = "0 $first_new-$last" ]
	[ "$(dt_status dt0 clusters)" = $((last + 1)) ]
	# and it is stored that way
	dmsetup remove dt0
	dt_create dt0 128 $size
	[ "$(dt_clusters dt0 | dt_ranges)" = "0 $first_new-$last" ]
}

@test "growing by a live table reload extends the bitmap" {
	local size=$(blockdev --getsz "$DATA_DEV")
	dt_create dt0 128 $((size / 2))
	dt_write /dev/mapper/dt0 128 8
	dmsetup load dt0 --table "0 $size dirtytrack $MD_DEV $DATA_DEV 128"
	dmsetup resume dt0
	[ "$(dt_clusters dt0 | dt_ranges)" = "1 $((size / 256))-$((size / 128 - 1))" ]
}

@test "metadata write errors degrade tracking but never fail data writes" {
	local md_size=$(blockdev --getsz "$MD_DEV")
	dmsetup create mdflaky --table "0 $md_size flakey $MD_DEV 0 3600 0"
	dmsetup create dt0 --table "0 $(blockdev --getsz "$DATA_DEV") dirtytrack /dev/mapper/mdflaky $DATA_DEV 128"
	dmsetup remove dt0
	# now every write to the metadata device fails
	dmsetup load mdflaky --table "0 $md_size flakey $MD_DEV 0 0 3600 1 error_writes"
	dmsetup resume mdflaky
	dmsetup create dt0 --table "0 $(blockdev --getsz "$DATA_DEV") dirtytrack /dev/mapper/mdflaky $DATA_DEV 128"
	dd if=/dev/urandom of="$BATS_TEST_TMPDIR/data" bs=64k count=4 status=none
	dd if="$BATS_TEST_TMPDIR/data" of=/dev/mapper/dt0 bs=64k seek=2 oflag=direct status=none
	cmp "$BATS_TEST_TMPDIR/data" <(dd if="$DATA_DEV" bs=64k skip=2 count=4 iflag=direct status=none)
	[ "$(dt_status dt0 health)" = metadata_error ]
	[ "$(dt_clusters dt0 | dt_ranges)" = 2-5 ]
	dmsetup remove dt0
	dmsetup remove mdflaky
	dmesg | grep -q "metadata superblock write failed"
}
