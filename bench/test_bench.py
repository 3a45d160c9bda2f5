"""Unit tests of the harness's pure parts: statistics, table, n/a footnotes, target checks, files.

Run: python3 -m unittest discover -s bench -p 'test_*.py'   (no root, no engines needed)
"""

import csv
import json
import os
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.realpath(__file__)))

from lib.report import Results  # noqa: E402
from lib.scenarios import faster, rotate  # noqa: E402
from lib.util import CmdError, fmt_value, quantile, sh, summary  # noqa: E402


class Stats(unittest.TestCase):
    def test_quantiles_interpolate(self):
        xs = [1.0, 2.0, 3.0, 4.0, 5.0]
        self.assertEqual(quantile(xs, 0.5), 3.0)
        self.assertAlmostEqual(quantile(xs, 0.1), 1.4)
        self.assertAlmostEqual(quantile(xs, 0.9), 4.6)
        self.assertEqual(quantile([7.0], 0.9), 7.0)
        s = summary([3.0, 1.0, 2.0])
        self.assertEqual((s["n"], s["median"], s["min"], s["max"]), (3, 2.0, 1.0, 3.0))

    def test_format(self):
        self.assertEqual(fmt_value(0.0421, "s"), "42.1ms")
        self.assertEqual(fmt_value(0.25, "s"), "250ms")
        self.assertEqual(fmt_value(3.456, "s"), "3.46s")
        self.assertEqual(fmt_value(1.55, "MiB"), "1.6")

    def test_rotate_interleaves(self):
        self.assertEqual(rotate(["a", "b", "c"], 0), ["a", "b", "c"])
        self.assertEqual(rotate(["a", "b", "c"], 1), ["b", "c", "a"])
        self.assertEqual(rotate(["a", "b", "c"], 5), ["c", "a", "b"])
        self.assertEqual(rotate([], 3), [])

    def test_faster_target(self):
        self.assertTrue(faster({"berth": 1.0, "docker": 1.5}))
        self.assertFalse(faster({"berth": 1.1, "docker": 1.5}))
        self.assertIsNone(faster({"berth": 1.0}))


class Table(unittest.TestCase):
    def results(self):
        r = Results()
        r.rounds["run"] = 3
        r.metric("run", "run --rm true", "s", target="<= 2x runc",
                 check=lambda m: m["berth"] <= 2 * m["runc"] if "runc" in m else None, main=True)
        for v in (0.30, 0.32, 0.31):
            r.add("run", "run --rm true", "docker", v)
        for v in (0.05, 0.06, 0.05):
            r.add("run", "run --rm true", "runc", v)
        return r

    def test_na_reason_is_a_footnote_never_a_number(self):
        r = self.results()
        r.fail("run", "run --rm true", "berth", "no berth binary")
        t = r.table()
        self.assertIn("n/a [1]", t)
        self.assertIn("[1] berth: no berth binary", t)
        self.assertIn("<= 2x runc ?", t)
        self.assertIn("310ms [302ms–318ms]", t)

    def test_ratio_and_target(self):
        r = self.results()
        for v in (0.09, 0.10, 0.11):
            r.add("run", "run --rm true", "berth", v)
        t = r.table()
        self.assertIn("0.32x", t)   # berth/docker 0.10/0.31
        self.assertIn("2.00x", t)   # berth/runc 0.10/0.05
        self.assertIn("<= 2x runc MET", t)
        r.add("run", "run --rm true", "berth", 0.5)
        r.add("run", "run --rm true", "berth", 0.5)
        self.assertIn("<= 2x runc MISSED", r.table())

    def test_partial_failure_is_marked(self):
        r = self.results()
        r.add("run", "run --rm true", "berth", 0.1)
        r.fail("run", "run --rm true", "berth", "exit 125")
        self.assertIn("(some rounds failed [1])", r.table())

    def test_files(self):
        r = self.results()
        r.fail("run", "run --rm true", "berth", "no berth binary")
        with tempfile.TemporaryDirectory() as d:
            r.write(d)
            with open(os.path.join(d, "results.json")) as f:
                data = json.load(f)
            eng = data["metrics"][0]["engines"]
            self.assertEqual(eng["berth"]["error"], "no berth binary")
            self.assertEqual(eng["berth"]["samples"], [])
            self.assertEqual(eng["docker"]["summary"]["n"], 3)
            with open(os.path.join(d, "samples.csv")) as f:
                rows = list(csv.DictReader(f))
            self.assertEqual(len(rows), 6)
            self.assertEqual({x["engine"] for x in rows}, {"docker", "runc"})


class Commands(unittest.TestCase):
    def test_failure_names_command_and_error_line(self):
        with self.assertRaises(CmdError) as c:
            sh(["sh", "-c", "echo noise; echo 'Error: it broke' >&2; exit 3"])
        self.assertIn("exit 3", c.exception.short())
        self.assertIn("Error: it broke", c.exception.short())

    def test_timeout_and_missing_binary(self):
        with self.assertRaises(CmdError) as c:
            sh(["sleep", "5"], timeout=0.2)
        self.assertIn("timed out", c.exception.short())
        with self.assertRaises(CmdError) as c:
            sh(["/nonexistent/berth", "version"])
        self.assertEqual(c.exception.rc, 127)


class PyApp(unittest.TestCase):
    def test_context_copies_the_example_and_changes_only_app_py(self):
        from lib.pyapp import EXAMPLE, pyapp_context
        with tempfile.TemporaryDirectory() as d:
            ctx = os.path.join(d, "ctx")
            pyapp_context(ctx, None)
            for name in ("Dockerfile", "app.py", "requirements.txt"):
                self.assertTrue(os.path.isfile(os.path.join(ctx, name)), name)
            with open(os.path.join(EXAMPLE, "app.py")) as f:
                orig = f.read()
            pyapp_context(ctx, 3)
            with open(os.path.join(ctx, "app.py")) as f:
                self.assertEqual(f.read(), orig + "\n# changed for bench round 3\n")
            pyapp_context(ctx, None)
            with open(os.path.join(ctx, "app.py")) as f:
                self.assertEqual(f.read(), orig)

    def test_pyapp_is_opt_in(self):
        import importlib.machinery
        import importlib.util
        here = os.path.dirname(os.path.realpath(__file__))
        loader = importlib.machinery.SourceFileLoader("bench_run", os.path.join(here, "run"))
        spec = importlib.util.spec_from_loader("bench_run", loader)
        run = importlib.util.module_from_spec(spec)
        loader.exec_module(run)
        self.assertNotIn("pyapp", run.SCENARIOS)
        self.assertIn("pyapp", run.OPTIONAL)
        old = sys.argv
        try:
            sys.argv = ["run"]
            self.assertNotIn("pyapp", run.parse().scenarios)
            sys.argv = ["run", "--only", "pyapp"]
            a = run.parse()
            self.assertEqual((a.scenarios, a.pyapp_rounds), (["pyapp"], 2))
        finally:
            sys.argv = old


if __name__ == "__main__":
    unittest.main()
