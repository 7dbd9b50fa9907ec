#!/usr/bin/env bats
# crash_safe mode, proved with dm-log-writes (the kernel's crash-consistency
# logger, as xfstests uses it): the metadata and the data of a crash_safe
# target are two linear slices of one logged device, a workload runs with
# checkpoints, rollbacks, commits, a suspend/resume, a table reload and a
# clear, and the host replays the log entry by entry with
# tests/tools/dt-logcheck. At every flush/FUA point (and every entry
# boundary in between) every data sector that differs from the last backup
# must lie in a cluster that the replayed metadata marks dirty.
#
#   /dev/vda  BASE: metadata slice (sectors 0-2047), data slice from 2048
#   /dev/vdb  LOG:  the dm-log-writes log
#
# The last backup: the initial (zero) image for the first sequence; after a
# commit (or clear) the data as logged at the "ref-*" mark the workload
# writes right after the checkpoint that commit ends (or right before the
# clear). Runs on the host; scripts/check sets DT_KVER.

setup_file() {
	ROOT=$(cd "$BATS_TEST_DIRNAME/../.." && pwd)
	export ROOT
	make -s -C "$ROOT/tests/tools" OUT="$BATS_FILE_TMPDIR" >&2
	export CHECKER=$BATS_FILE_TMPDIR/dt-logcheck
	# Kept for the negative control (second test) of this file.
	export BASE=$BATS_FILE_TMPDIR/base.img LOG=$BATS_FILE_TMPDIR/log.img
}

# 160 MiB and 3 sectors of data at 4 KiB clusters: 40961 clusters, two
# bitmap blocks, a clipped last cluster.
MD_SECTORS=2048
DS=327683

vm() {
	"$ROOT/scripts/vm-run" --kernel "${DT_KVER:-6.12}" --timeout 600 "$@"
}

replay() {
	"$CHECKER" replay --md 0:$MD_SECTORS --data $MD_SECTORS:$DS --cluster-sectors 8 \
		--dev-sectors $((MD_SECTORS + DS + 5)) "$@" "$LOG"
}

# shellcheck disable=SC2016 # expanded in the guest, by design
GUEST='set -e
modprobe dm-log-writes
N=$(blockdev --getsz /dev/vda)
dmsetup create lw --table "0 $N log-writes /dev/vda /dev/vdb"
dmsetup create dtmd --table "0 '$MD_SECTORS' linear /dev/mapper/lw 0"
dmsetup create dtdata --table "0 '$DS' linear /dev/mapper/lw '$MD_SECTORS'"
dmsetup create dt --table "0 '$DS' dirtytrack /dev/mapper/dtmd /dev/mapper/dtdata 8 1 crash_safe"
DEV=/dev/mapper/dt
lwmark() { dmsetup message lw 0 mark "$1"; }
status() { echo "STATUS $(dmsetup status dt)"; }
status
# Writes of every kind while checkpoints come and go: plain direct writes
# (logged at the next flush), O_DSYNC ones (FUA, logged as they complete),
# fsyncs (flushes) and discards.
fio --output=/dev/null --eta=never --randseed=$SEED --filename=$DEV --size=160M --refill_buffers \
	--time_based --runtime=$RUNTIME \
	--name=aio --rw=randwrite --ioengine=libaio --iodepth=8 --direct=1 \
		--bssplit=512/10:4k/50:64k/30:256k/10 --random_distribution=zipf:1.1 \
	--name=fua --rw=randwrite --ioengine=psync --direct=1 --sync=1 --bs=4k \
	--name=flush --rw=randwrite --ioengine=psync --direct=1 --bs=16k --fsync=8 \
	--name=trim --rw=randtrim --ioengine=psync --bs=64k --thinktime=20000 &
fio_pid=$!
k=0
while kill -0 $fio_pid 2>/dev/null; do
	k=$((k + 1))
	sleep 0.$((RANDOM % 5))
	dmsetup message dt 0 checkpoint
	lwmark ref-checkpoint-$k
	sleep 0.$((RANDOM % 5))
	case $((k % 4)) in
	1) dmsetup message dt 0 rollback ;;
	2) dmsetup message dt 0 commit ;;
	3) dmsetup suspend dt; dmsetup resume dt; dmsetup message dt 0 commit ;;
	0) dmsetup table dt | dmsetup load dt; dmsetup resume dt; dmsetup message dt 0 rollback ;;
	esac
	dmsetup message dt 0 mark $((RANDOM * 8)) 16
done
wait $fio_pid
echo "CYCLES $k"
# the clipped last cluster, and zeroes written the way BLKZEROOUT falls back
dd if=/dev/urandom of=$DEV bs=512 seek=$(('$DS' - 3)) count=3 oflag=direct status=none
blkdiscard -z -o $((7 << 20)) -l $((3 << 20)) $DEV
status
# A clear of the quiesced device, then one more backup cycle. The flush
# first: dm-log-writes logs plain writes only at the next flush, and the
# backup a clear stands for has every write that completed before it.
sync $DEV
lwmark ref-clear
dmsetup message dt 0 clear
dd if=/dev/urandom of=$DEV bs=4k seek=1000 count=64 oflag=direct status=none
dmsetup message dt 0 checkpoint
lwmark ref-last
dd if=/dev/urandom of=$DEV bs=4k seek=3000 count=16 oflag=direct,dsync status=none
dmsetup message dt 0 commit
status
dmsetup remove dt
dmsetup remove dtdata
dmsetup remove dtmd
# dm-log-writes counts an entry when its thread has logged it, after the
# write completed: wait until the count stops moving
lw= prev=
for _ in $(seq 60); do
	lw=$(dmsetup status lw)
	[ "$lw" != "$prev" ] || break
	prev=$lw
	sleep 0.5
done
echo "LW $lw"
dmsetup remove lw
dmesg | grep -E "log-writes|dirtytrack" || true
'

@test "dm-log-writes replay: at every flush/FUA point each changed data sector lies in a marked cluster" {
	# whole 4 KiB blocks for cache=none: 5 sectors past the data slice
	truncate -s $(((MD_SECTORS + DS + 5) * 512)) "$BASE"
	truncate -s 2G "$LOG"
	local start=$SECONDS
	run vm --disk "$BASE" --disk "$LOG" -- "SEED=$RANDOM RUNTIME=${DT_LOG_RUNTIME:-20}; $GUEST"
	echo "$output"
	echo "# guest run: $((SECONDS - start)) s, $(grep -c . <<<"$output") lines" >&3
	[ "$status" -eq 0 ]
	touch "$BATS_FILE_TMPDIR/log.done"
	[[ "$output" == *"STATUS 0 $DS dirtytrack 8 40961 "*" crash_safe ok "* ]]
	cycles=$(sed -n 's/^CYCLES //p' <<<"$output")
	[ "$cycles" -ge 4 ]
	# dm-log-writes never stopped logging (it does on a failed allocation)
	[[ "$output" == *"LW 0 "*" log-writes "* ]]
	[[ "$output" != *logging_disabled* ]]
	lw_entries=$(sed -n 's/^LW 0 [0-9]* log-writes \([0-9]*\) .*/\1/p' <<<"$output")
	# the target's own view at the end: "<dirty> - crash_safe ok <uuid> <sequence>"
	read -r end_dirty end_seq < <(grep '^STATUS ' <<<"$output" | tail -n 1 | awk '{ print $7, $12 }')

	start=$SECONDS
	run replay --final "$BASE"
	echo "$output"
	echo "# replay: $((SECONDS - start)) s" >&3
	grep -E '^(log|entries|superblock|final metadata|replay points checked|violations|final image):' <<<"$output" |
		sed 's/^/# /' >&3
	[ "$status" -eq 0 ]
	# the whole log: every entry dm-log-writes counted, and its end mark
	[[ "$output" == *"log: $((lw_entries + 1)) entries, "*", last mark 'dm-log-writes-end'"* ]]
	[[ "$output" == *"final image: equal to the replay"* ]]
	[[ "$output" == *"violations: 0 at flush/FUA points, 0 at all points, 0 clusters"* ]]
	# the log really has the orderings the proof rests on
	[[ "$output" =~ entries:\ [1-9][0-9]*\ metadata\ writes,\ [1-9][0-9]*\ data\ writes.*\ [1-9][0-9]*\ discards,\ [1-9][0-9]*\ FLUSH,\ [1-9][0-9]*\ FUA ]]
	# every commit and the clear moved the reference; frozen sets were seen
	[[ "$output" =~ [1-9][0-9]*\ reference\ changes ]]
	[[ "$output" =~ \([1-9][0-9]*\ with\ a\ frozen\ set\) ]]
	[[ "$output" == *" 0 corrupt"* ]]
	# the replayed metadata ends as the target left it (clean removal)
	[[ "$output" == *"final metadata: valid, sequence $end_seq, flags 0x1, live $end_dirty, frozen 0"* ]]
	points=$(sed -n 's/^replay points checked: \([0-9]*\) flush.*/\1/p' <<<"$output")
	[ "$points" -ge 100 ]
}

@test "negative controls: the same replay finds violations without the bitmap writes, or with them one entry late" {
	[ -e "$BATS_FILE_TMPDIR/log.done" ] || skip "the replay test did not leave a log"
	run replay --drop-bitmap-writes
	echo "$output" | tail -n 8
	[ "$status" -eq 1 ]
	[[ "$output" == *"VIOLATION at replay point after entry "* ]]
	# one entry of reordering between a bitmap write and the data is seen
	run replay --delay-metadata 1
	echo "$output" | tail -n 8
	[ "$status" -eq 1 ]
	[[ "$output" =~ violations:\ [1-9][0-9]*\ at\ flush/FUA\ points ]]
}

# Growth with a frozen set: the target starts at 64 MiB (16384 clusters, a
# one-block bitmap: live area block 1, frozen area block 2) and grows to the
# whole data slice (two-block bitmaps: live 1-2, frozen 3-4), so the new
# live area is written over the old frozen area. The frozen set holds every
# fourth block of the small device; the live set other blocks; after the
# growth the new clusters are written too, then the checkpoint is committed.
DS_SMALL=131072

# shellcheck disable=SC2016 # expanded in the guest, by design
GUEST_GROW='set -e
modprobe dm-log-writes
N=$(blockdev --getsz /dev/vda)
dmsetup create lw --table "0 $N log-writes /dev/vda /dev/vdb"
dmsetup create dtmd --table "0 '$MD_SECTORS' linear /dev/mapper/lw 0"
dmsetup create dtdata --table "0 '$DS' linear /dev/mapper/lw '$MD_SECTORS'"
table() { echo "0 $1 dirtytrack /dev/mapper/dtmd /dev/mapper/dtdata 8 1 crash_safe"; }
dmsetup create dt --table "$(table '$DS_SMALL')"
DEV=/dev/mapper/dt
lwmark() { dmsetup message lw 0 mark "$1"; }
status() { echo "STATUS $(dmsetup status dt)"; }
fio --output=/dev/null --name=f --filename=$DEV --rw=write:12k --bs=4k --direct=1 \
	--ioengine=libaio --iodepth=16 --size=64M
dmsetup message dt 0 checkpoint
lwmark ref-checkpoint
fio --output=/dev/null --name=l --filename=$DEV --rw=write:28k --bs=4k --direct=1 \
	--ioengine=libaio --iodepth=16 --offset=8k --size=63M
status
lwmark grow
dmsetup reload dt --table "$(table '$DS')"
dmsetup resume dt
lwmark grown
status
dd if=/dev/urandom of=$DEV bs=4k seek=20000 count=64 oflag=direct status=none
dd if=/dev/urandom of=$DEV bs=512 seek=$(('$DS' - 3)) count=3 oflag=direct,dsync status=none
dmsetup message dt 0 commit
status
dmsetup remove dt
dmsetup remove dtdata
dmsetup remove dtmd
lw= prev=
for _ in $(seq 60); do
	lw=$(dmsetup status lw)
	[ "$lw" != "$prev" ] || break
	prev=$lw
	sleep 0.5
done
echo "LW $lw"
dmsetup remove lw
dmesg | grep -E "log-writes|dirtytrack" || true
'

@test "dm-log-writes replay: growing with a frozen set keeps every point covered" {
	local gbase=$BATS_TEST_TMPDIR/grow-base.img glog=$BATS_TEST_TMPDIR/grow-log.img
	truncate -s $(((MD_SECTORS + DS + 5) * 512)) "$gbase"
	truncate -s 1G "$glog"
	run vm --disk "$gbase" --disk "$glog" -- "$GUEST_GROW"
	echo "$output"
	[ "$status" -eq 0 ]
	# before the growth: a frozen set of the 16384 clusters' every fourth
	[[ "$output" == *"STATUS 0 $DS_SMALL dirtytrack 8 16384 "*" 4096 crash_safe ok "* ]]
	[[ "$output" == *"STATUS 0 $DS dirtytrack 8 40961 "*" 4096 crash_safe ok "* ]]
	[[ "$output" == *"data grew from $DS_SMALL to $DS sectors"* ]]
	[[ "$output" != *logging_disabled* ]]
	lw_entries=$(sed -n 's/^LW 0 [0-9]* log-writes \([0-9]*\) .*/\1/p' <<<"$output")

	run "$CHECKER" replay --md 0:$MD_SECTORS --data $MD_SECTORS:$DS --cluster-sectors 8 \
		--dev-sectors $((MD_SECTORS + DS + 5)) --final "$gbase" --grown-from $DS_SMALL "$glog"
	echo "$output"
	grep -E '^(log|entries|superblock|grown|final metadata|replay points checked|violations|final image):' <<<"$output" |
		sed 's/^/# /' >&3
	[ "$status" -eq 0 ]
	[[ "$output" == *"log: $((lw_entries + 1)) entries, "* ]]
	[[ "$output" == *"final image: equal to the replay"* ]]
	[[ "$output" == *"violations: 0 at flush/FUA points, 0 at all points, 0 clusters"* ]]
	# the replay saw the old geometry with the frozen set, then the new one
	[[ "$output" =~ points\ with\ the\ old\ geometry:\ [1-9][0-9]*\ valid ]]
	[[ "$output" =~ \([1-9][0-9]*\ with\ a\ frozen\ set\) ]]
	[[ "$output" == *" 0 corrupt"* ]]
	[[ "$output" == *"final metadata: valid, sequence 1, flags 0x1, "* ]]
}
