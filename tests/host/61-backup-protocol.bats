#!/usr/bin/env bats
# The backup job's protocol on a host, without the kernel module: a fake
# dirtyctl (tests/host/fake-dirtyctl) keeps the device's sets in files and
# can fail a step or kill the job right after one, so every window of a run
# is crossed. The data is a loop device; the image must equal it after the
# next good run, whatever happened before. The real target is exercised by
# tests/vm/60-backup.bats and tests/host/60-backup-crash.bats.

bats_require_minimum_version 1.5.0

setup_file() {
	ROOT=$(cd "$BATS_TEST_DIRNAME/../.." && pwd)
	export ROOT
	[[ $(id -u) == 0 ]] || skip "needs root for a loop device"
	# The copier as the tree has it, built here so the suite needs no make.
	# It hashes the manifest's clusters as it copies (copyhash.c, libcrypto).
	gcc -O2 -Wall -D_GNU_SOURCE -o "$BATS_FILE_TMPDIR/dt-copy-extents" \
		"$ROOT/userspace/dt-copy-extents.c" "$ROOT/userspace/extents.c" \
		"$ROOT/userspace/strutils.c" \
		"$ROOT/userspace/copyhash.c" "$ROOT/userspace/manifest.c" \
		"$ROOT/userspace/crc32c.c" -lcrypto
}

setup() {
	[[ $(id -u) == 0 ]] || skip "needs root for a loop device"
	export DIRTYCTL=$ROOT/tests/host/fake-dirtyctl
	export DT_COPY_EXTENTS=$BATS_FILE_TMPDIR/dt-copy-extents
	export FAKE_DT=$BATS_TEST_TMPDIR/fake
	export DMSETUP=$ROOT/tests/host/fake-dmsetup
	mkdir -p "$FAKE_DT"
	echo 5b8a4c2e-0000-4000-8000-00000000000a >"$FAKE_DT/uuid"
	echo 0 >"$FAKE_DT/sequence"
	echo ok >"$FAKE_DT/health"
	echo 8 >"$FAKE_DT/cluster_sectors"
	: >"$FAKE_DT/live"
	# 4 MiB and a half cluster: the last cluster is clipped.
	DATA=$BATS_TEST_TMPDIR/data.raw
	head -c 1M /dev/urandom >"$DATA"
	truncate -s $((4 * 1024 * 1024 + 2048)) "$DATA"
	LOOP=$(losetup -f --show "$DATA")
	IMG=$BATS_TEST_TMPDIR/backup.img
}

teardown() {
	[[ -n ${LOOP:-} ]] && losetup -d "$LOOP"
	[[ -n ${TARGET_LOOP:-} ]] && losetup -d "$TARGET_LOOP"
	return 0
}

backup() {
	"$ROOT/scripts/dirtytrack-backup" "$@" "$LOOP" "$IMG"
}

# A job that a fake step may SIGKILL with its whole process group.
backup_in_own_group() {
	setsid -w "$ROOT/scripts/dirtytrack-backup" "$LOOP" "$IMG"
}

# fake_write SECTOR NR_SECTORS: random data, marked like the target would.
fake_write() {
	dd if=/dev/urandom of="$LOOP" bs=512 seek="$1" count="$2" oflag=direct conv=notrunc status=none
	"$DIRTYCTL" mark "$LOOP" "$1" "$2"
}

some_writes() {
	fake_write 0 1
	fake_write 100 300
	fake_write 4000 64
	fake_write 8192 4 # the clipped last cluster
}

image_equals_device() {
	cmp "$LOOP" "$IMG"
}

state() {
	sed -n "s/^$1=//p" "$IMG.state"
}

@test "the first run copies everything, sparse, and records the history" {
	run --separate-stderr backup
	[ "$status" -eq 0 ] || { echo "$stderr"; false; }
	[[ "$output" == *": full (no previous backup), 1 extent, 4196352 bytes copied, "*", sequence 1, not point-in-time (no snapshot store)" ]]
	image_equals_device
	[ "$(state uuid)" = "$(cat "$FAKE_DT/uuid")" ]
	[ "$(state sequence)" = 1 ]
	[ "$(state pending)" = none ]
	[ "$(cat "$FAKE_DT/sequence")" = 1 ]
	[ ! -e "$FAKE_DT/frozen" ]
	# 3 MiB of zeros are holes
	[ "$(du -k "$IMG" | cut -f1)" -lt 2048 ]
	grep -q "full (no previous backup)" "$IMG.log"
	[ ! -e "$IMG.partial" ]
}

@test "a later run copies only the changed extents" {
	backup
	some_writes
	run --separate-stderr backup
	[ "$status" -eq 0 ] || { echo "$stderr"; false; }
	# clusters 0, 12-49, 500-507, 1024 (clipped to 2048 bytes)
	[[ "$output" == *": incremental, 4 extents, $((4096 + 38 * 4096 + 8 * 4096 + 2048)) bytes copied, "*", sequence 2, not point-in-time (no snapshot store)" ]]
	image_equals_device
	[ "$(wc -l <"$IMG.log")" -eq 2 ]
}

@test "nothing changed: an empty incremental run still advances the history" {
	backup
	run --separate-stderr backup
	[ "$status" -eq 0 ] || { echo "$stderr"; false; }
	[[ "$output" == *": incremental, 0 extents, 0 bytes copied, "*", sequence 2, not point-in-time (no snapshot store)" ]]
}

@test "a reformatted metadata device (new uuid) makes a full copy and says why" {
	backup
	echo 5b8a4c2e-0000-4000-8000-00000000000b >"$FAKE_DT/uuid"
	echo 0 >"$FAKE_DT/sequence"
	fake_write 2000 8
	run --separate-stderr backup
	[ "$status" -eq 0 ] || { echo "$stderr"; false; }
	[[ "$output" == *": full (metadata uuid changed: device 5b8a4c2e-0000-4000-8000-00000000000b, image has 5b8a4c2e-0000-4000-8000-00000000000a), 1 extent, "* ]]
	image_equals_device
	[ "$(state uuid)" = 5b8a4c2e-0000-4000-8000-00000000000b ]
}

@test "a commit made by someone else breaks the history: full copy" {
	backup
	fake_write 2000 8
	"$DIRTYCTL" checkpoint "$LOOP"
	"$DIRTYCTL" commit "$LOOP"
	run --separate-stderr backup
	[ "$status" -eq 0 ] || { echo "$stderr"; false; }
	[[ "$output" == *": full (history does not continue: device sequence 2, image has 1), "* ]]
	image_equals_device
}

@test "an unclean shutdown without a manifest is copied in full by the incremental run, which says why" {
	backup
	rm "$IMG.manifest"
	echo unclean_shutdown >"$FAKE_DT/health"
	seq 0 1024 >"$FAKE_DT/live"
	run --separate-stderr backup
	[ "$status" -eq 0 ] || { echo "$stderr"; false; }
	[[ "$output" == *": incremental (unclean shutdown: every cluster is dirty), 1 extent, 4196352 bytes copied, "* ]]
	image_equals_device
}

@test "a checkpoint the job did not take is refused and left alone: exit 3" {
	backup
	fake_write 2000 8
	local id
	id=$("$DIRTYCTL" checkpoint "$LOOP")
	run --separate-stderr backup
	[ "$status" -eq 3 ]
	[[ "$stderr" == *": the device has a checkpoint this job did not take (id $id, 1 clusters frozen); let its owner commit or roll it back (dirtyctl rollback fake0 --id $id), then run again" ]]
	grep -q "did not take (id $id" "$IMG.log"
	[ -e "$FAKE_DT/frozen" ]
	[ "$(state sequence)" = 1 ]
}

@test "a failed copy rolls back; the next run copies those extents again" {
	backup
	some_writes
	DT_COPY_EXTENTS=false run --separate-stderr backup
	[ "$status" -eq 1 ]
	[[ "$stderr" == *": failed (incremental): copy failed: "*"; checkpoint rolled back, the next run copies these extents again" ]]
	[ ! -e "$FAKE_DT/frozen" ]
	[ "$(wc -l <"$FAKE_DT/live")" -eq 48 ]
	[ "$(state pending)" = none ]
	[ "$(state sequence)" = 1 ]
	run --separate-stderr backup
	[ "$status" -eq 0 ] || { echo "$stderr"; false; }
	[[ "$output" == *": incremental, 4 extents, "* ]]
	image_equals_device
}

@test "a failed full copy leaves the previous image in place and copies in full again" {
	backup
	cp "$IMG" "$BATS_TEST_TMPDIR/previous"
	echo 5b8a4c2e-0000-4000-8000-00000000000b >"$FAKE_DT/uuid"
	fake_write 2000 8
	DT_COPY_EXTENTS=false run --separate-stderr backup
	[ "$status" -eq 1 ]
	[[ "$stderr" == *": failed (full): copy failed: "* ]]
	cmp "$IMG" "$BATS_TEST_TMPDIR/previous"
	[ ! -e "$IMG.partial" ]
	run --separate-stderr backup
	[ "$status" -eq 0 ] || { echo "$stderr"; false; }
	[[ "$output" == *": full (the previous full copy did not complete), "* ]]
	image_equals_device
}

@test "a commit that fails is rolled back" {
	backup
	some_writes
	FAKE_DT_FAIL=commit run --separate-stderr backup
	[ "$status" -eq 1 ]
	[[ "$stderr" == *"failed (incremental): dirtyctl: "*"injected failure of commit; checkpoint rolled back"* ]]
	run backup
	[ "$status" -eq 0 ] || { echo "$stderr"; false; }
	image_equals_device
}

@test "a rollback that fails is finished by the next run" {
	backup
	some_writes
	FAKE_DT_FAIL=rollback DT_COPY_EXTENTS=false run --separate-stderr backup
	[ "$status" -eq 1 ]
	[[ "$stderr" == *"; rollback failed (dirtyctl: "*"): the next run rolls the checkpoint back" ]]
	[ -e "$FAKE_DT/frozen" ]
	run --separate-stderr backup
	[ "$status" -eq 0 ] || { echo "$stderr"; false; }
	[[ "$output" == *": incremental, rolled back the checkpoint of an interrupted run, 4 extents, "* ]]
	image_equals_device
}

@test "SIGTERM during the copy rolls back and exits non-zero" {
	backup
	some_writes
	# A copier that says where it is and waits to be killed.
	local copier=$BATS_TEST_TMPDIR/copier.pid
	printf '#!/bin/sh\necho $$ >"%s"\nexec sleep 30\n' "$copier" >"$BATS_TEST_TMPDIR/slow-copy"
	chmod +x "$BATS_TEST_TMPDIR/slow-copy"
	DT_COPY_EXTENTS=$BATS_TEST_TMPDIR/slow-copy \
		"$ROOT/scripts/dirtytrack-backup" "$LOOP" "$IMG" 2>"$BATS_TEST_TMPDIR/err" &
	local pid=$! i rc=0
	for i in $(seq 100); do
		[ -s "$copier" ] && break
		sleep 0.1
	done
	[ -e "$FAKE_DT/frozen" ]
	kill -TERM "$pid"
	wait "$pid" || rc=$?
	[ "$rc" -eq 1 ]
	grep -q ": failed (incremental): interrupted by SIGTERM; checkpoint rolled back" "$BATS_TEST_TMPDIR/err"
	! kill -0 "$(cat "$copier")" || false
	[ ! -e "$FAKE_DT/frozen" ]
	run backup
	[ "$status" -eq 0 ] || { echo "$stderr"; false; }
	image_equals_device
}

@test "SIGTERM while the checkpoint is sent: rolled back as soon as it is taken" {
	backup
	some_writes
	FAKE_DT_TERM=checkpoint run --separate-stderr setsid -w "$ROOT/scripts/dirtytrack-backup" "$LOOP" "$IMG"
	[ "$status" -eq 1 ]
	[[ "$stderr" == *": failed (incremental): interrupted by SIGTERM; checkpoint rolled back, the next run copies these extents again" ]]
	[ ! -e "$FAKE_DT/frozen" ]
	[ "$(state pending)" = none ]
	run backup
	[ "$status" -eq 0 ]
	image_equals_device
}

@test "SIGTERM while the commit is sent: the run completes and says so" {
	backup
	some_writes
	FAKE_DT_TERM=commit run --separate-stderr setsid -w "$ROOT/scripts/dirtytrack-backup" "$LOOP" "$IMG"
	[ "$status" -eq 1 ]
	[[ "$output" == *": incremental, 4 extents, "*", sequence 2, "* ]]
	[[ "$stderr" == *"interrupted by SIGTERM after the commit; the run completed" ]]
	[ "$(state sequence)" = 2 ]
	[ "$(state pending)" = none ]
	image_equals_device
}

# A job killed (as by a crash of the backup host) right after each step:
# the next run settles what was left and the image equals the device.
killed_after() {
	backup
	some_writes
	FAKE_DT_KILL=$1 run backup_in_own_group
	[ "$status" -eq 137 ]
	fake_write 6000 16 # writes continue meanwhile
	run --separate-stderr backup
	echo "$output"
	[ "$status" -eq 0 ] || { echo "$stderr"; false; }
	image_equals_device
}

@test "killed after the checkpoint: the next run rolls it back and copies it" {
	killed_after checkpoint
	[[ "$output" == *": incremental, rolled back the checkpoint of an interrupted run, 5 extents, "* ]]
}

@test "killed after the dump: the next run rolls it back and copies it" {
	killed_after dump
	[[ "$output" == *"rolled back the checkpoint of an interrupted run"* ]]
}

@test "killed after the commit: the next run completes it and continues" {
	killed_after commit
	[[ "$output" == *": incremental, completed the commit of an interrupted run, 1 extent, 8192 bytes copied, "*", sequence 3, "* ]]
}

@test "killed after the checkpoint of a full copy: full copy again" {
	backup
	echo 5b8a4c2e-0000-4000-8000-00000000000b >"$FAKE_DT/uuid"
	FAKE_DT_KILL=checkpoint run backup_in_own_group
	[ "$status" -eq 137 ]
	run --separate-stderr backup
	[ "$status" -eq 0 ] || { echo "$stderr"; false; }
	[[ "$output" == *": full (metadata uuid changed: "*"), rolled back the checkpoint of an interrupted run, "* ]]
	image_equals_device
}

@test "killed after the commit of a full copy: the next run is incremental" {
	FAKE_DT_KILL=commit run backup_in_own_group
	[ "$status" -eq 137 ]
	image_equals_device
	fake_write 16 8
	run --separate-stderr backup
	[ "$status" -eq 0 ] || { echo "$stderr"; false; }
	[[ "$output" == *": incremental, completed the commit of an interrupted run, 1 extent, 4096 bytes copied, "*", sequence 2, "* ]]
	image_equals_device
}

@test "two runs never overlap" {
	backup
	exec {fd}>>"$IMG.lock"
	flock "$fd"
	run --separate-stderr backup
	exec {fd}>&-
	[ "$status" -eq 1 ]
	[[ "$stderr" == *": $IMG: another run holds $IMG.lock" ]]
}

@test "a block-device image needs --state-dir and works with it" {
	truncate -s 8M "$BATS_TEST_TMPDIR/target.raw"
	TARGET_LOOP=$(losetup -f --show "$BATS_TEST_TMPDIR/target.raw")
	local target=$TARGET_LOOP
	IMG=$target run --separate-stderr backup
	[ "$status" -eq 2 ]
	[[ "$stderr" == *"is a block device: give --state-dir DIR"* ]]
	mkdir "$BATS_TEST_TMPDIR/st"
	IMG=$target run backup --state-dir "$BATS_TEST_TMPDIR/st"
	[ "$status" -eq 0 ] || { echo "$stderr"; false; }
	some_writes
	IMG=$target run --separate-stderr backup --state-dir "$BATS_TEST_TMPDIR/st"
	local size
	size=$(blockdev --getsize64 "$LOOP")
	cmp -n "$size" "$LOOP" "$target"
	[ "$status" -eq 0 ] || { echo "$stderr"; false; }
	[[ "$output" == *": incremental, 4 extents, "* ]]
	grep -q '^sequence=2$' "$BATS_TEST_TMPDIR/st/${target##*/}".*.state
}

@test "a missing or damaged state file makes a full copy and says why" {
	backup
	echo garbage=1 >>"$IMG.state"
	run --separate-stderr backup
	[ "$status" -eq 0 ] || { echo "$stderr"; false; }
	[[ "$output" == *": full (state file has an unknown key 'garbage'), "* ]]
	rm "$IMG.state"
	run --separate-stderr backup
	[[ "$output" == *": full (no previous backup), "* ]]
	rm "$IMG"
	some_writes
	run --separate-stderr backup
	[[ "$output" == *": full (image $IMG is missing), "* ]]
	image_equals_device
}

@test "a grown device: the image grows, and a failed run does not force a full copy" {
	backup
	truncate -s 8M "$DATA"
	losetup -c "$LOOP"
	dd if=/dev/urandom of="$LOOP" bs=1M seek=6 count=1 oflag=direct status=none
	# the target marks the clusters new to the device
	"$DIRTYCTL" mark "$LOOP" 8192 8192
	DT_COPY_EXTENTS=false run backup
	[ "$status" -eq 1 ]
	run --separate-stderr backup
	[ "$status" -eq 0 ] || { echo "$stderr"; false; }
	[[ "$output" == *": incremental (device grew from 4196352 to 8388608 bytes), 1 extent, 4194304 bytes copied, "* ]]
	image_equals_device
	[ "$(state size_bytes)" = 8388608 ]
}

@test "a progress line on a terminal, none otherwise" {
	run --separate-stderr backup
	[[ "$stderr" != *copying:* ]]
	some_writes
	run script -qec "$ROOT/scripts/dirtytrack-backup $LOOP $IMG" /dev/null
	[ "$status" -eq 0 ]
	[[ "$output" == *"copying: 0.2 MiB of 0.2 MiB (100%)"*$'\n'"dirtytrack-backup: "*": incremental, 4 extents, "* ]]
}

@test "usage errors exit 2" {
	run --separate-stderr "$ROOT/scripts/dirtytrack-backup" "$LOOP"
	[ "$status" -eq 2 ]
	[[ "$stderr" == *"expected DEV and IMAGE"* ]]
	run --separate-stderr "$ROOT/scripts/dirtytrack-backup" --bogus "$LOOP" "$IMG"
	[ "$status" -eq 2 ]
	run "$ROOT/scripts/dirtytrack-backup" --help
	[ "$status" -eq 0 ] || { echo "$stderr"; false; }
	[[ "$output" == Usage:* ]]
}

# ---- issue 15: the backup job an administrator can trust -----------------

# mode_of FILE: the octal permission bits of FILE.
mode_of() {
	stat -c %a "$1"
}

@test "images, state files and logs are created readable by their owner only (umask 022)" {
	umask 022
	run backup
	[ "$status" -eq 0 ] || { echo "$output"; false; }
	[ "$(mode_of "$IMG")" = 600 ]
	[ "$(mode_of "$IMG.state")" = 600 ]
	[ "$(mode_of "$IMG.log")" = 600 ]
	[ "$(mode_of "$IMG.lock")" = 600 ]
	# a full copy again (new image file, renamed over the old one)
	run backup --full
	[ "$status" -eq 0 ]
	[ "$(mode_of "$IMG")" = 600 ]
	# the copier alone creates a missing destination 0600
	echo "0 4096" | "$DT_COPY_EXTENTS" "$LOOP" "$BATS_TEST_TMPDIR/new.img"
	[ "$(mode_of "$BATS_TEST_TMPDIR/new.img")" = 600 ]
}

@test "the state records the image's path and identity" {
	backup
	[ "$(state image_path)" = "$(realpath "$IMG")" ]
	[ "$(state image_id)" = "file:$(stat -c %d:%i "$IMG")" ]
}

@test "another file put at the image's path: full copy, with the reason" {
	backup
	some_writes
	# the same bytes and size, but not the file the state describes
	cp "$IMG" "$IMG.other"
	mv "$IMG.other" "$IMG"
	run --separate-stderr backup
	[ "$status" -eq 0 ] || { echo "$stderr"; false; }
	[[ "$output" == *": full (image $IMG is not the one the state describes (identity file:"*"), 1 extent, "* ]]
	grep -q "is not the one the state describes" "$IMG.log"
	image_equals_device
}

@test "a blank block device at the image's path (another medium, same device number): full copy" {
	truncate -s 8M "$BATS_TEST_TMPDIR/target.raw"
	TARGET_LOOP=$(losetup -f --show "$BATS_TEST_TMPDIR/target.raw")
	local target=$TARGET_LOOP
	mkdir "$BATS_TEST_TMPDIR/st"
	IMG=$target run backup --state-dir "$BATS_TEST_TMPDIR/st"
	[ "$status" -eq 0 ] || { echo "$output"; false; }
	some_writes
	# the backup disk is rotated: a blank one takes the same node
	losetup -d "$target"
	truncate -s 8M "$BATS_TEST_TMPDIR/blank.raw"
	losetup "$target" "$BATS_TEST_TMPDIR/blank.raw"
	IMG=$target run --separate-stderr backup --state-dir "$BATS_TEST_TMPDIR/st"
	[ "$status" -eq 0 ] || { echo "$stderr"; false; }
	[[ "$output" == *": full (image $target is not the one the state describes (identity bdev:"*"), 1 extent, "* ]]
	cmp -n "$(blockdev --getsize64 "$LOOP")" "$LOOP" "$target"
}

@test "two images of one base name in two folders, one --state-dir: two states" {
	mkdir "$BATS_TEST_TMPDIR/a" "$BATS_TEST_TMPDIR/b" "$BATS_TEST_TMPDIR/st"
	IMG=$BATS_TEST_TMPDIR/a/vol.img run backup --state-dir "$BATS_TEST_TMPDIR/st"
	[ "$status" -eq 0 ]
	some_writes
	IMG=$BATS_TEST_TMPDIR/b/vol.img run backup --state-dir "$BATS_TEST_TMPDIR/st"
	[ "$status" -eq 0 ]
	[[ "$output" == *": full (no previous backup), "* ]]
	[ "$(find "$BATS_TEST_TMPDIR/st" -name 'vol.img.*.state' | wc -l)" -eq 2 ]
	IMG=$BATS_TEST_TMPDIR/b/vol.img image_equals_device
}

@test "IMAGE may not be the tracked device" {
	IMG=$LOOP run --separate-stderr backup --state-dir "$BATS_TEST_TMPDIR"
	[ "$status" -eq 1 ]
	[[ "$stderr" == *"IMAGE $LOOP is the device $LOOP itself" ]]
	[ "$(cat "$FAKE_DT/sequence")" = 0 ]
	[ ! -e "$FAKE_DT/frozen" ]
}

@test "dt-copy-extents refuses a mounted block device (O_EXCL)" {
	truncate -s 8M "$BATS_TEST_TMPDIR/target.raw"
	mkfs.ext4 -q -F "$BATS_TEST_TMPDIR/target.raw"
	TARGET_LOOP=$(losetup -f --show "$BATS_TEST_TMPDIR/target.raw")
	mkdir "$BATS_TEST_TMPDIR/mnt"
	mount "$TARGET_LOOP" "$BATS_TEST_TMPDIR/mnt"
	run --separate-stderr "$DT_COPY_EXTENTS" "$LOOP" "$TARGET_LOOP" <<<"0 4096"
	umount "$BATS_TEST_TMPDIR/mnt"
	[ "$status" -eq 1 ]
	[[ "$stderr" == "dt-copy-extents: cannot open $TARGET_LOOP: Device or resource busy (mounted, or in use by another device?)" ]]
	# the same device unmounted is written
	"$DT_COPY_EXTENTS" "$LOOP" "$TARGET_LOOP" <<<"0 4096"
}

@test "a symlinked image stays a symlink; the file it points to is written" {
	mkdir "$BATS_TEST_TMPDIR/real"
	local real=$BATS_TEST_TMPDIR/real/vol.img
	ln -s "$real" "$IMG"
	run backup
	[ "$status" -eq 0 ] || { echo "$output"; false; }
	[ -L "$IMG" ]
	cmp "$LOOP" "$real"
	some_writes
	run backup
	[ "$status" -eq 0 ]
	[[ "$output" == *": incremental, 4 extents, "* ]]
	[ -L "$IMG" ]
	cmp "$LOOP" "$real"
	[ "$(state image_path)" = "$real" ]
}

@test "a dirtyctl killed after taking the checkpoint: treated as taken, rolled back, never stuck" {
	backup
	some_writes
	FAKE_DT_SIGNAL=checkpoint run --separate-stderr backup
	[ "$status" -eq 1 ]
	[[ "$stderr" == *": failed (incremental): checkpoint of unknown outcome ("*"): the frozen set "*" is this run's; checkpoint rolled back, the next run copies these extents again" ]]
	[ ! -e "$FAKE_DT/frozen" ]
	run --separate-stderr backup
	[ "$status" -eq 0 ] || { echo "$stderr"; false; }
	[[ "$output" == *": incremental, 4 extents, "* ]]
	image_equals_device
}

@test "a dirtyctl killed before the checkpoint: nothing taken, nothing stuck" {
	backup
	some_writes
	FAKE_DT_SIGNAL_BEFORE=checkpoint run --separate-stderr backup
	[ "$status" -eq 1 ]
	[[ "$stderr" == *": failed (incremental): checkpoint of unknown outcome ("*")" ]]
	[ ! -e "$FAKE_DT/frozen" ]
	run --separate-stderr backup
	[ "$status" -eq 0 ] || { echo "$stderr"; false; }
	[[ "$output" == *": incremental, 4 extents, "* ]]
	image_equals_device
}

@test "a dirtyctl killed after the commit: the commit is recognised as done" {
	backup
	some_writes
	FAKE_DT_SIGNAL=commit run --separate-stderr backup
	[ "$status" -eq 0 ] || { echo "$stderr"; false; }
	[[ "$output" == *": incremental, 4 extents, "*", sequence 2, "* ]]
	[ "$(state sequence)" = 2 ]
	image_equals_device
}

@test "the checkpoint's id is recorded before the copy, and commit and rollback name it" {
	backup
	some_writes
	export FAKE_DT_LOG=$BATS_TEST_TMPDIR/verbs
	local copier=$BATS_TEST_TMPDIR/copy-and-look
	printf '#!/bin/sh\ngrep "^pending_id=" "%s" >"%s"\nexec "%s" "$@"\n' \
		"$IMG.state" "$BATS_TEST_TMPDIR/seen" "$DT_COPY_EXTENTS" >"$copier"
	chmod +x "$copier"
	DT_COPY_EXTENTS=$copier run backup
	[ "$status" -eq 0 ] || { echo "$output"; false; }
	local id
	id=$(sed -n 's/^pending_id=//p' "$BATS_TEST_TMPDIR/seen")
	[[ $id =~ ^[0-9a-f]{16}$ ]]
	grep -qx "commit --id $id" "$FAKE_DT_LOG"
	DT_COPY_EXTENTS=false run backup
	[ "$status" -eq 1 ]
	grep -q "^rollback --id [0-9a-f]\{16\}$" "$FAKE_DT_LOG"
}


@test "someone else replaces the run's checkpoint after it is taken: detected, theirs left alone" {
	backup
	some_writes
	# roll back the job's set (no id) and take their own
	FAKE_DT_HOOK=checkpoint FAKE_DT_HOOK_CMD="\"$DIRTYCTL\" rollback $LOOP && \"$DIRTYCTL\" checkpoint $LOOP" \
		run --separate-stderr backup
	[ "$status" -eq 1 ]
	[[ "$stderr" == *": failed (incremental): the frozen set is no longer this run's checkpoint "*"; this run's checkpoint is no longer on the device (frozen set now: "*"), nothing rolled back" ]]
	[ -e "$FAKE_DT/frozen" ]
	[ "$(cat "$FAKE_DT/sequence")" = 1 ]
	[ "$(state pending)" = none ]
	# theirs: exit 3 until they settle it
	run backup
	[ "$status" -eq 3 ]
	"$DIRTYCTL" rollback "$LOOP"
	run backup
	[ "$status" -eq 0 ] || { echo "$output"; false; }
	image_equals_device
}

@test "a foreign commit and checkpoint between the checkpoint and the dump: not copied, not committed" {
	backup
	some_writes
	FAKE_DT_HOOK=dump FAKE_DT_HOOK_CMD="\"$DIRTYCTL\" commit $LOOP && \"$DIRTYCTL\" checkpoint $LOOP" \
		run --separate-stderr backup
	[ "$status" -eq 1 ]
	[[ "$stderr" == *"the frozen set is no longer this run's checkpoint"* ]]
	# their set is still frozen and the sequence is theirs (1 -> 2, not 3)
	[ -e "$FAKE_DT/frozen" ]
	[ "$(cat "$FAKE_DT/sequence")" = 2 ]
}

@test "commit and rollback of the fake are fenced by the id" {
	local id
	id=$("$DIRTYCTL" checkpoint "$LOOP")
	run "$DIRTYCTL" commit "$LOOP" --id 0123456789abcdef
	[ "$status" -eq 1 ]
	run "$DIRTYCTL" rollback "$LOOP" --id "$id"
	[ "$status" -eq 0 ]
}

@test "runs from cron's PATH (blockdev in /usr/sbin); a missing tool is named, in the log too" {
	backup
	some_writes
	run --separate-stderr env PATH=/usr/bin:/bin "$ROOT/scripts/dirtytrack-backup" "$LOOP" "$IMG"
	[ "$status" -eq 0 ] || { echo "$stderr"; false; }
	[[ "$output" == *": incremental, 4 extents, "* ]]
	DT_COPY_EXTENTS=/nonexistent/dt-copy-extents run --separate-stderr backup
	[ "$status" -eq 1 ]
	[[ "$stderr" == *"DT_COPY_EXTENTS=/nonexistent/dt-copy-extents: no such program" ]]
	grep -q "DT_COPY_EXTENTS=/nonexistent/dt-copy-extents: no such program" "$IMG.log"
}

@test "incremental runs keep the image sparse where the device now reads zeros" {
	# 1 MiB of random data in the first MiB: a full copy allocates it
	backup
	local before after
	before=$(stat -c %b "$IMG")
	# the device's first MiB is zeroed (a discard with fstrim, say)
	dd if=/dev/zero of="$LOOP" bs=1M count=1 oflag=direct conv=notrunc status=none
	"$DIRTYCTL" mark "$LOOP" 0 2048
	# and one 4 KiB block in the middle of new data
	fake_write 4096 64
	dd if=/dev/zero of="$LOOP" bs=512 seek=4112 count=8 oflag=direct conv=notrunc status=none
	run backup
	[ "$status" -eq 0 ] || { echo "$output"; false; }
	image_equals_device
	after=$(stat -c %b "$IMG")
	# 2048 sectors freed, 64 - 8 written
	[ "$after" -le $((before - 2048 + 56)) ]
}

@test "--dry-run says what a run would copy and why, and changes nothing" {
	run --separate-stderr backup --dry-run
	[ "$status" -eq 0 ] || { echo "$stderr"; false; }
	[[ "$output" == *": dry run: would run full (no previous backup), 1 extent, 4196352 bytes as of now; nothing changed" ]]
	[ ! -e "$IMG" ] && [ ! -e "$IMG.state" ] && [ ! -e "$IMG.log" ]
	backup
	some_writes
	run --separate-stderr backup --dry-run
	[ "$status" -eq 0 ] || { echo "$stderr"; false; }
	[[ "$output" == *": dry run: would run incremental, 4 extents, $((4096 + 38 * 4096 + 8 * 4096 + 2048)) bytes as of now; nothing changed" ]]
	[ "$(cat "$FAKE_DT/sequence")" = 1 ]
	[ ! -e "$FAKE_DT/frozen" ]
	[ "$(wc -l <"$IMG.log")" -eq 1 ]
	[ "$(wc -l <"$FAKE_DT/live")" -eq 48 ]
}

@test "--keep refuses clearly where the file system cannot share extents, before any checkpoint" {
	backup
	some_writes
	run --separate-stderr backup --keep 2
	[ "$status" -eq 1 ]
	[[ "$stderr" == *"--keep: the file system of $(realpath "$IMG") cannot share extents (cp --reflink=always: "*"); keep restore points on XFS or btrfs, or run without --keep" ]]
	[ ! -e "$FAKE_DT/frozen" ]
	[ "$(cat "$FAKE_DT/sequence")" = 1 ]
	run backup --keep 0
	[ "$status" -eq 2 ]
}

@test "--restore writes the image back to the device" {
	backup
	local copy=$BATS_TEST_TMPDIR/device-then
	cp "$IMG" "$copy"
	some_writes
	! cmp -s "$LOOP" "$copy"
	run --separate-stderr "$ROOT/scripts/dirtytrack-backup" --restore "$IMG" "$LOOP"
	[ "$status" -eq 0 ] || { echo "$stderr"; false; }
	[[ "$output" == *": restored 4196352 bytes from $IMG, "*" s; every cluster is marked changed: the next run copies the whole device" ]]
	cmp "$LOOP" "$copy"
	# an image of another size is refused
	truncate -s 1M "$BATS_TEST_TMPDIR/small.img"
	run --separate-stderr "$ROOT/scripts/dirtytrack-backup" --restore "$BATS_TEST_TMPDIR/small.img" "$LOOP"
	[ "$status" -eq 1 ]
	[[ "$stderr" == *"is 1048576 bytes, the device 4196352: not an image of this device" ]]
}

@test "a frozen set the target shows without an id (reloaded from metadata): recognised by uuid and sequence" {
	backup
	some_writes
	FAKE_DT_KILL=dump run backup_in_own_group
	[ "$status" -eq 137 ]
	[ "$(state pending_id)" != "" ]
	rm "$FAKE_DT/frozen_id"
	run --separate-stderr backup
	[ "$status" -eq 0 ] || { echo "$stderr"; false; }
	[[ "$output" == *": incremental, rolled back the checkpoint of an interrupted run, 4 extents, "* ]]
	image_equals_device
}

@test "not on a terminal: periodic progress lines on stdout, then the summary" {
	DT_BACKUP_PROGRESS_INTERVAL=0 run --separate-stderr backup
	[ "$status" -eq 0 ] || { echo "$stderr"; false; }
	[[ "${lines[0]}" == "copying: 1.0 MiB of 4.0 MiB (24%), "*" MiB/s, ETA "* ]]
	[[ "${lines[-1]}" == *": full (no previous backup), 1 extent, 4196352 bytes copied, "* ]]
	[ "$(grep -c '^copying: ' <<<"$output")" -ge 3 ]
	[[ "$stderr" != *copying* ]]
	# the log has the summary only
	[ "$(grep -c copying "$IMG.log")" -eq 0 ]
}

@test "a point-in-time run copies in chunks: its progress lines count on from chunk to chunk" {
	with_store
	DT_BACKUP_PROGRESS_INTERVAL=0 DT_BACKUP_CHUNK=1048576 run --separate-stderr backup
	[ "$status" -eq 0 ] || { echo "$stderr"; false; }
	sed -n 's/^copying: \([0-9.]*\) MiB of 4\.0 MiB .*/\1/p' <<<"$output" >"$BATS_TEST_TMPDIR/mib"
	cat "$BATS_TEST_TMPDIR/mib"
	[ "$(wc -l <"$BATS_TEST_TMPDIR/mib")" -ge 4 ]
	sort -n -c "$BATS_TEST_TMPDIR/mib"
	[ "$(tail -n 1 "$BATS_TEST_TMPDIR/mib")" = 4.0 ]
}

@test "--dry-run after an interrupted run: says it would roll the checkpoint back, leaves it" {
	backup
	some_writes
	FAKE_DT_KILL=dump run backup_in_own_group
	[ "$status" -eq 137 ]
	fake_write 6000 16
	run --separate-stderr backup --dry-run
	[ "$status" -eq 0 ] || { echo "$stderr"; false; }
	# the frozen 4 extents and the live one
	[[ "$output" == *": dry run: would run incremental, after rolling back the checkpoint of an interrupted run ("*"), 5 extents, "*" bytes as of now; nothing changed" ]]
	[ -e "$FAKE_DT/frozen" ]
	[ "$(state pending)" = checkpoint ]
	run backup
	[ "$status" -eq 0 ]
	image_equals_device
}

# ------------------------------------------------------------------------
# Point in time: a target with a snapshot store (fake: a copy of the device
# taken at the checkpoint is what the view reads).

with_store() {
	echo 1024 >"$FAKE_DT/store_sectors"
	echo idle >"$FAKE_DT/snapshot"
}

# release_hook: a FAKE_DT_HOOK_CMD for release that records, for each
# release, whether the released range of the image already equals the
# reference (copied before it was released).
release_hook() {
	printf '%s' "set -- \$FAKE_DT_ARGS; if cmp -s <(dd if=$IMG bs=512 skip=\$1 count=\$2 status=none) <(dd if=$BATS_TEST_TMPDIR/reference bs=512 skip=\$1 count=\$2 status=none); then echo \"\$*: copied\"; else echo \"\$*: NOT COPIED\"; fi >>$BATS_TEST_TMPDIR/released"
}

@test "with a snapshot store: the image is the device as of the checkpoint, though writes go on, and says point-in-time" {
	with_store
	export FAKE_DT_LOG=$BATS_TEST_TMPDIR/verbs
	cp "$LOOP" "$BATS_TEST_TMPDIR/reference"
	# a full copy marks the whole device, so that the checkpoint freezes
	# every cluster: it is point-in-time too; a write once the view
	# exists does not reach the image
	FAKE_DT_HOOK=view FAKE_DT_HOOK_CMD="dd if=/dev/urandom of=$LOOP bs=512 seek=0 count=8 oflag=direct conv=notrunc status=none && $DIRTYCTL mark $LOOP 0 8" \
		run --separate-stderr backup
	[ "$status" -eq 0 ] || { echo "$stderr"; false; }
	[[ "$output" == *": full (no previous backup), 1 extent, 4196352 bytes copied, "*", sequence 1, point-in-time (snapshot store /dev/fake-store)" ]]
	cmp "$BATS_TEST_TMPDIR/reference" "$IMG"
	grep -v '^status' "$FAKE_DT_LOG" >"$BATS_TEST_TMPDIR/order"
	[ "$(sed -n 1p "$BATS_TEST_TMPDIR/order")" = "mark 0 8196" ]
	[ "$(sed -n 2p "$BATS_TEST_TMPDIR/order")" = "checkpoint --freeze" ]
	grep -qx 'release 0 8196' "$BATS_TEST_TMPDIR/order"
	run backup
	[ "$status" -eq 0 ]
	image_equals_device
	some_writes
	cp "$LOOP" "$BATS_TEST_TMPDIR/reference"
	: >"$FAKE_DT_LOG"
	# Right after the view exists, a writer overwrites frozen clusters
	# (sectors 100-399) and a cluster that is not frozen. The copy goes in
	# chunks of 64 KiB, each released once copied.
	FAKE_DT_HOOK=view FAKE_DT_HOOK_CMD="[ -e $BATS_TEST_TMPDIR/wrote ] || { touch $BATS_TEST_TMPDIR/wrote; dd if=/dev/urandom of=$LOOP bs=512 seek=100 count=300 oflag=direct conv=notrunc status=none && $DIRTYCTL mark $LOOP 100 300; }" \
		DT_BACKUP_CHUNK=65536 run --separate-stderr backup
	[ "$status" -eq 0 ] || { echo "$stderr"; false; }
	[[ "$output" == *": incremental, 4 extents, "*", sequence 3, point-in-time (snapshot store /dev/fake-store)" ]]
	grep -q "point-in-time (snapshot store /dev/fake-store)" "$IMG.log"
	# the frozen extents as of the checkpoint, not the later write
	cmp "$BATS_TEST_TMPDIR/reference" "$IMG"
	! cmp -s "$LOOP" "$IMG"
	# checkpoint --freeze, view, copy, one release per chunk of at most
	# 64 KiB of extents (the extent 96+304 is cut in three), view
	# removed, commit
	grep -v '^status' "$FAKE_DT_LOG" >"$BATS_TEST_TMPDIR/order"
	diff -u - "$BATS_TEST_TMPDIR/order" <<EOF
checkpoint --freeze
view 
mark 100 300
dump --frozen --format bytes -o $(grep -o -- '-o .*' "$BATS_TEST_TMPDIR/order" | cut -c4-)
release 0 216
release 216 128
release 344 7852
view --remove
commit --id $(grep '^commit' "$BATS_TEST_TMPDIR/order" | cut -d' ' -f3)
EOF
	[ ! -e "$FAKE_DT/view_open" ]
	# the next run copies the write made during the previous one
	run backup
	[ "$status" -eq 0 ]
	image_equals_device
}

@test "without a snapshot store: no --freeze, no view, and the log says not point-in-time" {
	backup
	some_writes
	export FAKE_DT_LOG=$BATS_TEST_TMPDIR/verbs
	run --separate-stderr backup
	[ "$status" -eq 0 ] || { echo "$stderr"; false; }
	[[ "$output" == *", not point-in-time (no snapshot store)" ]]
	grep -q "not point-in-time (no snapshot store)" "$IMG.log"
	! grep -q -e '^view' -e '^release' -e -- '--freeze' "$FAKE_DT_LOG"
	image_equals_device
}

@test "a snapshot that became invalid (store full) fails the run, names the store and its use, rolls back, removes the view" {
	with_store
	backup
	some_writes
	frozen_before=$(cat "$FAKE_DT/live")
	FAKE_DT_HOOK=view FAKE_DT_HOOK_CMD="echo invalid >$FAKE_DT/snapshot; echo 1024 >$FAKE_DT/store_used" \
		run --separate-stderr backup
	[ "$status" -eq 1 ]
	[[ "$stderr" == *"the snapshot store /dev/fake-store overflowed or failed (1024 of 1024 sectors used)"* ]]
	[[ "$stderr" == *"checkpoint rolled back"* ]]
	grep -q "snapshot store /dev/fake-store overflowed" "$IMG.log"
	[ ! -e "$FAKE_DT/frozen" ]
	[ ! -e "$FAKE_DT/view_open" ]
	# nothing lost: every frozen cluster is in the live set again
	[ -z "$(comm -23 <(echo "$frozen_before") "$FAKE_DT/live")" ]
	[ "$(cat "$FAKE_DT/sequence")" = 1 ]
	run backup
	[ "$status" -eq 0 ]
	image_equals_device
}

@test "with a snapshot store: a failure or a signal after the view exists removes it and rolls back" {
	with_store
	backup
	some_writes
	FAKE_DT_FAIL=view run --separate-stderr backup
	[ "$status" -eq 1 ]
	[[ "$stderr" == *"cannot create the snapshot view: "*"checkpoint rolled back"* ]]
	[ ! -e "$FAKE_DT/view_open" ]
	[ ! -e "$FAKE_DT/frozen" ]
	FAKE_DT_TERM=view run backup_in_own_group
	[ "$status" -eq 1 ]
	[ ! -e "$FAKE_DT/view_open" ]
	[ ! -e "$FAKE_DT/frozen" ]
	run backup
	[ "$status" -eq 0 ]
	image_equals_device
}

@test "with a snapshot store: a view left by a killed run is replaced" {
	with_store
	backup
	some_writes
	FAKE_DT_KILL=view run backup_in_own_group
	[ "$status" -eq 137 ]
	[ -e "$FAKE_DT/view_open" ]
	run --separate-stderr backup
	[ "$status" -eq 0 ] || { echo "$stderr"; false; }
	[ ! -e "$FAKE_DT/view_open" ]
	image_equals_device
}

@test "with a snapshot store: each chunk is in the image before it is released" {
	with_store
	backup
	some_writes
	fake_write 2048 1024
	cp "$LOOP" "$BATS_TEST_TMPDIR/reference"
	FAKE_DT_HOOK=release FAKE_DT_HOOK_CMD=$(release_hook) DT_BACKUP_CHUNK=131072 \
		run --separate-stderr backup
	[ "$status" -eq 0 ] || { echo "$stderr"; false; }
	cat "$BATS_TEST_TMPDIR/released"
	[ "$(wc -l <"$BATS_TEST_TMPDIR/released")" -ge 4 ]
	! grep -q 'NOT COPIED' "$BATS_TEST_TMPDIR/released" || false
	image_equals_device
	# The manifest took the hashes of every chunk's copy (none refused,
	# none read again from the image) and matches the image.
	[[ $output != *"hashes were refused"* && $output != *"rebuilt"* ]]
	"$ROOT/scripts/dirtytrack-backup" --verify "$IMG"
}

@test "with a snapshot store: a failed release loses nothing; the run warns, stops releasing and succeeds" {
	with_store
	backup
	some_writes
	cp "$LOOP" "$BATS_TEST_TMPDIR/reference"
	export FAKE_DT_LOG=$BATS_TEST_TMPDIR/verbs
	FAKE_DT_FAIL=release DT_BACKUP_CHUNK=65536 run --separate-stderr backup
	[ "$status" -eq 0 ] || { echo "$stderr"; false; }
	[[ "$stderr" == *"warning: release failed (dirtyctl: $LOOP: injected failure of release): the copied clusters stay in the snapshot store until the commit; the snapshot stays valid"* ]]
	[ "$(grep -c '^release' "$FAKE_DT_LOG")" -eq 1 ]
	[[ "$output" == *": incremental, 4 extents, "*", point-in-time (snapshot store /dev/fake-store)" ]]
	cmp "$BATS_TEST_TMPDIR/reference" "$IMG"
	[ ! -e "$FAKE_DT/frozen" ]
	[ "$(cat "$FAKE_DT/sequence")" = 2 ]
}

@test "with a snapshot store: a store that overflows between two chunks fails the run once the next chunk is read, before releasing it" {
	with_store
	backup
	some_writes
	export FAKE_DT_LOG=$BATS_TEST_TMPDIR/verbs
	FAKE_DT_HOOK=release FAKE_DT_HOOK_CMD="echo invalid >$FAKE_DT/snapshot; echo 1024 >$FAKE_DT/store_used" \
		DT_BACKUP_CHUNK=65536 run --separate-stderr backup
	[ "$status" -eq 1 ]
	[[ "$stderr" == *"the snapshot store /dev/fake-store overflowed or failed (1024 of 1024 sectors used)"*"checkpoint rolled back"* ]]
	[ "$(grep -c '^release' "$FAKE_DT_LOG")" -eq 1 ]
	[ ! -e "$FAKE_DT/view_open" ]
	run backup
	[ "$status" -eq 0 ]
	image_equals_device
}
