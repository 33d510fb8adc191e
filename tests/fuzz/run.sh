#!/bin/sh
# Build the libFuzzer target with clang in its own build directory and run
# it for a bounded time (FUZZ_SECONDS, default 30). Fails on any crash, leak
# or sanitizer report.
set -eu
root=$(cd "$(dirname "$0")/../.." && pwd)
dir=$root/build-fuzz
secs=${FUZZ_SECONDS:-30}
if [ ! -f "$dir/build.ninja" ]; then
	CC=clang meson setup "$dir" "$root" -Dfuzz=true -Dtests=false >/dev/null
fi
ninja -C "$dir" tests/fuzz/fuzz_frame >/dev/null
corpus=$dir/fuzz-corpus
mkdir -p "$corpus"
# a valid GetInfo frame as a seed, so the fuzzer starts inside the format
printf '\000\000\000\000\035\010\001\022\031/mbx.v1.Dataplane/GetInfo' > "$corpus/seed-getinfo"
# and one whose payload is a StateChunk (nat, per-flow, version 1, 2 bytes of state, from outside)
printf '\000\000\000\000\056\010\001\022\031/mbx.v1.Dataplane/GetInfo\032\017\012\003nat\020\001\050\001\062\002xy\070\001' \
	> "$corpus/seed-chunk"
# and two peer stream frames: PeerPackets with one packet, PeerState with that chunk
printf '\000\000\000\000&\010\001\022\023/mbx.v1.Peer/Stream\032\015\010\007*\011\012\007\012\003abc\020\001' \
	> "$corpus/seed-peer-packets"
printf '\000\000\000\000.\010\001\022\023/mbx.v1.Peer/Stream\032\025\010\007\032\021\012\017\012\003nat\020\001(\0012\002xy8\001' \
	> "$corpus/seed-peer-state"
exec "$dir/tests/fuzz/fuzz_frame" -max_total_time="$secs" -max_len=4096 -timeout=10 \
	-print_final_stats=1 "$corpus"
