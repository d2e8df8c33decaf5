"""Issue 16: no stale results, no writes outside what the user named, no code run from data.

Each test reproduces one defect of the adversarial pass and fails without its fix."""
import os

import numpy as np
import pandas as pd
import pytest

import theory_lab as tl
from theory_lab.errors import InputError
from theory_lab.fuzz import draw
from theory_lab.sweep import Store
from theory_lab.theorems import THEOREMS, register

GD_PL = tl.get_theorem("GD-PL")
GRID = {"p": [0.5]}
SMALL = dict(iters=30, seeds=8, progress=False)


def _user_theorem(scale: float, tid: str = "STALE-PL") -> tl.Theorem:
    return tl.Theorem(id=tid, metric="f_gap", bound=lambda t, c: scale * GD_PL.bound(t, c),
                      max_stepsize=GD_PL.max_stepsize, needs_pl=True, estimator="gd")


def test_a_re_registered_theorem_is_not_served_from_the_store(tmp_path):
    """Defect 3: re-registering an ID with a smaller bound reused the old verdicts ("0 computed, 1
    cached"). The key holds the theorem's fingerprint (its bound's code and captured values)."""
    store = tmp_path / "s.parquet"
    try:
        register(_user_theorem(1.0))
        first = tl.sweep("least-squares", "bernoulli-lora-gd", GRID, theorem="STALE-PL", store=store, **SMALL)
        assert first.attrs["computed"] == 1 and set(first.verdict) <= {"holds", "tight"}
        register(_user_theorem(1e-6))                     # same ID, a bound a million times smaller
        again = tl.sweep("least-squares", "bernoulli-lora-gd", GRID, theorem="STALE-PL", store=store, **SMALL)
        assert again.attrs["computed"] == 1 and set(again.verdict) == {"violated"}
        register(_user_theorem(1e-6))                     # the same bound again: served from the store
        assert tl.sweep("least-squares", "bernoulli-lora-gd", GRID, theorem="STALE-PL", store=store,
                        **SMALL).attrs["cached"] == 1
    finally:
        THEOREMS.pop("STALE-PL", None)


def _f(W):
    return 0.5 * np.sum(W * W, axis=(1, 2))


def _wrong_grad(W):
    return 2.0 * W


def _right_grad(W):
    return W


def test_a_fixed_gradient_is_not_served_from_the_store(tmp_path):
    """Defect 3: fixing a custom problem's gradient without changing f reused the old rows."""
    store = tmp_path / "s.parquet"
    kw = dict(shape=(3, 4), W0=np.ones((3, 4)), L=1.0, mu=1.0, f_star=0.0, name="q")
    bad = tl.sweep(tl.custom_problem(_f, _wrong_grad, **kw), "bernoulli-lora-gd", GRID, store=store, **SMALL)
    good = tl.sweep(tl.custom_problem(_f, _right_grad, **kw), "bernoulli-lora-gd", GRID, store=store, **SMALL)
    assert good.attrs["computed"] == 1
    assert bad.verdict.iloc[0] == "not-applicable" and good.verdict.iloc[0] != "not-applicable"
    # a declared constant changes the key too
    kw2 = {**kw, "L": 2.0}
    assert tl.sweep(tl.custom_problem(_f, _right_grad, **kw2), "bernoulli-lora-gd", GRID, store=store,
                    **SMALL).attrs["computed"] == 1


def test_rank_written_as_a_float_is_the_same_configuration(tmp_path):
    """One of the 25: ``rank = 2.0`` and ``rank = 2`` were stored as two configurations. The key
    hashes the resolved method, so they are one."""
    store = tmp_path / "s.parquet"
    t = tl.sweep("least-squares", "bernoulli-lora-gd", {"rank": [2, 2.0]}, store=store, **SMALL)
    assert t.attrs["computed"] == 1 and t.config.nunique() == 1


def test_a_damaged_part_of_another_sweep_is_restored_or_named(tmp_path, capsys):
    """Defect 5: a truncated part of sweep A made sweep B drop A's configuration from the table
    without a word. Now it is restored from the previous table (which held its rows); when that is
    gone too, it is named on stderr and in ``attrs['damaged']``."""
    store = tmp_path / "s.parquet"
    a = tl.sweep("least-squares", "bernoulli-lora-gd", {"p": [0.3]}, store=store, **SMALL)
    key_a = a.config.iloc[0]
    part = Store(store)._part(key_a)
    part.write_bytes(part.read_bytes()[:50])                     # truncated
    b = tl.sweep("least-squares", "bernoulli-lora-gd", {"p": [0.7]}, store=store, **SMALL)
    assert b.attrs["damaged"] == []
    assert "restored" in capsys.readouterr().err
    whole = pd.read_parquet(store)
    assert set(whole.config) == {key_a, b.config.iloc[0]}
    pd.testing.assert_frame_equal(whole[whole.config == key_a].reset_index(drop=True), a, check_dtype=False,
                                  check_frame_type=False)
    # both the part and the table lost: named, not silently dropped
    part.write_bytes(b"garbage")
    store.unlink()
    c = tl.sweep("least-squares", "bernoulli-lora-gd", {"p": [0.7]}, store=store, **SMALL)
    assert c.attrs["damaged"] == [key_a] and key_a in capsys.readouterr().err


def test_the_store_lock_does_not_follow_a_link(tmp_path):
    """Defect 7: ``.lock`` -> any file was truncated by the next sweep. Now it is refused and the
    file keeps its bytes."""
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    store = tmp_path / "s.parquet"
    Store(store).parts.mkdir()
    (Store(store).parts / ".lock").symlink_to(victim)
    with pytest.raises(InputError, match="out"):
        tl.sweep("least-squares", "bernoulli-lora-gd", GRID, store=store, **SMALL)
    assert victim.read_text() == "precious"


def test_an_existing_file_that_is_not_a_store_is_never_replaced(tmp_path):
    """Defect 9: a spec's ``out = "../x"`` replaced an existing non-parquet file. Only theory-lab's own
    tables are replaced; a link as the store is refused too."""
    for content in (b"my thesis", b"PAR1 not really"):
        victim = tmp_path / "x"
        victim.write_bytes(content)
        with pytest.raises(InputError, match="not a theory-lab result table"):
            tl.sweep("least-squares", "bernoulli-lora-gd", GRID, store=victim, **SMALL)
        assert victim.read_bytes() == content
    other = tmp_path / "other.parquet"
    pd.DataFrame({"a": [1, 2]}).to_parquet(other)                # a parquet file theory-lab did not write
    with pytest.raises(InputError, match="not a theory-lab result table"):
        tl.sweep("least-squares", "bernoulli-lora-gd", GRID, store=other, **SMALL)
    link = tmp_path / "link.parquet"
    link.symlink_to(tmp_path / "elsewhere.parquet")
    with pytest.raises(InputError, match="symbolic link"):
        tl.sweep("least-squares", "bernoulli-lora-gd", GRID, store=link, **SMALL)
    assert not (tmp_path / "elsewhere.parquet").exists()
    # its own table is replaced as before (resume)
    store = tmp_path / "own.parquet"
    tl.sweep("least-squares", "bernoulli-lora-gd", GRID, store=store, **SMALL)
    assert tl.sweep("least-squares", "bernoulli-lora-gd", GRID, store=store, **SMALL).attrs["cached"] == 1


# ------------------------------------------------------------------------------ budgets (defect 10)
def _sq(W):
    return 0.5 * np.sum(W * W, axis=(1, 2))


def _id(W):
    return W


def _slow_grad(W):
    import time

    time.sleep(0.05)
    return W


def test_fuzz_on_an_empty_space_ends_with_the_reason():
    """Defect 10: ``fuzz(theorems=["GD-PL"])`` on a problem without mu never ended. Now a theorem
    whose draws never fit is dropped with its reason, and the campaign ends well inside its budget."""
    import time

    pr = tl.custom_problem(_sq, _id, shape=(3, 4), L=1.0, W0=np.ones((3, 4)))
    t0 = time.monotonic()
    table = tl.fuzz(["GD-PL"], budget=20, problems=[pr])
    assert time.monotonic() - t0 < 10 and table.empty
    assert "not PL" in table.attrs["empty"]["GD-PL"]


def test_polyak_comes_from_the_theorem_object_not_its_id():
    """Defect 10: a user copy of NS-POLYAK under an ID not ending in "POLYAK" was drawn with a constant
    stepsize, never fitted, and hung. The rule is the theorem's ``stepsize_rule``."""
    import dataclasses

    mine = dataclasses.replace(tl.get_theorem("NS-POLYAK"), id="MY-POLYAK-COPY", provenance="user")
    d = draw(mine, np.random.default_rng(0), seed=0)
    assert d is not None and d.params["stepsize"] == "polyak"


def test_the_fuzz_budget_is_a_hard_limit_even_for_slow_user_code():
    """A user gradient that takes 50 ms a call makes one check last minutes; the campaign still
    stops at its budget (the loop's deadline and, in-process, an interval timer)."""
    import time

    pr = tl.custom_problem(_sq, _slow_grad, shape=(3, 4), L=1.0, mu=1.0, f_star=0.0, W0=np.ones((3, 4)))
    pr.fingerprint()
    t0 = time.monotonic()
    tl.fuzz(["GD-PL"], budget=3, problems=[pr])
    assert time.monotonic() - t0 < 3 + 2.5


# ------------------------------------------------------------------------------ memory (defect 11)
PEAK_SCRIPT = """
import json, resource, sys
import pandas, pyarrow.parquet, scipy.special
import theory_lab as tl
from theory_lab.plan import estimate_bytes
from theory_lab.sweep import Config
def status(field):                  # kB lines of /proc/self/status (VmRSS now, VmHWM the peak)
    for line in open("/proc/self/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
base = status("VmRSS")
with open("/proc/self/clear_refs", "w") as fh:     # the peak so far (imports) is forgotten
    fh.write("5")
S, T, store = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
tl.sweep("least-squares", "bernoulli-lora-gd", {"p": [0.5]}, iters=T, seeds=S, store=store, progress=False)
used = status("VmHWM") - base
c = Config("least-squares", "bernoulli-lora-gd", {"p": 0.5}, dict(iters=T, seeds=S))
print(json.dumps(dict(used=used, est=estimate_bytes(c.plan(), 1))))
"""


@pytest.mark.slow
def test_the_sweep_memory_estimate_covers_the_measured_peak(tmp_path):
    """Defect 11: 20,000 seeds x 1,000 iterations was estimated at 8.4 GiB and peaked at 19.8 GiB (the
    long table was not counted). Measured here at 1,000 seeds x 1,000 iterations (1M rows) in a fresh
    process: the estimate is at least the peak above the imports (Linux's VmHWM, reset after them), and
    not more than 2.5x it."""
    import json
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", PEAK_SCRIPT, "1000", "1000", str(tmp_path / "s.parquet")],
                         capture_output=True, text=True, timeout=120, check=True).stdout
    m = json.loads(out.strip().splitlines()[-1])
    assert m["used"] <= m["est"] <= 2.5 * m["used"], m


def test_fuzz_store_keys_follow_the_theorem():
    """Defect 3 in the fuzz store: a draw's key (its stored row) holds the theorem's fingerprint, so a
    campaign resumed after re-registering an ID with another bound does not reuse the old verdicts."""
    a = draw(_user_theorem(1.0, "FUZZ-STALE"), np.random.default_rng(0), seed=0)
    b = draw(_user_theorem(1e-6, "FUZZ-STALE"), np.random.default_rng(0), seed=0)
    c = draw(_user_theorem(1.0, "FUZZ-STALE"), np.random.default_rng(0), seed=0)
    assert a.params == b.params and a.key != b.key and a.key == c.key
