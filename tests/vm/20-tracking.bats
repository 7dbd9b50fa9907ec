#!/usr/bin/env bats
# What the target marks dirty: exact clusters for writes of every shape.

setup() {
	load helpers
	load target
	dt_setup_devices
}

teardown() {
	dt_cleanup
}

@test "a fresh device reports no dirty clusters, health ok and a uuid" {
	dt_create dt0 128
	[ "$(dt_status dt0 cluster_sectors)" = 128 ]
	[ "$(dt_status dt0 clusters)" = $(( $(blockdev --getsz "$DATA_DEV") / 128 )) ]
	[ "$(dt_status dt0 dirty)" = 0 ]
	[ "$(dt_status dt0 frozen)" = - ]
	[ "$(dt_status dt0 mode)" = default ]
	[ "$(dt_status dt0 health)" = ok ]
	[ "$(dt_status dt0 sequence)" = 0 ]
	[[ "$(dt_status dt0 uuid)" =~ ^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$ ]]
	[ "$(dt_status dt0 uuid)" != 00000000-0000-0000-0000-000000000000 ]
	[ -z "$(dt_clusters dt0 | dt_ranges)" ]
}

@test "a 4 KiB write marks exactly its cluster" {
	dt_create dt0 128
	dt_write /dev/mapper/dt0 $((7 * 128 + 16)) 8
	[ "$(dt_clusters dt0 | dt_ranges)" = 7 ]
	[ "$(dt_status dt0 dirty)" = 1 ]
}

@test "a write straddling a cluster boundary marks both clusters" {
	dt_create dt0 128
	dt_write /dev/mapper/dt0 $((3 * 128 - 4)) 8
	[ "$(dt_clusters dt0 | dt_ranges)" = 2-3 ]
}

@test "a single-sector write marks the whole cluster" {
	dt_create dt0 8
	dt_write /dev/mapper/dt0 1001 1
	[ "$(dt_clusters dt0 | dt_ranges)" = 125 ]
}

@test "a large write marks every cluster it covers without gaps" {
	dt_create dt0 8
	# 1 MiB at 3 MiB with 4 KiB clusters: clusters 768..1023
	dd if=/dev/urandom of=/dev/mapper/dt0 bs=1M seek=3 count=1 oflag=direct status=none
	[ "$(dt_clusters dt0 | dt_ranges)" = 768-1023 ]
	[ "$(dt_status dt0 dirty)" = 256 ]
}

@test "the partial last cluster of the device is tracked" {
	local len=$(( $(blockdev --getsz "$DATA_DEV") - 40 ))
	dt_create dt0 128 $len
	local clusters=$(( (len + 127) / 128 ))
	[ "$(dt_status dt0 clusters)" = $clusters ]
	dt_write /dev/mapper/dt0 $((len - 1)) 1
	[ "$(dt_clusters dt0 | dt_ranges)" = $((clusters - 1)) ]
}

@test "discard marks the clusters of its range" {
	dt_create dt0 128
	blkdiscard -o $((10 * 65536)) -l $((4 * 65536)) /dev/mapper/dt0
	[ "$(dt_clusters dt0 | dt_ranges)" = 10-13 ]
}

@test "write-zeroes marks the clusters of its range, partial ones included" {
	dt_create dt0 128
	blkdiscard -z -o $((20 * 65536 + 4096)) -l $((2 * 65536)) /dev/mapper/dt0
	[ "$(dt_clusters dt0 | dt_ranges)" = 20-22 ]
}

@test "reads and empty flushes mark nothing" {
	dt_create dt0 128
	dd if=/dev/mapper/dt0 of=/dev/null bs=1M iflag=direct status=none
	blockdev --flushbufs /dev/mapper/dt0
	sync
	[ "$(dt_status dt0 dirty)" = 0 ]
}

@test "writes across the whole device mark every cluster" {
	dt_create dt0 128
	dd if=/dev/zero of=/dev/mapper/dt0 bs=1M oflag=direct status=none || true
	[ "$(dt_status dt0 dirty)" = "$(dt_status dt0 clusters)" ]
	[ "$(dt_clusters dt0 | wc -l)" = "$(dt_status dt0 clusters)" ]
}

@test "a target that does not start at sector 0 tracks its own offsets" {
	local size=$(blockdev --getsz "$DATA_DEV") half
	half=$((size / 2))
	dmsetup create dt0 <<-TABLE
	0 $half linear $DATA_DEV 0
	$half $half dirtytrack $MD_DEV $DATA_DEV 128
	TABLE
	# 8 sectors at target offset 5 * 128 + 3, and a write to the linear part
	dt_write /dev/mapper/dt0 $((half + 5 * 128 + 3)) 8
	dt_write /dev/mapper/dt0 17 8
	[ "$(dt_clusters dt0 live $half | dt_ranges)" = 5 ]
	# the data reached the data device at the target-relative offset
	cmp <(dd if=/dev/mapper/dt0 bs=512 skip=$((half + 5 * 128 + 3)) count=8 iflag=direct status=none) \
	    <(dd if="$DATA_DEV" bs=512 skip=$((5 * 128 + 3)) count=8 iflag=direct status=none)
}
