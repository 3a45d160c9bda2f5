"""Opt-in scenario `pyapp` (needs the internet: Debian mirrors and PyPI): the classic
first-Docker-app build of examples/python-app — cold (--no-cache), no-change rebuild and
rebuild after changing app.py — berth beside docker. Never part of the default set or CI."""

from __future__ import annotations

import glob
import os
import shutil

from .engines import DEBIAN_TAR, LIB, Engine, Lab, log
from .report import Results
from .scenarios import build_metrics, rebuild_round, rotate, usable
from .util import CmdError

HERE = os.path.dirname(os.path.realpath(__file__))
EXAMPLE = os.path.normpath(os.path.join(HERE, "..", "..", "examples", "python-app"))
# A TLS-intercepting proxy's CA (trusted on the host, unknown to the Debian image) is handed to
# the example's optional certs/ step, so pip can reach PyPI through it.
EXTRA_CAS = "/usr/local/share/ca-certificates/*.crt"
PEERS = ("berth", "docker")


def pyapp_context(dst: str, round_no: int | None) -> None:
    """A copy of the example (plus the host's extra CAs); round_no changes app.py's content."""
    if not os.path.isdir(dst):
        shutil.copytree(EXAMPLE, dst, ignore=shutil.ignore_patterns("certs", "__pycache__"))
        cas = sorted(glob.glob(EXTRA_CAS))
        if cas:
            os.makedirs(f"{dst}/certs", exist_ok=True)
            for c in cas:
                shutil.copy(c, f"{dst}/certs/")
    with open(f"{EXAMPLE}/app.py") as f:
        app = f.read()
    if round_no is not None:
        app += f"\n# changed for bench round {round_no}\n"
    p = f"{dst}/app.py"
    with open(p) as f:
        if f.read() == app:
            return
    with open(p, "w") as f:
        f.write(app)


def load_base(lab: Lab, e: Engine) -> None:
    """The Debian minbase archive as debian:bookworm (what the example's FROM names)."""
    if e.has_image("debian:bookworm"):
        return
    lab.load(e, DEBIAN_TAR, "debian:bookworm-minbase")
    e.sh("tag", "debian:bookworm-minbase", "debian:bookworm", timeout=60)


def scn_pyapp(lab: Lab, res: Results, rounds: int):
    S = "pyapp"
    res.rounds[S] = rounds
    metrics = list(build_metrics(res, S, "app.py-changed rebuild"))
    engines = []
    for e in usable(lab, res, S, metrics):
        if e.name not in PEERS:
            for m in metrics:
                res.fail(S, m, e.name, "pyapp compares berth with docker only")
            continue
        try:
            load_base(lab, e)
        except CmdError as err:
            for m in metrics:
                res.fail(S, m, e.name, f"loading debian:bookworm failed: {err.short()}")
            continue
        engines.append(e)
    # The bench's dockerd has no bridge (--bridge=none), so RUN steps use the host's network;
    # berth's builder does the same by default. Both get --network host for equal footing.
    for r in range(rounds):
        for e in rotate(engines, r):
            ctx = f"{LIB}/pyapp/{e.name}"
            tag = "bbench/pyapp:latest"
            pyapp_context(ctx, None)

            def build(*extra, e=e, ctx=ctx, tag=tag):
                return e.time("build", *extra, "--network", "host", *e.build_flags, "-t", tag,
                              ctx, env=e.build_env, timeout=1800)[0]

            log(f"pyapp: round {r + 1}/{rounds}, {e.name} cold build")
            rebuild_round(res, S, e.name, metrics, lambda build=build: build("--no-cache"),
                          build, lambda ctx=ctx, r=r: pyapp_context(ctx, r))
            pyapp_context(ctx, None)
    for e in engines:
        e.sh("rmi", "-f", "bbench/pyapp:latest", timeout=120, check=False)
