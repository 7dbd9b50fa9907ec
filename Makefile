# SPDX-License-Identifier: GPL-2.0
# dm-dirtytrack: top-level build.
#
#   make                  module (for KDIR) and userspace
#   make module           the module only; W=1 C=1 pass through to kbuild
#   make userspace        dirtyctl (userspace/Makefile)
#   make install          module into $(DESTDIR)/lib/modules/<kver>/extra (+ depmod
#                         unless DESTDIR is set), dirtyctl under PREFIX=/usr/local,
#                         the backup job, its man pages and systemd units
#                         (SYSTEMDUNITDIR=$(PREFIX)/lib/systemd/system)
#   make check            the full test run (scripts/check; DT_DEBUG_KERNEL=0:
#                         without the debug kernel)
#   make stress           the long proofs at large round counts (scripts/stress;
#                         not part of check)
#   make demo             a guided tour in the test VM (scripts/demo)
#   make bench            benchmarks in the test VM (scripts/bench)
#   make clean
#
# The module is built in .build/<kver>/src, a copy of Kbuild and kernel/:
# kbuild writes its objects next to the sources.

KDIR	?= /lib/modules/$(shell uname -r)/build
PREFIX	?= /usr/local
DESTDIR	?=
SYSTEMDUNITDIR ?= $(PREFIX)/lib/systemd/system

# The release of the kernel in KDIR (UTS_RELEASE: Debian's
# include/config/kernel.release holds the upstream version instead).
KVER	= $(shell sed -n 's/^\#define UTS_RELEASE "\(.*\)"/\1/p' $(KDIR)/include/generated/utsrelease.h 2>/dev/null)
SRC	= $(CURDIR)/.build/$(KVER)/src
KBUILD_ARGS = $(if $(W),W=$(W)) $(if $(C),C=$(C))

.PHONY: all module userspace install install-module install-userspace \
	check stress demo bench clean clean-module kdir

all: module userspace

kdir:
	@test -f $(KDIR)/Makefile || { echo "No kernel build tree at $(KDIR): install linux-headers-$$(uname -r) or pass KDIR=/path/to/build" >&2; exit 1; }

module: kdir
	@mkdir -p $(SRC)
	@cp -a --preserve=timestamps Kbuild kernel $(SRC)/
	$(MAKE) -C $(KDIR) M=$(SRC) $(KBUILD_ARGS) modules

userspace:
	$(MAKE) -C userspace all

install: install-module install-userspace

install-module: module
	install -D -m 644 $(SRC)/dm-dirtytrack.ko $(DESTDIR)/lib/modules/$(KVER)/extra/dm-dirtytrack.ko
	$(if $(DESTDIR),,depmod -a $(KVER))

install-userspace: userspace
	$(MAKE) -C userspace install PREFIX=$(PREFIX) DESTDIR=$(DESTDIR)
	install -D -m 755 scripts/dirtytrack-backup $(DESTDIR)$(PREFIX)/sbin/dirtytrack-backup
	install -D -m 644 -t $(DESTDIR)$(PREFIX)/share/man/man8 userspace/dirtytrack-backup.8 userspace/dt-copy-extents.8
	install -d $(DESTDIR)$(SYSTEMDUNITDIR)
	sed 's|/usr/local/sbin/|$(PREFIX)/sbin/|' systemd/dirtytrack-backup@.service >$(DESTDIR)$(SYSTEMDUNITDIR)/dirtytrack-backup@.service
	install -m 644 systemd/dirtytrack-backup@.timer $(DESTDIR)$(SYSTEMDUNITDIR)/

check:
	scripts/check

stress:
	scripts/stress

demo:
	scripts/demo

bench:
	@if [ -x scripts/bench ]; then scripts/bench; else echo "scripts/bench does not exist yet" >&2; exit 1; fi

clean: clean-module
	$(MAKE) -C userspace clean

clean-module:
	rm -rf .build
