#!/usr/bin/env bats
# The backup job across guest crashes, with file-backed disks that survive
# into the next boot: /dev/vda metadata, /dev/vdb data, /dev/vdc an ext4 file
# system holding the image, its state and its log. After a crash in the
# middle of a workload, or of a backup run, the next run copies every
# cluster (default mode) or what changed (crash_safe), and the image equals
# the device byte for byte.
# Runs on the host; each test boots the VM more than once.

bats_require_minimum_version 1.5.0

setup() {
	ROOT=$(cd "$BATS_TEST_DIRNAME/../.." && pwd)
	MD=$BATS_TEST_TMPDIR/md.img
	DATA=$BATS_TEST_TMPDIR/data.img
	BACKUP=$BATS_TEST_TMPDIR/backup.img
	truncate -s 1M "$MD"
	truncate -s 16M "$DATA"
	truncate -s 64M "$BACKUP"
	mkfs.ext4 -q -F "$BACKUP"
}

vm() {
	"$ROOT/scripts/vm-run" --kernel "$DT_KVER" --disk "$MD" --disk "$DATA" --disk "$BACKUP" \
		${STORE:+--disk "$STORE"} -- "$@"
}

SIZE=16777216

# Guest preamble: the dirtytrack device (over a dm-linear "lower", so a run
# can be slowed down with a delay table; $FEATURES are its feature args) and
# the backup file system.
FEATURES=
guest() {
	printf '%s\n' "set -e" \
		'dmsetup create lower --table "0 32768 linear /dev/vdb 0"' \
		"dmsetup create dt0 --table \"0 32768 dirtytrack /dev/vda /dev/mapper/lower 128${FEATURES:+ $FEATURES}\"" \
		"$GUEST_FUNCTIONS" "$1"
}

GUEST_FUNCTIONS='mkdir -p /backup && mount /dev/vdc /backup
backup() { scripts/dirtytrack-backup dt0 /backup/dt0.img; }
status() { echo "STATUS $(dmsetup status dt0)"; }
workload() {
	fio --output=/dev/null --randseed=$1 --filename=/dev/mapper/dt0 --refill_buffers \
		--name=random --rw=randwrite --ioengine=libaio --iodepth=8 --direct=1 \
		--bssplit=512/10:4k/40:64k/40:256k/10 --number_ios=200 \
		--name=discard --rw=randtrim --ioengine=psync --bs=16k --number_ios=16
	blkdiscard -z -o $((($1 % 200) * 4096)) -l 65536 /dev/mapper/dt0
}
crash() {
	status
	echo c > /proc/sysrq-trigger
	sleep 10
	echo not crashed
}
equal() {
	cmp <(dd if=/dev/mapper/dt0 bs=1M iflag=direct status=none) /backup/dt0.img && echo IMAGE-EQUAL
}
'

# The checks after the boot that follows a crash: every cluster dirty, the
# next run copies the whole device (all) or, with a trusted manifest, only
# the clusters whose hash differs (by-hash), and the image equals it; then
# the history continues with ordinary incremental runs.
after_crash() {
	local how=$1 bytes re
	run vm "$(guest '
		status
		backup
		equal
		status
		workload 7
		backup
		equal
		cat /backup/dt0.img.log')"
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == *"STATUS 0 32768 dirtytrack 128 256 256 - default unclean_shutdown "* ]]
	# the history either continues (every cluster dirty) or was cut by a
	# commit the crash lost; without a trusted manifest (a crash in a run
	# leaves it stale) both copy everything
	if [[ $how == all ]]; then
		[[ "$output" =~ dt0\ -\>\ /backup/dt0.img:\ (incremental\ \(unclean\ shutdown:\ every\ cluster\ is\ dirty\)|full\ \(history\ does\ not\ continue:[^\)]*\)),\ [0-9]+\ extents?,\ $SIZE\ bytes\ copied ]]
	else
		re='dt0 -> /backup/dt0.img: incremental \((unclean shutdown: every cluster is dirty|history does not continue:[^)]*); copied only the clusters whose hash differs from the manifest\), [0-9]+ extents?, ([0-9]+) bytes copied'
		[[ "$output" =~ $re ]]
		bytes=${BASH_REMATCH[2]}
		echo "copied $bytes of $SIZE bytes"
		# fio wrote at random in the first 4 MiB before the crash: only there
		[ "$bytes" -gt 0 ]
		[ "$bytes" -le $((4 * 1024 * 1024)) ]
	fi
	[ "$(grep -c IMAGE-EQUAL <<<"$output")" -eq 2 ]
	[[ "$output" == *"STATUS 0 32768 dirtytrack 128 256 0 - default ok "* ]]
	[[ "$(grep 'dirtytrack-backup: ' <<<"$output" | tail -n 1)" == *": incremental, "* ]]
}

# Boot, make a backup and a workload, then crash with writes running.
crash_in_workload() {
	run vm "$(guest '
		backup
		workload 1
		backup
		equal
		fio --output=/dev/null --eta=never --filename=/dev/mapper/dt0 --refill_buffers --time_based --runtime=60 \
			--name=random --rw=randwrite --ioengine=libaio --iodepth=8 --direct=1 --bs=16k '"$1"' &
		sleep 3
		crash')"
	echo "$output"
	[ "$status" -eq 126 ]
	[[ "$output" == *IMAGE-EQUAL* ]]
}

@test "a crash in the middle of a workload: the next run copies what hashes differently and the image equals the device" {
	# the writes at the crash stay in the first 4 MiB
	crash_in_workload "--size=4m"
	after_crash by-hash
}

# Boot, make a backup and a workload, then crash while a run copies; $1:
# a command started just before the run.
crash_in_backup() {
	run vm "$(guest '
		backup
		workload 2
		# reads take 100 ms from now on: the copy lasts a while
		dmsetup suspend lower
		dmsetup load lower --table "0 32768 delay /dev/vdb 0 100 /dev/vdb 0 0"
		dmsetup resume lower
		'"${1:-}"'
		backup &
		for i in $(seq 300); do
			pgrep -x dt-copy-extents >/dev/null && break
			sleep 0.1
		done
		pgrep -x dt-copy-extents
		cat /backup/dt0.img.state
		crash')"
	echo "$output"
	[ "$status" -eq 126 ]
	[[ "$output" == *"pending=checkpoint"* ]]
}

@test "a crash in the middle of a backup run: the next run settles it and the image equals the device" {
	crash_in_backup
	after_crash all
}

# crash_safe: the stored bitmap is exact after a crash, so the next run is
# incremental; LIMIT bounds what it may copy.
after_crash_safe() {
	local limit=$1
	run vm "$(guest '
		status
		backup
		equal
		cat /backup/dt0.img.log')"
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == *"STATUS 0 32768 dirtytrack 128 256 "*" crash_safe ok "* ]]
	[[ "$output" == *IMAGE-EQUAL* ]]
	local line bytes
	line=$(grep 'dirtytrack-backup: ' <<<"$output" | tail -n 1)
	[[ "$line" == *": incremental, "* ]]
	bytes=$(sed -n 's/.*, \([0-9]*\) bytes copied, .*/\1/p' <<<"$line")
	echo "copied $bytes bytes, limit $limit"
	[ "$bytes" -gt 0 ]
	[ "$bytes" -le "$limit" ]
}

@test "crash_safe: a crash in the middle of a workload: the next run copies only what changed" {
	FEATURES="1 crash_safe"
	# the writes at the crash stay in the first 4 MiB
	crash_in_workload "--size=4m"
	after_crash_safe $((4 * 1024 * 1024))
	[[ "$output" == *": incremental, "*", sequence 3"* ]]
}

@test "crash_safe: a crash in the middle of a backup run: the next run rolls the stored checkpoint back" {
	FEATURES="1 crash_safe"
	crash_in_backup
	after_crash_safe $SIZE
	[[ "$output" == *": incremental, rolled back the checkpoint of an interrupted run, "* ]]
}

# A snapshot store on /dev/vdd, and a writer over the whole device that
# starts just before the run and goes on through its copy.
with_store() {
	STORE=$BATS_TEST_TMPDIR/store.img
	truncate -s 16M "$STORE"
	FEATURES="${1:+$1 }snapshot_store /dev/vdd"
	STORE_WRITER='fio --output=/dev/null --eta=never --filename=/dev/mapper/dt0 --name=w --rw=randwrite --bs=4k \
		--direct=1 --ioengine=libaio --iodepth=4 --rate_iops=200 --time_based --runtime=120 &'
}

@test "with a snapshot store: a crash while a point-in-time run copies, writes going on: the next run is exact" {
	with_store
	FEATURES="2 $FEATURES"
	crash_in_backup "$STORE_WRITER"
	[[ "$output" == *"STATUS 0 32768 dirtytrack 128 256 "*" default ok "*" active "* ]]
	after_crash all
	[[ "$(grep 'dirtytrack-backup: ' <<<"$output" | tail -n 1)" == *", point-in-time (snapshot store /dev/vdd ("*"))" ]]
}

@test "crash_safe with a snapshot store: a crash while a point-in-time run copies: the next run rolls back and is exact" {
	with_store
	FEATURES="3 crash_safe $FEATURES"
	crash_in_backup "$STORE_WRITER"
	[[ "$output" == *" crash_safe ok "*" active "* ]]
	after_crash_safe $SIZE
	[[ "$output" == *": incremental, rolled back the checkpoint of an interrupted run, "*", point-in-time (snapshot store /dev/vdd ("*"))"* ]]
}
