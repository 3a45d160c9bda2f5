"""Command running, timing, /proc memory accounting and small statistics for the bench harness."""

from __future__ import annotations

import os
import socket
import statistics
import subprocess
import time
from dataclasses import dataclass


class CmdError(Exception):
    """A command failed, timed out or could not be started."""

    def __init__(self, cmd: list[str], rc: int | None, output: str, label: str = ""):
        self.cmd = cmd
        self.label = label
        self.rc = rc
        self.output = output
        super().__init__(self.short())

    def short(self) -> str:
        words = self.label or " ".join(os.path.basename(self.cmd[0]) if i == 0 else w
                                       for i, w in enumerate(self.cmd[:6]))
        if not self.label and len(self.cmd) > 6:
            words += " …"
        lines = [l.strip() for l in self.output.strip().splitlines() if l.strip()]
        errs = [l for l in lines if "error" in l.lower()]
        last = errs[-1] if errs else (lines[-1] if lines else "")
        if len(last) > 200:
            last = last[:197] + "..."
        what = "timed out" if self.rc is None else f"exit {self.rc}"
        return f"`{words}` {what}" + (f": {last}" if last else "")


def sh(cmd: list[str], *, timeout: float = 300, env: dict | None = None, check: bool = True,
       capture: bool = True, input: str | None = None, cwd: str | None = None
       ) -> subprocess.CompletedProcess:
    """Run a command; stdout/stderr captured as text. Raise CmdError on failure when check."""
    full_env = None
    if env:
        full_env = dict(os.environ)
        full_env.update(env)
    try:
        p = subprocess.run(
            cmd, env=full_env, cwd=cwd, input=input, text=True, timeout=timeout,
            stdin=None if input is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE if capture else subprocess.DEVNULL,
            stderr=subprocess.PIPE if capture else subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired as e:
        out = (e.stderr or b"")
        if isinstance(out, bytes):
            out = out.decode(errors="replace")
        raise CmdError(cmd, None, out) from None
    except OSError as e:
        raise CmdError(cmd, 127, str(e)) from None
    if check and p.returncode != 0:
        raise CmdError(cmd, p.returncode, (p.stderr or "") + "\n" + (p.stdout or ""))
    return p


def timed(cmd: list[str], **kw) -> tuple[float, subprocess.CompletedProcess]:
    """Wall-clock seconds from spawning `cmd` to its exit (raises CmdError on failure)."""
    t0 = time.perf_counter()
    p = sh(cmd, **kw)
    return time.perf_counter() - t0, p


def have(tool: str) -> bool:
    from shutil import which
    return which(tool) is not None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class StopWaiting(RuntimeError):
    """Raised by a wait_for predicate when waiting longer is pointless (the process died)."""


def wait_for(pred, timeout: float, what: str, interval: float = 0.1):
    """Poll `pred` until it returns truthy; raise RuntimeError naming `what` after timeout.
    A StopWaiting raised by `pred` ends the wait at once."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            v = pred()
            if v:
                return v
        except StopWaiting:
            raise
        except Exception as e:  # noqa: BLE001 - polling tolerates transient errors
            last = e
        time.sleep(interval)
    raise RuntimeError(f"{what} not ready after {timeout:.0f}s" + (f" ({last})" if last else ""))


# ---------------------------------------------------------------- /proc

@dataclass
class Proc:
    pid: int
    ppid: int
    comm: str
    exe: str
    argv: list[str]


def processes() -> list[Proc]:
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        pid = int(d)
        try:
            with open(f"/proc/{pid}/stat") as f:
                stat = f.read()
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                argv = [a.decode(errors="replace") for a in f.read().split(b"\0") if a]
            try:
                exe = os.readlink(f"/proc/{pid}/exe")
            except OSError:
                exe = ""
        except OSError:
            continue
        comm = stat[stat.index("(") + 1:stat.rindex(")")]
        ppid = int(stat[stat.rindex(")") + 2:].split()[1])
        out.append(Proc(pid, ppid, comm, exe, argv))
    return out


def mem_kib(pid: int) -> tuple[int, int]:
    """(RSS, PSS) of a process in KiB from smaps_rollup; (0, 0) if it is gone."""
    rss = pss = 0
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Rss:"):
                    rss = int(line.split()[1])
                elif line.startswith("Pss:"):
                    pss = int(line.split()[1])
    except OSError:
        pass
    return rss, pss


def descendants(root: int, procs: list[Proc]) -> list[Proc]:
    kids: dict[int, list[Proc]] = {}
    for p in procs:
        kids.setdefault(p.ppid, []).append(p)
    out, todo = [], [root]
    while todo:
        for c in kids.get(todo.pop(), []):
            out.append(c)
            todo.append(c.pid)
    return out


# ---------------------------------------------------------------- stats

def quantile(xs: list[float], q: float) -> float:
    s = sorted(xs)
    if len(s) == 1:
        return s[0]
    pos = q * (len(s) - 1)
    lo = int(pos)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


def summary(xs: list[float]) -> dict:
    return {
        "n": len(xs),
        "median": statistics.median(xs),
        "p10": quantile(xs, 0.10),
        "p90": quantile(xs, 0.90),
        "min": min(xs),
        "max": max(xs),
        "mean": statistics.fmean(xs),
    }


def fmt_value(v: float, unit: str) -> str:
    if unit == "s":
        if v < 1:
            return f"{v * 1000:.0f}ms" if v >= 0.0995 else f"{v * 1000:.1f}ms"
        return f"{v:.2f}s"
    if unit in ("MiB", "MiB/s"):
        return f"{v:.1f}" if v < 100 else f"{v:.0f}"
    return f"{v:.3g}"
