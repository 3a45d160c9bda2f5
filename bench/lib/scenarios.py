"""The six scenarios; each runs every engine alternately per round and records into Results."""

from __future__ import annotations

import os
import shutil
import time
from concurrent.futures import ThreadPoolExecutor

from .engines import DEBIAN_TAR, LIB, RUN, Engine, Lab, log
from .report import Results
from .util import CmdError, descendants, mem_kib, processes, sh, timed, wait_for

MIB = 1024 * 1024


def faster(m: dict[str, float]) -> bool | None:
    """The issue's ">= 1.5x faster than docker" on medians; None when docker has no number."""
    return m["berth"] * 1.5 <= m["docker"] if "docker" in m else None


def rotate(xs: list, r: int) -> list:
    if not xs:
        return xs
    k = r % len(xs)
    return xs[k:] + xs[:k]


def usable(lab: Lab, res: Results, scn: str, metrics: list[str]) -> list[Engine]:
    """Engines that can take part; the others get their n/a reason on every metric."""
    out = []
    for e in lab.engines.values():
        if e.na:
            for m in metrics:
                res.fail(scn, m, e.name, e.na)
        else:
            out.append(e)
    return out


def attempt(res: Results, scn: str, metric: str, who: str, fn):
    """Run fn() unless this engine already failed this metric; record its value or the reason."""
    if res.failed(scn, metric, who):
        return None
    try:
        v = fn()
    except CmdError as e:
        res.fail(scn, metric, who, e.short())
        return None
    except (RuntimeError, OSError, ValueError) as e:
        res.fail(scn, metric, who, str(e)[:140])
        return None
    if v is not None:
        res.add(scn, metric, who, v)
    return v


def probe_network_none(lab: Lab, res: Results):
    """Peers run with --network none (private dockerd has no default bridge, runc has only lo).
    If berth rejects the flag but runs without it, drop the flag for berth and say so."""
    e = lab.engines.get("berth")
    if not e or e.na:
        return
    try:
        e.sh("run", "--rm", *e.run_flags, *e.net_none, e.image, "true", timeout=60)
        return
    except CmdError as first:
        try:
            e.sh("run", "--rm", *e.run_flags, e.image, "true", timeout=60)
        except CmdError:
            return
        e.net_none = []
        res.notes.append(f"berth ran without --network none ({first.short()})")


# ---------------------------------------------------------------- 1. run

def scn_run(lab: Lab, res: Results, rounds: int):
    S = "run"
    res.rounds[S] = rounds
    M_RM, M_D, M_DR, M_RMF = "run --rm true", "run -d + rm -f", "run -d", "rm -f (running)"
    res.metric(S, M_RM, "s", target="<= 1x runc", main=True,
               check=lambda m: m["berth"] <= m["runc"] if "runc" in m else None)
    res.metric(S, M_D, "s", main=True)
    res.metric(S, M_DR, "s")
    res.metric(S, M_RMF, "s")
    # Issue 17: berth's runc-compatible runtime on the same bundle as runc (the floor).
    M_RT = "runtime run (bundle, true)"
    res.metric(S, M_RT, "s", target="berth-runc < runc", main=True,
               check=lambda m: m["berth-runc"] < m["runc"]
               if "runc" in m and "berth-runc" in m else None)
    engines = usable(lab, res, S, [M_RM, M_D, M_DR, M_RMF])
    who = [e.name for e in engines]
    if not lab.runc_on:
        pass
    elif lab.runc_na:
        for m in (M_RM, M_D, M_DR, M_RMF):
            res.fail(S, m, "runc", lab.runc_na)
    else:
        who.append("runc")
    by = {e.name: e for e in engines}
    rt_who = []
    if "runc" in who:
        rt_who.append("runc")
        if lab.berth_bin:
            rt_who.append("berth-runc")
        else:
            res.fail(S, M_RT, "berth-runc", "no berth binary")
    for r in range(rounds):
        for name in rotate(rt_who, r):
            run = lab.runc if name == "runc" else lab.berth_runc
            cid = f"bbench-rt-{os.getpid()}-{r}"
            if not res.failed(S, M_RT, name):
                attempt(res, S, M_RT, name, lambda: timed(run(
                    "run", "--bundle", f"{lab.runc_bundles}/true", cid), timeout=60)[0])
        for name in rotate(who, r):
            if name == "runc":
                cid = f"bbench-{os.getpid()}-{r}"
                attempt(res, S, M_RM, name, lambda: timed(lab.runc(
                    "run", "--bundle", f"{lab.runc_bundles}/true", cid + "-rm"), timeout=60)[0])

                def runc_d():
                    t1, _ = timed(lab.runc("run", "-d", "--bundle", f"{lab.runc_bundles}/sleep",
                                           cid + "-d"), timeout=60, capture=False)
                    t2, _ = timed(lab.runc("delete", "-f", cid + "-d"), timeout=60)
                    return t1, t2
            else:
                e = by[name]
                attempt(res, S, M_RM, name, lambda: e.time(
                    "run", "--rm", *e.run_flags, *e.net_none, e.image, "true", timeout=60)[0])

                def runc_d(e=e):
                    t1, p = e.time("run", "-d", *e.run_flags, *e.net_none, e.image,
                                   "sleep", "300", timeout=60)
                    out = p.stdout.strip().splitlines()
                    if not out:
                        raise RuntimeError(f"{e.name} run -d printed no container id")
                    t2, _ = e.time("rm", "-f", *e.rm_flags, out[-1].strip(), timeout=60)
                    return t1, t2
            if res.failed(S, M_D, name):
                continue
            try:
                t1, t2 = runc_d()
            except (CmdError, RuntimeError) as err:
                why = err.short() if isinstance(err, CmdError) else str(err)
                for m in (M_D, M_DR, M_RMF):
                    res.fail(S, m, name, why)
                continue
            res.add(S, M_D, name, t1 + t2)
            res.add(S, M_DR, name, t1)
            res.add(S, M_RMF, name, t2)


# ---------------------------------------------------------------- 2. parallel + memory

def shim_pids(lab: Lab, e: Engine, procs) -> list[int]:
    out = []
    for p in procs:
        args = " ".join(p.argv)
        if e.name == "docker":
            if p.comm.startswith("containerd-shim") and f"{RUN}/" in args:
                out.append(p.pid)
        elif e.name == "podman":
            if p.comm == "conmon" and (f"{LIB}/podman" in args or f"{RUN}/" in args):
                out.append(p.pid)
        elif e.name == "berth":
            # The bench daemon's shims only: `berth shim <dir>` with <dir> under its root or
            # exec root (another berth daemon on the machine runs the same binary).
            if lab.berth_bin and p.pid not in e.daemon_pids and \
                    os.path.realpath(p.exe or "/") == lab.berth_bin and "shim" in p.argv[1:4] \
                    and any(a.startswith((f"{LIB}/berth/", f"{RUN}/berth-exec/"))
                            for a in p.argv[p.argv.index("shim") + 1:]):
                out.append(p.pid)
    return out


def daemon_rss_mib(e: Engine, procs, exclude: set[int]) -> float | None:
    if not e.daemon_pids:
        return None
    pids = set(e.daemon_pids)
    for d in e.daemon_pids:
        pids |= {p.pid for p in descendants(d, procs)}
    return sum(mem_kib(p)[0] for p in pids - exclude) / 1024


def scn_parallel(lab: Lab, res: Results, rounds: int, n: int):
    S = "parallel"
    res.rounds[S] = rounds
    M_START, M_PSS, M_RSS, M_CNT = f"start {n} in parallel", "shim PSS per ctr", \
        "shim RSS per ctr", "shim processes"
    M_DIDLE, M_DBUSY, M_RM = "daemon RSS idle", f"daemon RSS with {n}", f"rm -f {n}"
    res.metric(S, M_START, "s", main=True)
    res.metric(S, M_PSS, "MiB", target="<= 1 MiB", main=True,
               check=lambda m: m["berth"] <= 1.0)
    res.metric(S, M_RSS, "MiB")
    res.metric(S, M_CNT, "count")
    res.metric(S, M_DIDLE, "MiB")
    res.metric(S, M_DBUSY, "MiB", main=True)
    res.metric(S, M_RM, "s")
    engines = usable(lab, res, S, [M_START, M_PSS, M_RSS, M_CNT, M_DIDLE, M_DBUSY, M_RM])
    if any(e.name == "podman" for e in engines):
        res.notes.append("podman is daemonless: no daemon RSS; conmon counted as its shim")
    for r in range(rounds):
        for e in rotate(engines, r):
            if res.failed(S, M_START, e.name):
                continue
            e.remove_all_containers()
            procs = processes()
            idle = daemon_rss_mib(e, procs, set())
            if idle is not None:
                res.add(S, M_DIDLE, e.name, idle)

            def one(_i, e=e):
                return e.sh("run", "-d", *e.run_flags, *e.net_none, e.image, "sleep", "300",
                            timeout=300).stdout.strip().splitlines()[-1]
            t0 = time.perf_counter()
            errors = []
            ids = []
            with ThreadPoolExecutor(max_workers=n) as pool:
                for fut in [pool.submit(one, i) for i in range(n)]:
                    try:
                        ids.append(fut.result())
                    except (CmdError, IndexError) as err:
                        errors.append(err)
            took = time.perf_counter() - t0
            if errors:
                err = errors[0]
                why = f"{len(errors)}/{n} failed: " + (
                    err.short() if isinstance(err, CmdError) else "no container id printed")
                for m in (M_START, M_PSS, M_RSS, M_CNT, M_DBUSY, M_RM):
                    res.fail(S, m, e.name, why)
                e.remove_all_containers()
                continue
            res.add(S, M_START, e.name, took)
            time.sleep(2)  # let shims settle (lazy page faults, pidfd, log copiers)
            procs = processes()
            shims = shim_pids(lab, e, procs)
            if not shims:
                why = "no shim processes found"
                for m in (M_PSS, M_RSS, M_CNT):
                    res.fail(S, m, e.name, why)
            else:
                mem = [mem_kib(p) for p in shims]
                res.add(S, M_PSS, e.name, sum(p for _, p in mem) / 1024 / n)
                res.add(S, M_RSS, e.name, sum(r for r, _ in mem) / 1024 / n)
                res.add(S, M_CNT, e.name, len(shims))
            exclude = set(shims)
            for s in shims:
                exclude |= {p.pid for p in descendants(s, procs)}
            busy = daemon_rss_mib(e, procs, exclude)
            if busy is not None:
                res.add(S, M_DBUSY, e.name, busy)
            attempt(res, S, M_RM, e.name, lambda e=e, ids=ids: e.time(
                "rm", "-f", *e.rm_flags, *ids, timeout=600)[0])
            e.remove_all_containers()


# ---------------------------------------------------------------- 3. pull / push

def scn_pull(lab: Lab, res: Results, rounds: int):
    S = "pull"
    res.rounds[S] = rounds
    M_PULL, M_PUSH = "pull debian (cold)", "push debian (empty registry)"
    res.metric(S, M_PULL, "s", target=">= 1.5x faster than docker", check=faster, main=True)
    res.metric(S, M_PUSH, "s", main=True)
    engines = usable(lab, res, S, [M_PULL, M_PUSH])
    try:
        lab.registry_start(fresh=True)
    except (RuntimeError, CmdError) as err:
        for e in [*engines, "skopeo"]:
            for m in (M_PULL, M_PUSH):
                res.fail(S, m, getattr(e, "name", e), f"docker-registry: {err}")
        return
    reg = f"127.0.0.1:{lab.registry_port}"
    ref = f"{reg}/bench/debian:bookworm"
    who = [e.name for e in engines] + ["skopeo"]
    by = {e.name: e for e in engines}
    scratch = f"{LIB}/skopeo-dir"
    for r in range(rounds):
        try:
            lab.registry_start(fresh=True)
            sh(["skopeo", "copy", "-q", "--dest-tls-verify=false", f"oci-archive:{DEBIAN_TAR}",
                f"docker://{ref}"], timeout=600)
        except (RuntimeError, CmdError) as err:
            why = f"seeding the registry failed: {err}"
            for name in who:
                for m in (M_PULL, M_PUSH):
                    res.fail(S, m, name, why)
            break
        for name in rotate(who, r):
            if name == "skopeo":
                shutil.rmtree(scratch, ignore_errors=True)
                attempt(res, S, M_PULL, name, lambda: timed(
                    ["skopeo", "copy", "-q", "--src-tls-verify=false", f"docker://{ref}",
                     f"dir:{scratch}"], timeout=600)[0])
                shutil.rmtree(scratch, ignore_errors=True)
                continue
            e = by[name]
            for tag in (ref, f"{reg}/bench/push-{name}:latest", "debian:bookworm-minbase"):
                e.sh("rmi", "-f", tag, timeout=120, check=False)
            attempt(res, S, M_PULL, name, lambda e=e: e.time(
                "pull", *e.insecure, ref, timeout=900)[0])
        for name in rotate(who, r):
            lab.registry_start(fresh=True)
            dst = f"{reg}/bench/push-{name}:latest"
            if name == "skopeo":
                attempt(res, S, M_PUSH, name, lambda dst=dst: timed(
                    ["skopeo", "copy", "-q", "--dest-tls-verify=false",
                     f"oci-archive:{DEBIAN_TAR}", f"docker://{dst}"], timeout=600)[0])
                continue
            e = by[name]

            def push(e=e, dst=dst):
                if not e.has_image(ref):
                    lab.load(e, DEBIAN_TAR, "debian:bookworm-minbase")
                    e.sh("tag", "debian:bookworm-minbase", ref, timeout=60)
                e.sh("tag", ref, dst, timeout=60)
                t, _ = e.time("push", *e.insecure, dst, timeout=900)
                e.sh("rmi", dst, timeout=120, check=False)
                return t
            attempt(res, S, M_PUSH, name, push)
    lab.registry_stop()


# ---------------------------------------------------------------- 4. build

DOCKERFILE = """\
FROM busybox:latest
RUN mkdir -p /app && echo base > /app/base.txt
COPY deps.txt /app/deps.txt
RUN i=0; while [ $i -lt 300 ]; do echo "line $i" >> /app/gen.txt; i=$((i+1)); done
COPY src/ /app/src/
RUN cat /app/src/*.txt | wc -l > /app/count
ENV APP_MODE=bench
WORKDIR /app
CMD ["cat", "/app/count"]
"""


def write_context(d: str, changed: str | None):
    os.makedirs(f"{d}/src", exist_ok=True)
    files = {"Dockerfile": DOCKERFILE, "deps.txt": "dep-a\ndep-b\n",
             "src/main.txt": changed or "main v0\n", "src/util.txt": "util\n" * 50}
    for name, text in files.items():
        p = f"{d}/{name}"
        try:
            with open(p) as f:
                if f.read() == text:
                    continue  # keep mtimes stable where nothing changed
        except OSError:
            pass
        with open(p, "w") as f:
            f.write(text)


def build_metrics(res: Results, S: str, changed: str) -> tuple[str, str, str]:
    """Register the three build timings (cold, no-change, one change) with their targets."""
    names = ("cold (--no-cache)", "no-change rebuild", changed)
    res.metric(S, names[0], "s", target=">= 1.5x faster than docker", check=faster, main=True)
    res.metric(S, names[1], "s", target="< 100 ms", check=lambda m: m["berth"] < 0.1, main=True)
    res.metric(S, names[2], "s", target=">= 1.5x faster than docker", check=faster, main=True)
    return names


def rebuild_round(res: Results, S: str, engine: str, names, cold, build, change) -> None:
    """One engine's round: cold build, no-change rebuild, `change()`, rebuild."""
    M_COLD, M_NOCH, M_CH = names
    if attempt(res, S, M_COLD, engine, cold) is None:
        for m in (M_NOCH, M_CH):
            res.fail(S, m, engine, "the cold build failed")
        return
    attempt(res, S, M_NOCH, engine, build)
    change()
    attempt(res, S, M_CH, engine, build)


def scn_build(lab: Lab, res: Results, rounds: int):
    S = "build"
    res.rounds[S] = rounds
    names = build_metrics(res, S, "1-file-changed rebuild")
    engines = usable(lab, res, S, list(names))
    net = {e.name: list(e.net_none) for e in engines}
    for r in range(rounds):
        for e in rotate(engines, r):
            ctx = f"{LIB}/build/{e.name}"
            tag = "bbench/build:latest"
            write_context(ctx, None)

            def build(*extra, e=e, ctx=ctx, tag=tag):
                return e.time("build", *extra, *net[e.name], *e.build_flags, "-t", tag, ctx,
                              env=e.build_env, timeout=900)[0]

            def cold(e=e):
                try:
                    return build("--no-cache")
                except CmdError as err:
                    if e.name != "berth" or not net[e.name]:
                        raise
                    net[e.name] = []
                    t = build("--no-cache")
                    res.notes.append(f"berth build ran without --network none ({err.short()})")
                    return t
            rebuild_round(res, S, e.name, names, cold, build,
                          lambda ctx=ctx, r=r: write_context(ctx, f"main changed in round {r}\n"))
            e.sh("rmi", "-f", tag, timeout=120, check=False)


# ---------------------------------------------------------------- 5. ps/images/inspect

def scn_list(lab: Lab, res: Results, rounds: int, count: int):
    S = "list"
    res.rounds[S] = rounds
    M_CREATE, M_PS, M_IMG, M_INS, M_RM = f"create {count} (4 at a time)", \
        f"ps -a ({count} ctrs)", "images", "inspect 1 ctr", f"rm -f {count}"
    M_START = f"daemon start ({count} ctrs)"
    for m in (M_CREATE, M_PS, M_IMG, M_INS, M_RM):
        res.metric(S, m, "s", main=m == M_PS)
    res.metric(S, M_START, "s")
    engines = usable(lab, res, S, [M_CREATE, M_PS, M_IMG, M_INS, M_RM])
    ids: dict[str, list[str]] = {}
    for e in engines:
        e.remove_all_containers()
        log(f"list: creating {count} containers in {e.name}")

        def one(_i, e=e):
            return e.sh("create", *e.run_flags, *e.net_none, e.image, "true",
                        timeout=300).stdout.strip().splitlines()[-1]
        t0 = time.perf_counter()
        got, errors = [], []
        with ThreadPoolExecutor(max_workers=4) as pool:
            for fut in [pool.submit(one, i) for i in range(count)]:
                try:
                    got.append(fut.result())
                except (CmdError, IndexError) as err:
                    errors.append(err)
        if errors:
            err = errors[0]
            why = f"{len(errors)}/{count} creates failed: " + (
                err.short() if isinstance(err, CmdError) else "no id printed")
            for m in (M_CREATE, M_PS, M_IMG, M_INS, M_RM):
                res.fail(S, m, e.name, why)
            e.remove_all_containers()
            continue
        res.add(S, M_CREATE, e.name, time.perf_counter() - t0)
        ids[e.name] = got
    live = [e for e in engines if e.name in ids]
    for r in range(rounds):
        for e in rotate(live, r):
            attempt(res, S, M_PS, e.name, lambda e=e: e.time("ps", "-a", timeout=120)[0])
            attempt(res, S, M_IMG, e.name, lambda e=e: e.time("images", timeout=120)[0])
            attempt(res, S, M_INS, e.name, lambda e=e: e.time(
                "inspect", ids[e.name][len(ids[e.name]) // 2], timeout=120)[0])
    # A daemon restart with that many containers: spawn until it lists them (podman has no
    # daemon). Fewer rounds: each dockerd restart takes seconds.
    for r in range(max(1, rounds // 3)):
        for e in rotate(live, r):
            if e.daemon is None:
                res.fail(S, M_START, e.name, "no daemon")
                continue
            attempt(res, S, M_START, e.name, lambda e=e: lab.restart_daemon(e))
    for e in live:
        def rm(e=e):
            t0 = time.perf_counter()
            xs = ids[e.name]
            for i in range(0, len(xs), 100):
                e.sh("rm", "-f", *e.rm_flags, *xs[i:i + 100], timeout=900)
            return time.perf_counter() - t0
        attempt(res, S, M_RM, e.name, rm)
        e.remove_all_containers()


# ---------------------------------------------------------------- 6. published port

def scn_ports(lab: Lab, res: Results, rounds: int, file_mib: int):
    S = "ports"
    res.rounds[S] = rounds
    M_TP, M_LAT = f"GET {file_mib} MiB via published port", "GET small file"
    res.metric(S, M_TP, "MiB/s", better="higher", main=True)
    res.metric(S, M_LAT, "s")
    www = f"{LIB}/www"
    os.makedirs(www, exist_ok=True)
    size = file_mib * MIB
    chunk = os.urandom(MIB)
    with open(f"{www}/big.bin", "wb") as f:
        for _ in range(file_mib):
            f.write(chunk)
    with open(f"{www}/small.txt", "w") as f:
        f.write("hello\n")
    engines = usable(lab, res, S, [M_TP, M_LAT])
    serve = (f"mkdir -p /www && head -c {size} /dev/urandom > /www/big.bin && "
             "echo hello > /www/small.txt && exec httpd -f -p 80 -h /www")
    ports: dict[str, int] = {}
    from .util import free_port
    for e in engines:
        port = free_port()
        try:
            if e.name == "docker":
                e.sh("network", "create", "--driver", "bridge", "-o",
                     "com.docker.network.bridge.name=bbench-dk0", "bbench-net", timeout=60)
            elif e.name == "podman":
                e.sh("network", "create", "bbench-net", timeout=60)  # 4.3: no bridge-name flag
            # The files are made inside the container (no bind mount needed from any engine).
            e.sh("run", "-d", *e.run_flags, "--name", f"bbench-http-{e.name}", *e.port_net,
                 "-p", f"127.0.0.1:{port}:80", e.image, "sh", "-c", serve, timeout=120)
            wait_for(lambda port=port: curl(port, "small.txt")[1] == 6, 90,
                     f"{e.name} httpd on 127.0.0.1:{port}")
            ports[e.name] = port
        except (CmdError, RuntimeError) as err:
            why = err.short() if isinstance(err, CmdError) else str(err)
            if isinstance(err, RuntimeError):
                logs = e.sh("logs", "--tail", "3", f"bbench-http-{e.name}", timeout=30,
                            check=False)
                tail = (logs.stdout + logs.stderr).strip().splitlines()[-1:]
                why += f"; container log: {tail[0][:120]}" if tail else ""
            for m in (M_TP, M_LAT):
                res.fail(S, m, e.name, why)
    host_port = free_port()
    lab.spawn("host httpd", ["busybox", "httpd", "-f", "-p", f"127.0.0.1:{host_port}",
                             "-h", www], f"{RUN}/host-httpd.log")
    try:
        wait_for(lambda: curl(host_port, "small.txt")[1] == 6, 15, "host busybox httpd")
        ports["host"] = host_port
    except RuntimeError as err:
        for m in (M_TP, M_LAT):
            res.fail(S, m, "host", str(err))
    who = list(ports)
    for r in range(rounds):
        for name in rotate(who, r):
            def big(port=ports[name]):
                code, got, t = curl(port, "big.bin")
                if code != 200 or got != size:
                    raise RuntimeError(f"download got HTTP {code}, {got} of {size} bytes")
                return got / MIB / t
            attempt(res, S, M_TP, name, big)
            attempt(res, S, M_LAT, name, lambda port=ports[name]: curl(port, "small.txt")[2])
    for e in engines:
        e.sh("rm", "-f", *e.rm_flags, f"bbench-http-{e.name}", timeout=120, check=False)
        if e.name in ("docker", "podman"):
            e.sh("network", "rm", "bbench-net", timeout=60, check=False)


def curl(port: int, path: str) -> tuple[int, int, float]:
    """(HTTP code, bytes, seconds) of one GET from the host loopback."""
    p = sh(["curl", "-s", "-o", "/dev/null", "--max-time", "120", "-w",
            "%{http_code} %{size_download} %{time_total}", f"http://127.0.0.1:{port}/{path}"],
           timeout=130, check=False)
    parts = p.stdout.split()
    if len(parts) != 3:
        return 0, 0, 0.0
    return int(parts[0]), int(parts[1]), float(parts[2])


# ---------------------------------------------------------------- 7. compose up/down

def write_project(path: str, services: int):
    """A project of `services` busybox services on the project network; each ends on SIGTERM
    so `down` measures the engines, not a stop timeout."""
    lines = ["services:"]
    for i in range(services):
        lines += [f"  s{i}:",
                  "    image: busybox:latest",
                  "    command: [\"sh\", \"-c\", \"trap 'exit 0' TERM; sleep 300 & wait\"]"]
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def scn_compose(lab: Lab, res: Results, rounds: int, services: int = 10):
    """`compose up -d` then `compose down` of a project of `services` services: `berth
    compose` beside Compose v2 (`docker compose`, the CLI plugin) on the private dockerd.
    podman has no built-in compose: n/a."""
    S = "compose"
    res.rounds[S] = rounds
    M_UP, M_DOWN = f"up -d ({services} services)", f"down ({services} services)"
    res.metric(S, M_UP, "s", target=">= 3x faster than docker",
               check=lambda m: m["berth"] * 3 <= m["docker"] if "docker" in m else None,
               main=True)
    res.metric(S, M_DOWN, "s")
    engines = []
    for e in usable(lab, res, S, [M_UP, M_DOWN]):
        if e.name == "podman":
            for m in (M_UP, M_DOWN):
                res.fail(S, m, e.name, "no built-in compose")
            continue
        if e.name == "docker" and e.sh("compose", "version", timeout=30,
                                       check=False).returncode != 0:
            for m in (M_UP, M_DOWN):
                res.fail(S, m, e.name, "the Compose v2 CLI plugin is not installed")
            continue
        engines.append(e)
    path = f"{LIB}/compose/compose.yaml"
    write_project(path, services)
    project = ["compose", "-p", "bbench", "-f", path]
    for r in range(rounds):
        for e in rotate(engines, r):
            attempt(res, S, M_UP, e.name,
                    lambda e=e: e.time(*project, "up", "-d", timeout=600)[0])
            attempt(res, S, M_DOWN, e.name,
                    lambda e=e: e.time(*project, "down", "-t", "10", timeout=600)[0])
    for e in engines:
        e.sh(*project, "down", "-t", "0", timeout=600, check=False)


# ---------------------------------------------------------------- 8. registry server

def scn_registry(lab: Lab, res: Results, rounds: int):
    """`berth registry serve` beside Debian's `docker-registry` (distribution 2.8, under the
    "docker" column), the same client (skopeo) for both: push the Debian image into an empty
    registry from an OCI layout (the archive is unpacked once, before the rounds: skopeo
    extracting 50 MB to a temp dir on every push is client work that only dilutes the
    servers' difference), pull it back into a `dir:`, and each server's RSS after the round."""
    from .engines import alive, stop_proc
    from .util import free_port
    import urllib.request
    S = "registry"
    res.rounds[S] = rounds
    M_PUSH, M_PULL, M_RSS = "push debian (skopeo)", "pull debian (skopeo)", "server RSS after"
    res.metric(S, M_PUSH, "s", target=">= 1.5x faster than docker-registry",
               check=faster, main=True)
    res.metric(S, M_PULL, "s", target=">= 1.5x faster than docker-registry", check=faster)
    res.metric(S, M_RSS, "MiB", target="less than docker-registry",
               check=lambda m: m["berth"] < m["docker"] if "docker" in m else None)
    berth = lab.berth_bin
    servers = []
    if berth:
        servers.append("berth")
    else:
        for m in (M_PUSH, M_PULL, M_RSS):
            res.fail(S, m, "berth", "no berth binary")
    servers.append("docker")
    layout = f"{LIB}/regbench-layout"
    shutil.rmtree(layout, ignore_errors=True)
    os.makedirs(layout)
    sh(["tar", "-xf", DEBIAN_TAR, "-C", layout])
    for r in range(rounds):
        for who in rotate(servers, r):
            store = f"{LIB}/regbench-{who}"
            shutil.rmtree(store, ignore_errors=True)
            os.makedirs(store, exist_ok=True)
            port = free_port()
            if who == "berth":
                cmd = [berth, "registry", "serve", "--addr", f"127.0.0.1:{port}", "--root", store]
            else:
                cfg = f"{RUN}/regbench.yml"
                with open(cfg, "w") as f:
                    f.write("version: 0.1\nlog: {level: error}\n"
                            f"storage:\n  filesystem:\n    rootdirectory: {store}\n"
                            f"http:\n  addr: 127.0.0.1:{port}\n")
                cmd = ["docker-registry", "serve", cfg]
            p = lab.spawn(f"registry-{who}", cmd, f"{RUN}/regbench-{who}.log")
            try:
                wait_for(lambda p=p, port=port: alive(p, who) and urllib.request.urlopen(
                    f"http://127.0.0.1:{port}/v2/", timeout=2).status == 200, 30, f"{who} registry")
                dst = f"docker://127.0.0.1:{port}/bench/debian:latest"
                attempt(res, S, M_PUSH, who, lambda dst=dst: timed(
                    ["skopeo", "copy", "--dest-tls-verify=false", f"oci:{layout}", dst],
                    timeout=600)[0])
                out = f"{LIB}/regbench-pull"
                shutil.rmtree(out, ignore_errors=True)
                attempt(res, S, M_PULL, who, lambda dst=dst, out=out: timed(
                    ["skopeo", "copy", "--src-tls-verify=false", dst, f"dir:{out}"],
                    timeout=600)[0])
                attempt(res, S, M_RSS, who, lambda p=p: mem_kib(p.pid)[0] / 1024)
            except (RuntimeError, CmdError) as e:
                for m in (M_PUSH, M_PULL, M_RSS):
                    res.fail(S, m, who, str(e)[:140])
            finally:
                stop_proc(p)
                lab.procs = [(n, q) for n, q in lab.procs if q is not p]
                shutil.rmtree(store, ignore_errors=True)
    shutil.rmtree(layout, ignore_errors=True)


# ---------------------------------------------------------------- logs and cp (issue 20)

def ratio_at_most(limit: float):
    """A target check: berth's median at most `limit` times docker's."""
    def check(m: dict[str, float]) -> bool | None:
        if "berth" not in m or "docker" not in m or not m["docker"]:
            return None
        return m["berth"] / m["docker"] <= limit
    return check


def scn_logs(lab: Lab, res: Results, rounds: int, lines: int = 1_000_000):
    """Each engine's own CLI reading a container's log of `lines` lines, all of it and the
    last 10 (output to /dev/null: the CLI's and the daemon's work, not a terminal's)."""
    S = "logs"
    res.rounds[S] = rounds
    M_ALL, M_TAIL = f"logs ({lines:,} lines)", "logs --tail 10"
    res.metric(S, M_ALL, "s", main=True, target="<= 0.5x docker", check=ratio_at_most(0.5))
    res.metric(S, M_TAIL, "s", target="<= 1x docker", check=ratio_at_most(1.0))
    engines = usable(lab, res, S, [M_ALL, M_TAIL])
    name = "bench-logs"
    live = []
    for e in engines:
        e.remove_all_containers()
        try:
            e.sh("run", *e.run_flags, *e.net_none, "--name", name, e.image,
                 "seq", "1", str(lines), timeout=600, capture=False)
            live.append(e)
        except CmdError as err:
            for m in (M_ALL, M_TAIL):
                res.fail(S, m, e.name, err.short())
    for r in range(rounds):
        for e in rotate(live, r):
            attempt(res, S, M_ALL, e.name,
                    lambda e=e: e.time("logs", name, timeout=600, capture=False)[0])
            attempt(res, S, M_TAIL, e.name,
                    lambda e=e: e.time("logs", "--tail", "10", name, timeout=120,
                                       capture=False)[0])
    for e in live:
        e.remove_all_containers()


def timed_peak_rss(cmd: list[str], env: dict, timeout: float) -> tuple[float, float]:
    """(seconds, peak RSS in MiB) of one command, by GNU time."""
    t0 = time.perf_counter()
    p = sh(["/usr/bin/time", "-f", "%M", *cmd], env=env, timeout=timeout)
    secs = time.perf_counter() - t0
    kib = int((p.stderr or "0").strip().splitlines()[-1])
    return secs, kib / 1024


def scn_cp(lab: Lab, res: Results, rounds: int, mib: int = 200):
    """`cp` of a `mib` MiB file into a container and back out with each engine's CLI: time,
    and the CLI's peak memory."""
    S = "cp"
    res.rounds[S] = rounds
    M_IN, M_OUT = f"cp {mib} MiB in", f"cp {mib} MiB out"
    M_RIN, M_ROUT = "cp in: CLI peak RSS", "cp out: CLI peak RSS"
    res.metric(S, M_IN, "s", main=True, target="<= 0.8x docker", check=ratio_at_most(0.8))
    res.metric(S, M_OUT, "s", target="<= 0.8x docker", check=ratio_at_most(0.8))
    for m in (M_RIN, M_ROUT):
        res.metric(S, m, "MiB", target="< 64 MiB")
    if not os.path.exists("/usr/bin/time"):
        res.notes.append("cp: GNU time (/usr/bin/time) is missing: no peak RSS")
    engines = usable(lab, res, S, [M_IN, M_OUT, M_RIN, M_ROUT])
    src = f"{LIB}/cp-src.bin"
    os.makedirs(LIB, exist_ok=True)
    with open(src, "wb") as f:
        for _ in range(mib):
            f.write(os.urandom(MIB))
    name = "bench-cp"
    for r in range(rounds):
        for e in rotate(engines, r):
            e.remove_all_containers()
            back = f"{LIB}/cp-back-{e.name}.bin"
            try:
                e.sh("create", *e.run_flags, *e.net_none, "--name", name, e.image, "true",
                     timeout=120)
                env = dict(os.environ)
                env.update(e.env)
                secs, rss = timed_peak_rss(e.c("cp", src, f"{name}:/big.bin"), env, 600)
                res.add(S, M_IN, e.name, secs)
                res.add(S, M_RIN, e.name, rss)
                if os.path.exists(back):
                    os.remove(back)
                secs, rss = timed_peak_rss(e.c("cp", f"{name}:/big.bin", back), env, 600)
                res.add(S, M_OUT, e.name, secs)
                res.add(S, M_ROUT, e.name, rss)
            except (CmdError, ValueError, IndexError) as err:
                why = err.short() if isinstance(err, CmdError) else f"no peak RSS: {err}"
                for m in (M_IN, M_OUT, M_RIN, M_ROUT):
                    res.fail(S, m, e.name, why)
            finally:
                if os.path.exists(back):
                    os.remove(back)
                e.remove_all_containers()
    os.remove(src)


# ---------------------------------------------------------------- commit (issue 20)

def scn_commit(lab: Lab, res: Results, rounds: int, mib: int = 200):
    """`commit` of a container that wrote `mib` MiB of new (random, incompressible) data, with
    each engine's CLI; the image is removed after each round."""
    S = "commit"
    res.rounds[S] = rounds
    M = f"commit of {mib} MiB"
    res.metric(S, M, "s", main=True, target="<= 0.7x docker", check=ratio_at_most(0.7))
    engines = usable(lab, res, S, [M])
    name = "bench-commit"
    for r in range(rounds):
        for e in rotate(engines, r):
            e.remove_all_containers()
            tag = f"bench-commit:{e.name}-{r}"
            try:
                e.sh("run", *e.run_flags, *e.net_none, "--name", name, e.image, "sh", "-c",
                     f"head -c {mib * MIB} /dev/urandom > /big.bin", timeout=300)
                secs, _ = e.time("commit", name, tag, timeout=600)
                res.add(S, M, e.name, secs)
            except CmdError as err:
                res.fail(S, M, e.name, err.short())
            finally:
                e.remove_all_containers()
                e.sh("rmi", "-f", tag, timeout=300, check=False)


# ---------------------------------------------------------------- exec (issue 20)

def scn_exec(lab: Lab, res: Results, rounds: int):
    """`exec <running container> true` with each engine's CLI, `rounds` times each
    (interleaved), against one `sleep` container per engine."""
    S = "exec"
    res.rounds[S] = rounds
    M = "exec true"
    res.metric(S, M, "s", main=True, target="<= 1x docker", check=ratio_at_most(1.0))
    engines = usable(lab, res, S, [M])
    name = "bench-exec"
    live = []
    for e in engines:
        e.remove_all_containers()
        try:
            e.sh("run", "-d", *e.run_flags, *e.net_none, "--name", name, e.image, "sleep", "600",
                 timeout=120)
            live.append(e)
        except CmdError as err:
            res.fail(S, M, e.name, err.short())
    try:
        for r in range(rounds):
            for e in rotate(live, r):
                attempt(res, S, M, e.name, lambda e=e: e.time("exec", name, "true", timeout=60)[0])
    finally:
        for e in live:
            e.remove_all_containers()
