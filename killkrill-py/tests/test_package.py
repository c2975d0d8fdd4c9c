"""The installed package: every public object is exported, typed in a stub
(`_killkrill.pyi` for the native module, `client.pyi`, `aio.pyi` and
`_api.pyi` for the client; members included) and the package is marked
typed."""

import ast
import inspect
from pathlib import Path

import killkrill
import killkrill._killkrill as native

PKG = Path(killkrill.__file__).parent


STUBS = ("_killkrill.pyi", "client.pyi", "aio.pyi", "_api.pyi", "_errors.pyi", "_sse.pyi")


class _Tree:
    def __init__(self, body):
        self.body = body


def stub_tree():
    body = []
    for name in STUBS:
        body += ast.parse((PKG / name).read_text(encoding="utf-8")).body
    return _Tree(body)


def test_py_typed_and_stubs_are_installed():
    assert (PKG / "py.typed").exists()
    for name in STUBS:
        assert (PKG / name).exists(), name
        # Each stub sits beside the module it types.
        assert (PKG / name.replace(".pyi", ".py")).exists() or name == "_killkrill.pyi"


CLIENT_NAMES = {
    "ApiError",
    "AsyncClient",
    "AsyncLogPages",
    "AsyncTail",
    "Client",
    "LogPages",
    "ProtocolError",
    "QueryResult",
    "Series",
    "Tail",
    "TailDisconnected",
}


def test_everything_native_and_the_client_is_exported():
    public = {n for n in dir(native) if not n.startswith("_")} | {"__version__"}
    assert public | set(CLIENT_NAMES) == set(killkrill.__all__)
    assert not public & set(CLIENT_NAMES)
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
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                declared.add(node.name)
            elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
                declared.add(node.target.id)
        members = {m for m in vars(obj) if not m.startswith("_")}
        # Dataclass fields are annotations, not class attributes.
        members |= set(getattr(obj, "__dataclass_fields__", {}))
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


def test_client_errors():
    assert issubclass(killkrill.TailDisconnected, killkrill.ApiError)
    assert issubclass(killkrill.ApiError, Exception)
    assert not issubclass(killkrill.ApiError, killkrill.ParseError)
    e = killkrill.ApiError(400, "bad_data", "invalid query", "line 1", {"error": "invalid query"})
    assert (e.status, e.error_type, e.message, e.detail, e.retry_after, e.accepted) == (
        400,
        "bad_data",
        "invalid query",
        "line 1",
        None,
        None,
    )
    assert str(e) == "400 bad_data: invalid query (line 1)"


def test_client_members_are_in_the_stubs():
    """Instance attributes and methods of the client classes, as the
    stubs declare them, exist on the real classes."""
    classes = {n.name: n for n in stub_tree().body if isinstance(n, ast.ClassDef)}
    missing = []
    for name in ("Client", "AsyncClient", "LogPages", "AsyncLogPages", "Tail", "AsyncTail"):
        obj = getattr(killkrill, name)
        for node in classes[name].body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and not hasattr(obj, node.name):
                missing.append(f"{name}.{node.name}")
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and hasattr(obj, node.name):
                is_async = inspect.iscoroutinefunction(getattr(obj, node.name))
                if is_async != isinstance(node, ast.AsyncFunctionDef):
                    missing.append(f"{name}.{node.name} (async mismatch)")
    assert not missing, missing
