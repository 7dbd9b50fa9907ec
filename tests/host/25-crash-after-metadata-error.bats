#!/usr/bin/env bats
# A guest crash after a metadata error, in both modes: whatever the
# metadata device holds after the power cut must cover every write that
# completed before it. The guest reaches the metadata through a dm-linear
# (mdx over /dev/vda) that it switches to dm-error and back; the crash
# takes mdx away, so the next boot sees exactly what was durable on
# /dev/vda. Either the crash comes while the metadata still fails, after
# writes that needed it; or the metadata heals first, twice: once while
# writes are held for it, once after a suspend and resume while it failed
# (the default mode stores its bitmap there), then a write after it.
#
#   /dev/vda  metadata (1 MiB)       /dev/vdb  data (64 MiB, 64 KiB clusters)
#
# Runs on the host; scripts/check sets DT_KVER.

setup() {
	ROOT=$(cd "$BATS_TEST_DIRNAME/../.." && pwd)
	MD=$BATS_TEST_TMPDIR/md.img
	DATA=$BATS_TEST_TMPDIR/data.img
	truncate -s 1M "$MD"
	truncate -s 64M "$DATA"
}

vm() {
	"$ROOT/scripts/vm-run" --kernel "${DT_KVER:-6.12}" --timeout 600 \
		--disk "$MD" --disk "$DATA" -- "$@"
}

# Guest, first boot; $FEATURES the feature words of the table, HEAL=1 to
# heal the metadata before the crash (else it still fails then). Prints
# "COMPLETED <clusters>": the writes that completed, each to a cluster
# written once, so that no later write can re-mark a lost bit.
# shellcheck disable=SC2016 # expanded in the guest, by design
GUEST_ERROR='set -u
modprobe dm-dirtytrack
# held writes wait for the healing below (HEAL=1), or fail soon (HEAL=0)
echo $((HEAL ? 60 : 3)) >/sys/module/dm_dirtytrack/parameters/metadata_hold_seconds
linear="0 2048 linear /dev/vda 0"
dmsetup create mdx --table "$linear"
dmsetup create dt --table "0 131072 dirtytrack /dev/mapper/mdx /dev/vdb 128 $FEATURES"
dmsetup message dt 0 clear
: >/tmp/completed
write() {
	if dd if=/dev/urandom of=/dev/mapper/dt bs=4k seek=$(($1 * 16)) count=1 \
		oflag=direct status=none 2>/dev/null; then
		echo "$1" >>/tmp/completed
	fi
}
switch() {
	dmsetup suspend mdx && dmsetup load mdx --table "$1" && dmsetup resume mdx
}
write 1
# a clean suspend and resume: the stored bitmap is valid again, so the
# next write must first make the superblock stop vouching for it
dmsetup suspend dt && dmsetup resume dt
switch "0 2048 error"
if [ "$HEAL" = 0 ]; then
	write 5
	write 9
else
	# held until the metadata heals, then they complete
	write 5 &
	write 9 &
	sleep 2
	switch "$linear"
	wait
	# failing again across a suspend and resume (the default mode stores
	# its bitmap at suspend); a resume that cannot use the metadata fails:
	# then it resumes healed
	switch "0 2048 error"
	dmsetup suspend dt
	if ! dmsetup resume dt; then
		switch "$linear"
		dmsetup resume dt
		switch "0 2048 error"
	fi
	write 13 &
	sleep 2
	switch "$linear"
	wait
	write 21
fi
echo "COMPLETED $(sort -n /tmp/completed | tr "\n" " ")"
echo "STATUS $(dmsetup status dt)"
echo c >/proc/sysrq-trigger
sleep 10
echo not crashed'

# shellcheck disable=SC2016 # expanded in the guest, by design
GUEST_CHECK='set -e
. /dt/tests/vm/target.bash
dmsetup create dt --table "0 131072 dirtytrack /dev/vda /dev/vdb 128 $FEATURES"
echo "STATUS $(dmsetup status dt)"
echo "DIRTY $(dt_clusters dt live | tr "\n" " ")"'

# crash_after_error HEAL FEATURES...: the first boot, its crash, the check.
crash_after_error() {
	local heal=$1 completed dirty c
	shift
	run vm "FEATURES='$*' HEAL=$heal; $GUEST_ERROR"
	echo "$output"
	[ "$status" -eq 126 ]
	completed=$(sed -n 's/^COMPLETED //p' <<<"$output")
	echo "# writes completed before the crash: $completed" >&3
	# the write before the error completed; with the healing, so did the
	# writes held for it and the one after it
	[[ " $completed " == *" 1 "* ]]
	[ "$heal" = 0 ] || [[ " $completed " == *" 5 9 "*" 21 "* ]]

	run vm "FEATURES='$*'; $GUEST_CHECK"
	echo "$output"
	[ "$status" -eq 0 ]
	echo "# after the crash: $(grep '^STATUS' <<<"$output")" >&3
	dirty=" $(sed -n 's/^DIRTY //p' <<<"$output") "
	for c in $completed; do
		if [[ $dirty != *" $c "* ]]; then
			echo "cluster $c: its write completed before the crash, but it is not dirty" >&2
			return 1
		fi
	done
}

@test "default mode: a crash while the metadata fails loses no completed write" {
	crash_after_error 0 0
}

@test "default mode: a crash after a metadata error and its healing loses no completed write" {
	crash_after_error 1 0
}

@test "crash_safe: a crash while the metadata fails loses no completed write" {
	crash_after_error 0 1 crash_safe
}

@test "crash_safe: a crash after a metadata error and its healing loses no completed write" {
	crash_after_error 1 1 crash_safe
}
