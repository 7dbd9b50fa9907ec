#!/usr/bin/env bats
# Metadata write errors at every step, and the frozen set identity.
#
# The rule under test (DESIGN "No lost dirty bit"): a write that completed
# is, after any crash, in the stored bitmap or the stored superblock does
# not claim an exact bitmap. A failing metadata device is "mdx", a dm device
# over $MD_DEV whose table is swapped to "error" and back (mdx --suspend of
# target.bash, as in 30-metadata.bats). A crash is a removal while mdx fails
# every I/O (what is on $MD_DEV is then what a power cut would leave),
# followed by healing mdx and creating dt0 again. Each cluster is written at
# most once per test, so that a lost bit is never marked again by a later
# write.
#
# 64 MiB data, 128-sector clusters: 1024 clusters, one bitmap block each;
# sectors 0-7 of the metadata hold the superblock, 8-15 the live bitmap,
# 16-23 the frozen one.

HOLD_PARAM=/sys/module/dm_dirtytrack/parameters/metadata_hold_seconds

setup() {
	load helpers
	load target
	dt_setup_devices
	modprobe dm-dirtytrack
	COMPLETED=$BATS_TEST_TMPDIR/completed
	: >"$COMPLETED"
	HOLD_SAVED=$(cat "$HOLD_PARAM" 2>/dev/null || :)
}

teardown() {
	[ -z "${HOLD_SAVED:-}" ] || echo "$HOLD_SAVED" >"$HOLD_PARAM"
	dt_cleanup
}

# hold_seconds N: the target's metadata_hold_seconds for this test.
hold_seconds() {
	echo "$1" >"$HOLD_PARAM"
}

# write_once CLUSTER: write its first 4 KiB once; on success the cluster is
# recorded in $COMPLETED. Returns dd's status.
write_once() {
	if timeout 300 dd if=/dev/urandom of=/dev/mapper/dt0 bs=4k seek=$(($1 * 16)) count=1 \
		oflag=direct conv=notrunc status=none; then
		echo "$1" >>"$COMPLETED"
		return 0
	fi
	echo "# write to cluster $1 failed" >&3
	return 1
}

# completed CLUSTER: the write to CLUSTER completed.
completed() {
	grep -qx "$1" "$COMPLETED"
}

# crash_and_reactivate [FEATURE_ARGS...]: the metadata device stops taking
# any I/O, dt0 goes away, the device heals, dt0 comes back.
crash_and_reactivate() {
	mdx_all_failing --suspend
	dmsetup remove dt0
	mdx --suspend
	dtx_create "$@"
}

# stored_honest: the superblock on $MD_DEV does not claim VALID and says
# METADATA_ERROR.
stored_honest() {
	local f
	f=$(dt_sb_flags "$MD_DEV")
	[ $((f & 1)) -eq 0 ] && [ $((f & 8)) -ne 0 ]
}

# history [FEATURE_ARGS...]: a clean run that stores cluster 1 dirty with
# the valid flag, then dt0 created again (its superblock VALID on disk).
history() {
	mdx --suspend
	dtx_create "$@"
	write_once 1
	dmsetup remove dt0
	dt_sb_valid "$MD_DEV"
	dtx_create "$@"
}

# ------------------------------------------------- writes that need metadata

# held_then_failed [FEATURE_ARGS...]: the metadata device fails before the
# first write to a clean cluster; the write is held for the hold time, then
# fails; nothing that completed is lost across a crash.
held_then_failed() {
	hold_seconds 2
	history "$@"
	mdx_all_failing --suspend
	write_once 5 || true
	[ "$(dt_status dt0 health)" = metadata_error ]
	# the metadata error is known now: a write to another clean cluster
	# must still not pass while the stored bitmap vouches without it
	write_once 6 || true
	crash_and_reactivate "$@"
	all_covered
	# the writes were not let through, they failed
	! completed 5 || false
	! completed 6 || false
	dmesg_since_mark | grep -q "holding writes that need it for up to 2 s"
	cmp <(dd if="$DATA_DEV" bs=4k skip=80 count=1 status=none) <(head -c 4096 /dev/zero)
}

@test "default mode: a write whose invalidation cannot be stored is held, then fails" {
	held_then_failed
}

@test "crash_safe: a write whose write-intent bit cannot be stored is held, then fails" {
	held_then_failed 1 crash_safe
}

# held_then_healed [FEATURE_ARGS...]: the metadata device fails at the first
# write to a clean cluster and heals while the write is held: the write then
# completes, tracking is degraded, and a crash leaves every cluster dirty.
held_then_healed() {
	local pid
	hold_seconds 120
	history "$@"
	mdx_all_failing --suspend
	write_once 7 &
	pid=$!
	sleep 3
	# held, not let through with the metadata unwritten
	kill -0 $pid
	! completed 7 || false
	mdx --suspend
	wait $pid
	completed 7
	[ "$(dt_status dt0 health)" = metadata_error ]
	stored_honest
	crash_and_reactivate "$@"
	all_covered
	[ "$(dt_status dt0 health)" = unclean_shutdown ]
}

@test "default mode: a held first write goes once the metadata heals; a crash keeps it" {
	held_then_healed
}

@test "crash_safe: a held write-intent batch goes once the metadata heals; a crash keeps it" {
	held_then_healed 1 crash_safe
}

@test "crash_safe: a failed write-intent write with a writable superblock degrades at once" {
	hold_seconds 120
	history 1 crash_safe
	# only the live bitmap fails: the superblock can stop vouching
	mdx --suspend 8 8
	timeout 60 dd if=/dev/urandom of=/dev/mapper/dt0 bs=4k seek=$((9 * 16)) count=1 \
		oflag=direct conv=notrunc status=none
	echo 9 >>"$COMPLETED"
	[ "$(dt_status dt0 health)" = metadata_error ]
	stored_honest
	write_once 11
	crash_and_reactivate 1 crash_safe
	all_covered
}

# availability [FEATURE_ARGS...]: with the availability feature writes flow
# while nothing can be written; once the device heals the superblock stops
# vouching without any message or suspend, and a crash then keeps them.
availability() {
	local i
	hold_seconds 120
	history "$@"
	mdx_all_failing --suspend
	write_once 13
	write_once 14
	completed 13
	completed 14
	[ "$(dt_status dt0 health)" = metadata_error ]
	mdx --suspend
	for i in $(seq 30); do
		! stored_honest || break
		sleep 1
	done
	stored_honest
	crash_and_reactivate "$@"
	all_covered
}

@test "availability: writes flow while the metadata fails, and the superblock is fixed later" {
	availability 1 availability
	[[ "$(dmsetup table dt0)" == *" 128 1 availability" ]]
}

@test "availability with crash_safe: writes flow while the metadata fails" {
	availability 2 crash_safe availability
	[[ "$(dmsetup table dt0)" == *" 128 2 crash_safe availability" ]]
	[ "$(dt_status dt0 mode)" = crash_safe ]
}

# ----------------------------------------------------------------- messages

# messages_fail_unwritable [FEATURE_ARGS...]: on an activation whose
# superblock is VALID on disk, with the metadata failing, every message
# that would change the stored state fails and changes nothing.
messages_fail_unwritable() {
	local seq
	history "$@"
	seq=$(dt_status dt0 sequence)
	mdx_all_failing --suspend
	run dmsetup message dt0 0 mark $((20 * 128)) 1
	[ "$status" -ne 0 ]
	run dmsetup message dt0 0 checkpoint
	[ "$status" -ne 0 ]
	[ "$(dt_status dt0 frozen)" = - ]
	[ "$(dt_status dt0 frozen_id)" = - ]
	run dmsetup message dt0 0 clear
	[ "$status" -ne 0 ]
	[ "$(dt_status dt0 sequence)" = "$seq" ]
	[[ " $(dt_clusters dt0 | tr '\n' ' ') " == *" 1 "* ]]
	crash_and_reactivate "$@"
	all_covered
	[ "$(dt_sb_sequence "$MD_DEV")" = "$seq" ]
}

@test "default mode: mark, checkpoint and clear fail when the metadata cannot be written" {
	messages_fail_unwritable
}

@test "crash_safe: mark, checkpoint and clear fail when the metadata cannot be written" {
	messages_fail_unwritable 1 crash_safe
}

# commit_fails [FEATURE_ARGS...]: commit with the metadata failing fails,
# keeps the frozen set under its identity and the sequence; healed, it
# succeeds and stores the new sequence.
commit_fails() {
	local id seq
	mdx --suspend
	dtx_create "$@"
	write_once 1
	id=$(dmsetup message dt0 0 checkpoint)
	write_once 2
	seq=$(dt_status dt0 sequence)
	mdx_all_failing --suspend
	run dmsetup message dt0 0 commit
	echo "commit: $status $output"
	[ "$status" -ne 0 ]
	[ "$(dt_status dt0 frozen_id)" = "$id" ]
	[ "$(dt_status dt0 frozen)" = 1 ]
	[ "$(dt_clusters dt0 frozen | dt_ranges)" = 1 ]
	[ "$(dt_status dt0 sequence)" = "$seq" ]
	[ "$(dt_sb_sequence "$MD_DEV")" = "$seq" ]
	mdx --suspend
	dmsetup message dt0 0 commit "$id"
	[ "$(dt_status dt0 sequence)" = $((seq + 1)) ]
	[ "$(dt_sb_sequence "$MD_DEV")" = $((seq + 1)) ]
	[ "$(dt_status dt0 frozen)" = - ]
	crash_and_reactivate "$@"
	all_covered
}

@test "default mode: commit fails when its sequence cannot be stored, and keeps the frozen set" {
	commit_fails
}

@test "crash_safe: commit fails when its sequence cannot be stored, and keeps the frozen set" {
	commit_fails 1 crash_safe
}

# clear_fails [FEATURE_ARGS...]: clear with the metadata failing fails and
# drops nothing.
clear_fails() {
	local seq
	mdx --suspend
	dtx_create "$@"
	write_once 3
	seq=$(dt_status dt0 sequence)
	mdx_all_failing --suspend
	run dmsetup message dt0 0 clear
	[ "$status" -ne 0 ]
	[ "$(dt_status dt0 sequence)" = "$seq" ]
	[ "$(dt_clusters dt0 | dt_ranges)" = 3 ]
	mdx --suspend
	dmsetup message dt0 0 clear
	[ "$(dt_status dt0 sequence)" = $((seq + 1)) ]
	[ "$(dt_sb_sequence "$MD_DEV")" = $((seq + 1)) ]
}

@test "default mode: clear fails when its sequence cannot be stored, and drops nothing" {
	clear_fails
}

@test "crash_safe: clear fails when its sequence cannot be stored, and drops nothing" {
	clear_fails 1 crash_safe
}

@test "crash_safe: rollback fails when the merged set cannot be stored, and keeps both sets" {
	local id
	hold_seconds 2
	mdx --suspend
	dtx_create 1 crash_safe
	write_once 1
	id=$(dmsetup message dt0 0 checkpoint)
	write_once 2
	mdx_all_failing --suspend
	run dmsetup message dt0 0 rollback "$id"
	[ "$status" -ne 0 ]
	[ "$(dt_status dt0 frozen_id)" = "$id" ]
	[ "$(dt_clusters dt0 frozen | dt_ranges)" = 1 ]
	[ "$(dt_clusters dt0 | dt_ranges)" = 1-2 ]
	crash_and_reactivate 1 crash_safe
	all_covered
}

@test "crash_safe: a checkpoint whose frozen set cannot be stored fails and freezes nothing" {
	hold_seconds 2
	mdx --suspend
	dtx_create 1 crash_safe
	write_once 1
	write_once 2
	# the frozen bitmap fails, the superblock does not
	mdx --suspend 16 8
	run dmsetup message dt0 0 checkpoint
	[ "$status" -ne 0 ]
	[ "$(dt_status dt0 frozen)" = - ]
	[ "$(dt_status dt0 frozen_id)" = - ]
	[ "$(dt_clusters dt0 | dt_ranges)" = 1-2 ]
	stored_honest
	# and with nothing writable at all: writes after it are not let
	# through with the stored bitmap still vouching
	mdx_all_failing --suspend
	run dmsetup message dt0 0 checkpoint
	[ "$status" -ne 0 ]
	write_once 30 || true
	crash_and_reactivate 1 crash_safe
	all_covered
}

@test "crash_safe: a failed checkpoint with nothing writable lets no write go unstored" {
	hold_seconds 2
	mdx --suspend
	dtx_create 1 crash_safe
	write_once 1
	mdx_all_failing --suspend
	run dmsetup message dt0 0 checkpoint
	[ "$status" -ne 0 ]
	[ "$(dt_status dt0 frozen_id)" = - ]
	write_once 31 || true
	crash_and_reactivate 1 crash_safe
	all_covered
	! completed 31 || false
}

@test "writes held past the hold time fail, and a healed device takes writes again" {
	hold_seconds 1
	history
	mdx_all_failing --suspend
	! write_once 40 || false
	! write_once 41 || false
	mdx --suspend
	write_once 42
	[ "$(dt_status dt0 health)" = metadata_error ]
	stored_honest
	crash_and_reactivate
	all_covered
}

# ------------------------------------------------ suspend, resume, growth

# fault_at_suspend FIRST NR [FEATURE_ARGS...]: sectors FIRST..FIRST+NR-1 of
# the metadata fail while dt0 is suspended (the suspend stores the sets);
# then the device heals, dt0 resumes, takes a write and is created again
# after a crash: every completed write is dirty each time.
fault_at_suspend() {
	local first=$1 nr=$2
	shift 2
	history "$@"
	write_once 20
	write_once 21
	mdx "$first" "$nr"
	dmsetup suspend dt0
	[ "$(dt_status dt0 health)" = metadata_error ]
	mdx
	dmsetup resume dt0
	all_covered
	write_once 22
	crash_and_reactivate "$@"
	all_covered
}

@test "default mode: metadata failing at suspend loses no completed write" {
	fault_at_suspend 0 "$(blockdev --getsz "$MD_DEV")"
}

@test "crash_safe: metadata failing at suspend loses no completed write" {
	fault_at_suspend 0 "$(blockdev --getsz "$MD_DEV")" 1 crash_safe
}

# Only the bitmap areas fail: the superblock written after them must not
# claim them exact.
@test "default mode: bitmaps failing at suspend never leave a valid superblock over them" {
	fault_at_suspend 8 16
	[ "$(dt_status dt0 health)" = unclean_shutdown ]
}

@test "crash_safe: bitmaps failing at suspend never leave a valid superblock over them" {
	fault_at_suspend 8 16 1 crash_safe
	[ "$(dt_status dt0 health)" = unclean_shutdown ]
}

# fault_at_resume [FEATURE_ARGS...]: the metadata fails from the suspend to
# after the resume: the resume activates degraded, a write that needs
# metadata is held and then fails, the device heals, a write goes; after a
# crash every completed write is dirty.
fault_at_resume() {
	hold_seconds 2
	history "$@"
	write_once 30
	dmsetup suspend dt0
	mdx_all_failing
	dmsetup resume dt0
	[ "$(dt_status dt0 health)" = metadata_error ]
	write_once 31 || true
	mdx
	write_once 32
	crash_and_reactivate "$@"
	all_covered
	! completed 31 || false
}

@test "default mode: metadata failing at resume loses no completed write" {
	fault_at_resume
}

@test "crash_safe: metadata failing at resume loses no completed write" {
	fault_at_resume 1 crash_safe
}

# fault_at_growth [FEATURE_ARGS...]: a half-size dt0 with a frozen set is
# grown by a table reload whose resume finds the metadata failing (the old
# table cannot store, the new one cannot load); writes to old and new
# clusters, the device heals; after a crash every completed write is dirty.
fault_at_growth() {
	local size line
	size=$(blockdev --getsz "$DATA_DEV")
	line="0 $size dirtytrack /dev/mapper/mdx $DATA_DEV 128${*:+ $*}"
	hold_seconds 2
	mdx
	echo "# dmsetup create dt0 (half size)" >&3
	dmsetup create dt0 --table "0 $((size / 2)) dirtytrack /dev/mapper/mdx $DATA_DEV 128${*:+ $*}"
	write_once 1
	write_once 40
	dmsetup message dt0 0 checkpoint
	write_once 41
	dmsetup load dt0 --table "$line"
	mdx_all_failing
	dmsetup resume dt0
	[ "$(dt_status dt0 health)" = metadata_error ]
	[ "$(dt_status dt0 clusters)" = $((size / 128)) ]
	write_once 900 || true
	write_once 42 || true
	mdx
	write_once 901
	write_once 43
	crash_and_reactivate "$@"
	[ "$(dt_status dt0 clusters)" = $((size / 128)) ]
	all_covered
}

@test "default mode: metadata failing at growth loses no completed write" {
	fault_at_growth
}

@test "crash_safe: metadata failing at growth loses no completed write" {
	fault_at_growth 1 crash_safe
}

# refused_at_once ARGS...: `dmsetup message dt0 0 ARGS` fails within 30 s
# (a message blocked on a lock cannot be killed, so it is only waited for).
refused_at_once() {
	local pid i st=0
	dmsetup message dt0 0 "$@" &
	pid=$!
	for i in $(seq 30); do
		kill -0 $pid 2>/dev/null || break
		sleep 1
	done
	if kill -0 $pid 2>/dev/null; then
		echo "message '$*' still blocked after 30 s"
		return 1
	fi
	wait $pid || st=$?
	[ "$st" -ne 0 ]
}

@test "a malformed message is refused while another holds the target" {
	local pid r=0
	history
	# the first write's superblock update waits on a suspended mdx,
	# holding the target's lock
	dmsetup suspend mdx
	dmsetup message dt0 0 mark 0 8 &
	pid=$!
	sleep 2
	{ refused_at_once frobnicate &&
	  refused_at_once commit not-an-identity &&
	  refused_at_once mark 1 &&
	  refused_at_once rollback 0123456789abcdef00; } || r=1
	dmsetup resume mdx
	wait $pid
	[ "$r" -eq 0 ]
	[ "$(dt_clusters dt0 | dt_ranges)" = 0-1 ]
}

# ------------------------------------------------------- frozen set identity

@test "checkpoint replies with the frozen set identity, which status shows" {
	mdx --suspend
	dtx_create
	[ "$(dt_status dt0 frozen_id)" = - ]
	write_once 1
	local id
	id=$(dmsetup message dt0 0 checkpoint)
	[[ "$id" =~ ^[0-9a-f]{16}$ ]]
	[ "$id" != 0000000000000000 ]
	[ "$(dt_status dt0 frozen_id)" = "$id" ]
	# stored at offset 120 of the superblock, once the sets are stored
	dmsetup remove dt0
	[ "$(dd if="$MD_DEV" bs=4096 count=1 iflag=direct status=none | od -An -tx8 -j120 -N8 | tr -d ' ')" = "$id" ]
	dtx_create
	[ "$(dt_status dt0 frozen_id)" = "$id" ]
	[ "$(dt_clusters dt0 frozen | dt_ranges)" = 1 ]
	dmsetup message dt0 0 commit "$id"
	[ "$(dt_status dt0 frozen_id)" = - ]
	# a new checkpoint, a new identity
	local id2
	id2=$(dmsetup message dt0 0 checkpoint)
	[ "$id2" != "$id" ]
	dmsetup message dt0 0 rollback "$id2"
	[ "$(dt_status dt0 frozen_id)" = - ]
}

# refused_on_other_id [FEATURE_ARGS...]
refused_on_other_id() {
	local id other seq
	mdx --suspend
	dtx_create "$@"
	write_once 1
	id=$(dmsetup message dt0 0 checkpoint)
	write_once 2
	# the same identity but its last digit
	if [ "${id: -1}" = 0 ]; then other=${id:0:15}1; else other=${id:0:15}0; fi
	seq=$(dt_status dt0 sequence)
	for msg in commit rollback; do
		run dmsetup message dt0 0 $msg "$other"
		echo "$msg $other: $status $output"
		[ "$status" -ne 0 ]
		[[ "$output" == *"Stale"* ]]
		[ "$(dt_status dt0 frozen_id)" = "$id" ]
		[ "$(dt_clusters dt0 frozen | dt_ranges)" = 1 ]
		[ "$(dt_clusters dt0 | dt_ranges)" = 2 ]
		[ "$(dt_status dt0 sequence)" = "$seq" ]
	done
	for bad in 123 "${id}0" "x${id:1}" "0x${id:2}"; do
		run dmsetup message dt0 0 commit "$bad"
		[ "$status" -ne 0 ]
		[[ "$output" == *"Invalid argument"* ]]
	done
	[ "$(dt_status dt0 frozen_id)" = "$id" ]
	dmsetup message dt0 0 commit "$id"
	[ "$(dt_status dt0 sequence)" = $((seq + 1)) ]
	run dmsetup message dt0 0 commit "$id"
	[[ "$output" == *"No such file or directory"* ]]
	run dmsetup message dt0 0 rollback "$id"
	[[ "$output" == *"No such file or directory"* ]]
}

@test "commit and rollback with another frozen set's identity are refused and change nothing" {
	refused_on_other_id
}

@test "crash_safe: commit and rollback with another identity are refused" {
	refused_on_other_id 1 crash_safe
}

# -------------------------------------------------------------------- epoch

@test "the bitmap epoch changes across a table reload" {
	mdx --suspend
	dtx_create
	write_once 1
	local e1 e2
	e1=$(dmsetup message dt0 0 bitmap live 0 | cut -d' ' -f1)
	dmsetup table dt0 | dmsetup load dt0
	dmsetup resume dt0
	e2=$(dmsetup message dt0 0 bitmap live 0 | cut -d' ' -f1)
	echo "epoch $e1 then $e2"
	[ "$e1" != "$e2" ]
	dmsetup suspend dt0
	dmsetup resume dt0
	[ "$(dmsetup message dt0 0 bitmap live 0 | cut -d' ' -f1)" != "$e2" ]
}

# ------------------------------------------------------------- bitmap size

@test "a bitmap larger than the machine allows is refused without a kernel warning" {
	# 2^38 sectors of 8-sector clusters: a 4 GiB bitmap
	local size=$((1 << 38))
	dmsetup create bigmd --table "0 $size zero"
	dmsetup create bigdata --table "0 $size zero"
	dmsetup_expect_error "0 $size dirtytrack /dev/mapper/bigmd /dev/mapper/bigdata 8" \
		"Bitmap too large for this machine"
	dmesg_since_mark | grep -q "needs 4294967296 bytes"
}
