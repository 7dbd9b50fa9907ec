#!/usr/bin/env bats
# The snapshot store: the frozen set as of the checkpoint, read through a
# dirtytrack-view while a writer keeps writing (Documentation/dm-dirtytrack.rst,
# "Snapshot store").

CS=128			# cluster sectors (64 KiB)
CB=$((CS * 512))

setup() {
	load helpers
	load target
	dt_setup_devices 32M
	LEN=$(blockdev --getsz "$DATA_DEV")
}

teardown() {
	[ -z "${FIO_PID:-}" ] || { kill "$FIO_PID" 2>/dev/null; wait "$FIO_PID" 2>/dev/null; } || true
	dt_cleanup
}

# store_dev SIZE: a store loop device of SIZE in $STORE_DEV.
store_dev() {
	dt_loop_device STORE_DEV "$BATS_TEST_TMPDIR/store.img" "$1"
}

# snap_create [crash_safe]: dt0 over the data device with the store.
snap_create() {
	if [ "${1:-}" = crash_safe ]; then
		dt_create dt0 $CS "" 3 crash_safe snapshot_store "$STORE_DEV"
	else
		dt_create dt0 $CS "" 2 snapshot_store "$STORE_DEV"
	fi
}

view_create() {
	dmsetup create --readonly dtv --table "0 $LEN dirtytrack-view /dev/mapper/dt0"
}

# prepare_frozen: random content everywhere, committed; then random 64 KiB
# writes to a random subset of the clusters (the next frozen set), and a
# reference copy of the quiet device in $REF.
prepare_frozen() {
	dd if=/dev/urandom of=/dev/mapper/dt0 bs=1M count=$((LEN / 2048)) oflag=direct status=none
	dmsetup message dt0 0 checkpoint
	dmsetup message dt0 0 commit
	fio --name=f --filename=/dev/mapper/dt0 --rw=randwrite --bs=$CB --direct=1 \
	    --number_ios=150 --refill_buffers --randrepeat=0 --output=/dev/null
	REF=$BATS_TEST_TMPDIR/ref
	dd if=/dev/mapper/dt0 of="$REF" bs=1M iflag=direct status=none
}

# start_writer: fio, random 4 KiB writes over the whole device, until stopped.
start_writer() {
	fio --name=w --filename=/dev/mapper/dt0 --rw=randwrite --bs=4k --direct=1 \
	    --ioengine=libaio --iodepth=4 --rate_iops=300 --time_based --runtime=900 --refill_buffers \
	    --randrepeat=0 --output="$BATS_TEST_TMPDIR/w.log" &
	FIO_PID=$!
}

# stop_writer: fio exits 1 when stopped by a signal; its log says whether
# any write failed.
stop_writer() {
	kill -INT "$FIO_PID"
	wait "$FIO_PID" || true
	FIO_PID=
	grep -q "err= 0" "$BATS_TEST_TMPDIR/w.log"
	! grep -Eq "err= *[1-9]" "$BATS_TEST_TMPDIR/w.log" || false
}

# wait_store_used: until the writer has made the store preserve a cluster.
wait_store_used() {
	local i
	for i in $(seq 600); do
		[ "$(dt_status dt0 store_used)" -gt 0 ] && return 0
		sleep 0.1
	done
	false
}

# cmp_extent DEV FIRST N: clusters FIRST.. of DEV equal those of $REF.
cmp_extent() {
	cmp <(dd if="$1" bs=$CB skip="$2" count="$3" iflag=direct status=none) \
	    <(dd if="$REF" bs=$CB skip="$2" count="$3" status=none)
}

# exactness MODE RELEASE: the frozen extents read through the view while fio
# writes everywhere equal the reference taken before the checkpoint.
exactness() {
	local mode=$1 release=$2 r first last n=0 bad=0 used max=0
	store_dev 32M
	snap_create "$mode"
	prepare_frozen
	dmsetup message dt0 0 checkpoint
	[ "$(dt_status dt0 snapshot)" = active ]
	view_create
	start_writer
	wait_store_used
	for r in $(dt_clusters dt0 frozen | dt_ranges); do
		first=${r%-*} last=${r#*-}
		if ! cmp_extent /dev/mapper/dtv "$first" $((last - first + 1)); then
			echo "frozen clusters $r differ from the reference"
			bad=$((bad + 1))
		fi
		n=$((n + last - first + 1))
		used=$(dt_status dt0 store_used)
		[ "$used" -le "$max" ] || max=$used
		if [ "$release" = release ]; then
			dmsetup message dt0 0 release $((first * CS)) $(((last - first + 1) * CS))
		fi
	done
	stop_writer
	echo "# $n frozen clusters read, store use up to $max sectors, final $(dt_status dt0 store_used)" >&3
	[ "$bad" -eq 0 ]
	[ "$n" -gt 50 ]
	[ "$max" -gt 0 ]
	[ "$(dt_status dt0 snapshot)" = active ]
	if [ "$release" = release ]; then
		# every frozen cluster released: no slot left
		[ "$(dt_status dt0 store_used)" = 0 ]
	fi
	dmsetup remove dtv
	dmsetup message dt0 0 commit
	[ "$(dt_status dt0 snapshot)" = idle ]
	[ "$(dt_status dt0 store_used)" = 0 ]
}

@test "status and table without a store: dashes" {
	dt_create dt0 $CS
	[ "$(dt_status dt0 snapshot)" = - ]
	[ "$(dt_status dt0 store_used)" = - ]
	[ "$(dt_status dt0 store_sectors)" = - ]
	[ "$(dmsetup table dt0 | awk '{ print NF }')" = 6 ]
	run dmsetup message dt0 0 release 0 128
	[ "$status" -ne 0 ]
	[[ "$output" == *"No such file or directory"* ]]
}

@test "the table prints the store back, alone and with crash_safe" {
	store_dev 1M
	local mm
	mm=$(dt_majmin "$STORE_DEV")
	snap_create
	[[ "$(dmsetup table dt0)" == *" $CS 2 snapshot_store $mm" ]]
	[ "$(dt_status dt0 snapshot)" = idle ]
	[ "$(dt_status dt0 store_used)" = 0 ]
	[ "$(dt_status dt0 store_sectors)" = 2048 ]
	dmsetup table dt0 | dmsetup load dt0
	dmsetup resume dt0
	dmsetup remove dt0
	snap_create crash_safe
	[[ "$(dmsetup table dt0)" == *" $CS 3 crash_safe snapshot_store $mm" ]]
	[ "$(dt_status dt0 mode)" = crash_safe ]
}

@test "a store smaller than a cluster, or the data device as store, is refused" {
	store_dev 32K
	run dmsetup create dt0 --table "0 $LEN dirtytrack $MD_DEV $DATA_DEV $CS 2 snapshot_store $STORE_DEV"
	[ "$status" -ne 0 ]
	run dmsetup create dt0 --table "0 $LEN dirtytrack $MD_DEV $DATA_DEV $CS 2 snapshot_store $DATA_DEV"
	[ "$status" -ne 0 ]
	run dmsetup create dt0 --table "0 $LEN dirtytrack $MD_DEV $DATA_DEV $CS 1 snapshot_store"
	[ "$status" -ne 0 ]
}

@test "a view needs --readonly and an active snapshot; release needs a snapshot" {
	store_dev 4M
	snap_create
	run view_create
	[ "$status" -ne 0 ]
	run dmsetup message dt0 0 release 0 128
	[ "$status" -ne 0 ]
	[[ "$output" == *"No such file or directory"* ]]
	dt_write /dev/mapper/dt0 0 8
	dmsetup message dt0 0 checkpoint
	run dmsetup create dtv --table "0 $LEN dirtytrack-view /dev/mapper/dt0"
	[ "$status" -ne 0 ]
	view_create
	run dd if=/dev/zero of=/dev/mapper/dtv bs=4k count=1 oflag=direct status=none
	[ "$status" -ne 0 ]
	run dmsetup message dt0 0 release 0 $((LEN + 1))
	[ "$status" -ne 0 ]
}

@test "exactness: frozen extents through the view equal the reference while fio writes" {
	exactness default no
}

@test "exactness with release of every extent once read; the store ends empty" {
	exactness default release
}

@test "exactness in crash_safe mode, with release" {
	exactness crash_safe release
}

@test "a write outside the frozen set goes through and costs no store" {
	store_dev 4M
	snap_create
	dt_write /dev/mapper/dt0 0 8
	dmsetup message dt0 0 checkpoint
	[ "$(dt_clusters dt0 frozen | dt_ranges)" = 0 ]
	dd if=/dev/urandom of="$BATS_TEST_TMPDIR/new" bs=$CB count=4 status=none
	dd if="$BATS_TEST_TMPDIR/new" of=/dev/mapper/dt0 bs=$CB seek=10 oflag=direct status=none
	[ "$(dt_status dt0 store_used)" = 0 ]
	cmp <(dd if=/dev/mapper/dt0 bs=$CB skip=10 count=4 iflag=direct status=none) "$BATS_TEST_TMPDIR/new"
	[ "$(dt_clusters dt0 live | dt_ranges)" = 10-13 ]
	# the frozen cluster is preserved by its first write, once
	dt_write /dev/mapper/dt0 0 8
	dt_write /dev/mapper/dt0 8 8
	[ "$(dt_status dt0 store_used)" = $CS ]
}

@test "a released cluster is not preserved any more: a write to it costs no store" {
	store_dev 4M
	snap_create
	dt_write /dev/mapper/dt0 0 $((4 * CS))
	dmsetup message dt0 0 checkpoint
	[ "$(dt_clusters dt0 frozen | dt_ranges)" = 0-3 ]
	# cluster 1 preserved by its first write, then released: its slot is free
	dt_write /dev/mapper/dt0 $CS 8
	[ "$(dt_status dt0 store_used)" = $CS ]
	dmsetup message dt0 0 release $CS $CS
	[ "$(dt_status dt0 store_used)" = 0 ]
	# clusters 0 and 2 released before any write: writes to them and to
	# cluster 1 again copy nothing
	dmsetup message dt0 0 release 0 $CS
	dmsetup message dt0 0 release $((2 * CS)) $CS
	dt_write /dev/mapper/dt0 0 8
	dt_write /dev/mapper/dt0 $CS 8
	dt_write /dev/mapper/dt0 $((2 * CS)) $CS
	[ "$(dt_status dt0 store_used)" = 0 ]
	# the one cluster not released is still preserved by its first write
	dt_write /dev/mapper/dt0 $((3 * CS)) 8
	[ "$(dt_status dt0 store_used)" = $CS ]
	[ "$(dt_status dt0 snapshot)" = active ]
	dmsetup message dt0 0 commit
	[ "$(dt_status dt0 store_used)" = 0 ]
}

@test "a full store never fails a write: the snapshot becomes invalid and view reads fail" {
	store_dev 256K		# 4 clusters
	snap_create
	prepare_frozen
	dmsetup message dt0 0 checkpoint
	view_create
	dd if=/dev/mapper/dtv of=/dev/null bs=$CB count=1 iflag=direct status=none
	fio --name=w --filename=/dev/mapper/dt0 --rw=randwrite --bs=4k --direct=1 \
	    --number_ios=2000 --refill_buffers --randrepeat=0 --output="$BATS_TEST_TMPDIR/w.log"
	! grep -Eq "err= *[1-9]" "$BATS_TEST_TMPDIR/w.log" || false
	[ "$(dt_status dt0 snapshot)" = invalid ]
	run dd if=/dev/mapper/dtv of=/dev/null bs=$CB count=1 iflag=direct status=none
	[ "$status" -ne 0 ]
	dmesg_since_mark | grep -q "snapshot store full"
	# what fio wrote reached the device
	dt_write /dev/mapper/dt0 0 8
	dmsetup remove dtv
	dmsetup message dt0 0 commit
	[ "$(dt_status dt0 snapshot)" = idle ]
	[ "$(dt_status dt0 store_used)" = 0 ]
}

@test "commit and rollback end the snapshot: the store is freed, the view fails" {
	store_dev 4M
	snap_create
	dt_write /dev/mapper/dt0 0 $((4 * CS))
	dmsetup message dt0 0 checkpoint
	view_create
	dt_write /dev/mapper/dt0 0 8
	dt_write /dev/mapper/dt0 $((2 * CS)) 8
	[ "$(dt_status dt0 store_used)" = $((2 * CS)) ]
	dd if=/dev/mapper/dtv of=/dev/null bs=$CB count=4 iflag=direct status=none
	dmsetup message dt0 0 commit
	[ "$(dt_status dt0 snapshot)" = idle ]
	[ "$(dt_status dt0 store_used)" = 0 ]
	run dd if=/dev/mapper/dtv of=/dev/null bs=$CB count=1 iflag=direct status=none
	[ "$status" -ne 0 ]
	dmsetup remove dtv
	# a new checkpoint: a new snapshot; rollback ends it too
	dmsetup message dt0 0 checkpoint
	dt_write /dev/mapper/dt0 0 8
	[ "$(dt_status dt0 store_used)" = $CS ]
	dmsetup message dt0 0 rollback
	[ "$(dt_status dt0 store_used)" = 0 ]
	# and a suspend (deactivation)
	dmsetup message dt0 0 checkpoint
	dt_write /dev/mapper/dt0 0 8
	[ "$(dt_status dt0 snapshot)" = active ]
	dmsetup suspend dt0
	dmsetup resume dt0
	[ "$(dt_status dt0 snapshot)" = idle ]
	[ "$(dt_status dt0 store_used)" = 0 ]
}

@test "a view read racing a write to its cluster returns the content as of the checkpoint" {
	store_dev 4M
	# dt0 over a delay target that holds every read of the data device 1 s
	dmsetup create dtlower --table "0 $LEN linear $DATA_DEV 0"
	local c a n wpid bad=0
	DATA_DEV=/dev/mapper/dtlower snap_create
	dd if=/dev/urandom of=/dev/mapper/dt0 bs=1M count=$((LEN / 2048)) oflag=direct status=none
	dmsetup message dt0 0 checkpoint
	view_create
	dmsetup suspend dtlower
	dmsetup load dtlower --table "0 $LEN delay $DATA_DEV 0 1000 $DATA_DEV 0 0"
	dmsetup resume dtlower
	# clusters 3, 6, 9, ...: each view read covers the written cluster
	# alone, or with its neighbours in one bio (the written one first, in
	# the middle, last)
	for c in 3 6 9 12 15 18; do
		case $c in
		3 | 12) a=$c n=1 ;;
		6 | 15) a=$((c - 1)) n=3 ;;
		*) a=$((c - 1)) n=2 ;;
		esac
		REF=$BATS_TEST_TMPDIR/ref.$c
		dd if="$DATA_DEV" of="$REF" bs=$CB skip=$a count=$n iflag=direct status=none
		# the write first (its copy reads for 1 s), the view read while it waits
		dt_write /dev/mapper/dt0 $((c * CS)) $CS &
		wpid=$!
		sleep 0.3
		cmp <(dd if=/dev/mapper/dtv bs=$((n * CB)) skip=$((a * CB)) count=1 \
			iflag=direct,skip_bytes status=none) "$REF" || bad=$((bad + 1))
		wait "$wpid"
		! cmp -s <(dd if="$DATA_DEV" bs=$CB skip=$c count=1 iflag=direct status=none) \
			<(dd if="$REF" bs=$CB skip=$((c - a)) count=1 status=none) || false
	done
	[ "$bad" -eq 0 ]
	[ "$(dt_status dt0 store_used)" = $((6 * CS)) ]
	# one read over preserved and unpreserved clusters: 5 and 7 from the
	# data device, 6 from the store
	cmp <(dd if=/dev/mapper/dtv bs=$((3 * CB)) skip=$((5 * CB)) count=1 iflag=direct,skip_bytes \
		status=none) "$BATS_TEST_TMPDIR/ref.6"
	# a read that starts inside a preserved cluster and runs on
	cmp <(dd if=/dev/mapper/dtv bs=$((3 * CB / 2)) skip=$((6 * CB + CB / 2)) count=1 \
		iflag=direct,skip_bytes status=none) \
		<(dd if="$BATS_TEST_TMPDIR/ref.6" bs=$((CB / 2)) skip=3 count=3 status=none)
}

@test "a write in flight at the checkpoint is in the snapshot, whole, even when rewritten at once" {
	store_dev 4M
	dmsetup create dtlower --table "0 $LEN linear $DATA_DEV 0"
	local a b cp wa
	DATA_DEV=/dev/mapper/dtlower snap_create
	dd if=/dev/urandom of=/dev/mapper/dt0 bs=1M count=$((LEN / 2048)) oflag=direct status=none
	dmsetup message dt0 0 checkpoint
	dmsetup message dt0 0 commit
	a=$BATS_TEST_TMPDIR/a b=$BATS_TEST_TMPDIR/b
	dd if=/dev/urandom of="$a" bs=$CB count=1 status=none
	dd if=/dev/urandom of="$b" bs=$CB count=1 status=none
	# every write of the data device now takes 1 s
	dmsetup suspend dtlower
	dmsetup load dtlower --table "0 $LEN delay $DATA_DEV 0 0 $DATA_DEV 0 1000"
	dmsetup resume dtlower
	dd if="$a" of=/dev/mapper/dt0 bs=$CB seek=5 oflag=direct status=none &
	wa=$!
	sleep 0.3
	# A is in flight: the checkpoint waits for it; B comes during that wait
	dmsetup message dt0 0 checkpoint &
	cp=$!
	sleep 0.3
	dd if="$b" of=/dev/mapper/dt0 bs=$CB seek=5 oflag=direct status=none
	wait "$wa"
	wait "$cp"
	[ "$(dt_clusters dt0 frozen | dt_ranges)" = 5 ]
	[ "$(dt_clusters dt0 live | dt_ranges)" = 5 ]
	view_create
	cmp <(dd if=/dev/mapper/dtv bs=$CB skip=5 count=1 iflag=direct status=none) "$a"
	cmp <(dd if=/dev/mapper/dt0 bs=$CB skip=5 count=1 iflag=direct status=none) "$b"
	[ "$(dt_status dt0 store_used)" = $CS ]
}
