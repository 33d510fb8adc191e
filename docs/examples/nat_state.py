#!/usr/bin/python3
"""Script mbx from Python: look at a NAT instance and copy its state to another.

    PYTHONPATH=build/controller-shim/python /usr/bin/python3 docs/examples/nat_state.py \
        unix:/var/run/dpdk/natA/mbx.sock [unix:/var/run/dpdk/natB/mbx.sock]

Prints the instance, its counters and its mappings; with a second address,
copies the pool, the host port blocks and the mappings there (in that
order, as a put needs them) and prints how many chunks were installed.
"""
import sys

import mbx


def main():
    src = mbx.Client(sys.argv[1])
    info = src.info()
    print("instance %s: mbx %s, %d workers, chain %s"
          % (info.instance_id, info.version, info.workers, [n.name for n in info.chain]))
    nat = next(n for n in src.stats().nfs if n.name == "nat")
    print("nat counters:", {c.name: c.value for c in nat.counters})

    for chunk in src.get_state("per-flow", nf="nat"):
        m = src.decode_state(chunk)
        print("  %-40s -> %s:%d" % (mbx.key_str(chunk.key), ".".join(map(str, m.ext_addr)),
                                    m.ext_port))

    if len(sys.argv) > 2:
        chunks = []
        for scope in ("all-flows", "multi-flow", "per-flow"):
            chunks += list(src.get_state(scope, nf="nat"))
        try:
            n = mbx.Client(sys.argv[2]).put_state(chunks)
            print("installed %d chunks" % n)
        except mbx.MbxError as e:
            # every put is all or nothing: on an error the destination is unchanged
            print("refused: %s" % e)
            sys.exit(1)


if __name__ == "__main__":
    main()
