#!/usr/bin/env bats
# dirtyctl checkpoint --freeze against a real mounted file system: the
# checkpoint is taken while the file system is frozen (FIFREEZE), and it is
# thawed afterwards, also when the checkpoint fails. dirtyctl runs with the
# simulated target of userspace/tests/fake-dm.c, whose dev_t is set to the
# loop device the file system is mounted from; at the checkpoint message
# the fake probes whether the file system is frozen.

bats_require_minimum_version 1.5.0

setup_file() {
	ROOT=$(cd "$BATS_TEST_DIRNAME/../.." && pwd)
	export ROOT
	make -s -C "$ROOT/userspace" tests/dirtyctl-fake >&2
}

setup() {
	[[ $(id -u) == 0 ]] || skip "needs root to mount a file system"
	T=$BATS_TEST_TMPDIR
	truncate -s 16M "$T/fs.img"
	mkfs.ext4 -q "$T/fs.img"
	LOOP=$(losetup -f --show "$T/fs.img")
	MNT=$T/mnt
	mkdir -p "$MNT"
	mount "$LOOP" "$MNT"
	printf 'name=vm-disk\nstart=0\nlength=1000\ndev_sectors=1000\nstatus=8 125 0 - default ok 5b8a4c2e-0000-4000-8000-00000000000a 7\ndevt=%s\n' \
		"$(lsblk -dno MAJ:MIN "$LOOP" | tr -d ' ')" >"$T/state"
	export DIRTYCTL_FAKE_STATE=$T/state DIRTYCTL_FAKE_LOG=$T/log DIRTYCTL_FAKE_FREEZE_PROBE=$MNT
	: >"$T/log"
}

teardown() {
	if [[ -n ${MNT:-} ]]; then
		fsfreeze -u "$MNT" 2>/dev/null
		umount "$MNT"
	fi
	[[ -n ${LOOP:-} ]] && losetup -d "$LOOP"
	return 0
}

# thawed: the file system is not frozen (freezing it again would fail with
# EBUSY; a write would block instead of failing).
thawed() {
	fsfreeze -f "$MNT" && fsfreeze -u "$MNT"
}

@test "checkpoint --freeze takes the checkpoint with the mounted file system frozen, then thaws it" {
	run --separate-stderr "$ROOT/userspace/tests/dirtyctl-fake" checkpoint vm-disk --freeze
	[ "$status" -eq 0 ] || { echo "$stderr"; false; }
	[ "$output" = c0ffee0123456789 ]
	[ "$(cat "$T/log")" = "0 checkpoint
probe: frozen" ]
	thawed
}

@test "checkpoint --freeze thaws the file system when the checkpoint fails" {
	echo "fail=checkpoint:17" >>"$T/state"
	run --separate-stderr "$ROOT/userspace/tests/dirtyctl-fake" checkpoint vm-disk --freeze
	[ "$status" -eq 1 ]
	[ "$stderr" = "dirtyctl: vm-disk: a checkpoint is already frozen; commit or roll it back first" ]
	grep -qx "probe: frozen" "$T/log"
	thawed
}

@test "checkpoint --freeze of an already frozen file system takes no checkpoint and leaves it to its owner" {
	fsfreeze -f "$MNT"
	run --separate-stderr "$ROOT/userspace/tests/dirtyctl-fake" checkpoint vm-disk --freeze
	[ "$status" -eq 1 ]
	[[ "$stderr" == "dirtyctl: vm-disk: cannot freeze the file system on $MNT: "*"; no checkpoint taken" ]]
	[ ! -s "$T/log" ]
	fsfreeze -u "$MNT"
	thawed
}

@test "checkpoint without --freeze does not freeze" {
	run --separate-stderr "$ROOT/userspace/tests/dirtyctl-fake" checkpoint vm-disk
	[ "$status" -eq 0 ]
	grep -qx "probe: not frozen" "$T/log"
}
