#!/usr/bin/env bats
# The systemd units of the backup job (systemd/): systemd-analyze verify
# accepts them without a single warning, for a plain and an escaped
# instance name, with ExecStart pointing at this tree's job; and they keep
# what the job relies on (a oneshot service whose stop lets the job roll its
# checkpoint back; a timer that starts the same instance).

bats_require_minimum_version 1.5.0

setup() {
	ROOT=$(cd "$BATS_TEST_DIRNAME/../.." && pwd)
	command -v systemd-analyze >/dev/null || skip "systemd-analyze is not installed (package systemd)"
	UNITS=$BATS_TEST_TMPDIR/units
	mkdir -p "$UNITS"
	# As make install does, with this tree's job in place of $(PREFIX)/sbin.
	sed "s|/usr/local/sbin/dirtytrack-backup|$ROOT/scripts/dirtytrack-backup|" \
		"$ROOT/systemd/dirtytrack-backup@.service" >"$UNITS/dirtytrack-backup@.service"
	cp "$ROOT/systemd/dirtytrack-backup@.timer" "$UNITS/"
}

# verify INSTANCE: systemd-analyze verify of both units of INSTANCE.
verify() {
	local i
	for i in service timer; do
		ln -sf "dirtytrack-backup@.$i" "$UNITS/dirtytrack-backup@$1.$i"
	done
	run systemd-analyze verify --man=no "$UNITS/dirtytrack-backup@$1.service" \
		"$UNITS/dirtytrack-backup@$1.timer"
	echo "$output"
	[ "$status" -eq 0 ]
	# verify exits 0 on unknown keys and bad values: any word is a failure
	[ -z "$output" ]
}

@test "systemd-analyze verify: the units of a plain instance" {
	verify vol0
}

@test "systemd-analyze verify: the units of an escaped instance (a dm name with a dash)" {
	verify "$(systemd-escape data-vol)"
}

@test "the service is a oneshot whose stop signals the job alone first" {
	local unit=$ROOT/systemd/dirtytrack-backup@.service
	grep -qx 'Type=oneshot' "$unit"
	grep -qx 'KillMode=mixed' "$unit"
	grep -qx 'KillSignal=SIGTERM' "$unit"
	grep -qx 'EnvironmentFile=/etc/dirtytrack/backup-%i.conf' "$unit"
	grep -qx 'ExecStart=/usr/local/sbin/dirtytrack-backup $OPTIONS %I ${IMAGE}' "$unit"
}

@test "make install puts the units, the job and the man pages in place" {
	local dest=$BATS_TEST_TMPDIR/root
	run make -C "$ROOT" install-userspace DESTDIR="$dest" PREFIX=/usr
	[ "$status" -eq 0 ] || { echo "$output"; false; }
	[ -x "$dest/usr/sbin/dirtytrack-backup" ]
	[ -x "$dest/usr/sbin/dt-copy-extents" ]
	grep -qx 'ExecStart=/usr/sbin/dirtytrack-backup $OPTIONS %I ${IMAGE}' \
		"$dest/usr/lib/systemd/system/dirtytrack-backup@.service"
	[ -f "$dest/usr/lib/systemd/system/dirtytrack-backup@.timer" ]
	[ -f "$dest/usr/share/man/man8/dirtytrack-backup.8" ]
	[ -f "$dest/usr/share/man/man8/dt-copy-extents.8" ]
}
