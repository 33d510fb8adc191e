"""mbx: a Python client of the mbx southbound API.

    import mbx
    c = mbx.Client("unix:/var/run/dpdk/nat1/mbx.sock")
    print(c.info())
    for chunk in c.get_perflow(nf="nat", filter="src=10.0.0.0/24"):
        print(chunk.key, c.decode_state(chunk))

The protobuf modules (mbx.v1.*_pb2) are generated from proto/ at build time
into build/controller-shim/python: put that directory on PYTHONPATH and run
with Debian's /usr/bin/python3 (python3-protobuf).
"""
from .client import Client, Controller, MbxError, parse_filter, flow_key, key_str  # noqa: F401
