"""Run DPDK processes (mbxd, dpdk-testpmd) for tests, demos and benchmarks.

One place for the EAL recipe of this project (--no-huge, --no-pci, a unique
--file-prefix per process), for reading a process's rte_telemetry socket,
and for stopping it the way a user would (SIGTERM) and cleaning up after it.
Standard library only, so it runs under any python3.
"""
import json
import os
import shutil
import signal
import socket
import subprocess
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("MBX_BUILD", os.path.join(ROOT, "build"))
MBXD = os.path.join(BUILD, "dataplane", "mbxd")
RUNTIME = "/var/run/dpdk"


def eal_args(prefix, lcores="0-1", mem=256, vdevs=(), extra=()):
    """EAL arguments for a process on this machine class."""
    args = ["--no-huge", "-m", str(mem), "--no-pci", "--no-shconf",
            "--file-prefix", prefix, "--lcores", lcores,
            "--log-level", "lib.eal:warning"]
    for v in vdevs:
        args += ["--vdev", v]
    return args + list(extra)


class Telemetry:
    """A client of one process's rte_telemetry v2 socket."""

    def __init__(self, prefix, timeout=10.0):
        path = os.path.join(RUNTIME, prefix, "dpdk_telemetry.v2")
        deadline = time.time() + timeout
        while True:
            try:
                self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
                self.sock.connect(path)
                break
            except OSError:
                self.sock.close()
                if time.time() > deadline:
                    raise
                time.sleep(0.05)
        hello = json.loads(self.sock.recv(16384).decode())
        self.max_len = hello.get("max_output_len", 16384)

    def query(self, cmd, params=None):
        """Run a command (e.g. "/mbx/stats") and return its JSON value."""
        line = cmd if params is None else "%s,%s" % (cmd, params)
        self.sock.send(line.encode())
        reply = json.loads(self.sock.recv(self.max_len).decode())
        return reply[cmd]

    def close(self):
        self.sock.close()


class Proc:
    """A DPDK process with its own file prefix, stopped with SIGTERM."""

    def __init__(self, argv, prefix, log_path=None, cwd=None):
        self.prefix = prefix
        self.log_path = log_path
        self.log = open(log_path, "w") if log_path else subprocess.DEVNULL
        self.p = subprocess.Popen(argv, stdout=self.log, stderr=subprocess.STDOUT, cwd=cwd)
        self.tel = None

    def telemetry(self, timeout=15.0):
        if self.tel is None:
            deadline = time.time() + timeout
            while True:
                if self.p.poll() is not None:
                    raise RuntimeError("process exited with %s before its telemetry came up; "
                                       "see %s" % (self.p.returncode, self.log_path))
                try:
                    self.tel = Telemetry(self.prefix, timeout=0.5)
                    break
                except OSError:
                    if time.time() > deadline:
                        raise
        return self.tel

    def control(self, timeout=30.0):
        """The address of mbxd's default control socket, once it exists."""
        path = os.path.join(RUNTIME, self.prefix, "mbx.sock")

        def up():
            if self.p.poll() is not None:
                raise RuntimeError("process exited with %s; see %s" % (self.p.returncode,
                                                                       self.log_path))
            return os.path.exists(path)
        wait_until(up, timeout, what="the control socket of " + self.prefix)
        return "unix:" + path

    def query(self, cmd, params=None, timeout=10.0):
        """Run a telemetry command. The socket comes up during EAL init, before the
        application registers its commands, which answer null until then: wait."""
        deadline = time.time() + timeout
        while True:
            v = self.telemetry().query(cmd, params)
            if v is not None or time.time() > deadline:
                return v
            if self.p.poll() is not None:
                raise RuntimeError("process exited with %s; see %s" % (self.p.returncode, self.log_path))
            time.sleep(0.05)

    def stop(self, timeout=20.0):
        """SIGTERM, wait, and return the exit code (None if it had to be killed)."""
        if self.tel is not None:
            self.tel.close()
            self.tel = None
        rc = self.p.poll()
        if rc is None:
            self.p.send_signal(signal.SIGTERM)
            try:
                rc = self.p.wait(timeout)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
                rc = None
        if self.log is not subprocess.DEVNULL:
            self.log.close()
        shutil.rmtree(os.path.join(RUNTIME, self.prefix), ignore_errors=True)
        return rc

    def output(self):
        with open(self.log_path) as f:
            return f.read()


def wait_until(pred, timeout=20.0, period=0.05, what="condition"):
    """Poll pred() until it is true; raise TimeoutError naming what."""
    deadline = time.time() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.time() > deadline:
            raise TimeoutError("timed out waiting for " + what)
        time.sleep(period)


def unique_prefix(name):
    return "%s_%d_%d" % (name, os.getpid(), int(time.time() * 1000) % 100000)


def start_mbxd(argv_for, name, sock, log_path, ports=2, tries=5, timeout=30.0):
    """Start mbxd (argv_for(prefix) gives its command line) and wait for its control
    socket @sock and its @ports ports. net_af_packet sometimes cannot join its
    PACKET_FANOUT group (EINVAL: DPDK derives the group id from the pid and the
    interface index, so two processes in one netns can ask for the same id with
    other interfaces); mbxd then runs without that port, and is started again."""
    for _ in range(tries):
        prefix = unique_prefix(name)
        p = Proc(argv_for(prefix), prefix, log_path=log_path)
        wait_until(lambda: os.path.exists(sock) or p.p.poll() is not None, timeout,
                   what="%s's control socket (see %s)" % (name, log_path))
        if p.p.poll() is None and p.query("/mbx/info")["ports"] == ports:
            return p
        print("note: %s came up without its %d ports; starting it again" % (name, ports))
        p.stop()
        if os.path.exists(sock):
            os.unlink(sock)
    raise RuntimeError("%s: its af_packet ports failed %d times (see %s)" % (name, tries,
                                                                          log_path))
