"""Results: samples and n/a reasons per (scenario, metric, engine); the table, JSON, CSV and PNG."""

from __future__ import annotations

import csv
import json
import os
from dataclasses import dataclass, field

from .util import fmt_value, summary

ENGINE_ORDER = ["berth", "docker", "podman", "runc", "berth-runc", "skopeo", "host"]
PEERS = ["docker", "podman"]
REFS = {"runc": "runc (floor)", "skopeo": "skopeo (ref)", "host": "host (ceiling)"}


@dataclass
class Metric:
    scenario: str
    name: str
    unit: str
    better: str = "lower"            # "lower" or "higher"
    target: str = ""                 # what the issue asks of berth, shown beside results
    check: object = None             # fn(medians: dict[str, float]) -> bool | None
    main: bool = False               # drawn in plot.png
    notes: list[str] = field(default_factory=list)


class Results:
    def __init__(self):
        self.metrics: dict[tuple[str, str], Metric] = {}
        self.samples: dict[tuple[str, str, str], list[float]] = {}
        self.errors: dict[tuple[str, str, str], str] = {}
        self.rounds: dict[str, int] = {}
        self.meta: dict = {}
        self.notes: list[str] = []

    def metric(self, scenario: str, name: str, unit: str, **kw) -> Metric:
        key = (scenario, name)
        if key not in self.metrics:
            self.metrics[key] = Metric(scenario, name, unit, **kw)
        return self.metrics[key]

    def add(self, scenario: str, name: str, engine: str, value: float):
        self.samples.setdefault((scenario, name, engine), []).append(value)

    def fail(self, scenario: str, name: str, engine: str, reason: str):
        self.errors.setdefault((scenario, name, engine), reason)

    def failed(self, scenario: str, name: str, engine: str) -> bool:
        return (scenario, name, engine) in self.errors

    def medians(self, scenario: str, name: str) -> dict[str, float]:
        out = {}
        for (s, n, e), xs in self.samples.items():
            if s == scenario and n == name and xs:
                out[e] = summary(xs)["median"]
        return out

    # ------------------------------------------------------------ table

    def cell(self, m: Metric, eng: str, foot: list[str]) -> str:
        xs = self.samples.get((m.scenario, m.name, eng))
        err = self.errors.get((m.scenario, m.name, eng))
        if err:
            why = f"{eng}: {err}"
            if why not in foot:
                foot.append(why)
            ref = f"[{foot.index(why) + 1}]"
        if not xs:
            return f"n/a {ref}" if err else ""
        s = summary(xs)
        txt = fmt_value(s["median"], m.unit)
        if s["n"] > 1:
            txt += f" [{fmt_value(s['p10'], m.unit)}–{fmt_value(s['p90'], m.unit)}]"
        if err:
            txt += f" (some rounds failed {ref})"
        return txt

    def table(self) -> str:
        out = []
        scenarios = []
        for (s, _n) in self.metrics:
            if s not in scenarios:
                scenarios.append(s)
        for scn in scenarios:
            ms = [m for (s, _), m in self.metrics.items() if s == scn]
            engines = [e for e in ENGINE_ORDER
                       if any((scn, m.name, e) in self.samples or (scn, m.name, e) in self.errors
                              for m in ms)]
            if not engines:
                continue
            # berth-runc (berth's OCI runtime) is berth's side of the runtime-only rows.
            ratio_to = [e for e in engines if e not in ("berth", "berth-runc")]
            head = ["metric"] + [REFS.get(e, e) for e in engines] + \
                [f"berth/{e}" for e in ratio_to] + ["target"]
            rows = []
            foot: list[str] = []
            for m in ms:
                med = self.medians(scn, m.name)
                row = [f"{m.name} ({m.unit})"] + [self.cell(m, e, foot) for e in engines]
                ours = med.get("berth", med.get("berth-runc"))
                for e in ratio_to:
                    if ours is not None and e in med and med[e] > 0:
                        row.append(f"{ours / med[e]:.2f}x")
                    else:
                        row.append("—")
                tgt = m.target
                if tgt and m.check is not None:
                    ok = m.check(med) if ours is not None else None
                    tgt += " " + ("?" if ok is None else ("MET" if ok else "MISSED"))
                row.append(tgt)
                rows.append(row)
            out.append(f"== {scn} ({self.rounds.get(scn, '?')} rounds; median [p10–p90]; "
                       f"ratio <1 is better for time, >1 for throughput) ==")
            out.append(render(head, rows))
            for i, why in enumerate(foot):
                out.append(f"  [{i + 1}] {why}")
            out.append("")
        for n in self.notes:
            out.append(f"note: {n}")
        return "\n".join(out)

    # ------------------------------------------------------------ files

    def write(self, outdir: str) -> list[str]:
        os.makedirs(outdir, exist_ok=True)
        files = []
        data = {
            "meta": self.meta,
            "notes": self.notes,
            "rounds": self.rounds,
            "metrics": [
                {"scenario": m.scenario, "metric": m.name, "unit": m.unit, "better": m.better,
                 "target": m.target,
                 "engines": {
                     e: {"samples": self.samples.get((m.scenario, m.name, e), []),
                         "summary": summary(self.samples[(m.scenario, m.name, e)])
                         if self.samples.get((m.scenario, m.name, e)) else None,
                         "error": self.errors.get((m.scenario, m.name, e))}
                     for e in ENGINE_ORDER
                     if (m.scenario, m.name, e) in self.samples
                     or (m.scenario, m.name, e) in self.errors}}
                for m in self.metrics.values()],
        }
        p = os.path.join(outdir, "results.json")
        with open(p, "w") as f:
            json.dump(data, f, indent=1)
        files.append(p)
        p = os.path.join(outdir, "samples.csv")
        with open(p, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["scenario", "metric", "unit", "engine", "round", "value"])
            for (s, n, e), xs in self.samples.items():
                for i, x in enumerate(xs):
                    w.writerow([s, n, self.metrics[(s, n)].unit, e, i, f"{x:.6g}"])
        files.append(p)
        p = os.path.join(outdir, "table.txt")
        with open(p, "w") as f:
            f.write(self.table() + "\n")
        files.append(p)
        png = os.path.join(outdir, "plot.png")
        why = self.plot(png)
        if why:
            self.notes.append(f"no PNG: {why}")
        else:
            files.append(png)
        return files

    def plot(self, path: str) -> str | None:
        try:
            import matplotlib
            matplotlib.use("Agg")
            import matplotlib.pyplot as plt
        except ImportError:
            return "matplotlib not installed (pip install matplotlib)"
        ms = [m for m in self.metrics.values() if m.main
              and any(self.samples.get((m.scenario, m.name, e)) for e in ENGINE_ORDER)]
        if not ms:
            return "no samples"
        cols = 3
        rows = (len(ms) + cols - 1) // cols
        fig, axes = plt.subplots(rows, cols, figsize=(5 * cols, 3.2 * rows), squeeze=False)
        colors = {"berth": "#d62728", "docker": "#1f77b4", "podman": "#9467bd",
                  "runc": "#7f7f7f", "berth-runc": "#9467bd", "skopeo": "#8c564b", "host": "#2ca02c"}
        for ax, m in zip(axes.flat, ms):
            names, meds, lo, hi = [], [], [], []
            missing = []
            for e in ENGINE_ORDER:
                xs = self.samples.get((m.scenario, m.name, e))
                if not xs:
                    if (m.scenario, m.name, e) in self.errors:
                        missing.append(e)
                    continue
                s = summary(xs)
                names.append(e)
                meds.append(s["median"])
                lo.append(s["median"] - s["p10"])
                hi.append(s["p90"] - s["median"])
            ax.bar(names, meds, yerr=[lo, hi], capsize=4,
                   color=[colors.get(n, "#333") for n in names])
            for e in missing:
                ax.bar([e], [0])
                ax.annotate("n/a", (e, 0), ha="center", va="bottom", fontsize=9, color="#d62728")
            ax.set_title(f"{m.scenario}: {m.name}", fontsize=9)
            ax.set_ylabel(m.unit + (" (higher=better)" if m.better == "higher" else ""))
            ax.tick_params(labelsize=8)
        for ax in list(axes.flat)[len(ms):]:
            ax.axis("off")
        fig.suptitle("berth vs peers — median, whiskers p10–p90", fontsize=11)
        fig.tight_layout(rect=(0, 0, 1, 0.97))
        fig.savefig(path, dpi=80)
        plt.close(fig)
        return None


def render(head: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in [head] + rows) for i in range(len(head))]
    def line(r):
        return "  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip()
    sep = "  ".join("-" * w for w in widths)
    return "\n".join([line(head), sep] + [line(r) for r in rows])
