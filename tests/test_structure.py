"""Issue 18: the package's structure. No import circle (module-level or inside functions, package
``__init__`` files included); no comparison against a variant's name outside the module that defines
the variant (theorems and the engine read capabilities, constants and declarations instead); every
drawable variant declares how the falsification engine draws it."""
import ast
import re
from pathlib import Path

import numpy as np
import pytest

import theory_lab as tl
from theory_lab.estimators import ESTIMATORS
from theory_lab.problems import FAMILIES
from theory_lab.sketches import SKETCHES

ROOT = Path(__file__).resolve().parents[1] / "theory_lab"


def _modules() -> dict[str, Path]:
    out = {}
    for p in ROOT.rglob("*.py"):
        parts = p.relative_to(ROOT.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = p
    return out


def _graph() -> dict[str, set[str]]:
    mods = _modules()
    graph = {}
    for name, path in mods.items():
        pkg = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
        edges = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    base = pkg.split(".")[:len(pkg.split(".")) - node.level + 1]
                    target = ".".join(base + ([node.module] if node.module else []))
                else:
                    target = node.module or ""
                for a in node.names:
                    full = f"{target}.{a.name}"
                    edges.add(full if full in mods else target)
            elif isinstance(node, ast.Import):
                edges.update(a.name for a in node.names)
        graph[name] = {e for e in edges if e in mods and e != name}
    return graph


def test_import_graph_has_no_circle():
    graph = _graph()
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(v):
        state[v] = 1
        path.append(v)
        for w in sorted(graph[v]):
            if state.get(w) == 1:
                raise AssertionError("import circle: " + " -> ".join(path[path.index(w):] + [w]))
            if w not in state:
                visit(w)
        path.pop()
        state[v] = 2

    for v in sorted(graph):
        if v not in state:
            visit(v)
    assert "theory_lab.check" in graph and graph["theory_lab.custom"].isdisjoint({"theory_lab.check"})


def _names() -> dict[str, str]:
    """Variant name -> the module that defines it."""
    out = {}
    for name, cls in ESTIMATORS.items():
        out[name] = cls.__module__
    for name, cls in SKETCHES.items():
        out[name] = cls.__module__
    for name, cls in FAMILIES.items():
        out[name] = cls.__module__
    return out


def test_no_switch_on_a_variant_name_outside_its_class():
    """``== "sgd"``, ``!= "subgradient"``, ``in ("qgd", ...)`` on an estimator, sketch or family name
    appear only in the module defining that variant (the figure scripts, which name the methods they
    draw, excepted)."""
    names = _names()
    bad = []
    for mod, path in _modules().items():
        if mod in ("theory_lab.gallery", "theory_lab.mlp_finetune"):
            continue
        text = path.read_text()
        for m in re.finditer(r"([\w.\[\]\"']+)\s*(==|!=|\bin)\s*\(?\s*\"([a-z0-9-]+)\"", text):
            subject, word = m.group(1), m.group(3)
            kind = re.search(r"name|estimator|sketch|family|method|rule|law", subject)
            if kind and word in names and names[word] != mod:
                line = text[:m.start()].count("\n") + 1
                bad.append(f"{path.name}:{line}: {m.group(0)}")
    assert not bad, bad


def test_every_drawable_variant_declares_its_draw():
    """The engine draws families, estimators and sketch laws from their declarations; each declared
    corner lies inside its declared range."""
    rng = np.random.default_rng(0)
    drawn = [name for name, cls in FAMILIES.items() if cls.fuzz_params(rng) is not None]
    assert {"quadratic-iso", "least-squares", "kron-quadratic", "l1-regression"} <= set(drawn)
    pr = tl.make_problem("least-squares", m=5, n=4, n_samples=30)
    for name in ("page", "marina", "ef21", "mvr", "qgd"):
        draws = [ESTIMATORS[name].fuzz_params(rng, pr) for _ in range(400)]
        corner = {"page": ("q", 1.0), "marina": ("q", 1.0), "ef21": ("k", 20), "qgd": ("k", 20),
                  "mvr": ("momentum", 1.0)}[name]
        share = np.mean([d.get(corner[0]) == corner[1] for d in draws])
        assert share > 0.1, (name, share)                 # the corner has real mass (was ~1/d or 0)
    assert not SKETCHES["degenerate"].fuzz and all(SKETCHES[k].fuzz for k in ("gaussian", "orthogonal"))


def test_capabilities_replace_the_name_switches():
    """The declarations reproduce what the name switches decided: CUDA graphs for the plain-gradient
    estimator on projected or full steps only; per-client memory for the compressed estimators; the
    Polyak rule for the subgradient method only; theorems see capabilities."""
    from theory_lab.methods import METHODS

    assert {n for n, c in ESTIMATORS.items() if c.graphable} == {"gd"}
    assert {s.rule.name for s in METHODS.values() if s.rule.graphable} == {"projected", "full"}
    assert {n for n, c in ESTIMATORS.items() if c.uses_clients} == {"qgd", "marina", "ef21"}
    assert {n for n, c in ESTIMATORS.items() if "polyak" in c.CAPABILITIES} == {"subgradient"}
    caps = tl.Method("bernoulli-lora-subgd", stepsize="polyak", sketch="orthogonal").capabilities
    assert {"polyak", "isotropic", "subgradient"} <= caps
    assert "additive-noise" in tl.Method("bernoulli-lora-sgd", noise="additive").capabilities
    assert "isotropic" not in tl.Method("bernoulli-lora-gd", sketch="stratified").capabilities


def test_one_declaration_validates_and_draws_every_estimator_parameter():
    """Each estimator parameter is declared once (``Estimator.PARAMS``): ``__init__`` takes its accepted
    range from there (no range restated in code: no check_range in an estimator's ``__init__``), every
    keyword of ``__init__`` is declared, a value just outside the declared range is refused naming
    the parameter, and every fuzz draw lies inside it (the problem-dependent ends once bound)."""
    from theory_lab.errors import InputError
    from theory_lab.params import Context

    src = (ROOT / "estimators").rglob("*.py")
    for path in src:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef) and node.name == "__init__":
                calls = {c.func.id for c in ast.walk(node) if isinstance(c, ast.Call) and isinstance(c.func, ast.Name)}
                assert not calls & {"check_range", "check_bool"}, (path.name, node.lineno)
    pr = tl.make_problem("least-squares", m=5, n=4, n_samples=30)
    ctx = Context(pr.m, pr.n, pr.n_samples)
    rng = np.random.default_rng(3)
    for name, cls in ESTIMATORS.items():
        if cls.__module__.startswith("tests"):
            continue
        decl = {p.name: p for p in cls.PARAMS}
        assert set(cls.accepted()) <= set(decl), (name, set(cls.accepted()) - set(decl))
        for p in cls.PARAMS:
            if p.choices:
                bad = "no-such-choice" if all(isinstance(c, str) for c in p.options) else "maybe"
            else:
                lo, hi = p.valid if p.valid is not None else (p.low, p.high)
                lo = lo(ctx) if callable(lo) else lo
                bad = lo - 1 if lo is not None and not p.low_open else (lo if lo is not None else None)
                if bad is None:
                    continue
            with pytest.raises(InputError, match=p.name):
                ESTIMATORS[name](**{p.name: bad}).check_params(pr)
        for _ in range(50):
            drawn = cls.fuzz_params(rng, pr)
            est = ESTIMATORS[name](**{k: v for k, v in drawn.items() if k in decl})
            est.check_params(pr)                                        # inside the declared range
    with pytest.raises(InputError, match="k"):                          # k <= m n, known once bound
        tl.Method("bernoulli-lora-qgd", compressor="randk", k=21).bind(pr)
    tl.Method("bernoulli-lora-qgd", compressor="randk", k=20).bind(pr)


def test_one_declaration_validates_and_draws_every_family_parameter():
    """Problem families too: ``PARAMS`` gives the defaults, the accepted ranges (a value just outside
    is refused naming the parameter, ranges that depend on the shape included: least squares needs
    N >= m) and the fuzz draws, which all build."""
    from theory_lab.errors import InputError

    rng = np.random.default_rng(5)
    for name, cls in FAMILIES.items():
        assert cls.PARAMS and cls.defaults == {p.name: p.default for p in cls.PARAMS}, name
        assert "def validate" not in Path(__import__(cls.__module__, fromlist=["x"]).__file__).read_text() or \
            name in ("softmax-regression",), name        # only cross-field checks stay in code
        for p in cls.PARAMS:
            if p.choices:
                bad = "no-such-choice"
            elif p.interval:
                bad = [2.0, 1.0]                                           # low > high
            else:
                lo = p.valid[0] if p.valid is not None else p.low
                if lo is None:
                    continue
                lo = lo(tl.params.Context(cls.shape[0], cls.shape[1])) if callable(lo) else lo
                bad = lo if p.low_open else lo - 1
            with pytest.raises(InputError, match=p.name.split("[")[0]):
                cls(**{p.name: bad})
        for _ in range(3):
            params = cls.fuzz_params(rng)
            cls(**params)                                                  # a draw is a valid instance
    with pytest.raises(InputError, match="n_samples.*\\[16"):
        tl.make_problem("least-squares", m=16, n=4, n_samples=15)


def test_method_and_step_rule_parameters_are_declared_once():
    """p, rank and factor (``methods.METHOD_PARAMS``) and each step rule's own parameters
    (``StepRule.PARAMS``) are validated from their declarations; a user's rule declares its own
    parameter and the method carries it."""
    from theory_lab.errors import InputError
    from theory_lab.methods import METHODS, Projected

    for kw, field in ((dict(p=1.5), "p"), (dict(rank=0), "rank"), (dict(factor=0.0), "factor")):
        with pytest.raises(InputError, match=field):
            tl.Method("bernoulli-lora-gd", **kw)
    with pytest.raises(InputError, match="rank.*\\[1, 4\\]"):
        tl.Method("bernoulli-lora-gd", rank=5).bind(tl.make_problem("quadratic-iso", m=4, n=6))
    with pytest.raises(InputError, match="link_steps"):
        tl.Method("cola", link_steps=0)
    with pytest.raises(InputError, match="not a parameter of lora"):
        tl.Method("lora", link_steps=5)
    assert tl.Method("cola").link_steps == 10 and tl.Method("lora", init_scale=0.5).init_scale == 0.5

    class Damped(Projected):
        name = "damped"
        PARAMS = (tl.Param("beta", valid=(0.0, 1.0), high_open=True, default=0.0, fuzz=False),)

    tl.register_method("damped-gd", "gd", rule=Damped())
    try:
        assert Damped.extra == ("beta",) and tl.Method("damped-gd", beta=0.5).beta == 0.5
        assert tl.Method("damped-gd").params()["beta"] == 0.0
        with pytest.raises(InputError, match="beta"):
            tl.Method("damped-gd", beta=1.0)
    finally:
        METHODS.pop("damped-gd")


def test_the_search_can_move_every_declared_parameter():
    """The hill-climb perturbs any declared parameter a configuration holds (a campaign died on
    Polyak's kappa, declared for validation only): the result stays in the accepted range, and a
    parameter the engine does not draw is left as it is."""
    from theory_lab.methods import METHOD_PARAMS
    from theory_lab.params import Context

    pr = tl.make_problem("least-squares", m=5, n=4, n_samples=30)
    ctx = Context(pr.m, pr.n, pr.n_samples)
    rng = np.random.default_rng(11)
    decls = [*METHOD_PARAMS, *(p for c in ESTIMATORS.values() for p in c.PARAMS),
             *(p for c in FAMILIES.values() for p in c.PARAMS), *(p for c in SKETCHES.values() for p in c.PARAMS)]
    for p in decls:
        value = p.default if p.default is not None else (p.draw(rng, ctx) if p.fuzz else 0.5)
        for _ in range(20):
            new = p.perturb(value, rng, ctx)
            if not p.fuzz:
                assert new == value, p.name
            else:
                p.check(new, ctx)


def test_a_compressor_registered_later_is_accepted():
    """The compressor's declaration reads the registry when it checks (a tuple fixed at import would
    refuse a compressor the user registers afterwards)."""
    from theory_lab.compressors import COMPRESSORS, register
    from theory_lab.errors import InputError

    class MyRandK(COMPRESSORS["randk"]):
        name = "my-randk"

    register(MyRandK)
    try:
        m = tl.Method("bernoulli-lora-qgd", compressor="my-randk", k=2)
        assert isinstance(m.estimator.comp, MyRandK)
    finally:
        COMPRESSORS.pop("my-randk")
    with pytest.raises(InputError, match="compressor.*accepted: identity, randk, dither, topk"):
        tl.Method("bernoulli-lora-qgd", compressor="my-randk", k=2)
