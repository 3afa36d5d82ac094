# SPDX-License-Identifier: MIT
# bash completion for nsrelayctl(8): its options, its commands, and their
# arguments: the namespaces the running daemon serves (stats NAMESPACE),
# the users it provisioned (deprovision USER), login names (provision
# USER), files (check FILE, -s SOCKET).
#
# Names come from `nsrelayctl stats --json` on the socket the command line
# names (-s), asked with a 2 s timeout; without an answer (the daemon is
# down, or the socket is root's and control.group's only) nothing is
# offered.  Only plain names are offered, as nsrelayctl accepts no other.
# Installed as /usr/share/bash-completion/completions/nsrelayctl, loaded by
# bash-completion on the first <Tab> after "nsrelayctl".

# _nsrelayctl_stats PATTERN SOCKET-ARGS...: the fourth "-delimited field
# of each match of PATTERN in the daemon's stats, one a line.  A
# namespace's object is the one whose "name" is followed by "error" (a
# service's and a veth's "name" are not).
_nsrelayctl_stats()
{
	local pattern=$1
	shift
	nsrelayctl "$@" -t 2 stats --json 2>/dev/null |
		grep -o "$pattern" | cut -d'"' -f4
}

_nsrelayctl()
{
	local cur prev words cword
	if declare -F _init_completion >/dev/null; then
		_init_completion || return
	else
		cur=${COMP_WORDS[COMP_CWORD]}
		prev=${COMP_WORDS[COMP_CWORD - 1]}
		words=("${COMP_WORDS[@]}")
		cword=$COMP_CWORD
	fi

	local commands="status stats reload provision deprovision check"
	local options="-s --socket -t --timeout -j --json -h --help -V --version"

	case $prev in
	-s | --socket)
		COMPREPLY=($(compgen -f -- "$cur"))
		return
		;;
	-t | --timeout)
		return
		;;
	esac

	# the command, its arguments so far, and the socket named with -s
	local i w cmd="" nargs=0
	local sock=()
	for ((i = 1; i < cword; i++)); do
		w=${words[i]}
		case $w in
		-s | --socket)
			sock=(-s "${words[i + 1]}")
			i=$((i + 1))
			;;
		-t | --timeout) i=$((i + 1)) ;;
		--socket=*) sock=(-s "${w#--socket=}") ;;
		-*) ;;
		*)
			if [ -z "$cmd" ]; then cmd=$w; else nargs=$((nargs + 1)); fi
			;;
		esac
	done

	if [[ $cur == -* ]]; then
		COMPREPLY=($(compgen -W "$options" -- "$cur"))
		return
	fi
	if [ -z "$cmd" ]; then
		COMPREPLY=($(compgen -W "$commands" -- "$cur"))
		return
	fi
	[ "$nargs" -eq 0 ] || return
	# a plain name's value in the JSON, as nsrelayctl accepts them
	local plain='[A-Za-z0-9_.][A-Za-z0-9_.-]*'
	case $cmd in
	stats)
		COMPREPLY=($(compgen -W \
			"$(_nsrelayctl_stats "\"name\":\"$plain\",\"error\":" \
			"${sock[@]}")" -- "$cur"))
		;;
	deprovision)
		COMPREPLY=($(compgen -W \
			"$(_nsrelayctl_stats "\"provisioned_for\":\"$plain\"" \
			"${sock[@]}")" -- "$cur"))
		;;
	provision)
		COMPREPLY=($(compgen -u -- "$cur"))
		;;
	check)
		if declare -F _filedir >/dev/null; then
			_filedir '@(yaml|yml)'
		else
			COMPREPLY=($(compgen -f -- "$cur"))
		fi
		;;
	esac
} && complete -F _nsrelayctl nsrelayctl
