#!/usr/bin/env bats
# checkpoint / commit / rollback / clear / mark, and checkpoints racing writes.

setup() {
	load helpers
	load target
	dt_setup_devices
	dt_create dt0 128
}

teardown() {
	dt_cleanup
}

@test "checkpoint freezes the dirty set and starts an empty live set" {
	dt_write /dev/mapper/dt0 0 8
	dt_write /dev/mapper/dt0 $((5 * 128)) 8
	dmsetup message dt0 0 checkpoint
	[ "$(dt_status dt0 frozen)" = 2 ]
	[ "$(dt_status dt0 dirty)" = 0 ]
	[ "$(dt_clusters dt0 frozen | dt_ranges)" = "0 5" ]
	dt_write /dev/mapper/dt0 $((7 * 128)) 8
	[ "$(dt_clusters dt0 live | dt_ranges)" = 7 ]
	[ "$(dt_clusters dt0 frozen | dt_ranges)" = "0 5" ]
}

@test "a second checkpoint is refused while one is frozen" {
	dmsetup message dt0 0 checkpoint
	run dmsetup message dt0 0 checkpoint
	[ "$status" -ne 0 ]
	[[ "$output" == *"File exists"* ]]
}

@test "commit drops the frozen set and advances the sequence" {
	dt_write /dev/mapper/dt0 0 8
	dmsetup message dt0 0 checkpoint
	dmsetup message dt0 0 commit
	[ "$(dt_status dt0 frozen)" = - ]
	[ "$(dt_status dt0 sequence)" = 1 ]
	[ "$(dt_status dt0 dirty)" = 0 ]
	run dmsetup message dt0 0 bitmap frozen 0
	[ "$status" -ne 0 ]
}

@test "commit and rollback with nothing frozen are refused" {
	run dmsetup message dt0 0 commit
	[ "$status" -ne 0 ]
	[[ "$output" == *"No such file or directory"* ]]
	run dmsetup message dt0 0 rollback
	[ "$status" -ne 0 ]
	[ "$(dt_status dt0 sequence)" = 0 ]
}

@test "rollback merges the frozen set back into the live set" {
	dt_write /dev/mapper/dt0 0 200
	dmsetup message dt0 0 checkpoint
	dt_write /dev/mapper/dt0 $((1 * 128)) 8
	dt_write /dev/mapper/dt0 $((5 * 128)) 8
	dmsetup message dt0 0 rollback
	[ "$(dt_clusters dt0 | dt_ranges)" = "0-1 5" ]
	[ "$(dt_status dt0 dirty)" = 3 ]
	[ "$(dt_status dt0 frozen)" = - ]
	[ "$(dt_status dt0 sequence)" = 0 ]
}

@test "clear empties the live set and advances the sequence" {
	dt_write /dev/mapper/dt0 0 8
	dmsetup message dt0 0 clear
	[ "$(dt_status dt0 dirty)" = 0 ]
	[ "$(dt_status dt0 sequence)" = 1 ]
	[ -z "$(dt_clusters dt0 | dt_ranges)" ]
}

@test "mark sets the clusters of an extent and refuses one beyond the end" {
	local size=$(blockdev --getsz "$DATA_DEV")
	dmsetup message dt0 0 mark 130 300
	[ "$(dt_clusters dt0 | dt_ranges)" = 1-3 ]
	run dmsetup message dt0 0 mark $((size - 8)) 16
	[ "$status" -ne 0 ]
	run dmsetup message dt0 0 mark 0 0
	[ "$status" -ne 0 ]
	run dmsetup message dt0 0 mark 12x 1
	[ "$status" -ne 0 ]
	[ "$(dt_clusters dt0 | dt_ranges)" = 1-3 ]
}

@test "a stored frozen set can be rolled back right after every activation" {
	dt_write /dev/mapper/dt0 0 8
	dmsetup message dt0 0 checkpoint
	local i
	for ((i = 0; i < 25; i++)); do
		dmsetup suspend dt0
		dmsetup resume dt0
		dmsetup message dt0 0 rollback
		dmsetup message dt0 0 checkpoint
	done
	dmsetup remove dt0
	dt_create dt0 128
	dmsetup message dt0 0 commit
	[ "$(dt_status dt0 frozen)" = - ]
	[ "$(dt_status dt0 sequence)" = 1 ]
}

@test "the frozen set survives remove and create" {
	dt_write /dev/mapper/dt0 $((2 * 128)) 8
	dmsetup message dt0 0 checkpoint
	dt_write /dev/mapper/dt0 $((3 * 128)) 8
	dmsetup remove dt0
	dt_create dt0 128
	[ "$(dt_clusters dt0 frozen | dt_ranges)" = 2 ]
	[ "$(dt_clusters dt0 live | dt_ranges)" = 3 ]
	[ "$(dt_status dt0 frozen)" = 1 ]
	dmsetup message dt0 0 commit
	[ "$(dt_status dt0 sequence)" = 1 ]
	dmsetup remove dt0
	dt_create dt0 128
	[ "$(dt_status dt0 frozen)" = - ]
	[ "$(dt_status dt0 sequence)" = 1 ]
}

@test "paged bitmap reads are repeatable and cover a bitmap bigger than one reply" {
	dmsetup remove dt0
	dd if=/dev/zero of="$MD_DEV" bs=4096 count=1 oflag=direct status=none
	dmsetup create dt0data --table "0 2097152 zero"
	dmsetup create dt0 --table "0 2097152 dirtytrack $MD_DEV /dev/mapper/dt0data 8"
	# one 40 KiB write every 256 KiB: clusters 0-9 of each 64-cluster group,
	# too many for the short form, so every group is 16 hex digits
	fio --name=w --filename=/dev/mapper/dt0 --rw=write:216k --bs=40k --direct=1 \
	    --ioengine=psync --size=1G --output=/dev/null
	[ "$(dt_status dt0 dirty)" = 40960 ]
	local a b
	a=$(dt_clusters dt0 | md5sum)
	b=$(dt_clusters dt0 | md5sum)
	[ "$a" = "$b" ]
	[ "$(dt_clusters dt0 | wc -l)" = 40960 ]
	[ "$(dt_clusters dt0 | awk '$1 % 64 >= 10' | wc -l)" = 0 ]
	# the first reply stops before the end and says where
	read -r _ first n _ <<<"$(dmsetup message dt0 0 bitmap live 0)"
	[ "$first" = 0 ]
	[ "$n" -gt 0 ]
	[ "$n" -lt 4096 ]
	# past the end: no groups
	read -r _ first n _ <<<"$(dmsetup message dt0 0 bitmap live 4096)"
	[ "$n" = 0 ]
	dmsetup remove dt0
	dmsetup remove dt0data
}

# DT_CHECKPOINT_RACE_ROUNDS (default 1) races, each on a fresh device;
# scripts/stress runs more.
@test "no write is lost to checkpoints taken while each block is written once" {
	local round
	dmsetup remove dt0
	dd if=/dev/zero of="$MD_DEV" bs=4096 count=1 oflag=direct status=none
	dt_race_create dt0
	for round in $(seq "${DT_CHECKPOINT_RACE_ROUNDS:-1}"); do
		[ "$round" = 1 ] || dt_race_again dt0
		echo "# race $round of ${DT_CHECKPOINT_RACE_ROUNDS:-1}" >&3
		dt_checkpoint_race dt0
	done
}
