#!/usr/bin/env bats
# The target passes I/O through to the data device unchanged: writes of any
# size and alignment, discard and write-zeroes, and at a non-zero start.

setup() {
	load helpers
	dt_setup_devices
	LEN=$(blockdev --getsz "$DATA_DEV")
	EXPECTED=$BATS_TEST_TMPDIR/expected.img
	truncate -s "$((LEN * 512))" "$EXPECTED"
}

teardown() {
	dt_cleanup
}

# write_both DEV BYTE_OFFSET LENGTH: write the same random bytes to DEV
# (O_DIRECT when sector aligned, else buffered + fsync) and to $EXPECTED.
write_both() {
	local dev=$1 off=$2 len=$3 chunk=$BATS_TEST_TMPDIR/chunk
	head -c "$len" /dev/urandom >"$chunk"
	if [ $((off % 512)) -eq 0 ] && [ $((len % 512)) -eq 0 ]; then
		dd if="$chunk" of="$dev" bs=512 seek=$((off / 512)) oflag=direct conv=notrunc status=none
	else
		dd if="$chunk" of="$dev" bs=64K seek="$off" oflag=seek_bytes conv=notrunc,fsync status=none
	fi
	dd if="$chunk" of="$EXPECTED" bs=64K seek="$off" oflag=seek_bytes conv=notrunc status=none
}

# same_content A B: byte-equal, reading block devices with O_DIRECT.
same_content() {
	cmp <(dd if="$1" bs=1M iflag=direct status=none) <(dd if="$2" bs=1M status=none)
}

@test "writes of random offsets and sizes reach the data device unchanged" {
	dmsetup create dt0 --table "0 $LEN dirtytrack $MD_DEV $DATA_DEV 128"
	local off len
	for _ in $(seq 12); do
		off=$(( (RANDOM * 32768 + RANDOM) % (LEN - 2048) * 512 ))
		len=$(( (RANDOM % 2048 + 1) * 512 ))
		write_both /dev/mapper/dt0 "$off" "$len"
	done
	# byte-granular, buffered
	write_both /dev/mapper/dt0 $((5 * 65536 - 100)) 333
	write_both /dev/mapper/dt0 $((LEN * 512 - 7)) 7
	same_content "$DATA_DEV" "$EXPECTED"
	same_content /dev/mapper/dt0 "$EXPECTED"
}

@test "the device passes discard and write-zeroes limits through" {
	dmsetup create dt0 --table "0 $LEN dirtytrack $MD_DEV $DATA_DEV 128"
	local q
	q=/sys/block/$(dt_dm_kname dt0)/queue
	echo "discard_max_bytes=$(cat "$q/discard_max_bytes") write_zeroes_max_bytes=$(cat "$q/write_zeroes_max_bytes")"
	[ "$(cat "$q/discard_max_bytes")" -gt 0 ]
	[ "$(cat "$q/write_zeroes_max_bytes")" -gt 0 ]
}

@test "a discard through the target reaches the data device" {
	dmsetup create dt0 --table "0 $LEN dirtytrack $MD_DEV $DATA_DEV 128"
	write_both /dev/mapper/dt0 0 $((4 * 1024 * 1024))
	blkdiscard -o $((1024 * 1024)) -l $((1024 * 1024)) /dev/mapper/dt0
	dd if=/dev/zero of="$EXPECTED" bs=1M seek=1 count=1 conv=notrunc status=none
	same_content "$DATA_DEV" "$EXPECTED"
}

@test "a write-zeroes through the target reaches the data device" {
	dmsetup create dt0 --table "0 $LEN dirtytrack $MD_DEV $DATA_DEV 128"
	write_both /dev/mapper/dt0 0 $((4 * 1024 * 1024))
	blkdiscard -z -o $((2 * 1024 * 1024)) -l $((1024 * 1024)) /dev/mapper/dt0
	dd if=/dev/zero of="$EXPECTED" bs=1M seek=2 count=1 conv=notrunc status=none
	same_content "$DATA_DEV" "$EXPECTED"
}

@test "the target works behind a linear segment at a non-zero start" {
	local head_file=$BATS_TEST_TMPDIR/head.img head_dev start=8192
	dt_loop_device head_dev "$head_file" $((start * 512))
	dmsetup create dt0 <<-TABLE
		0 $start linear $head_dev 0
		$start $LEN dirtytrack $MD_DEV $DATA_DEV 128
	TABLE
	[ "$(dmsetup table dt0 | sed -n 2p)" = "$start $LEN dirtytrack $(dt_majmin "$MD_DEV") $(dt_majmin "$DATA_DEV") 128" ]
	# Offsets into the data device; the dm device sees them shifted by start.
	local off len
	for _ in $(seq 6); do
		off=$(( (RANDOM * 32768 + RANDOM) % (LEN - 2048) * 512 ))
		len=$(( (RANDOM % 2048 + 1) * 512 ))
		head -c "$len" /dev/urandom >"$BATS_TEST_TMPDIR/chunk"
		dd if="$BATS_TEST_TMPDIR/chunk" of=/dev/mapper/dt0 bs=512 seek=$((start + off / 512)) oflag=direct conv=notrunc status=none
		dd if="$BATS_TEST_TMPDIR/chunk" of="$EXPECTED" bs=512 seek=$((off / 512)) conv=notrunc status=none
	done
	same_content "$DATA_DEV" "$EXPECTED"
	# and nothing landed on the linear segment's device
	cmp "$head_file" <(head -c $((start * 512)) /dev/zero)
}
