#!/usr/bin/env bats
# The backup job against the real target: after random workloads, writes
# racing a run, failed and interrupted runs and broken histories, the image
# equals the device byte for byte.
#
# DT_BACKUP_ROUNDS (default 6) random rounds per kernel, split between
# 4 KiB and 64 KiB clusters; DT_BACKUP_ROUNDS=200 is the stress mode.
# DT_BACKUP_SEED fixes the seeds (printed by every round) to replay a failure.

bats_require_minimum_version 1.5.0

setup() {
	load helpers
	load target
	load backup
}

teardown() {
	if [ -n "${BK_MOUNT:-}" ]; then
		umount "$BK_MOUNT" || true
	fi
	dt_cleanup
}

# rounds CLUSTER_SECTORS N: N random rounds, each followed by a run whose
# copy must be exactly the tracked set and whose image must equal the device.
rounds() {
	local cs=$1 n=$2 seed=${DT_BACKUP_SEED:-$RANDOM} round expect
	bk_setup "$cs"
	echo "# cluster_sectors $cs, $n rounds, first seed $seed"
	bk_ok
	[ "$(bk_mode)" = "full (no previous backup)" ]
	bk_assert_equal
	for round in $(seq "$n"); do
		bk_workload $((seed + round))
		if ((round % 5 == 2)); then
			# a clean deactivation keeps the history (rounds 2, 7, 12, ...)
			dmsetup remove dt0
			dt_create dt0 "$cs"
		fi
		expect=$(bk_dirty_bytes)
		bk_ok
		[ "$(bk_mode)" = incremental ]
		if [ "$(bk_copied)" != "$expect" ]; then
			echo "FAIL: round $round copied $(bk_copied) bytes, the live set held $expect"
			return 1
		fi
		bk_assert_equal
		[ "$(dt_status dt0 frozen)" = - ]
		echo "# cluster_sectors $cs: round $round of $n equal (seed $((seed + round)))" >&3
	done
	[ "$(wc -l <"$BK_IMAGE.log")" -eq $((n + 1)) ]
}

@test "random rounds with 4 KiB clusters: the image equals the device after every run" {
	rounds 8 $((${DT_BACKUP_ROUNDS:-6} / 2))
}

@test "random rounds with 64 KiB clusters: the image equals the device after every run" {
	rounds 128 $((${DT_BACKUP_ROUNDS:-6} - ${DT_BACKUP_ROUNDS:-6} / 2))
}

@test "writes running during full and incremental runs: a quiesced final run makes the image equal" {
	bk_setup 16
	fio --output="$BATS_TEST_TMPDIR/fio.log" --filename=/dev/mapper/dt0 --refill_buffers \
		--time_based --runtime=20 --randseed="${DT_BACKUP_SEED:-$RANDOM}" \
		--name=random --rw=randwrite --ioengine=libaio --iodepth=4 --direct=1 \
		--bssplit=512/10:4k/40:64k/40:256k/10 --rate=2m \
		--name=sequential --rw=write --ioengine=psync --bs=128k --rate=1m \
		--name=discard --rw=randtrim --ioengine=psync --bs=64k --rate=256k &
	local fio_pid=$! runs=0
	while kill -0 "$fio_pid" 2>/dev/null; do
		bk_ok
		runs=$((runs + 1))
	done
	wait "$fio_pid"
	echo "# $runs runs while fio was writing"
	[ "$runs" -ge 2 ]
	bk_ok
	[ "$(bk_mode)" = incremental ]
	bk_assert_equal
}

@test "a run that fills the image's file system fails, rolls back, and the next run makes the image equal" {
	DT_BACKUP_DATA_SIZE=16M bk_setup 128
	BK_MOUNT=$BATS_TEST_TMPDIR/small
	mkdir "$BK_MOUNT"
	mount -t tmpfs -o size=8m tmpfs "$BK_MOUNT"
	BK_IMAGE=$BK_MOUNT/dt0.img
	bk_ok
	dd if=/dev/urandom of=/dev/mapper/dt0 bs=1M count=12 seek=2 oflag=direct status=none
	local dirty
	dirty=$(dt_status dt0 dirty)
	bk_run
	[ "$status" -eq 1 ]
	[[ "$bk_line" == *"failed (incremental): copy failed: write $BK_IMAGE at offset "*": No space left on device; checkpoint rolled back, the next run copies these extents again"* ]]
	[ "$(dt_status dt0 frozen)" = - ]
	[ "$(dt_status dt0 dirty)" -ge "$dirty" ]
	grep -q "No space left on device" "$BK_IMAGE.log"
	mount -o remount,size=32m "$BK_MOUNT"
	bk_ok
	[ "$(bk_mode)" = incremental ]
	bk_assert_equal
}

# dt0 over a dm-linear "dtlower" over the data loop device, so the data
# path can be swapped for an error or a delay target under a running dt0.
setup_lower() {
	bk_setup_lower_size=$(blockdev --getsz "$DATA_DEV")
	dmsetup create dtlower --table "0 $bk_setup_lower_size linear $DATA_DEV 0"
	DATA_DEV=/dev/mapper/dtlower dt_create dt0 "$1"
	BK_DIR=$BATS_TEST_TMPDIR/backup
	mkdir -p "$BK_DIR"
	BK_IMAGE=$BK_DIR/dt0.img
}

# lower_table TABLE: load TABLE into dtlower under a live dt0.
lower_table() {
	dmsetup suspend dtlower
	dmsetup load dtlower --table "$1"
	dmsetup resume dtlower
}

@test "a read error fails the run, rolls back, and the next run makes the image equal" {
	dt_setup_devices 16M
	setup_lower 128
	local n=$bk_setup_lower_size
	bk_ok
	dt_write /dev/mapper/dt0 20480 2048
	dt_write /dev/mapper/dt0 28672 8
	lower_table "0 20480 linear $DATA_DEV 0
20480 2048 error
22528 $((n - 22528)) linear $DATA_DEV 22528"
	bk_run
	[ "$status" -eq 1 ]
	[[ "$bk_line" == *"failed (incremental): copy failed: read /dev/mapper/dt0 at offset 10485760: Input/output error; checkpoint rolled back"* ]]
	[ "$(dt_status dt0 frozen)" = - ]
	[ "$(dt_status dt0 dirty)" = 17 ]
	lower_table "0 $n linear $DATA_DEV 0"
	bk_ok
	[ "$(bk_mode)" = incremental ]
	[ "$(bk_copied)" = $((17 * 65536)) ]
	bk_assert_equal
}

@test "SIGTERM during the copy rolls back at once, and the next run makes the image equal" {
	dt_setup_devices 16M
	setup_lower 128
	local n=$bk_setup_lower_size pid i rc=0
	bk_ok
	dd if=/dev/urandom of=/dev/mapper/dt0 bs=1M count=8 oflag=direct status=none
	# reads take 300 ms each from now on
	lower_table "0 $n delay $DATA_DEV 0 300 $DATA_DEV 0 0"
	"$BK_JOB" dt0 "$BK_IMAGE" 2>"$BATS_TEST_TMPDIR/err" &
	pid=$!
	for i in $(seq 200); do
		[ "$(dt_status dt0 frozen)" != - ] && pgrep -x dt-copy-extents >/dev/null && break
		sleep 0.1
	done
	pgrep -x dt-copy-extents
	kill -TERM "$pid"
	wait "$pid" || rc=$?
	cat "$BATS_TEST_TMPDIR/err"
	[ "$rc" -eq 1 ]
	grep -q "failed (incremental): interrupted by SIGTERM; checkpoint rolled back" "$BATS_TEST_TMPDIR/err"
	! pgrep -x dt-copy-extents || false
	[ "$(dt_status dt0 frozen)" = - ]
	[ "$(dt_status dt0 dirty)" = 128 ]
	lower_table "0 $n linear $DATA_DEV 0"
	bk_ok
	[ "$(bk_copied)" = $((8 * 1024 * 1024)) ]
	bk_assert_equal
}

@test "reformatted metadata breaks the history: the run copies everything and says why" {
	DT_BACKUP_DATA_SIZE=4M bk_setup 128
	bk_ok
	bk_workload "${DT_BACKUP_SEED:-$RANDOM}"
	bk_ok
	local old_uuid
	old_uuid=$(dt_status dt0 uuid)
	dmsetup remove dt0
	dd if=/dev/zero of="$MD_DEV" bs=4096 count=1 oflag=direct status=none
	dt_create dt0 128
	[ "$(dt_status dt0 uuid)" != "$old_uuid" ]
	bk_workload $((${DT_BACKUP_SEED:-$RANDOM} + 1))
	bk_ok
	[ "$(bk_mode)" = "full (metadata uuid changed: device $(dt_status dt0 uuid), image has $old_uuid)" ]
	[ "$(bk_copied)" = "$(blockdev --getsize64 /dev/mapper/dt0)" ]
	bk_assert_equal
	bk_workload $((${DT_BACKUP_SEED:-$RANDOM} + 2))
	bk_ok
	[ "$(bk_mode)" = incremental ]
	bk_assert_equal
}

@test "a commit made by someone else breaks the history: full copy" {
	DT_BACKUP_DATA_SIZE=4M bk_setup 128
	bk_ok
	dt_write /dev/mapper/dt0 1000 8
	run_dirtyctl 0 checkpoint dt0
	run_dirtyctl 0 commit dt0
	dt_write /dev/mapper/dt0 5000 8
	bk_ok
	[ "$(bk_mode)" = "full (history does not continue: device sequence 2, image has 1)" ]
	bk_assert_equal
}

@test "a checkpoint the job did not take is refused and left frozen" {
	DT_BACKUP_DATA_SIZE=4M bk_setup 128
	bk_ok
	dt_write /dev/mapper/dt0 1000 8
	run_dirtyctl 0 checkpoint dt0
	bk_run
	[ "$status" -eq 3 ]
	[[ "$bk_line" == *"the device has a checkpoint this job did not take (id "*", 1 clusters frozen)"* ]]
	[ "$(dt_status dt0 frozen)" = 1 ]
	run_dirtyctl 0 rollback dt0
	bk_ok
	[ "$(bk_mode)" = incremental ]
	bk_assert_equal
}

@test "a grown device is backed up incrementally, its new clusters included" {
	dt_setup_devices 4M
	local n
	n=$(blockdev --getsz "$DATA_DEV")
	dt_create dt0 128 $((n / 2))
	BK_DIR=$BATS_TEST_TMPDIR/backup
	mkdir -p "$BK_DIR"
	BK_IMAGE=$BK_DIR/dt0.img
	bk_ok
	dt_write "$DATA_DEV" $((n - 8)) 8 # beyond dt0's end for now
	dmsetup suspend dt0
	dmsetup load dt0 --table "0 $n dirtytrack $MD_DEV $DATA_DEV 128"
	dmsetup resume dt0
	dt_write /dev/mapper/dt0 8 8
	bk_ok
	[ "$(bk_mode)" = "incremental (device grew from $((n * 256)) to $((n * 512)) bytes)" ]
	bk_assert_equal
}

# ---- issue 15: what an administrator relies on ---------------------------

@test "IMAGE may not be the data device, the metadata device, or a device holding dt0" {
	DT_BACKUP_DATA_SIZE=4M bk_setup 128
	mkdir -p "$BK_DIR/st"
	local img
	dmsetup create dt0h --table "0 $(blockdev --getsz /dev/mapper/dt0) linear /dev/mapper/dt0 0"
	for img in "$DATA_DEV" "$MD_DEV" /dev/mapper/dt0h; do
		BK_IMAGE=$img bk_run --state-dir "$BK_DIR/st"
		[ "$status" -eq 1 ]
		[[ "$bk_line" == *"IMAGE $img ("*") is a device under or holding /dev/mapper/dt0: writing it would overwrite the data being backed up" ]]
	done
	BK_IMAGE=/dev/mapper/dt0 bk_run --state-dir "$BK_DIR/st"
	[ "$status" -eq 1 ]
	[[ "$bk_line" == *"IMAGE /dev/mapper/dt0 is the device /dev/mapper/dt0 itself" ]]
	dmsetup remove dt0h
	# nothing was checkpointed or committed
	[ "$(dt_status dt0 frozen)" = - ]
	[ "$(dt_status dt0 sequence)" = 0 ]
}

# fs_sum MOUNTPOINT: a checksum of every file's name and content.
fs_sum() {
	(cd "$1" && find . -type f ! -path './lost+found/*' -print0 | sort -z |
		xargs -0 -r sha256sum | sha256sum)
}

@test "restore: an ext4 file system written back checks clean, and the next run is exact" {
	bk_setup 8
	local mnt=$BATS_TEST_TMPDIR/mnt size then
	mkdir -p "$mnt"
	size=$(blockdev --getsize64 /dev/mapper/dt0)
	mkfs.ext4 -q -F /dev/mapper/dt0
	mount /dev/mapper/dt0 "$mnt"
	BK_MOUNT=$mnt
	head -c 3M /dev/urandom >"$mnt/big"
	for i in $(seq 50); do echo "file $i" >"$mnt/f$i"; done
	then=$(fs_sum "$mnt")
	umount "$mnt"
	BK_MOUNT=
	bk_ok
	bk_assert_equal
	# changes that the backup does not have
	mount /dev/mapper/dt0 "$mnt"
	BK_MOUNT=$mnt
	rm "$mnt"/f1*
	head -c 2M /dev/urandom >"$mnt/big"
	head -c 1M /dev/urandom >"$mnt/new"
	# a mounted device is refused (the copier opens it O_EXCL)
	run --separate-stderr "$BK_JOB" --restore "$BK_IMAGE" dt0
	echo "$stderr"
	[ "$status" -eq 1 ]
	[[ "$stderr" == *"restore failed: cannot open /dev/mapper/dt0: Device or resource busy"* ]]
	umount "$mnt"
	BK_MOUNT=
	run --separate-stderr "$BK_JOB" --restore "$BK_IMAGE" dt0
	echo "$output$stderr"
	[ "$status" -eq 0 ]
	[[ "$output" == *": restored $size bytes from $BK_IMAGE, "* ]]
	bk_assert_equal
	e2fsck -fn /dev/mapper/dt0
	mount /dev/mapper/dt0 "$mnt"
	BK_MOUNT=$mnt
	[ "$(fs_sum "$mnt")" = "$then" ]
	# the restore marked every cluster: the next run copies them all
	[ "$(dt_status dt0 dirty)" = "$(dt_status dt0 clusters)" ]
	head -c 1M /dev/urandom >"$mnt/after"
	umount "$mnt"
	BK_MOUNT=
	bk_ok
	[ "$(bk_mode)" = incremental ]
	[ "$(bk_copied)" = "$size" ]
	bk_assert_equal
	# and tracking goes on: a small change, a small incremental run
	dt_write /dev/mapper/dt0 96 8
	bk_ok
	[ "$(bk_copied)" = 4096 ]
	bk_assert_equal
}

@test "--keep N keeps N reflink restore points on XFS, each the image of its time" {
	DT_BACKUP_DATA_SIZE=8M bk_setup 8
	local xfs_dev i rps
	dt_loop_device xfs_dev "$BATS_TEST_TMPDIR/xfs.raw" 320M
	modprobe xfs 2>/dev/null || true
	mkfs.xfs -q -m reflink=1 "$xfs_dev"
	mkdir -p "$BK_DIR/xfs"
	mount "$xfs_dev" "$BK_DIR/xfs"
	BK_MOUNT=$BK_DIR/xfs
	BK_IMAGE=$BK_DIR/xfs/dt0.img
	bk_ok --keep 2
	[ "$(bk_mode)" = "full (no previous backup)" ]
	for i in 1 2 3; do
		cp "$BK_IMAGE" "$BATS_TEST_TMPDIR/before-$i"
		dt_write /dev/mapper/dt0 $((i * 1000)) 64
		sleep 1.1 # restore points are named by the second
		bk_ok --keep 2
		[[ "$bk_line" == *", kept dt0.img.rp-"*"Z, 1 extent, "* ]]
		bk_assert_equal
	done
	rps=("$BK_IMAGE".rp-*)
	[ "${#rps[@]}" -eq 2 ]
	cmp "${rps[0]}" "$BATS_TEST_TMPDIR/before-2"
	cmp "${rps[1]}" "$BATS_TEST_TMPDIR/before-3"
	[ "$(stat -c %a "${rps[1]}")" = 600 ]
	# they share extents with the image
	filefrag -v "${rps[1]}" | grep -q shared
	# a restore point is restored like an image
	run "$BK_JOB" --restore "${rps[1]}" dt0
	[ "$status" -eq 0 ] || { echo "$output"; false; }
	cmp <(bk_read_device) "$BATS_TEST_TMPDIR/before-3"
}

@test "--keep on tmpfs is refused before any checkpoint" {
	DT_BACKUP_DATA_SIZE=4M bk_setup 128
	bk_ok
	dt_write /dev/mapper/dt0 1000 8
	bk_run --keep 3
	[ "$status" -eq 1 ]
	[[ "$bk_line" == *"--keep: the file system of $BK_IMAGE cannot share extents (cp --reflink=always: "*"); keep restore points on XFS or btrfs, or run without --keep" ]]
	[ "$(dt_status dt0 frozen)" = - ]
	[ "$(dt_status dt0 sequence)" = 1 ]
}

@test "with a snapshot store, writes during an incremental run: the image is the device as of the checkpoint, point-in-time" {
	dt_setup_devices 32M
	dt_loop_device STORE_DEV "$BATS_TEST_TMPDIR/store.img" 32M
	dt_create dt0 128 "" 2 snapshot_store "$STORE_DEV"
	BK_DIR=$BATS_TEST_TMPDIR/backup
	mkdir -p "$BK_DIR"
	BK_IMAGE=$BK_DIR/dt0.img
	BK_WORKLOADS=0
	dd if=/dev/urandom of=/dev/mapper/dt0 bs=1M count=32 oflag=direct status=none
	bk_ok
	[[ $bk_line == *": full (no previous backup), 1 extent, "*", point-in-time (snapshot store $STORE_DEV ("*"))" ]]
	fio --name=f --filename=/dev/mapper/dt0 --rw=randwrite --bs=64k --direct=1 \
	    --number_ios=200 --refill_buffers --randrepeat=0 --output=/dev/null
	# the quiet device just before the checkpoint
	dd if=/dev/mapper/dt0 of="$BATS_TEST_TMPDIR/ref" bs=1M iflag=direct status=none
	dt_writer_dirtyctl "$BATS_TEST_TMPDIR"
	DIRTYCTL=$BATS_TEST_TMPDIR/dirtyctl bk_ok
	dt_stop_writer "$BATS_TEST_TMPDIR"
	[[ $bk_line == *": incremental, "*", point-in-time (snapshot store $STORE_DEV ("*"))" ]]
	[ "$(dt_status dt0 snapshot)" = idle ]
	! dmsetup info dt0-view >/dev/null 2>&1
	# the writer really raced the copy: the device moved on, the image did not
	! cmp -s /dev/mapper/dt0 "$BK_IMAGE"
	cmp "$BATS_TEST_TMPDIR/ref" "$BK_IMAGE"
	# the next, quiet run catches up with what was written during the last
	bk_ok
	bk_assert_equal
}
