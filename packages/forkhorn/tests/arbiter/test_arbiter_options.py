"""Process options with real processes: ``reuse_port`` (a socket per worker), ``user`` /
``group`` / ``initgroups`` (privileges dropped in workers), and the USR2 re-exec of a master
started with ``--chdir`` and relative paths."""

from __future__ import annotations

import grp
import json
import os
import pwd
import signal
import socket
import time
from pathlib import Path

import pytest
from conftest import LoadClient, children, wait_for
from forkhorn.arbiter.pidfile import read_pid
from forkhorn.testing.processes import socket_inodes

# --- reuse_port ------------------------------------------------------------------------


def _listening_inodes(port: int) -> set[str]:
    """Inodes of the TCP sockets listening on ``port`` (/proc/net/tcp, state 0A)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                found.add(fields[9])
    return found


def _inodes(pid: int) -> set[str]:
    """The inode numbers of the sockets ``pid`` holds (``socket:[N]`` -> ``N``)."""
    return {link[len("socket:[") : -1] for link in socket_inodes(pid)}


def _own_sockets(master: int, workers: list[int], port: int) -> dict[int, set[str]] | None:
    """Each worker's listening sockets other than the master's shared one, once every worker
    holds the shared socket and exactly one of its own; None until then."""
    listening = _listening_inodes(port)
    shared = _inodes(master) & listening
    if len(shared) != 1:
        return None
    own = {}
    for pid in workers:
        mine = _inodes(pid) & listening
        if not shared <= mine or len(mine - shared) != 1:
            return None
        own[pid] = mine - shared
    return own


def _pid_of(body: bytes) -> int:
    return int(body.strip().split(b"=")[1])


def test_reuse_port_gives_each_worker_its_own_socket_and_both_serve(start_server):
    server = start_server("--reuse-port", workers=2)
    workers = server.wait_workers(2)
    own = wait_for(
        lambda: _own_sockets(server.pid, workers, server.port), 10, "a socket per worker"
    )
    first, second = own.values()
    assert not first & second
    assert len(_listening_inodes(server.port)) == 3  # the shared socket + one per worker
    answered: set[int] = set()

    def both_answered() -> bool:
        status, body = server.get()
        assert status == 200
        answered.add(_pid_of(body))
        return answered == set(workers)

    wait_for(both_answered, 10, "both workers to answer", step=0.0)
    server.kill(signal.SIGTERM)
    assert server.wait_exit(10) == 0


@pytest.mark.parametrize("worker_class", ["sync", "gthread"])
def test_reuse_port_hup_and_term_under_load_lose_no_request(start_server, worker_class):
    server = start_server("--reuse-port", "--graceful-timeout", "10", "-k", worker_class, workers=2)
    first = set(server.workers())
    with LoadClient(server.port, threads=4) as load:
        load.wait_requests(20)
        for _ in range(8):
            server.kill(signal.SIGHUP)
            time.sleep(0.3)
        workers = server.wait_workers(2, timeout=10)
        # retired workers closed their own sockets: the shared one + one per new worker
        wait_for(lambda: len(_listening_inodes(server.port)) == 3, 10, "old sockets to close")
        assert _own_sockets(server.pid, workers, server.port)
        load.wait_requests(20)
        assert not first & set(workers)
        assert load.failures == [], load.failures[:5]
        assert load.refused == 0
        # a full stop under load: what the per-worker and shared sockets queued is served
        server.kill(signal.SIGTERM)
        assert server.wait_exit(12) == 0
        time.sleep(0.3)
    assert load.failures == [], load.failures[:5]
    assert "Hang up: Master" in server.log()
    assert "Traceback" not in server.log()


# --- user / group / initgroups ---------------------------------------------------------

needs_root = pytest.mark.skipif(
    os.geteuid() != 0, reason="switching the workers' user and group needs root"
)


def _account(user: str, group: str) -> tuple[pwd.struct_passwd, grp.struct_group]:
    try:
        return pwd.getpwnam(user), grp.getgrnam(group)
    except KeyError:
        pytest.skip(f"no {user!r} user or {group!r} group on this system")


def _master_ids(pid: int) -> tuple[int, int]:
    status = Path(f"/proc/{pid}/status").read_text().splitlines()
    uid = next(line for line in status if line.startswith("Uid:")).split()[1]
    gid = next(line for line in status if line.startswith("Gid:")).split()[1]
    return int(uid), int(gid)


def _unix_get(path: Path, target: str) -> tuple[int, bytes]:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(5)
        sock.connect(str(path))
        sock.sendall(f"GET {target} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


@needs_root
def test_workers_run_as_user_and_group_while_the_master_stays_root(start_server, tmp_path):
    user, group = _account("nobody", "nogroup")
    sock_path = tmp_path / "app.sock"
    server = start_server("-u", "nobody", "-g", "nogroup", "-b", f"unix:{sock_path}")
    status, body = server.get("/ids")
    assert status == 200
    ids = json.loads(body)
    assert ids["pid"] in server.workers()
    assert (ids["uid"], ids["gid"]) == (user.pw_uid, group.gr_gid)
    # root's supplementary groups (group 0) do not follow the worker
    assert ids["groups"] == [group.gr_gid]
    assert _master_ids(server.pid) == (0, 0)
    # the unix socket the (root) master bound belongs to the workers' user and serves
    st = sock_path.stat()
    assert (st.st_uid, st.st_gid) == (user.pw_uid, group.gr_gid)
    status, body = _unix_get(sock_path, "/ids")
    assert status == 200
    assert json.loads(body)["uid"] == user.pw_uid
    server.kill(signal.SIGTERM)
    assert server.wait_exit(10) == 0
    assert not sock_path.exists()


def _user_with_supplementary_groups() -> str:
    """A user listed as a member of some group (their groups tell initgroups apart), else
    ``nobody``."""
    for entry in grp.getgrall():
        for name in entry.gr_mem:
            try:
                if pwd.getpwnam(name).pw_uid != 0:
                    return name
            except KeyError:
                continue
    return "nobody"


@needs_root
def test_initgroups_gives_the_worker_the_users_groups(start_server):
    name = _user_with_supplementary_groups()
    user, group = _account(name, "nogroup")
    server = start_server("-u", name, "-g", "nogroup", "--initgroups", "--reuse-port")
    status, body = server.get("/ids")
    assert status == 200
    ids = json.loads(body)
    assert (ids["uid"], ids["gid"]) == (user.pw_uid, group.gr_gid)
    assert ids["groups"] == sorted(set(os.getgrouplist(name, group.gr_gid)))
    # reuse_port with a user switch: the worker's own socket joined the master's group
    # (opened before the switch: the kernel only groups sockets of one uid)
    workers = server.workers()
    wait_for(lambda: _own_sockets(server.pid, workers, server.port), 10, "the worker's socket")
    assert "no socket of its own" not in server.log()
    server.kill(signal.SIGTERM)
    assert server.wait_exit(10) == 0


# --- USR2 with --chdir and relative paths ----------------------------------------------


def test_usr2_reexec_with_chdir_and_relative_paths(start_server, tmp_path):
    (tmp_path / "conf").mkdir()
    (tmp_path / "site" / "run").mkdir(parents=True)
    marker = tmp_path / "ready.txt"
    (tmp_path / "conf" / "forkhorn.conf.py").write_text(
        "import os\n"
        "def when_ready(server):\n"
        f"    with open({str(marker)!r}, 'a') as f:\n"
        "        f.write(f'{os.getpid()} {os.getcwd()}\\n')\n"
    )
    # every path relative to the directory the server is started from (tmp_path)
    server = start_server(
        "-c", "conf/forkhorn.conf.py", "--chdir", "site", "--pid", "run/app.pid", workers=2
    )
    pidfile = tmp_path / "site" / "run" / "app.pid"  # relative to --chdir, as in Gunicorn
    old_master = server.pid
    assert read_pid(str(pidfile)) == old_master
    with LoadClient(server.port, threads=2) as load:
        load.wait_requests(10)
        server.kill(signal.SIGUSR2)
        new_master = wait_for(lambda: read_pid(f"{pidfile}.2"), 10, "the new master's pidfile")
        new_workers = server.wait_workers(2, master=new_master)
        server.kill(signal.SIGWINCH)
        wait_for(lambda: children(old_master) == [new_master], 10, "old workers to stop")
        load.wait_requests(10)
        server.kill(signal.SIGTERM)
        assert server.wait_exit(10) == 0
        wait_for(lambda: read_pid(str(pidfile)) == new_master, 5, "the new master's pidfile")
        load.wait_requests(10)
    assert load.failures == [], load.failures[:5]
    assert _pid_of(server.get()[1]) in new_workers
    # both masters read the relative config file and moved to the same --chdir directory
    site = str(tmp_path / "site")
    assert marker.read_text().splitlines() == [f"{old_master} {site}", f"{new_master} {site}"]
    server.kill(signal.SIGTERM, new_master)
    wait_for(lambda: read_pid(str(pidfile)) is None, 10, "the new master to remove its pidfile")
