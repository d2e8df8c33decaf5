"""The on-disk problem cache (issue 10): a built problem reloads without rebuilding, keyed by
family, parameters and generator version; damaged entries are rebuilt; concurrent builds are safe."""
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import theory_lab as tl
from theory_lab.problems import cache
from theory_lab.problems.linreg import LinregNoncvx

PARAMS = dict(m=4, n=3, n_samples=40, seed=5)


@pytest.fixture
def cache_dir(tmp_path):
    cache.configure(directory=tmp_path / "c", min_seconds=0.0)
    yield tmp_path / "c"
    cache.configure(directory=tmp_path / "unused", min_seconds=1.0)


def _entries(folder):
    return sorted(folder.glob("*.npz"))


def test_reload_equals_build_and_does_not_rebuild(cache_dir, monkeypatch):
    built = tl.make_problem("linreg-noncvx", **PARAMS)
    assert len(_entries(cache_dir)) == 1
    monkeypatch.setattr(LinregNoncvx, "build", lambda self, rng: (_ for _ in ()).throw(AssertionError("rebuilt")))
    again = tl.make_problem("linreg-noncvx", **PARAMS)
    assert again.fingerprint() == built.fingerprint()
    for name in ("A", "b", "gram", "W0"):
        np.testing.assert_array_equal(getattr(again, name), getattr(built, name))
    assert (again.L, again.L_max, again.delta_inf, again.f_lb) == (built.L, built.L_max, built.delta_inf, built.f_lb)
    W = np.random.default_rng(0).standard_normal((3, 4, 3))
    np.testing.assert_array_equal(again.bind("numpy").grad(W), built.bind("numpy").grad(W))


def test_key_follows_parameters_and_generator_version(cache_dir, monkeypatch):
    a = tl.make_problem("linreg-noncvx", **PARAMS)
    b = tl.make_problem("linreg-noncvx", **{**PARAMS, "seed": 6})
    assert len(_entries(cache_dir)) == 2 and a.fingerprint() != b.fingerprint()
    key = cache.problem_key(a)
    monkeypatch.setattr(LinregNoncvx, "generator_version", 2, raising=False)   # a changed generator
    assert cache.problem_key(a) != key
    tl.make_problem("linreg-noncvx", **PARAMS)
    assert len(_entries(cache_dir)) == 3                   # rebuilt under the new key, old one kept


def test_damaged_entry_is_rebuilt_with_one_line(cache_dir, capsys):
    good = tl.make_problem("linreg-noncvx", **PARAMS)
    (entry,) = _entries(cache_dir)
    entry.write_bytes(entry.read_bytes()[:100])             # truncated
    again = tl.make_problem("linreg-noncvx", **PARAMS)
    assert "damaged" in capsys.readouterr().err
    assert again.fingerprint() == good.fingerprint()
    assert cache.load(cache.problem_key(good)) is not None  # and stored again, whole


def test_threshold_and_off(tmp_path):
    cache.configure(directory=tmp_path / "c", min_seconds=1e9)
    tl.make_problem("linreg-noncvx", **PARAMS)
    assert not _entries(tmp_path / "c")                     # fast builds are not stored
    cache.configure(min_seconds=0.0, enabled=False)
    tl.make_problem("linreg-noncvx", **PARAMS)
    assert not (tmp_path / "c").exists() or not _entries(tmp_path / "c")
    cache.configure(enabled=True, min_seconds=1.0)


def test_concurrent_builds_agree_and_leave_one_entry(tmp_path):
    """Four processes build the same problem at once: one builds, the others wait on the lock and
    load its entry (the lock threshold lowered so this small problem takes it); nobody sees half
    a file."""
    folder = tmp_path / "c"
    code = textwrap.dedent("""
        import theory_lab as tl
        from theory_lab.problems import cache
        cache.configure(lock_bytes=0)
        p = tl.make_problem("linreg-noncvx", m=6, n=5, n_samples=300, seed=9)
        print(p.fingerprint())
    """)
    env = {**os.environ, "THEORY_LAB_CACHE": str(folder), "THEORY_LAB_CACHE_MIN_SECONDS": "0"}
    procs = [subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for _ in range(4)]
    outs = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1] for o in outs]
    prints = {o[0].strip() for o in outs}
    assert len(prints) == 1 and len(_entries(folder)) == 1
    assert not list(folder.glob(".*.tmp"))
    cache.configure(directory=folder, min_seconds=0.0)
    assert tl.make_problem("linreg-noncvx", m=6, n=5, n_samples=300, seed=9).fingerprint() == prints.pop()


def test_small_builds_take_no_lock(cache_dir):
    """Below lock_bytes a build neither waits nor leaves a lock file (a fuzz campaign builds
    thousands of small problems)."""
    tl.make_problem("least-squares", m=4, n=3, seed=11)
    assert not list(cache_dir.glob("*.lock")) if cache_dir.exists() else True


PAYLOAD = "import pathlib; pathlib.Path({!r}).write_text('ran')"


class _Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (exec, (PAYLOAD.format(self.marker),))


def test_planted_entries_never_run_code(cache_dir, tmp_path, capsys):
    """Issue 16, defect 6: a pickle planted in the cache ran code before the entry was called damaged.
    Entries are npz + JSON read with allow_pickle=False: a planted pickle (under the old or the new
    name) and an npz whose members hold pickled objects are damaged data, never executed; the
    problem is rebuilt and equal to a fresh build."""
    import pickle

    fresh = tl.make_problem("linreg-noncvx", **PARAMS)
    key = cache.problem_key(fresh)
    marker = tmp_path / "ran.txt"
    evil = pickle.dumps({"_cache_key": key, "x": _Evil(str(marker))})
    (cache_dir / f"{key}.pkl").write_bytes(evil)
    (cache_dir / f"{key}.npz").write_bytes(evil)
    again = tl.make_problem("linreg-noncvx", **PARAMS)
    assert not marker.exists() and again.fingerprint() == fresh.fingerprint()
    assert "damaged" in capsys.readouterr().err
    np.savez(cache_dir / f"{key}.npz", __meta__=np.array([_Evil(str(marker))], dtype=object))
    tl.make_problem("linreg-noncvx", **PARAMS)
    assert not marker.exists()


def test_cache_folder_is_private_and_foreign_entries_are_refused(tmp_path, capsys):
    """The folder is created 0700; one that others can write is not used (one line); an entry owned
    by another user is refused."""
    folder = tmp_path / "new" / "c"
    cache.configure(directory=folder, min_seconds=0.0)
    try:
        built = tl.make_problem("linreg-noncvx", **PARAMS)
        assert folder.stat().st_mode & 0o777 == 0o700
        (entry,) = _entries(folder)
        assert entry.stat().st_mode & 0o777 == 0o600
        if os.getuid() == 0:                           # root can hand the entry to another user
            os.chown(entry, 12345, 12345)
            tl.make_problem("linreg-noncvx", **PARAMS)
            assert "refused" in capsys.readouterr().err
        os.chmod(folder, 0o777)
        assert cache.load(cache.problem_key(built)) is None
        assert "not used: others can write" in capsys.readouterr().err
    finally:
        cache.configure(directory=tmp_path / "unused", min_seconds=1.0)
