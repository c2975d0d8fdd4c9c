"""The installed package: every public object is exported, typed in the
stub (`_killkrill.pyi`, members included) and the package is marked typed."""

import ast
import inspect
from pathlib import Path

import killkrill
import killkrill._killkrill as native

PKG = Path(killkrill.__file__).parent


def stub_tree():
    return ast.parse((PKG / "_killkrill.pyi").read_text(encoding="utf-8"))


def test_py_typed_and_stub_are_installed():
    assert (PKG / "py.typed").exists()
    assert (PKG / "_killkrill.pyi").exists()


def test_everything_native_is_exported():
    public = {n for n in dir(native) if not n.startswith("_")} | {"__version__"}
    assert public == set(killkrill.__all__)
    assert killkrill.__version__ == "0.1.0"


def test_every_export_is_in_the_stub():
    names = set()
    for node in stub_tree().body:
        if isinstance(node, (ast.ClassDef, ast.FunctionDef)):
            names.add(node.name)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
    missing = set(killkrill.__all__) - names
    assert not missing, missing


def test_every_class_member_is_in_the_stub():
    classes = {n.name: n for n in stub_tree().body if isinstance(n, ast.ClassDef)}
    missing = []
    for name in killkrill.__all__:
        obj = getattr(killkrill, name)
        if not inspect.isclass(obj) or issubclass(obj, BaseException):
            continue
        declared = set()
        for node in classes[name].body:
            if isinstance(node, ast.FunctionDef):
                declared.add(node.name)
            elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
                declared.add(node.target.id)
        members = {m for m in vars(obj) if not m.startswith("_")}
        missing += [f"{name}.{m}" for m in sorted(members - declared)]
    assert not missing, missing


def test_error_hierarchy():
    for sub in (
        killkrill.SyslogParseError,
        killkrill.PrometheusParseError,
        killkrill.JsonLogsError,
        killkrill.RemoteWriteError,
    ):
        assert issubclass(sub, killkrill.ParseError)
    assert issubclass(killkrill.ParseError, ValueError)
    assert issubclass(killkrill.ConfigError, ValueError)
    assert not issubclass(killkrill.ConfigError, killkrill.ParseError)
    # Positions default to None on the base class.
    e = killkrill.ParseError("x")
    assert (e.line, e.column, e.offset, e.kind) == (None, None, None, None)
    assert killkrill.ConfigError("x").key is None
