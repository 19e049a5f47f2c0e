# plctl.bash: bash completion for plctl (docs/plctl.md). Installed nowhere;
# source it by hand:  . portlayer/plctl/plctl.bash
# Container names come from "plctl ps -a --json" (python3), when the daemon
# answers.
_plctl_containers() {
        plctl ${_plctl_socket:+--socket "$_plctl_socket"} ps -a --json 2>/dev/null |
                python3 -c 'import json,sys; print("\n".join(c["name"] for c in json.load(sys.stdin)))' 2>/dev/null
}

# Remote names: the directories plctl remote add made.
_plctl_remotes() {
        local d=${XDG_CONFIG_HOME:-$HOME/.config}/portlayer/remotes
        [ -d "$d" ] && ls "$d" 2>/dev/null
}

_plctl() {
        local cur=${COMP_WORDS[COMP_CWORD]} verb="" i _plctl_socket=""
        local verbs="ps inspect create run start stop kill pause unpause rm wait logs stats events exec cp images vm gc version doctor remote trust"
        for ((i = 1; i < COMP_CWORD; i++)); do
                case ${COMP_WORDS[i]} in
                --socket | -s) _plctl_socket=${COMP_WORDS[i + 1]}; ((i++)) ;;
                --remote | -r) ((i++)) ;;
                -*) ;;
                *) verb=${COMP_WORDS[i]}; break ;;
                esac
        done
        if [ -z "$verb" ]; then
                case ${COMP_WORDS[COMP_CWORD - 1]} in
                --remote | -r) COMPREPLY=($(compgen -W "$(_plctl_remotes)" -- "$cur")); return ;;
                esac
                COMPREPLY=($(compgen -W "$verbs --socket --remote --json --help --version" -- "$cur"))
                return
        fi
        case $verb in
        ps) COMPREPLY=($(compgen -W "-a -q --filter --json --help" -- "$cur")) ;;
        create | run)
                COMPREPLY=($(compgen -W "--name -e -w -u -m --cpus --label --cold-start --json --help $([ "$verb" = run ] && echo -d --rm)" -- "$cur")) ;;
        stop) COMPREPLY=($(compgen -W "-t --json --help $(_plctl_containers)" -- "$cur")) ;;
        kill) COMPREPLY=($(compgen -W "-s --json --help $(_plctl_containers)" -- "$cur")) ;;
        rm) COMPREPLY=($(compgen -W "-f --json --help $(_plctl_containers)" -- "$cur")) ;;
        logs) COMPREPLY=($(compgen -W "-f --tail -t --json --help $(_plctl_containers)" -- "$cur")) ;;
        stats) COMPREPLY=($(compgen -W "--no-stream --json --help $(_plctl_containers)" -- "$cur")) ;;
        exec) COMPREPLY=($(compgen -W "-i -t -e -w -u --json --help $(_plctl_containers)" -- "$cur")) ;;
        events) COMPREPLY=($(compgen -W "--since --no-follow --json --help" -- "$cur")) ;;
        images)
                if [ "${COMP_WORDS[COMP_CWORD - 1]}" = import ]; then COMPREPLY=($(compgen -f -- "$cur"))
                else COMPREPLY=($(compgen -W "pull import ls inspect rm gc --tag --json --help" -- "$cur")); fi ;;
        vm) COMPREPLY=($(compgen -W "ls --json --help" -- "$cur")) ;;
        gc) COMPREPLY=($(compgen -W "--remove --json --help" -- "$cur")) ;;
        remote)
                case ${COMP_WORDS[COMP_CWORD - 1]} in
                rm) COMPREPLY=($(compgen -W "$(_plctl_remotes)" -- "$cur")) ;;
                *) COMPREPLY=($(compgen -W "add ls rm --accept-fingerprint --json --help" -- "$cur")) ;;
                esac ;;
        trust)
                if [ "${COMP_WORDS[COMP_CWORD - 1]}" = add ]; then COMPREPLY=($(compgen -f -- "$cur"))
                else COMPREPLY=($(compgen -W "add ls rm --name --json --help" -- "$cur")); fi ;;
        doctor) COMPREPLY=($(compgen -W "--state-dir --json --help" -- "$cur")) ;;
        version) COMPREPLY=($(compgen -W "--json --help" -- "$cur")) ;;
        cp) COMPREPLY=($(compgen -f -- "$cur") $(compgen -W "$(_plctl_containers | sed 's/$/:/')" -- "$cur")) ;;
        *) COMPREPLY=($(compgen -W "--json --help $(_plctl_containers)" -- "$cur")) ;;
        esac
}
complete -F _plctl plctl
