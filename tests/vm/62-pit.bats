#!/usr/bin/env bats
# Point-in-time backups with a snapshot store, end to end through the job:
# a writer running for the whole copy never reaches the image, a file system
# under load checks clean in every image, and a job killed or a table
# reloaded during a run loses nothing. Both modes.
#
# DT_PIT_ROUNDS (default 1) incremental runs after the full one, per test;
# make stress runs 20.
#
# About 5 minutes a kernel: make stress runs it (the line below), make
# check does not, for its 60 minutes; scripts/check FILE runs it alone.
# dt-stress-only

bats_require_minimum_version 1.5.0

setup() {
	load helpers
	load target
	load backup
	T=$BATS_TEST_TMPDIR
}

teardown() {
	stop_writer_quietly
	[ -z "${FS_PID:-}" ] || { touch "$T/stop"; wait "$FS_PID" 2>/dev/null; } || true
	[ -z "${MNT:-}" ] || umount "$MNT" 2>/dev/null || true
	dt_cleanup
}

ROUNDS=${DT_PIT_ROUNDS:-1}

# pit_setup MODE [SIZE] [LOWER]: dt0 (64 KiB clusters) over a data device of
# SIZE (32M) with a store as large, in default or crash_safe MODE; with
# LOWER, the data device is behind the dm-linear dtlower (lower_table).
pit_setup() {
	local mode=$1 size=${2:-32M} features
	dt_setup_devices "$size"
	dt_loop_device STORE_DEV "$T/store.img" "$size"
	features="2 snapshot_store $STORE_DEV"
	[ "$mode" = crash_safe ] && features="3 crash_safe snapshot_store $STORE_DEV"
	if [ -n "${3:-}" ]; then
		LOWER_SIZE=$(blockdev --getsz "$DATA_DEV")
		dmsetup create dtlower --table "0 $LOWER_SIZE linear $DATA_DEV 0"
		DATA_DEV=/dev/mapper/dtlower dt_create dt0 128 "" $features
	else
		dt_create dt0 128 "" $features
	fi
	BK_DIR=$T/backup
	mkdir -p "$BK_DIR"
	BK_IMAGE=$BK_DIR/dt0.img
	BK_WORKLOADS=0
}

lower_table() {
	dmsetup suspend dtlower
	dmsetup load dtlower --table "$1"
	dmsetup resume dtlower
}

# The job's dirtyctl with a writer during the whole copy
# (dt_writer_dirtyctl), which also records the store use before and after
# each release ($T/released: START NR BEFORE AFTER) and when the view is
# removed after the last chunk ($T/store_at_end).
pit_dirtyctl() {
	dt_writer_dirtyctl "$T" "$(cat <<EOS
if [ "\$1" = view ] && [ "\${3:-}" = --remove ]; then
	dmsetup status dt0 | cut -d' ' -f14 >$T/store_at_end
fi
[ "\$1" = release ] && before=\$(dmsetup status dt0 | cut -d' ' -f14)
EOS
)" "$(cat <<EOS
if [ "\$1" = release ]; then
	echo "\$3 \$4 \$before \$(dmsetup status dt0 | cut -d' ' -f14)" >>$T/released
fi
EOS
)"
}

stop_writer() {
	dt_stop_writer "$T"
}

stop_writer_quietly() {
	[ -e "$T/fio.pid" ] || return 0
	kill -INT "$(cat "$T/fio.pid")" 2>/dev/null || true
	while kill -0 "$(cat "$T/fio.pid")" 2>/dev/null; do sleep 0.2; done
	rm -f "$T/fio.pid"
}

# reference: the quiet device, read just before a run.
reference() {
	dd if=/dev/mapper/dt0 of="$T/ref" bs=1M iflag=direct status=none
}

# pit_run MODE_WORD: a run with the racing writer, in chunks of 1 MiB; the
# image is the reference, the device moved on, the store held nothing
# once the last chunk was released.
pit_run() {
	rm -f "$T/released" "$T/store_at_end"
	reference
	DIRTYCTL=$T/dirtyctl DT_BACKUP_CHUNK=1048576 bk_ok
	stop_writer
	[[ $bk_line == *": $1"*", point-in-time (snapshot store $STORE_DEV ("*"))" ]]
	[ "$(dt_status dt0 snapshot)" = idle ]
	! dmsetup info dt0-view >/dev/null 2>&1
	# the writer raced the copy: the device moved on, the image did not
	! cmp -s <(bk_read_device) "$BK_IMAGE"
	if ! cmp "$T/ref" "$BK_IMAGE"; then
		echo "FAIL: the image is not the device as of the checkpoint"
		return 1
	fi
	# Every chunk was released as the copy went: at the end of the copy
	# the store holds nothing, though the writer went on writing the
	# frozen clusters (without releases it would hold each one it hit).
	echo "# store use before/after each release: $(awk '{ printf "%s/%s ", $3, $4 }' "$T/released"), at the end $(cat "$T/store_at_end")"
	[ "$(cat "$T/store_at_end")" = 0 ]
	store_max=$(sort -n <(cut -d' ' -f3 "$T/released") <(echo "${store_max:-0}") | tail -n 1)
}

# exactness MODE: a full run and DT_PIT_ROUNDS incremental ones, each with
# fio writing 4 KiB at random over the whole device from right after the
# checkpoint to the end of the copy; every image equals the device as it was
# quiet just before the run.
exactness() {
	local r seed=${DT_BACKUP_SEED:-$RANDOM}
	pit_setup "$1"
	echo "# mode $1, $ROUNDS rounds, first seed $seed"
	dd if=/dev/urandom of=/dev/mapper/dt0 bs=1M count=32 oflag=direct status=none
	pit_dirtyctl
	store_max=0
	pit_run "full (no previous backup), 1 extent"
	for r in $(seq "$ROUNDS"); do
		bk_workload $((seed + r))
		pit_run incremental
	done
	# the writer did reach frozen clusters before the copy: without the
	# releases, the store would still hold those at the end of the copy
	echo "# store use seen before a release: up to $store_max sectors"
	[ "$store_max" -gt 0 ]
	# a quiet run catches up with what the writers wrote
	bk_ok
	bk_assert_equal
}

@test "exactness: with fio writing during the whole copy, every image (full, incremental) is the device as of its checkpoint" {
	exactness default
}

@test "exactness in crash_safe mode" {
	exactness crash_safe
}

# fs_writer: creates, renames and fsyncs files in $MNT until $T/stop
# exists; keeps at most about 200 files.
fs_writer() {
	local i=0 d f
	while [ ! -e "$T/stop" ]; do
		d=$MNT/d$((i % 8))
		f=$d/f$i
		mkdir -p "$d"
		head -c $(((RANDOM % 64 + 1) * 1024)) /dev/urandom >"$f.tmp" || return 1
		sync "$f.tmp" || return 1
		mv "$f.tmp" "$f" || return 1
		sync "$d" || return 1
		if ((i >= 200)); then
			rm -f "$MNT/d$(((i - 200) % 8))/f$((i - 200))" || return 1
		fi
		((i % 50)) || echo "$i" >"$T/fs_count"
		i=$((i + 1))
	done
}

# fs_under_load MODE [stacked]: ext4 on the device, written the whole
# time; a full run and DT_PIT_ROUNDS incremental ones through the job
# (checkpoint --freeze); e2fsck -fn of every image exits 0. With stacked,
# the file system is on a dm-linear over the device and a dirtyctl wrapper
# freezes it around the checkpoint (dirtyctl --freeze finds only a file
# system mounted from the device itself).
fs_under_load() {
	local r n0 fsdev=/dev/mapper/dt0 ctl=
	pit_setup "$1"
	MNT=$T/mnt
	if [ "${2:-}" = stacked ]; then
		dmsetup create dtfs --table "0 $(blockdev --getsz /dev/mapper/dt0) linear /dev/mapper/dt0 0"
		fsdev=/dev/mapper/dtfs
		ctl=$T/fsctl
		cat >"$ctl" <<EOS
#!/bin/bash
[ "\$1" = checkpoint ] && fsfreeze -f $MNT
$(command -v dirtyctl || echo /dt/userspace/dirtyctl) "\$@"
rc=\$?
[ "\$1" = checkpoint ] && fsfreeze -u $MNT
exit \$rc
EOS
		chmod +x "$ctl"
	fi
	mkfs.ext4 -q -F "$fsdev"
	mkdir -p "$MNT"
	mount "$fsdev" "$MNT"
	fs_writer &
	FS_PID=$!
	for r in $(seq 0 "$ROUNDS"); do
		n0=$(cat "$T/fs_count" 2>/dev/null || echo 0)
		DIRTYCTL=$ctl DT_BACKUP_CHUNK=1048576 bk_ok
		[[ $bk_line == *", point-in-time (snapshot store $STORE_DEV ("*"))" ]]
		if ! e2fsck -fn "$BK_IMAGE"; then
			echo "FAIL: run $r: the image does not check clean"
			return 1
		fi
		echo "# run $r ($(bk_mode)): e2fsck clean; files $n0 -> $(cat "$T/fs_count" 2>/dev/null)"
		sleep 1
	done
	kill -0 "$FS_PID"
	touch "$T/stop"
	wait "$FS_PID"
	FS_PID=
	# the writer went on through the runs
	[ "$(cat "$T/fs_count")" -gt 0 ]
}

@test "ext4 under load: every image, full then incremental, checks clean with e2fsck -fn" {
	fs_under_load default
}

@test "ext4 under load in crash_safe mode" {
	fs_under_load crash_safe
}

# A file system one dm device up (LVM over the tracked device, say): the
# job freezes it through the device it sits on.
@test "ext4 under load on a dm-linear over the device: every image checks clean" {
	fs_under_load default stacked
}

# killed_run MODE SIGNAL: the job is killed (SIGTERM to it, or SIGKILL to
# its whole process group) while it copies from the view; the next run
# succeeds and its image is the device as of its own checkpoint.
killed_run() {
	local mode=$1 sig=$2 pid rc=0 i
	pit_setup "$mode" 16M lower
	pit_dirtyctl
	bk_ok
	dd if=/dev/urandom of=/dev/mapper/dt0 bs=1M count=8 oflag=direct status=none
	# reads take 500 ms each from now on: each of the two chunks of 4 MiB
	# takes seconds to copy
	lower_table "0 $LOWER_SIZE delay $DATA_DEV 0 500 $DATA_DEV 0 0"
	DIRTYCTL=$T/dirtyctl DT_BACKUP_CHUNK=4194304 setsid "$BK_JOB" dt0 "$BK_IMAGE" 2>"$T/err" &
	pid=$!
	# the first chunk released, the second being copied
	for i in $(seq 600); do
		[ -e "$T/released" ] && pgrep -x dt-copy-extents >/dev/null && break
		sleep 0.05
	done
	pgrep -x dt-copy-extents
	[ "$(dt_status dt0 snapshot)" = active ]
	if [ "$sig" = TERM ]; then
		kill -TERM "$pid"
	else
		kill -KILL -- "-$pid"
	fi
	wait "$pid" || rc=$?
	cat "$T/err"
	stop_writer
	! pgrep -x dt-copy-extents || false
	if [ "$sig" = TERM ]; then
		[ "$rc" -eq 1 ]
		grep -q "failed (incremental): interrupted by SIGTERM; checkpoint rolled back" "$T/err"
		[ "$(dt_status dt0 frozen)" = - ]
		! dmsetup info dt0-view >/dev/null 2>&1
	else
		[ "$rc" -eq 137 ]
		# the checkpoint and the view stay until the next run
		[ "$(dt_status dt0 frozen)" != - ]
	fi
	lower_table "0 $LOWER_SIZE linear $DATA_DEV 0"
	pit_run incremental
	if [ "$sig" = KILL ]; then
		[[ $bk_line == *"rolled back the checkpoint of an interrupted run"* ]]
	fi
	bk_ok
	bk_assert_equal
}

@test "the job killed by SIGTERM while copying from the view: rolled back, the next run is exact" {
	killed_run default TERM
}

@test "the job and its copier killed by SIGKILL while copying from the view: the next run is exact" {
	killed_run default KILL
}

@test "crash_safe: the job killed by SIGKILL while copying from the view: the next run is exact" {
	killed_run crash_safe KILL
}

# reloaded_run MODE: the same table reloaded (reload, suspend, resume)
# while the job copies from the view.
reloaded_run() {
	local mode=$1 pid rc=0 i table
	pit_setup "$mode" 16M lower
	bk_ok
	dd if=/dev/urandom of=/dev/mapper/dt0 bs=1M count=8 oflag=direct status=none
	lower_table "0 $LOWER_SIZE delay $DATA_DEV 0 500 $DATA_DEV 0 0"
	DT_BACKUP_CHUNK=4194304 "$BK_JOB" dt0 "$BK_IMAGE" 2>"$T/err" &
	pid=$!
	for i in $(seq 600); do
		pgrep -x dt-copy-extents >/dev/null && break
		sleep 0.05
	done
	pgrep -x dt-copy-extents
	table=$(dmsetup table dt0)
	dmsetup reload dt0 --table "$table"
	dmsetup suspend dt0
	dmsetup resume dt0
	wait "$pid" || rc=$?
	cat "$T/err"
	echo "# the run exited $rc; snapshot $(dt_status dt0 snapshot), frozen $(dt_status dt0 frozen)"
	# The reload ends the snapshot: the view's reads fail, the run fails
	# and rolls back; nothing is frozen, no view is left.
	[ "$rc" -eq 1 ]
	grep -q "checkpoint rolled back" "$T/err"
	[ "$(dt_status dt0 frozen)" = - ]
	[ "$(dt_status dt0 snapshot)" = idle ]
	! dmsetup info dt0-view >/dev/null 2>&1
	lower_table "0 $LOWER_SIZE linear $DATA_DEV 0"
	pit_dirtyctl
	pit_run incremental
	bk_ok
	bk_assert_equal
}

@test "a table reload during a run ends the snapshot: the run fails and rolls back, the next run is exact" {
	reloaded_run default
}

@test "crash_safe: a table reload during a run: the run fails and rolls back, the next run is exact" {
	reloaded_run crash_safe
}
