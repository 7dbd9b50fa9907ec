#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only OR MIT
#
# completion.sh COMPLETION_FILE: what dirtyctl's bash completion offers
# after each of a few command lines, with bash-completion's helpers and
# dmsetup stubbed (one dirtytrack device, dt0).  Exit 0 when every case
# offers exactly what it should, 1 naming the first that does not.

# The stubs are called by the completion, which shellcheck does not see.
# shellcheck disable=SC2034,SC2317
set -u

_init_completion() {
	words=("${COMP_WORDS[@]}")
	cword=$COMP_CWORD
	cur=${words[cword]}
	prev=${words[cword - 1]}
}
_filedir() { COMPREPLY=(FILES); }
compopt() { :; }
dmsetup() { printf 'dt0\t(253:0)\n'; }
# shellcheck source=/dev/null
source "$1" || exit 1

# offers WORDS... gives EXPECTED: completing the last of WORDS offers EXPECTED.
offers() {
	local args=() want
	while [ "$1" != gives ]; do
		args+=("$1")
		shift
	done
	shift
	want=$*
	COMP_WORDS=(dirtyctl "${args[@]}")
	COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
	COMPREPLY=()
	_dirtyctl
	if [ "${COMPREPLY[*]}" != "$want" ]; then
		echo "completion: 'dirtyctl ${args[*]}' offers '${COMPREPLY[*]}', not '$want'" >&2
		exit 1
	fi
}

offers l gives list
offers list -- gives --help --version --json --noheadings --raw --output --bytes
offers list -o NAME,FR gives NAME,FROZEN NAME,FROZEN-ID
offers list -o '' gives NAME SIZE CLUSTER CLUSTERS DIRTY FROZEN FROZEN-ID MODE HEALTH SEQUENCE UUID
offers list '' gives
offers dump dt0 -o '' gives FILES
offers status dt0 --e gives --export
offers commit d gives dt0
offers commit dt0 -- gives --help --version --id
offers rollback dt0 --i gives --id
offers commit dt0 --id '' gives
offers v gives view
offers re gives release
offers checkpoint dt0 --f gives --freeze
offers view dt0 --r gives --remove
offers release d gives dt0
exit 0
