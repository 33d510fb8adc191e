"""A synchronous client of the mbx southbound API (see docs/southbound.md).

Frames are gRPC Length-Prefixed-Messages (1 flag byte, 4-byte big-endian
length) holding an mbx.v1.Envelope with the call id, the method path and the
request or response bytes. Every response starts with a Status; a non-zero
code raises MbxError.
"""
import importlib
import ipaddress
import itertools
import os
import socket
import struct

from google.protobuf import symbol_database

from mbx.v1 import common_pb2, dataplane_pb2, events_pb2, state_pb2  # noqa: F401

# Import every generated module (the NFs' state messages included), so that
# decode_state() finds any type an instance names in GetInfo.
for _f in sorted(os.listdir(os.path.dirname(common_pb2.__file__))):
    if _f.endswith("_pb2.py"):
        importlib.import_module("mbx.v1." + _f[:-3])

_DB = symbol_database.Default()

SCOPES = {"per-flow": common_pb2.SCOPE_PER_FLOW, "multi-flow": common_pb2.SCOPE_MULTI_FLOW,
          "all-flows": common_pb2.SCOPE_ALL_FLOWS}


class MbxError(Exception):
    """A call answered with a non-zero Status (code is an errno)."""

    def __init__(self, code, message):
        super().__init__("%s (errno %d)" % (message, code))
        self.code = code
        self.message = message


def _prefix(text):
    net = ipaddress.ip_network(text, strict=False)
    return common_pb2.Prefix(addr=net.network_address.packed, len=net.prefixlen), net.version


def _range(text):
    lo, _, hi = text.partition("-")
    lo, hi = int(lo), int(hi or lo)
    if not 0 <= lo <= hi <= 65535:
        raise ValueError("bad port range " + text)
    return common_pb2.PortRange(lo=lo, hi=hi)


_PROTOS = {"tcp": 6, "udp": 17, "icmp": 1, "icmpv6": 58, "sctp": 132, "gre": 47}


def parse_filter(text):
    """'src=10.0.0.0/24,dport=80,proto=tcp' (the mbxctl syntax) -> mbx.v1.Filter."""
    f = common_pb2.Filter()
    if isinstance(text, common_pb2.Filter):
        return text
    seen = set()
    for term in filter(None, (text or "").split(",")):
        key, sep, value = term.partition("=")
        if not sep or key in seen:
            raise ValueError("bad filter term " + term)
        seen.add(key)
        if key in ("src", "dst"):
            prefix, version = _prefix(value)
            getattr(f, key).CopyFrom(prefix)
            family = common_pb2.FAMILY_IPV4 if version == 4 else common_pb2.FAMILY_IPV6
            if f.family not in (common_pb2.FAMILY_ANY, family):
                raise ValueError("mixed address families in " + text)
            f.family = family
        elif key in ("sport", "dport"):
            getattr(f, key).CopyFrom(_range(value))
        elif key == "proto":
            f.proto = _PROTOS[value] if value in _PROTOS else int(value)
        elif key == "family":
            f.family = common_pb2.FAMILY_IPV4 if value in ("4", "ipv4") else common_pb2.FAMILY_IPV6
        else:
            raise ValueError("unknown filter key " + key)
    return f


def flow_key(proto, src, dst, sport=0, dport=0):
    """An mbx.v1.FlowKey from text addresses."""
    s, d = ipaddress.ip_address(src), ipaddress.ip_address(dst)
    return common_pb2.FlowKey(family=s.version, proto=proto, src=s.packed, dst=d.packed,
                              sport=sport, dport=dport)


def key_str(k):
    """'udp 10.0.0.1:1000 > 192.0.2.1:53' for an mbx.v1.FlowKey."""
    name = {6: "tcp", 17: "udp", 1: "icmp", 58: "icmpv6"}.get(k.proto, "proto-%d" % k.proto)
    s = ipaddress.ip_address(k.src) if k.src else "-"
    d = ipaddress.ip_address(k.dst) if k.dst else "-"
    return "%s %s:%d > %s:%d" % (name, s, k.sport, d, k.dport)


class Client:
    """One connection to an mbxd instance (or mbxctld): 'unix:/path' or 'host:port'."""

    def __init__(self, addr, token=None, timeout=60.0):
        if addr.startswith("unix:"):
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            target = addr[5:]
        else:
            host, _, port = addr.rpartition(":")
            host = host.strip("[]")
            family = socket.AF_INET6 if ":" in host else socket.AF_INET
            self.sock = socket.socket(family, socket.SOCK_STREAM)
            target = (host, int(port))
        self.sock.settimeout(timeout)
        self.sock.connect(target)
        self.token = token.encode() if isinstance(token, str) else token
        self.ids = itertools.count(1)
        self.buf = b""
        self._state_types = None

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # framing

    def _send(self, method, request):
        call_id = next(self.ids)
        env = common_pb2.Envelope(call_id=call_id, method=method,
                                  payload=request.SerializeToString(), token=self.token or b"")
        body = env.SerializeToString()
        self.sock.sendall(struct.pack(">BI", 0, len(body)) + body)
        return call_id

    def _read(self, n):
        while len(self.buf) < n:
            data = self.sock.recv(1 << 20)
            if not data:
                raise ConnectionError("mbxd closed the connection")
            self.buf += data
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def _recv(self, call_id):
        flag, n = struct.unpack(">BI", self._read(5))
        if flag != 0:
            raise ConnectionError("bad frame flag %d" % flag)
        env = common_pb2.Envelope()
        env.ParseFromString(self._read(n))
        if env.call_id != call_id:
            raise ConnectionError("answer to call %d while waiting for %d" % (env.call_id, call_id))
        return env

    def _types(self, path):
        """The request and response types of "/mbx.v1.Service/Method", from the descriptors."""
        _, service, method = path.split("/")
        m = _DB.pool.FindServiceByName(service).methods_by_name[method]
        return _DB.GetSymbol(m.input_type.full_name), _DB.GetSymbol(m.output_type.full_name)

    def stream(self, path, request=None, check=True, **fields):
        """Call a method and yield every response frame; raise MbxError on an error Status
        (with check=False, yield that frame too: a failed move's last one has its summary)."""
        req_t, resp_t = self._types(path)
        call_id = self._send(path, request if request is not None else req_t(**fields))
        while True:
            env = self._recv(call_id)
            resp = resp_t()
            resp.ParseFromString(env.payload)
            if check and resp.HasField("status") and resp.status.code != 0:
                raise MbxError(resp.status.code, resp.status.message)
            yield resp
            if not env.more:
                return

    def call(self, path, request=None, **fields):
        """A unary call: the one response, or the last frame of a stream."""
        last = None
        for last in self.stream(path, request, **fields):
            pass
        return last

    # the services

    def info(self):
        return self.call("/mbx.v1.Dataplane/GetInfo")

    def stats(self):
        return self.call("/mbx.v1.Dataplane/GetStats")

    def get_state(self, scope="per-flow", nf="", filter="", delete=False):
        """Yield StateChunks of one scope."""
        self._load_state_types()  # before the stream: decode_state() may be called within it
        if scope == "per-flow":
            it = self.stream("/mbx.v1.State/GetPerflow", nf=nf, filter=parse_filter(filter),
                             delete=delete)
        elif scope == "multi-flow":
            it = self.stream("/mbx.v1.State/GetMultiflow", nf=nf, filter=parse_filter(filter))
        else:
            it = self.stream("/mbx.v1.State/GetAllflows", nf=nf)
        for resp in it:
            yield from resp.chunks

    def get_perflow(self, nf="", filter="", delete=False):
        return self.get_state("per-flow", nf, filter, delete)

    def put_state(self, chunks, batch=20000):
        """Install chunks, all-flows first, then multi-flow, then per-flow; each call
        of at most batch chunks is all or nothing. Returns chunks installed."""
        by_scope = {}
        for c in chunks:
            by_scope.setdefault(c.scope, []).append(c)
        methods = [(common_pb2.SCOPE_ALL_FLOWS, "/mbx.v1.State/PutAllflows"),
                   (common_pb2.SCOPE_MULTI_FLOW, "/mbx.v1.State/PutMultiflow"),
                   (common_pb2.SCOPE_PER_FLOW, "/mbx.v1.State/PutPerflow")]
        done = 0
        for scope, path in methods:
            todo = by_scope.get(scope, [])
            for i in range(0, len(todo), batch):
                done += self.call(path, chunks=todo[i:i + batch]).installed
        return done

    def del_state(self, scope="per-flow", nf="", filter=""):
        path = "/mbx.v1.State/DelPerflow" if scope == "per-flow" else "/mbx.v1.State/DelMultiflow"
        return self.call(path, nf=nf, filter=parse_filter(filter)).deleted

    def enable_events(self, filter, action, buffer_limit=0):
        """action: 'process', 'drop', 'buffer' or 'notify'. Returns the rule id."""
        act = events_pb2.Action.Value("ACTION_" + action.upper())
        return self.call("/mbx.v1.Events/EnableEvents", filter=parse_filter(filter), action=act,
                         buffer_limit=buffer_limit).rule_id

    def disable_events(self, rule_id=0, filter="", release="in-order"):
        rel = events_pb2.RELEASE_DROP if release == "drop" else events_pb2.RELEASE_IN_ORDER
        return self.call("/mbx.v1.Events/DisableEvents", rule_id=rule_id,
                         filter=parse_filter(filter), release=rel)

    def events(self):
        """Yield NOTIFY events as they come (blocks; the socket timeout applies)."""
        for resp in self.stream("/mbx.v1.Events/Subscribe"):
            yield from resp.events

    def _load_state_types(self):
        if self._state_types is None:
            self._state_types = {nf.name: list(nf.state_types) for nf in self.info().chain}

    def decode_state(self, chunk):
        """The NF's own message of a chunk, decoded with the type the instance names in
        GetInfo; None if it keeps no such state or the type is not known here."""
        self._load_state_types()
        names = self._state_types.get(chunk.nf, [])
        name = names[chunk.scope] if chunk.scope < len(names) else ""
        try:
            m = _DB.GetSymbol(name)()
        except KeyError:
            return None
        m.ParseFromString(chunk.state)
        return m


class Controller(Client):
    """A client of mbxctld (service mbx.v1.Controller)."""

    def instances(self):
        return self.call("/mbx.v1.Controller/ListInstances").instances

    def register(self, name, control, steer_port=0):
        from mbx.v1 import move_pb2
        self.call("/mbx.v1.Controller/RegisterInstance",
                  instance=move_pb2.Instance(name=name, control=control, steer_port=steer_port))

    def move(self, src, dst, filter="", guarantee="lf,op", mode="p2p", copy=False,
             progress=None, redirect_limit=0):
        """Move (or copy) flows from instance src to dst; returns the MoveSummary.
        guarantee: "none", "lf" or "lf,op"; mode: "p2p" or "controller"; progress(line) is
        called for each step; redirect_limit: packets the source may hold meanwhile (0: its
        default). A failed move raises MbxError (the flows stay at src)."""
        from mbx.v1 import move_pb2
        g = {"none": move_pb2.GUARANTEE_NONE, "lf": move_pb2.GUARANTEE_LOSS_FREE,
             "lf,op": move_pb2.GUARANTEE_LOSS_FREE_ORDER_PRESERVING}[guarantee]
        m = {"p2p": move_pb2.MOVE_MODE_P2P, "controller": move_pb2.MOVE_MODE_CONTROLLER}[mode]
        path = "/mbx.v1.Controller/Copy" if copy else "/mbx.v1.Controller/Move"
        summary = None
        for r in self.stream(path, **{"from": src}, to=dst, filter=parse_filter(filter),
                             guarantee=g, mode=m, redirect_limit=redirect_limit):
            if progress is not None and r.progress:
                progress(r.progress)
            if r.HasField("summary"):
                summary = r.summary
        return summary
