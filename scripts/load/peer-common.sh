# Shared by the peer scripts (peer-rsyslog.sh, peer-vm.sh); sourced.

# CPU ticks (user + system) process $1 has used.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null; }

# Calls the counting command $1 every 0.5 s until its count reaches $2 or
# has not grown for $4 seconds (at most 2 minutes); prints "count seconds",
# the seconds from $3 (a `date +%s.%N`) until the count last grew.
settle() {
    local count=$1 want=$2 start=$3 quiet=$4 last=-1 grown=$3 now n
    for _ in $(seq 240); do
        n=$($count)
        now=$(date +%s.%N)
        if [ "$n" != "$last" ]; then
            last=$n
            grown=$now
        elif [ "$n" -ge "$want" ] || python3 -c "import sys; sys.exit(0 if $now - $grown > $quiet else 1)"; then
            break
        fi
        sleep 0.5
    done
    echo "$last $(python3 -c "print($grown - $start)")"
}
