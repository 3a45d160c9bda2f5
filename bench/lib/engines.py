"""The lab: private docker/podman/berth/runc/registry instances, their images, their teardown."""

from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field

from .util import CmdError, StopWaiting, free_port, have, processes, sh, timed, wait_for

RUN = "/run/berth-bench"
LIB = "/var/lib/berth-bench"
IMAGES = os.environ.get("BERTH_BENCH_IMAGES", "/work/shared/images")
BUSYBOX_TAR = f"{IMAGES}/busybox.oci.tar"
DEBIAN_TAR = f"{IMAGES}/debian-bookworm-minbase.oci.tar"

# Debian packages for the peers, installed only when the tool is missing.
PEER_PACKAGES = {
    "dockerd": "docker.io", "podman": "podman", "runc": "runc",
    "docker-registry": "docker-registry", "skopeo": "skopeo", "curl": "curl",
    "busybox": "busybox-static",
}


def log(msg: str):
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", flush=True)


@dataclass
class Engine:
    """A docker-compatible CLI bound to a private instance of its engine."""

    name: str
    base: list[str]
    env: dict = field(default_factory=dict)
    na: str | None = None          # why this engine is unavailable (None = usable)
    net_none: list[str] = field(default_factory=lambda: ["--network", "none"])
    insecure: list[str] = field(default_factory=list)  # flags for plain-http registry pulls/pushes
    build_env: dict = field(default_factory=dict)
    build_flags: list[str] = field(default_factory=list)
    port_net: list[str] = field(default_factory=list)  # network flags for the published-port run
    run_flags: list[str] = field(default_factory=list)  # extra flags for every run/create
    rm_flags: list[str] = field(default_factory=list)  # extra flags for every rm -f
    image: str = "busybox:latest"
    daemon_pids: list[int] = field(default_factory=list)  # processes counted as "the daemon"
    cleanup_warned: bool = False
    # How the bench started the daemon (for a timed restart): name, argv, log file, env, socket.
    daemon: tuple[str, list[str], str, dict, str] | None = None

    def c(self, *args: str) -> list[str]:
        return self.base + list(args)

    def sh(self, *args: str, env: dict | None = None, **kw) -> subprocess.CompletedProcess:
        e = dict(self.env)
        e.update(env or {})
        try:
            return sh(self.c(*args), env=e, **kw)
        except CmdError as err:
            err.label = self.label(args)
            raise

    def time(self, *args: str, env: dict | None = None, **kw):
        e = dict(self.env)
        e.update(env or {})
        try:
            return timed(self.c(*args), env=e, **kw)
        except CmdError as err:
            err.label = self.label(args)
            raise

    def has_image(self, ref: str) -> bool:
        for args in (("image", "inspect", ref), ("inspect", ref)):
            if self.sh(*args, timeout=60, check=False).returncode == 0:
                return True
        return False

    def label(self, args) -> str:
        words = [a for a in args if not a.startswith("/") or len(a) < 40]
        return " ".join([self.name, *words[:5]]) + (" …" if len(words) > 5 else "")

    def remove_all_containers(self):
        try:
            ids = self.sh("ps", "-aq", timeout=120).stdout.split()
            for i in range(0, len(ids), 100):
                self.sh("rm", "-f", *self.rm_flags, *ids[i:i + 100], timeout=600, check=False)
        except CmdError as e:
            if not self.cleanup_warned:
                log(f"{self.name}: could not list containers for cleanup: {e.short()}")
            self.cleanup_warned = True


class Lab:
    """Owns every process and directory the benchmark creates; `close()` undoes all of it."""

    def __init__(self, args):
        self.args = args
        self.procs: list[tuple[str, subprocess.Popen]] = []
        self.engines: dict[str, Engine] = {}
        self.runc_root = f"{RUN}/runc"
        self.runc_bundles = f"{LIB}/runc"
        self.runc_na: str | None = None
        self.runc_on = "runc" in args.engine_set
        self.registry: subprocess.Popen | None = None
        self.registry_port = 0
        self.berth_bin = ""
        self.notes: list[str] = []
        self.net_before: tuple[set[str], set[tuple[str, str]]] | None = None

    # ------------------------------------------------------------ setup

    def install_peers(self):
        missing = sorted({pkg for tool, pkg in PEER_PACKAGES.items() if not have(tool)})
        if not missing:
            return
        if self.args.no_install:
            log(f"missing peers not installed (--no-install): {' '.join(missing)}")
            return
        log(f"installing missing peers: {' '.join(missing)}")
        env = {"DEBIAN_FRONTEND": "noninteractive"}
        sh(["apt-get", "update", "-q"], env=env, timeout=600, check=False)
        p = sh(["apt-get", "install", "-y", "-q", *missing], env=env, timeout=1200, check=False)
        if p.returncode != 0:
            log(f"apt-get install failed: {p.stderr.strip().splitlines()[-1:]}")

    def spawn(self, name: str, cmd: list[str], logfile: str, env: dict | None = None):
        e = dict(os.environ)
        e.update(env or {})
        out = open(logfile, "ab")
        p = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                             env=e, start_new_session=True)
        out.close()
        self.procs.append((name, p))
        return p

    def setup(self, want: set[str]):
        for d in (RUN, LIB):
            os.makedirs(d, exist_ok=True)
        self.install_peers()
        if "docker" in want:
            self.setup_docker()
        if "podman" in want:
            self.setup_podman()
        if "berth" in want:
            self.setup_berth()
        if "runc" in want:
            self.setup_runc()
        for e in self.engines.values():
            if e.na is None:
                try:
                    self.load(e, BUSYBOX_TAR, "busybox:latest")
                except CmdError as err:
                    e.na = f"loading busybox failed: {err.short()}"

    def setup_docker(self):
        sock = f"{RUN}/docker.sock"
        cli = "/usr/bin/docker" if os.path.exists("/usr/bin/docker") else "docker"
        eng = Engine("docker", [cli, "-H", f"unix://{sock}"],
                     build_env={"DOCKER_BUILDKIT": "0"})
        self.engines["docker"] = eng
        if not have("dockerd"):
            eng.na = "dockerd not installed"
            return
        cmd = ["dockerd", "--host", f"unix://{sock}", "--data-root", f"{LIB}/docker",
               "--exec-root", f"{RUN}/docker-exec", "--pidfile", f"{RUN}/docker.pid",
               "--iptables=false", "--ip-masq=false", "--bridge=none",
               "--exec-opt", "native.cgroupdriver=cgroupfs", "--log-level", "warn"]
        eng.daemon = ("dockerd", cmd, f"{RUN}/dockerd.log", {}, sock)
        p = self.spawn("dockerd", cmd, f"{RUN}/dockerd.log")
        try:
            wait_for(lambda: alive(p, "dockerd") and eng.sh("version", timeout=10).returncode == 0,
                     60, "dockerd")
        except (RuntimeError, CmdError) as e:
            eng.na = f"dockerd did not start: {e}"
            return
        eng.daemon_pids = [p.pid]
        eng.port_net = ["--network", "bbench-net"]

    def setup_podman(self):
        base = ["podman", "--root", f"{LIB}/podman", "--runroot", f"{RUN}/podman-run",
                "--tmpdir", f"{RUN}/podman-tmp", "--network-config-dir", f"{LIB}/podman-net",
                "--cgroup-manager", "cgroupfs", "--events-backend", "file",
                "--storage-driver", "overlay", "--runtime", "runc"]
        os.makedirs(f"{LIB}/podman-net", exist_ok=True)
        # podman asks for nofile/nproc near 1M, above this host's hard limits: cap them at ours.
        ulimit = []
        # Without CAP_SYS_RESOURCE (this sandbox lacks it) runc init can't raise them, and conmon
        # runs with nproc 32768, so stay at or below both.
        for name, which, cap in (("nofile", resource.RLIMIT_NOFILE, 16384),
                                 ("nproc", resource.RLIMIT_NPROC, 32768)):
            hard = resource.getrlimit(which)[1]
            v = cap if hard == resource.RLIM_INFINITY else min(hard, cap)
            ulimit.append(f"--ulimit={name}={v}:{v}")
        eng = Engine("podman", base, insecure=["--tls-verify=false"], run_flags=ulimit,
                     rm_flags=["--time", "0"],  # docker's rm -f kills at once; podman waits 10s
                     build_flags=["--pull=never", "--layers", *ulimit])
        self.engines["podman"] = eng
        if not have("podman"):
            eng.na = "podman not installed"
            return
        try:
            eng.sh("info", timeout=60)
        except CmdError as e:
            eng.na = f"podman info failed: {e.short()}"
        eng.port_net = ["--network", "bbench-net"]

    def net_snapshot(self) -> tuple[set[str], set[tuple[str, str]]]:
        """Links and nft tables present now (to find what berth's daemon adds and leaves)."""
        links, tables = set(), set()
        p = sh(["ip", "-j", "link"], check=False)
        if p.returncode == 0:
            links = {x.get("ifname", "") for x in json.loads(p.stdout or "[]")}
        p = sh(["nft", "-j", "list", "tables"], check=False)
        if p.returncode == 0:
            for x in json.loads(p.stdout or "{}").get("nftables", []):
                if "table" in x:
                    tables.add((x["table"]["family"], x["table"]["name"]))
        return links, tables

    def remove_berth_network_leftovers(self):
        """Delete berth* links and nft tables that appeared while our daemon ran, unless another
        berth process is alive (then they may be its own)."""
        if self.net_before is None:
            return
        others = [p for p in processes() if os.path.basename(p.exe).startswith("berth")
                  and p.pid != os.getpid()]
        if others:
            log(f"leaving berth network state alone: other berth processes {others[0].pid}…")
            return
        links, tables = self.net_snapshot()
        for link in sorted(links - self.net_before[0]):
            if link.startswith("berth"):
                sh(["ip", "link", "del", link], check=False)
                log(f"removed link {link} left by berth's daemon")
        for fam, name in sorted(tables - self.net_before[1]):
            if name.startswith("berth"):
                sh(["nft", "delete", "table", fam, name], check=False)
                log(f"removed nft table {fam} {name} left by berth's daemon")

    def setup_berth(self):
        cand = [self.args.berth_bin] if self.args.berth_bin else [
            "/work/main/target/release/berth", shutil.which("berth") or ""]
        bin_ = next((c for c in cand if c and os.access(c, os.X_OK)), "")
        sock = f"{RUN}/berth.sock"
        # BERTH_NO_AUTOSTART: if our daemon dies the CLI must fail, not start one in /var/lib/berth
        eng = Engine("berth", [bin_ or "berth"],
                     env={"BERTH_HOST": f"unix://{sock}", "BERTH_NO_AUTOSTART": "1"})
        self.engines["berth"] = eng
        if not bin_:
            eng.na = "no berth binary (cargo build --release --bin berth)"
            return
        self.berth_bin = os.path.realpath(bin_)
        self.net_before = self.net_snapshot()
        dargs = self.args.berth_daemon_args.format(root=f"{LIB}/berth", sock=sock).split()
        # Keep the pid file and runtime state out of /run/berth when the daemon lets us.
        helptext = sh([bin_, "daemon", "--help"], timeout=30, check=False).stdout
        if "--exec-root" in helptext and "--exec-root" not in dargs:
            dargs += ["--exec-root", f"{RUN}/berth-exec"]
        eng.daemon = ("berth daemon", [bin_, "daemon", *dargs], f"{RUN}/berth-daemon.log",
                      {"BERTH_HOST": f"unix://{sock}"}, sock)
        p = self.spawn(*eng.daemon[:4])
        try:
            wait_for(lambda: alive(p, "berth daemon") and os.path.exists(sock)
                     and eng.sh("version", timeout=10).returncode == 0, 30, "berth daemon")
        except (RuntimeError, CmdError) as e:
            tail = ""
            try:
                with open(f"{RUN}/berth-daemon.log") as f:
                    lines = [l.strip() for l in f if l.strip()]
                tail = lines[-1][:200] if lines else ""
            except OSError:
                pass
            rc = p.poll()
            eng.na = (f"berth daemon exited {rc}" if rc is not None else f"{e}") + \
                (f": {tail}" if tail else "")
            return
        eng.daemon_pids = [p.pid]

    def restart_daemon(self, eng: Engine, timeout: float = 300) -> float:
        """Stop `eng`'s daemon (SIGTERM, by PID) and start it again; seconds from the spawn
        until it answers `GET /containers/json?all=1` on its socket (polled every 5 ms over
        the socket itself, so neither CLI's start-up is counted)."""
        if eng.daemon is None or not eng.daemon_pids:
            raise RuntimeError(f"{eng.name} has no daemon started by the bench")
        name, cmd, logfile, env, sock = eng.daemon
        old = next(q for n, q in self.procs if q.pid == eng.daemon_pids[0])
        stop_proc(old)
        self.procs = [(n, q) for n, q in self.procs if q is not old]
        t0 = time.perf_counter()
        p = self.spawn(name, cmd, logfile, env)
        eng.daemon_pids = [p.pid]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            alive(p, name)
            if unix_get(sock, "/containers/json?all=1") == 200:
                return time.perf_counter() - t0
            time.sleep(0.005)
        raise RuntimeError(f"{name} did not answer within {timeout:.0f}s after a restart")

    def setup_runc(self):
        if not have("runc"):
            self.runc_na = "runc not installed"
            return
        try:
            rootfs = f"{self.runc_bundles}/rootfs"
            unpack_oci_archive(BUSYBOX_TAR, rootfs, f"{self.runc_bundles}/oci")
            for name, args in (("true", ["true"]), ("sleep", ["sleep", "300"])):
                b = f"{self.runc_bundles}/{name}"
                os.makedirs(b, exist_ok=True)
                if os.path.exists(f"{b}/config.json"):
                    os.unlink(f"{b}/config.json")
                sh(["runc", "spec", "--bundle", b])
                with open(f"{b}/config.json") as f:
                    spec = json.load(f)
                spec["process"]["terminal"] = False
                spec["process"]["args"] = args
                spec["root"] = {"path": rootfs, "readonly": True}
                with open(f"{b}/config.json", "w") as f:
                    json.dump(spec, f, indent=1)
        except (CmdError, OSError, KeyError) as e:
            self.runc_na = f"runc bundle setup failed: {e}"

    def runc(self, *args: str) -> list[str]:
        return ["runc", "--root", self.runc_root, *args]

    def berth_runc(self, *args: str) -> list[str]:
        """berth's own OCI runtime (`berth runtime`, runc's CLI) on the same bundles as runc."""
        return [self.berth_bin, "runtime", "--root", f"{RUN}/berth-runc", *args]

    def load(self, eng: Engine, archive: str, ref: str):
        """Load an OCI archive into an engine; docker 20.10 can't, so skopeo feeds it instead.

        Raises CmdError when the image can't be loaded or doesn't resolve as `ref` afterwards."""
        try:
            eng.sh("load", "-i", archive, timeout=300)
        except CmdError:
            if eng.name != "docker":
                raise
            sh(["skopeo", "copy", "-q", f"oci-archive:{archive}", f"docker-daemon:{ref}",
                "--dest-daemon-host", eng.base[2]], timeout=300)
        if not eng.has_image(ref):
            eng.sh("image", "inspect", ref, timeout=60)  # raises with the engine's own words

    # ------------------------------------------------------------ registry

    def registry_start(self, fresh: bool = True):
        """(Re)start a private docker-registry on 127.0.0.1; fresh=True wipes its storage."""
        self.registry_stop()
        store = f"{LIB}/registry"
        if fresh:
            shutil.rmtree(store, ignore_errors=True)
        os.makedirs(store, exist_ok=True)
        if not self.registry_port:
            self.registry_port = free_port()
        cfg = f"{RUN}/registry.yml"
        with open(cfg, "w") as f:
            f.write(
                "version: 0.1\n"
                "log: {level: error}\n"
                f"storage:\n  filesystem:\n    rootdirectory: {store}\n"
                "  delete:\n    enabled: true\n"
                f"http:\n  addr: 127.0.0.1:{self.registry_port}\n")
        self.registry = self.spawn("docker-registry", ["docker-registry", "serve", cfg],
                                   f"{RUN}/registry.log")
        import urllib.request
        wait_for(lambda: alive(self.registry, "docker-registry") and urllib.request.urlopen(
            f"http://127.0.0.1:{self.registry_port}/v2/", timeout=2).status == 200,
            30, "docker-registry")

    def registry_stop(self):
        if self.registry is not None:
            stop_proc(self.registry)
            self.procs = [(n, p) for n, p in self.procs if p is not self.registry]
            self.registry = None

    # ------------------------------------------------------------ teardown

    def close(self):
        log("cleaning up")
        for e in self.engines.values():
            running = bool(e.daemon_pids) if e.name in ("docker", "berth") else (
                e.name == "podman" and have("podman"))
            if not running:
                continue
            e.remove_all_containers()
            if e.name in ("docker", "podman"):
                e.sh("network", "rm", "bbench-net", timeout=60, check=False)
            if e.name == "podman":
                e.sh("rmi", "-af", timeout=300, check=False)
        if os.path.isdir(self.runc_root):
            try:
                for c in json.loads(sh(self.runc("list", "-f", "json")).stdout or "[]") or []:
                    sh(self.runc("delete", "-f", c["id"]), check=False)
            except (CmdError, ValueError) as e:
                log(f"runc cleanup: {e}")
        if self.berth_bin and os.path.isdir(f"{RUN}/berth-runc"):
            try:
                out = sh(self.berth_runc("list", "-q"), check=False).stdout or ""
                for cid in out.split():
                    sh(self.berth_runc("delete", "-f", cid), check=False)
            except CmdError as e:
                log(f"berth-runc cleanup: {e}")
        for name, p in reversed(self.procs):
            stop_proc(p)
        self.procs.clear()
        kill_leftovers()
        self.remove_berth_network_leftovers()
        if not self.args.keep_state:
            unmount_under(RUN)
            unmount_under(LIB)
            for d in (RUN, LIB):
                shutil.rmtree(d, ignore_errors=True)


def unix_get(sock: str, path: str) -> int | None:
    """The status of `GET path` (HTTP/1.0, body read to the end) on the unix socket `sock`;
    None when nothing answers there yet."""
    import socket
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(60)
            s.connect(sock)
            s.sendall(f"GET {path} HTTP/1.0\r\nHost: bench\r\n\r\n".encode())
            data = b""
            while chunk := s.recv(65536):
                data += chunk
    except OSError:
        return None
    try:
        return int(data.split(b" ", 2)[1])
    except (IndexError, ValueError):
        return None


def alive(p: subprocess.Popen, what: str) -> bool:
    """True while `p` runs; StopWaiting (ends a wait_for) once it has exited."""
    if p.poll() is not None:
        raise StopWaiting(f"{what} exited {p.returncode}")
    return True


def stop_proc(p: subprocess.Popen, grace: float = 20):
    """SIGTERM one process we started (by PID), SIGKILL after `grace` seconds."""
    if p.poll() is not None:
        return
    try:
        p.send_signal(signal.SIGTERM)
        p.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait(timeout=10)
    except ProcessLookupError:
        pass


def kill_leftovers():
    """Kill processes still running from the bench's private paths (shims, conmon, registry)."""
    me = os.getpid()
    for pr in processes():
        if pr.pid == me:
            continue
        line = " ".join(pr.argv)
        if f"{RUN}/" in line or f"{LIB}/" in line:
            try:
                os.kill(pr.pid, signal.SIGKILL)
                log(f"killed leftover pid {pr.pid} ({pr.comm})")
            except ProcessLookupError:
                pass


def unmount_under(root: str):
    try:
        with open("/proc/self/mountinfo") as f:
            mps = [l.split()[4] for l in f]
    except OSError:
        return
    mine = sorted({m for m in mps if m == root or m.startswith(root + "/")},
                  key=lambda m: m.count("/"), reverse=True)
    for m in mine:
        sh(["umount", "-l", m], check=False)


def unpack_oci_archive(archive: str, rootfs: str, scratch: str):
    """Extract the single-manifest OCI archive's layers into `rootfs` (for the bare runc floor)."""
    shutil.rmtree(scratch, ignore_errors=True)
    shutil.rmtree(rootfs, ignore_errors=True)
    os.makedirs(scratch)
    os.makedirs(rootfs)
    sh(["tar", "-xf", archive, "-C", scratch])
    with open(f"{scratch}/index.json") as f:
        idx = json.load(f)

    def blob(d: str) -> str:
        algo, hexd = d.split(":", 1)
        return f"{scratch}/blobs/{algo}/{hexd}"

    with open(blob(idx["manifests"][0]["digest"])) as f:
        man = json.load(f)
    for layer in man["layers"]:
        sh(["tar", "-xf", blob(layer["digest"]), "-C", rootfs, "--numeric-owner"])
    shutil.rmtree(scratch, ignore_errors=True)
