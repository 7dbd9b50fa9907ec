#!/usr/bin/env bats
# crash_safe mode across real guest crashes: a workload of random writes,
# O_DSYNC writes, discards and write-zeroes runs while checkpoints are
# rolled back or committed after a backup copy, and the guest is crashed
# (sysrq c) at a random moment. On the host, dt-logcheck then checks the
# metadata and data disks the crash left against the last committed
# backup: every changed data sector lies in a cluster the stored bitmaps
# mark. The next boot loads exactly those bitmaps, with health ok, and
# crashes again; a last boot checks that too.
#
#   /dev/vda  metadata (1 MiB)       /dev/vdb  data (64 MiB, 4 KiB clusters)
#   /dev/vdc  backups: two slots of a 4 KiB header ("dt-slot seq=N") at
#             SLOT_MB * slot MiB and the copy 1 MiB after it; the backup for
#             sequence N is in slot N % 2 (the initial zero image for 0).
#
# Runs on the host; scripts/check sets DT_KVER.

setup_file() {
	ROOT=$(cd "$BATS_TEST_DIRNAME/../.." && pwd)
	export ROOT
	make -s -C "$ROOT/tests/tools" OUT="$BATS_FILE_TMPDIR" >&2
	export CHECKER=$BATS_FILE_TMPDIR/dt-logcheck
}

setup() {
	MD=$BATS_TEST_TMPDIR/md.img
	DATA=$BATS_TEST_TMPDIR/data.img
	BACKUP=$BATS_TEST_TMPDIR/backup.img
	truncate -s 1M "$MD"
	truncate -s 64M "$DATA"
	truncate -s $((2 * SLOT_MB))M "$BACKUP"
}

DS=131072
SLOT_MB=66

vm() {
	"$ROOT/scripts/vm-run" --kernel "${DT_KVER:-6.12}" --timeout 600 \
		--disk "$MD" --disk "$DATA" --disk "$BACKUP" -- "$@"
}

# Guest: activate, print what was loaded, then (with CRASH_AFTER set) run
# the workload and crash after CRASH_AFTER seconds.
# shellcheck disable=SC2016 # expanded in the guest, by design
GUEST='set -e
. /dt/tests/vm/target.bash
dmsetup create dt --table "0 '$DS' dirtytrack /dev/vda /dev/vdb 8 1 crash_safe"
echo "STATUS $(dmsetup status dt)"
echo "LOADED-LIVE $(dt_clusters dt live | dt_ranges)"
if dmsetup message dt 0 bitmap frozen 0 >/dev/null 2>&1; then
	echo "LOADED-FROZEN $(dt_clusters dt frozen | dt_ranges)"
fi
[ -n "${CRASH_AFTER:-}" ] || { dmsetup remove dt; echo CLEAN; exit 0; }
# a backup the crash interrupted is retried later: roll its checkpoint back
if dmsetup message dt 0 rollback 2>/dev/null; then echo "ROLLED-BACK loaded"; fi
fio --output=/dev/null --eta=never --randseed=$SEED --filename=/dev/mapper/dt \
	--refill_buffers --time_based --runtime=300 \
	--name=aio --rw=randwrite --ioengine=libaio --iodepth=4 --direct=1 --rate_iops=300 \
		--bssplit=512/10:4k/60:64k/25:256k/5 --random_distribution=zipf:1.2 \
	--name=fua --rw=randwrite --ioengine=psync --direct=1 --sync=1 --bs=4k --rate_iops=50 \
	--name=trim --rw=randtrim --ioengine=psync --bs=64k --thinktime=50000 &
cycles() {
	local k=0 next slot
	while :; do
		k=$((k + 1))
		sleep 0.$((RANDOM % 5))
		dmsetup message dt 0 checkpoint
		if [ $((RANDOM % 2)) = 1 ]; then
			# a backup: the whole device after the checkpoint, then commit
			next=$(($(dmsetup status dt | awk "{ print \$11 }") + 1))
			slot=$((next % 2))
			dd if=/dev/zero of=/dev/vdc bs=4k count=1 seek=$((slot * '$SLOT_MB' * 256)) oflag=direct status=none
			dd if=/dev/mapper/dt of=/dev/vdc bs=1M count=64 seek=$((slot * '$SLOT_MB' + 1)) iflag=direct oflag=direct status=none
			echo "dt-slot seq=$next" | dd of=/dev/vdc bs=4k seek=$((slot * '$SLOT_MB' * 256)) conv=sync oflag=direct status=none
			dmsetup message dt 0 commit
			echo "COMMITTED $next"
		else
			dmsetup message dt 0 rollback
			echo "ROLLED-BACK"
		fi
	done
}
cycles &
# write-zeroes bios too (virtio-blk has them): 4-64 KiB at random
zeroes() {
	while :; do
		sleep 0.$((RANDOM % 10))
		blkdiscard -z -o $(((RANDOM % 16368) * 4096)) -l $(((1 + RANDOM % 16) * 4096)) /dev/mapper/dt
	done
}
zeroes &
sleep $CRASH_AFTER
echo "CRASHING $(dmsetup status dt)"
sleep 0.5	# let the console drain; the workload goes on
echo c >/proc/sysrq-trigger
sleep 30
echo "not crashed"
'

# ranges_to_list: "0-3 7" on stdin -> one cluster index per line.
ranges_to_list() {
	tr ' ' '\n' | awk -F- 'NF == 1 && $1 != "" { print $1 } NF == 2 { for (c = $1; c <= $2; c++) print c }'
}

# check_crash_images ROUND: the invariant on the disks a crash left; leaves
# the clusters that must be marked in changed.ROUND, the marked ones in
# marked.ROUND.
check_crash_images() {
	local round=$1 seq slot ref=() hdr
	seq=$(od -An -tu8 -j32 -N8 "$MD" | tr -d ' ')
	if [ "$seq" != 0 ]; then
		slot=$((seq % 2))
		hdr=$(dd if="$BACKUP" bs=4k count=1 skip=$((slot * SLOT_MB * 256)) status=none | tr -d '\0')
		echo "# sequence $seq: backup slot $slot says '$hdr'"
		[ "$hdr" = "dt-slot seq=$seq" ]
		dd if="$BACKUP" of="$BATS_TEST_TMPDIR/ref.img" bs=1M count=64 \
			skip=$((slot * SLOT_MB + 1)) status=none
		ref=(--ref "$BATS_TEST_TMPDIR/ref.img")
	fi
	run "$CHECKER" image --md "$MD" --data "$DATA" "${ref[@]}" \
		--changed-out "$BATS_TEST_TMPDIR/changed.$round" \
		--marked-out "$BATS_TEST_TMPDIR/marked.$round"
	echo "$output"
	echo "# round $round: $(tr '\n' ';' <<<"$output")" >&3
	[ "$status" -eq 0 ]
	[[ "$output" == "metadata: valid, "* ]]
	[[ "$output" == *"violations: 0 clusters"* ]]
}

# check_loaded ROUND: the boot after crash ROUND loaded exactly the stored
# bitmaps (a superset of the changed clusters), with health ok.
check_loaded() {
	local round=$1
	local loaded=$BATS_TEST_TMPDIR/loaded.$round
	[[ "$output" == *"STATUS 0 $DS dirtytrack 8 16384 "*" crash_safe ok "* ]]
	{
		sed -n 's/^LOADED-LIVE //p' <<<"$output" | ranges_to_list
		sed -n 's/^LOADED-FROZEN //p' <<<"$output" | ranges_to_list
	} | LC_ALL=C sort -u >"$loaded"
	LC_ALL=C sort -u "$BATS_TEST_TMPDIR/marked.$round" | cmp - "$loaded"
	missing=$(LC_ALL=C sort -u "$BATS_TEST_TMPDIR/changed.$round" | LC_ALL=C comm -23 - "$loaded" | head)
	[ -z "$missing" ] || { echo "changed but not loaded as dirty: $missing"; false; }
}

crash_round() {
	local round=$1 after
	after=$((2 + RANDOM % 8)).$((RANDOM % 10))
	echo "# round $round: crash after $after s" >&3
	run vm "SEED=$RANDOM CRASH_AFTER=$after; $GUEST"
	echo "$output"
	echo "# round $round: $(grep -c '^COMMITTED' <<<"$output") commits, $(grep -c '^ROLLED-BACK' <<<"$output") rollbacks before the crash" >&3
	[ "$status" -eq 126 ]
	[[ "$output" != *"not crashed"* ]]
	# the crash was ours, not a kernel bug on the way
	[[ "$output" == *"Kernel panic - not syncing: sysrq triggered crash"* ]]
}

@test "guest crashes mid-workload: every changed data sector is in a stored dirty cluster, health stays ok" {
	crash_round 1
	[[ "$output" == *"STATUS 0 $DS dirtytrack 8 16384 0 - crash_safe ok "* ]]
	check_crash_images 1

	crash_round 2
	check_loaded 1
	check_crash_images 2

	run vm "$GUEST"
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == *CLEAN* ]]
	check_loaded 2
}
