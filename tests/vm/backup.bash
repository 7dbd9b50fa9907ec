# Helpers for tests/vm/60-backup.bats; loaded after helpers.bash and
# target.bash. The backup job runs against dt0 and an image on tmpfs.

BK_JOB=${BK_JOB:-/dt/scripts/dirtytrack-backup}

# bk_setup CLUSTER_SECTORS [LENGTH]: dt0 over fresh loop devices (data size
# $DT_BACKUP_DATA_SIZE, default 32M) and an image path in BK_IMAGE.
bk_setup() {
	dt_setup_devices "${DT_BACKUP_DATA_SIZE:-16M}"
	dt_create dt0 "$@"
	BK_DIR=$BATS_TEST_TMPDIR/backup
	mkdir -p "$BK_DIR"
	BK_IMAGE=$BK_DIR/dt0.img
	BK_WORKLOADS=0
}

# bk_run [OPTIONS...]: run the job on dt0 and BK_IMAGE under bats' run;
# its summary in bk_line: the last stdout line on success, the last stderr
# line on failure.
bk_run() {
	echo "\$ dirtytrack-backup $* dt0 $BK_IMAGE"
	run --separate-stderr timeout 600 "$BK_JOB" "$@" dt0 "$BK_IMAGE"
	[ -z "$output" ] || echo "$output"
	[ -z "$stderr" ] || echo "$stderr"
	if [ "$status" -eq 0 ]; then
		bk_line=$(tail -n 1 <<<"$output")
	else
		bk_line=$(tail -n 1 <<<"$stderr")
	fi
}

# bk_ok [OPTIONS...]: bk_run that must succeed.
bk_ok() {
	bk_run "$@"
	if [ "$status" -ne 0 ]; then
		echo "FAIL: dirtytrack-backup exited $status"
		return 1
	fi
}

# bk_copied: the bytes the last run copied, from its summary.
bk_copied() {
	sed -n 's/.*, \([0-9]*\) bytes copied, .*/\1/p' <<<"$bk_line"
}

# bk_mode: what the last summary says after the image name ("incremental",
# "full (no previous backup)", ...), up to the extent count.
bk_mode() {
	sed -n 's/^dirtytrack-backup: [^ ]* -> [^ ]*: \(.*\), [0-9]* extents\{0,1\}, .*/\1/p' <<<"$bk_line"
}

# bk_read_device: the device's bytes, read with O_DIRECT (independent of the
# page cache and of the job's copier).
bk_read_device() {
	dd if=/dev/mapper/dt0 bs=1M iflag=direct status=none
}

# bk_assert_equal: the image equals the device byte for byte; on a
# difference, name the first differing clusters.
bk_assert_equal() {
	local size cs diff
	size=$(blockdev --getsize64 /dev/mapper/dt0)
	if [ -f "$BK_IMAGE" ] && [ "$(stat -c %s "$BK_IMAGE")" != "$size" ]; then
		echo "FAIL: image is $(stat -c %s "$BK_IMAGE") bytes, device $size"
		return 1
	fi
	if cmp -n "$size" <(bk_read_device) "$BK_IMAGE" >/dev/null; then
		return 0
	fi
	cs=$(($(dt_status dt0 cluster_sectors) * 512))
	diff=$(cmp -l -n "$size" <(bk_read_device) "$BK_IMAGE" |
		awk -v cs="$cs" '{ c = int(($1 - 1) / cs); if (!(c in seen)) { seen[c]; n++; if (n <= 10) l = l " " c } }
		END { print n " clusters differ, first:" l }')
	echo "FAIL: image differs from the device: $diff"
	return 1
}

# bk_dirty_bytes: what the live set covers, in bytes (the device size must
# be a multiple of the cluster size).
bk_dirty_bytes() {
	echo $(($(dt_status dt0 dirty) * $(dt_status dt0 cluster_sectors) * 512))
}

# bk_workload SEED: one random round of changes to dt0, reproducible from
# SEED: random writes of mixed sizes (O_DIRECT, libaio), a sequential
# buffered stretch with fsync, random discards, then a write-zeroes and a
# discard of random unaligned extents and sometimes a write to the last
# sectors. Prints what it did.
bk_workload() {
	local seed=$1 dev=/dev/mapper/dt0 size sectors off len log
	size=$(blockdev --getsize64 $dev)
	sectors=$((size / 512))
	RANDOM=$seed
	BK_WORKLOADS=$((BK_WORKLOADS + 1))
	off=$(((RANDOM * 32768 + RANDOM) % (sectors - 4096) * 512))
	len=$(((RANDOM % 32 + 1) * 64 * 1024))
	log=$BATS_TEST_TMPDIR/fio.log
	if ! fio --output="$log" --randseed="$seed" --filename=$dev --refill_buffers \
		--name=random --rw=randwrite --ioengine=libaio --iodepth=8 --direct=1 \
		--bssplit=512/15:4k/35:12k/20:64k/20:256k/10 --number_ios=$((RANDOM % 90 + 10)) \
		--name=sequential --rw=write --ioengine=psync --direct=0 --end_fsync=1 \
		--bs=64k --offset="$off" --size="$len" \
		--name=discard --rw=randtrim --ioengine=psync --bs=16k --number_ios=$((RANDOM % 32 + 1)); then
		cat "$log"
		return 1
	fi
	echo "# round $BK_WORKLOADS (seed $seed): fio random + sequential $len at $off + discards"
	bk_random_extent 4096
	echo "# write-zeroes $bk_off +$bk_len"
	blkdiscard -z -o "$bk_off" -l "$bk_len" $dev || return 1
	bk_random_extent 4096
	echo "# discard $bk_off +$bk_len"
	blkdiscard -o "$bk_off" -l "$bk_len" $dev || return 1
	if ((RANDOM % 4 == 0)); then
		echo "# write to the last sectors"
		dt_write $dev $((sectors - RANDOM % 16 - 1)) 1 || return 1
	fi
}

# bk_random_extent MAX_SECTORS: a random sector-aligned extent inside dt0 in
# bk_off/bk_len (bytes), of 1 to MAX_SECTORS sectors.
bk_random_extent() {
	local sectors
	sectors=$(($(blockdev --getsize64 /dev/mapper/dt0) / 512))
	bk_len=$(((RANDOM % $1 + 1) * 512))
	bk_off=$(((RANDOM * 32768 + RANDOM) % (sectors - bk_len / 512) * 512))
}
