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

# grow_with_frozen [FEATURE_ARGS...]: 4 KiB clusters, 64 MiB less half a
# cluster (16384 clusters: one bitmap block each) grown to 256 MiB (65536:
# two blocks each, so the frozen area moves and the live one grows over
# where it was) while a set is frozen; then removed and created again.
# The frozen set, the live set and the new clusters must all be intact.
grow_with_frozen() {
	local size=$((256 * 2048)) small=$((64 * 2048 - 4)) c
	dt_loop_device DATA_DEV "$BATS_TEST_TMPDIR/big.img" 256M
	dt_create dt0 8 $small "$@"
	for c in 0 4100 9000 12000 16382; do
		dt_write /dev/mapper/dt0 $((c * 8)) 8
	done
	dmsetup message dt0 0 checkpoint
	dt_write /dev/mapper/dt0 $((3 * 8)) 8
	dt_write /dev/mapper/dt0 $((7000 * 8)) 8
	dmsetup load dt0 --table "0 $size dirtytrack $MD_DEV $DATA_DEV 8${*:+ $*}"
	dmsetup resume dt0
	local frozen="0 4100 9000 12000 16382" live="3 7000 16383-65535"
	[ "$(dt_clusters dt0 frozen | dt_ranges)" = "$frozen" ]
	[ "$(dt_clusters dt0 live | dt_ranges)" = "$live" ]
	dmsetup remove dt0
	dt_create dt0 8 $size "$@"
	[ "$(dt_status dt0 health)" = ok ]
	[ "$(dt_status dt0 clusters)" = 65536 ]
	[ "$(dt_clusters dt0 frozen | dt_ranges)" = "$frozen" ]
	[ "$(dt_clusters dt0 live | dt_ranges)" = "$live" ]
	[ "$(dt_status dt0 frozen)" = 5 ]
	dmsetup message dt0 0 commit
	[ "$(dt_status dt0 sequence)" = 1 ]
	dmsetup remove dt0
	dt_create dt0 8 $size "$@"
	[ "$(dt_status dt0 frozen)" = - ]
	[ "$(dt_clusters dt0 live | dt_ranges)" = "$live" ]
}

@test "growing while a set is frozen keeps both sets and marks the new clusters" {
	grow_with_frozen
}

@test "growing while a set is frozen keeps both sets and marks the new clusters (crash_safe)" {
	grow_with_frozen 1 crash_safe
}

# reload_keeps_frozen [FEATURE_ARGS...]: resume allocates no bitmap the
# constructor could have, yet every path keeps the frozen set exactly: a
# grown table loaded before the checkpoint (the set is allocated at resume),
# a suspend and resume (the instance keeps its buffer), a reload after the
# checkpoint (set aside by the constructor) and a commit between the load
# and the resume (the set aside is not used).
reload_keeps_frozen() {
	local size=$(blockdev --getsz "$DATA_DEV") small line i
	small=$((size / 2))
	line="0 $size dirtytrack $MD_DEV $DATA_DEV 128${*:+ $*}"
	dt_create dt0 128 $small "$@"
	dt_write /dev/mapper/dt0 $((2 * 128)) 8
	dmsetup load dt0 --table "$line"
	dmsetup message dt0 0 checkpoint
	dt_write /dev/mapper/dt0 $((5 * 128)) 8
	dmsetup resume dt0
	local live="5 $((small / 128))-$((size / 128 - 1))"
	for i in resumed suspended reloaded; do
		echo "# after $i"
		[ "$(dt_clusters dt0 frozen | dt_ranges)" = 2 ]
		[ "$(dt_clusters dt0 live | dt_ranges)" = "$live" ]
		[ "$(dt_status dt0 frozen)" = 1 ]
		[ "$(dt_status dt0 health)" = ok ]
		if [ $i = resumed ]; then
			dmsetup suspend dt0
			dmsetup resume dt0
		elif [ $i = suspended ]; then
			dmsetup table dt0 | dmsetup load dt0
			dmsetup resume dt0
		fi
	done
	dmsetup table dt0 | dmsetup load dt0
	dmsetup message dt0 0 commit
	dmsetup resume dt0
	[ "$(dt_status dt0 frozen)" = - ]
	[ "$(dt_clusters dt0 live | dt_ranges)" = "$live" ]
	[ "$(dt_status dt0 sequence)" = 1 ]
	dmsetup remove dt0
	dt_create dt0 128 $size "$@"
	[ "$(dt_status dt0 frozen)" = - ]
	[ "$(dt_clusters dt0 live | dt_ranges)" = "$live" ]
}

@test "reloads, growth and suspends keep the frozen set wherever its bitmap was allocated" {
	reload_keeps_frozen
}

@test "reloads, growth and suspends keep the frozen set wherever its bitmap was allocated (crash_safe)" {
	reload_keeps_frozen 1 crash_safe
}

# Without the availability feature the same writes are held, then fail:
# tests/vm/35-metadata-errors.bats.
@test "with availability, metadata write errors degrade tracking but never fail data writes" {
	local md_size=$(blockdev --getsz "$MD_DEV")
	dmsetup create mdflaky --table "0 $md_size flakey $MD_DEV 0 3600 0"
	dmsetup create dt0 --table "0 $(blockdev --getsz "$DATA_DEV") dirtytrack /dev/mapper/mdflaky $DATA_DEV 128 1 availability"
	dmsetup remove dt0
	# now every write to the metadata device fails
	dmsetup load mdflaky --table "0 $md_size flakey $MD_DEV 0 0 3600 1 error_writes"
	dmsetup resume mdflaky
	dmsetup create dt0 --table "0 $(blockdev --getsz "$DATA_DEV") dirtytrack /dev/mapper/mdflaky $DATA_DEV 128 1 availability"
	dd if=/dev/urandom of="$BATS_TEST_TMPDIR/data" bs=64k count=4 status=none
	dd if="$BATS_TEST_TMPDIR/data" of=/dev/mapper/dt0 bs=64k seek=2 oflag=direct status=none
	cmp "$BATS_TEST_TMPDIR/data" <(dd if="$DATA_DEV" bs=64k skip=2 count=4 iflag=direct status=none)
	[ "$(dt_status dt0 health)" = metadata_error ]
	[ "$(dt_clusters dt0 | dt_ranges)" = 2-5 ]
	dmsetup remove dt0
	dmsetup remove mdflaky
	dmesg | grep -q "metadata superblock write failed"
}

# ------------------------------------------------------- metadata read errors
#
# The metadata device is used through "mdx", a dm device over $MD_DEV whose
# table is swapped to make a range of it fail (an "error" segment between
# "linear" ones: dm-flakey has no error_reads on 6.1). With the 64 MiB data
# device and 128-sector clusters there are 1024 clusters and one bitmap block:
# sectors 0-7 hold the superblock, 8-15 the live bitmap, 16-23 the frozen one.
# What is on the metadata device is always checked on $MD_DEV itself.
# mdx, mdx_all_failing, dtx_line and dtx_create are in target.bash.

# dtx_history [FEATURE_ARGS...]: a healthy run that leaves a valid stored
# bitmap with clusters 3-6 dirty (random data in $BATS_TEST_TMPDIR/old) and
# dt0 removed; the uuid in $OLD_UUID.
dtx_history() {
	mdx
	dtx_create "$@"
	dd if=/dev/urandom of="$BATS_TEST_TMPDIR/old" bs=64k count=4 status=none
	dd if="$BATS_TEST_TMPDIR/old" of=/dev/mapper/dt0 bs=64k seek=3 oflag=direct conv=notrunc status=none
	[ "$(dt_clusters dt0 | dt_ranges)" = 3-6 ]
	OLD_UUID=$(dt_status dt0 uuid)
	dmsetup remove dt0
	# the next activation trusts and reads the stored bitmap
	dt_sb_valid "$MD_DEV"
}

# sb_flag_clear BIT / sb_flag_set BIT: a superblock flag on $MD_DEV
# (bit 1 VALID, 8 METADATA_ERROR).
sb_flag_clear() {
	[ $(( $(dt_sb_flags "$MD_DEV") & $1 )) -eq 0 ]
}
sb_flag_set() {
	[ $(( $(dt_sb_flags "$MD_DEV") & $1 )) -ne 0 ]
}

# all_dirty: dt0 reports every one of its 1024 clusters dirty, in the status
# count and in the bitmap read.
all_dirty() {
	[ "$(dt_status dt0 clusters)" = 1024 ]
	[ "$(dt_status dt0 dirty)" = 1024 ]
	[ "$(dt_clusters dt0 | dt_ranges)" = 0-1023 ]
}

# data_roundtrip CLUSTER: 256 KiB of random data written through dt0 at
# CLUSTER (64 KiB each) completes and reads back the same through dt0 and
# from the data device; the timeouts catch a write held forever.
data_roundtrip() {
	local f=$BATS_TEST_TMPDIR/data.$1
	dd if=/dev/urandom of="$f" bs=64k count=4 status=none
	timeout 30 dd if="$f" of=/dev/mapper/dt0 bs=64k seek="$1" oflag=direct conv=notrunc status=none
	cmp "$f" <(timeout 30 dd if=/dev/mapper/dt0 bs=64k skip="$1" count=4 iflag=direct status=none)
	cmp "$f" <(dd if="$DATA_DEV" bs=64k skip="$1" count=4 iflag=direct status=none)
}

# degraded_by_bitmap_read_error [FEATURE_ARGS...]: the checks common to both
# modes after a valid history whose live bitmap cannot be read.
degraded_by_bitmap_read_error() {
	dtx_history "$@"
	mdx 8 8
	dtx_create "$@"
	if [[ " $* " == *" crash_safe "* ]]; then
		# writes to clean clusters are no longer held for their bits, so
		# the superblock stops vouching before the device takes a write
		sb_flag_clear 1
		sb_flag_set 8
	fi
	[ "$(dt_status dt0 health)" = metadata_error ]
	all_dirty
	# the superblock was read: the identity continues (all dirty is a full copy)
	[ "$(dt_status dt0 uuid)" = "$OLD_UUID" ]
	dmesg_since_mark | grep -q "metadata read failed"
	# data written before and after the error reads back unchanged
	cmp "$BATS_TEST_TMPDIR/old" <(timeout 30 dd if=/dev/mapper/dt0 bs=64k skip=3 count=4 iflag=direct status=none)
	data_roundtrip 100
	data_roundtrip 1020
	all_dirty
	[ "$(dt_status dt0 health)" = metadata_error ]
	# whatever happens next, the superblock no longer vouches for a bitmap
	sb_flag_clear 1
	sb_flag_set 8
}

@test "an unreadable bitmap at activation: all dirty, health metadata_error, data intact" {
	degraded_by_bitmap_read_error
}

@test "an unreadable bitmap at activation in crash_safe mode: all dirty, data intact" {
	degraded_by_bitmap_read_error 1 crash_safe
	[ "$(dt_status dt0 mode)" = crash_safe ]
}

# healed_comes_back_all_dirty [FEATURE_ARGS...]: after a degraded activation,
# mdx is healed and dt0 removed (a clean shutdown) and created again: the
# stored state must not vouch for any bitmap, so every cluster is dirty, and
# stays so across a clean reactivation until a clear.
healed_comes_back_all_dirty() {
	mdx
	dmsetup remove dt0
	sb_flag_clear 1
	sb_flag_set 8
	dtx_create "$@"
	all_dirty
	[ "$(dt_status dt0 health)" = unclean_shutdown ]
	dmsetup remove dt0
	dtx_create "$@"
	all_dirty
	[ "$(dt_status dt0 health)" = unclean_shutdown ]
	# a clear starts exact tracking again on the healed device
	dmsetup message dt0 0 clear
	[ "$(dt_status dt0 dirty)" = 0 ]
	[ "$(dt_status dt0 health)" = ok ]
	dt_write /dev/mapper/dt0 $((5 * 128)) 8
	dmsetup remove dt0
	dt_sb_valid "$MD_DEV"
	dtx_create "$@"
	[ "$(dt_clusters dt0 | dt_ranges)" = 5 ]
	[ "$(dt_status dt0 health)" = ok ]
}

@test "after a bitmap read error and writes, a healed metadata device comes back all dirty" {
	degraded_by_bitmap_read_error
	healed_comes_back_all_dirty
}

@test "after a bitmap read error and no write, a healed metadata device comes back all dirty" {
	dtx_history
	mdx 8 8
	dtx_create
	[ "$(dt_status dt0 health)" = metadata_error ]
	all_dirty
	healed_comes_back_all_dirty
}

@test "after a bitmap read error in crash_safe mode, a healed metadata device comes back all dirty" {
	degraded_by_bitmap_read_error 1 crash_safe
	healed_comes_back_all_dirty 1 crash_safe
}

# crash_after_read_error [FEATURE_ARGS...]: a degraded activation takes
# writes, then the metadata device stops taking any I/O (the stored state is
# what a power cut would leave) and dt0 goes away; healed and reactivated,
# the clusters written meanwhile must be dirty: all of them, by the design.
crash_after_read_error() {
	dtx_history "$@"
	mdx 8 8
	dtx_create "$@"
	data_roundtrip 40
	dt_write /dev/mapper/dt0 $((900 * 128)) 8
	mdx_all_failing
	dmsetup remove dt0
	mdx
	dtx_create "$@"
	all_dirty
	[ "$(dt_status dt0 health)" = unclean_shutdown ]
}

@test "a crash after a bitmap read error leaves every cluster dirty" {
	crash_after_read_error
}

@test "a crash after a bitmap read error leaves every cluster dirty in crash_safe mode" {
	crash_after_read_error 1 crash_safe
}

@test "an unreadable frozen bitmap at activation: all dirty, no frozen set vouched for" {
	mdx
	dtx_create
	dt_write /dev/mapper/dt0 $((1 * 128)) 8
	dmsetup message dt0 0 checkpoint
	dt_write /dev/mapper/dt0 $((2 * 128)) 8
	dmsetup remove dt0
	sb_flag_set 2
	dt_sb_valid "$MD_DEV"
	mdx 16 8
	dtx_create
	[ "$(dt_status dt0 health)" = metadata_error ]
	all_dirty
	[ "$(dt_status dt0 frozen)" = - ]
	data_roundtrip 10
	all_dirty
}

@test "an unreadable superblock refuses the table load, with a clear error, and writes nothing" {
	local sum feat
	dtx_history
	sum=$(sha256sum <"$MD_DEV")
	# the superblock fails, the bitmaps behind it would take writes
	mdx 0 8
	for feat in "" "1 crash_safe"; do
		# shellcheck disable=SC2086 # two words, or none
		dmsetup_expect_error "$(dtx_line $feat)" "Cannot read the metadata superblock"
	done
	[ "$(sha256sum <"$MD_DEV")" = "$sum" ]
	mdx
	dtx_create
	[ "$(dt_clusters dt0 | dt_ranges)" = 3-6 ]
	[ "$(dt_status dt0 health)" = ok ]
}

# The superblock cannot be made to stop vouching either: without the
# availability feature writes would be held, then fail (35-metadata-errors).
@test "a superblock unreadable at resume activates degraded and comes back all dirty" {
	dtx_history
	dmsetup create dt0 --notable
	dmsetup load dt0 --table "$(dtx_line 1 availability)"
	# between the table load (which read the superblock) and the resume
	mdx 0 8
	dmsetup resume dt0
	[ "$(dt_status dt0 health)" = metadata_error ]
	all_dirty
	cmp "$BATS_TEST_TMPDIR/old" <(timeout 30 dd if=/dev/mapper/dt0 bs=64k skip=3 count=4 iflag=direct status=none)
	data_roundtrip 200
	all_dirty
	mdx
	dmsetup remove dt0
	sb_flag_clear 1
	dtx_create
	all_dirty
	[ "$(dt_status dt0 health)" = unclean_shutdown ]
}

@test "commit and clear store the new sequence before they return, and a crash keeps it" {
	local size=$(blockdev --getsz "$DATA_DEV")
	dt_create dt0 128
	dt_write /dev/mapper/dt0 0 8
	dmsetup message dt0 0 checkpoint
	dmsetup message dt0 0 commit
	[ "$(dt_status dt0 sequence)" = 1 ]
	[ "$(dt_sb_sequence "$MD_DEV")" = 1 ]
	dt_write /dev/mapper/dt0 1024 8
	dmsetup message dt0 0 clear
	[ "$(dt_status dt0 sequence)" = 2 ]
	[ "$(dt_sb_sequence "$MD_DEV")" = 2 ]
	dt_write /dev/mapper/dt0 2048 8
	# What a crash right now would leave on the metadata device.
	dd if="$MD_DEV" of="$BATS_TEST_TMPDIR/crashed" bs=64k iflag=direct status=none
	dmsetup remove dt0
	dd if="$BATS_TEST_TMPDIR/crashed" of="$MD_DEV" bs=64k oflag=direct conv=notrunc status=none
	dt_create dt0 128
	[ "$(dt_status dt0 health)" = unclean_shutdown ]
	[ "$(dt_status dt0 sequence)" = 2 ]
	[ "$(dt_clusters dt0 | dt_ranges)" = "0-$((size / 128 - 1))" ]
}
