#!/usr/bin/env bats
# A guest crash with file-backed metadata: the next activation must report
# every cluster dirty, and say why, until the next clear or commit.
# Runs on the host; each test boots the VM more than once over the same disks.

setup() {
	ROOT=$(cd "$BATS_TEST_DIRNAME/../.." && pwd)
	MD=$BATS_TEST_TMPDIR/md.img
	DATA=$BATS_TEST_TMPDIR/data.img
	truncate -s 1M "$MD"
	truncate -s 64M "$DATA"
}

vm() {
	"$ROOT/scripts/vm-run" --kernel "$DT_KVER" --disk "$MD" --disk "$DATA" -- "$@"
}

TABLE='0 131072 dirtytrack /dev/vda /dev/vdb 128'

@test "a crash while active leaves every cluster dirty with health unclean_shutdown" {
	run vm "dmsetup create dt0 --table '$TABLE' &&
		dmsetup message dt0 0 clear &&
		dd if=/dev/urandom of=/dev/mapper/dt0 bs=4k count=1 oflag=direct status=none &&
		dmsetup status dt0 && echo c > /proc/sysrq-trigger; sleep 10; echo not crashed"
	echo "$output"
	[ "$status" -eq 126 ]

	run vm "dmsetup create dt0 --table '$TABLE' && dmsetup status dt0"
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == *"dirtytrack 128 1024 1024 - default unclean_shutdown "* ]]

	# survives a clean reactivation; cleared by clear
	run vm "dmsetup create dt0 --table '$TABLE' && dmsetup status dt0 &&
		dmsetup message dt0 0 clear && dmsetup status dt0 && dmsetup remove dt0 &&
		dmsetup create dt0 --table '$TABLE' && dmsetup status dt0"
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "${lines[0]}" == *"dirtytrack 128 1024 1024 - default unclean_shutdown "* ]]
	[[ "${lines[1]}" == *"dirtytrack 128 1024 0 - default ok "* ]]
	[[ "${lines[2]}" == *"dirtytrack 128 1024 0 - default ok "* ]]
}

@test "a crash with a frozen set drops it into an all-dirty live set" {
	run vm "dmsetup create dt0 --table '$TABLE' &&
		dd if=/dev/urandom of=/dev/mapper/dt0 bs=4k count=1 oflag=direct status=none &&
		dmsetup message dt0 0 checkpoint && echo c > /proc/sysrq-trigger; sleep 10"
	[ "$status" -eq 126 ]
	run vm "dmsetup create dt0 --table '$TABLE' && dmsetup status dt0 &&
		dmsetup message dt0 0 commit"
	echo "$output"
	[[ "${lines[0]}" == *"dirtytrack 128 1024 1024 - default unclean_shutdown "* ]]
	# nothing is frozen any more, so commit is refused
	[ "$status" -ne 0 ]
}

@test "a clean shutdown before the crash keeps the exact bitmap" {
	run vm "dmsetup create dt0 --table '$TABLE' &&
		dd if=/dev/urandom of=/dev/mapper/dt0 bs=4k seek=32 count=1 oflag=direct status=none &&
		dmsetup remove dt0 && echo c > /proc/sysrq-trigger; sleep 10"
	[ "$status" -eq 126 ]
	run vm "dmsetup create dt0 --table '$TABLE' && dmsetup status dt0 && dmsetup message dt0 0 bitmap live 0"
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "${lines[0]}" == *"dirtytrack 128 1024 1 - default ok "* ]]
	# cluster 2 (sector 256) alone in group 0: "G" (one set) and "C" (2)
	[[ "${lines[1]}" == *" GCz"* ]]
}
