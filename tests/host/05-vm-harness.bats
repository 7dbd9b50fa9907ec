#!/usr/bin/env bats
# The VM harness itself, as the crash tests rely on it: a deliberate guest
# crash is reported as such (status 126), and O_DIRECT writes to a
# file-backed disk made before the crash are there in the next boot.
# Runs on the host; scripts/check sets DT_KVER.

setup() {
	ROOT=$(cd "$BATS_TEST_DIRNAME/../.." && pwd)
	DISK=$BATS_TEST_TMPDIR/disk.img
	PATTERN=$BATS_TEST_TMPDIR/pattern.img
	truncate -s 16M "$DISK"
	head -c 1M /dev/urandom >"$PATTERN"
}

vm() {
	"$ROOT/scripts/vm-run" --kernel "${DT_KVER:-6.12}" --timeout 300 "$@"
}

@test "vm-run passes the guest command's exit status and output through" {
	# shellcheck disable=SC2016 # expanded in the guest
	run vm -- 'echo hello from $(uname -r); exit 7'
	echo "$output"
	[ "$status" -eq 7 ]
	[[ "$output" == *"hello from ${DT_KVER:-6.12}"* ]]
}

@test "O_DIRECT data written before a deliberate guest crash survives into the next boot" {
	# boot 1: copy the pattern (second disk) to 1 MiB into the first, crash
	run vm --disk "$DISK" --disk "$PATTERN" -- \
		'dd if=/dev/vdb of=/dev/vda bs=64k seek=16 oflag=direct status=none && echo written &&
		echo c >/proc/sysrq-trigger; sleep 30; echo not crashed'
	echo "$output"
	[ "$status" -eq 126 ]
	[[ "$output" == *written* ]]
	[[ "$output" != *"not crashed"* ]]

	# boot 2 reads it back; and so does the host
	run vm --disk "$DISK" -- 'dd if=/dev/vda bs=64k skip=16 count=16 iflag=direct status=none | sha256sum'
	echo "$output"
	[ "$status" -eq 0 ]
	[ "${output%% *}" = "$(sha256sum <"$PATTERN" | cut -d' ' -f1)" ]
	cmp <(dd if="$DISK" bs=64k skip=16 count=16 status=none) "$PATTERN"
}
