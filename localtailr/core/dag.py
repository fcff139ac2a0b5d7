"""The workflow DAG: task nodes, their edges, a topological order, and a JSON form.

A ``DAG`` is built by calling ``@task`` functions inside a ``@workflow`` body
(or inside ``with dag.building():``). Each call adds a ``Node``; a node found
anywhere in a call's arguments (nested lists, tuples, sets, dicts keys and
values) is an upstream of the new node. ``a >> b`` and ``b << a`` add explicit
ordering edges.

``DAG.to_dict()`` is plain JSON: functions are referenced as
``"module:qualname"``, nodes inside arguments as ``{"node": name}``, constants
as ``{"value": v}`` when JSON keeps them exactly, else ``{"pickle": base64}``.
``DAG.from_dict()`` rebuilds it in another process without importing user code.
"""

from __future__ import annotations

import base64
import contextlib
import contextvars
import heapq
import inspect
import math
import pickle
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from .resources import parse_cpu, parse_memory

FORMAT = 1
_CONTAINERS = (list, tuple, set, frozenset, dict)
_BAD_NAME_CHARS = ("/", "\\", "\x00")

_building: contextvars.ContextVar[DAG | None] = contextvars.ContextVar(
    "localtailr_building_dag", default=None
)


class CycleError(ValueError):
    """The DAG has a cycle; ``cycle`` lists it as ``[a, b, ..., a]`` (upstream first)."""

    def __init__(self, cycle: list[str]):
        self.cycle = cycle
        super().__init__("cycle in workflow: " + " >> ".join(cycle))


def current_dag() -> DAG | None:
    """The DAG being built in this context, or None outside a workflow body."""
    return _building.get()


def validate_name(name: object, what: str = "alias") -> str:
    """A node name: a non-empty string without path separators or NUL, not '.' or '..'."""
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"invalid {what} {name!r}: use a non-empty string")
    if any(c in name for c in _BAD_NAME_CHARS) or name in (".", ".."):
        raise ValueError(
            f"invalid {what} {name!r}: no '/', '\\' or NUL characters, and not '.' or '..'"
        )
    return name


def function_reference(func: Callable) -> str:
    """``"module:qualname"`` of a function."""
    return f"{func.__module__}:{func.__qualname__}"


class Node:
    """One task call in a DAG.

    Attributes:
        name: The node's name in the workflow: its alias, or the function's name
            made unique (``add``, ``add-1``, ...).
        function: The function as ``"module:qualname"``.
        args, kwargs: The call's arguments; upstream nodes appear as ``Node`` objects.
        memory, cpu: The task's resources.
        retries, retry_backoff: Extra attempts after a failure, and the first delay (s).
    """

    def __init__(
        self,
        dag: DAG,
        task_name: str,
        function: str,
        args: tuple = (),
        kwargs: dict | None = None,
        *,
        func: Callable | None = None,
        source_file: str | None = None,
        memory: str = "128m",
        cpu: float = 0.25,
        retries: int = 0,
        retry_backoff: float = 1.0,
        system_args: tuple[str, ...] = (),
    ):
        self.dag = dag
        self.task_name = task_name
        self.name = task_name
        self.alias_name: str | None = None
        self.function = function
        self.func = func
        self.source_file = source_file
        self.args = tuple(args)
        self.kwargs = dict(kwargs or {})
        self.memory = memory
        self.cpu = cpu
        self.retries = retries
        self.retry_backoff = retry_backoff
        self.system_args = tuple(system_args)
        self.after: list[Node] = []
        self._encoded: dict | None = None  # set on nodes rebuilt by DAG.from_dict

    # -- naming ---------------------------------------------------------------
    def alias(self, name: str) -> Node:
        """Rename this node in the workflow; returns the node. A taken name is a ValueError."""
        validate_name(name)
        if name != self.name and name in self.dag.names():
            raise ValueError(f"duplicate task name {name!r} in workflow {self.dag.name!r}")
        self.name = name
        self.alias_name = name
        return self

    def set_resources(
        self, resources: Any = None, memory: str | None = None, cpu: float | None = None
    ) -> Node:
        """Set this node's memory and cpu (from a ``Resources`` or the figures); returns it."""
        if resources is not None:
            memory, cpu = resources.memory, resources.cpu
        if memory is not None:
            parse_memory(memory)
            self.memory = memory
        if cpu is not None:
            self.cpu = parse_cpu(cpu)
        return self

    # -- edges ----------------------------------------------------------------
    def upstream(self) -> list[Node]:
        """Nodes this one waits for: those in its arguments, then explicit ones, no repeats."""
        if self._encoded is not None:
            names = referenced_names(self._encoded["args"], self._encoded["kwargs"])
            found = [self.dag.node(n) for n in names]
        else:
            found = list(iter_nodes((self.args, self.kwargs)))
        seen: dict[int, Node] = {}
        for n in found + self.after:
            seen.setdefault(id(n), n)
        return list(seen.values())

    def _add_after(self, other: object) -> None:
        if not isinstance(other, Node):
            raise TypeError(f"cannot order task {self.name!r} after {other!r}: not a task node")
        if other.dag is not self.dag:
            raise ValueError(
                f"task {other.name!r} belongs to another workflow than {self.name!r}"
            )
        if all(o is not other for o in self.after):
            self.after.append(other)

    def __rshift__(self, other: Any) -> Any:
        """``self >> other``: other runs after self. Returns other (so chains work)."""
        for target in other if isinstance(other, (list, tuple)) else [other]:
            _as_node(target, ">>")._add_after(self)
        return other

    def __lshift__(self, other: Any) -> Any:
        """``self << other``: self runs after other. Returns other."""
        for source in other if isinstance(other, (list, tuple)) else [other]:
            self._add_after(_as_node(source, "<<"))
        return other

    def __rrshift__(self, other: Any) -> Node:
        """``[a, b] >> self``: self runs after a and b."""
        self.__lshift__(other)
        return self

    def __rlshift__(self, other: Any) -> Node:
        """``[a, b] << self``: a and b run after self."""
        self.__rshift__(other)
        return self

    def __call__(self, *args: Any, **kwargs: Any) -> Node:
        return self

    def __iter__(self):
        raise TypeError(
            f"task {self.name!r} has no result yet while the workflow is being built; "
            "pass it to another task instead of iterating it"
        )

    def __reduce__(self):
        raise TypeError(
            f"task node {self.name!r} cannot be pickled: pass nodes to tasks directly or "
            "inside lists, tuples, sets or dicts, not inside other objects"
        )

    def __repr__(self) -> str:
        return f"Node(name={self.name!r}, function={self.function!r})"

    # -- JSON -----------------------------------------------------------------
    def to_dict(self) -> dict:
        """This node as JSON-serialisable data (see the module docstring)."""
        if self._encoded is not None:
            args, kwargs = self._encoded["args"], self._encoded["kwargs"]
        else:
            if "<locals>" in self.function or self.function.split(":", 1)[1].startswith("<"):
                raise ValueError(
                    f"task {self.name!r} is {self.function}, which another process cannot "
                    "import: define task functions at the top level of a module"
                )
            args = [encode_value(a, self.name) for a in self.args]
            kwargs = {k: encode_value(v, self.name) for k, v in self.kwargs.items()}
        return {
            "name": self.name,
            "task_name": self.task_name,
            "alias": self.alias_name,
            "function": self.function,
            "source_file": self.source_file,
            "args": args,
            "kwargs": kwargs,
            "memory": self.memory,
            "cpu": self.cpu,
            "retries": self.retries,
            "retry_backoff": self.retry_backoff,
            "system_args": list(self.system_args),
            "after": [n.name for n in self.after],
            "depends_on": [n.name for n in self.upstream()],
        }


def _as_node(value: object, op: str) -> Node:
    if not isinstance(value, Node):
        raise TypeError(f"{op} needs task nodes (or lists of them), got {value!r}")
    return value


class DAG:
    """The task nodes of one workflow, in the order they were added, and their edges."""

    def __init__(self, name: str = "workflow"):
        self.name = name
        self.nodes: list[Node] = []

    # -- building -------------------------------------------------------------
    @contextlib.contextmanager
    def building(self) -> Iterator[DAG]:
        """Within this block, ``@task`` calls add nodes to this DAG instead of running."""
        if _building.get() is not None:
            raise RuntimeError("a workflow cannot be built inside another workflow's body")
        token = _building.set(self)
        try:
            yield self
        finally:
            _building.reset(token)

    def names(self) -> set[str]:
        return {n.name for n in self.nodes}

    def unique_name(self, base: str) -> str:
        """``base`` if free, else the first free of ``base-1``, ``base-2``, ..."""
        taken = self.names()
        if base not in taken:
            return base
        i = 1
        while f"{base}-{i}" in taken:
            i += 1
        return f"{base}-{i}"

    def add_node(self, node: Node) -> Node:
        """Append ``node``; every node in its arguments must belong to this DAG."""
        for up in iter_nodes((node.args, node.kwargs)):
            if up.dag is not self:
                raise ValueError(
                    f"task {up.name!r} passed to {node.name!r} belongs to another workflow"
                )
        if node.name in self.names():
            raise ValueError(f"duplicate task name {node.name!r} in workflow {self.name!r}")
        self.nodes.append(node)
        return node

    def node(self, name: str) -> Node:
        for n in self.nodes:
            if n.name == name:
                return n
        raise KeyError(f"no task {name!r} in workflow {self.name!r}")

    # -- graph ----------------------------------------------------------------
    def edges(self) -> list[tuple[str, str]]:
        """``(upstream, downstream)`` name pairs, by downstream in insertion order."""
        return [(u.name, n.name) for n in self.nodes for u in n.upstream()]

    def topological_order(self) -> list[Node]:
        """Nodes so that every node comes after its upstreams; ties keep insertion order.

        Raises CycleError naming a cycle.
        """
        index = {id(n): i for i, n in enumerate(self.nodes)}
        ups = {id(n): {id(u) for u in n.upstream()} for n in self.nodes}
        downs: dict[int, list[int]] = {id(n): [] for n in self.nodes}
        for n in self.nodes:
            for u in ups[id(n)]:
                downs[u].append(id(n))
        waiting = {k: len(v) for k, v in ups.items()}
        ready = [index[k] for k, c in waiting.items() if c == 0]
        heapq.heapify(ready)
        order: list[Node] = []
        while ready:
            node = self.nodes[heapq.heappop(ready)]
            order.append(node)
            for d in downs[id(node)]:
                waiting[d] -= 1
                if waiting[d] == 0:
                    heapq.heappush(ready, index[d])
        if len(order) != len(self.nodes):
            raise CycleError(self._find_cycle({id(n) for n in order}))
        return order

    def _find_cycle(self, done: set[int]) -> list[str]:
        start = next(n for n in self.nodes if id(n) not in done)
        path: list[Node] = []
        seen: dict[int, int] = {}
        node = start
        while id(node) not in seen:
            seen[id(node)] = len(path)
            path.append(node)
            node = next(u for u in node.upstream() if id(u) not in done)
        loop = path[seen[id(node)]:]  # each is downstream of the next
        names = [n.name for n in reversed(loop)]
        return names + [names[0]]

    def validate(self) -> None:
        """Raise CycleError if the graph has a cycle."""
        self.topological_order()

    # -- JSON -----------------------------------------------------------------
    def to_dict(self) -> dict:
        """The DAG as JSON-serialisable data; ``from_dict`` rebuilds an equal DAG."""
        self.validate()
        return {
            "format": FORMAT,
            "name": self.name,
            "nodes": [n.to_dict() for n in self.nodes],
            "edges": [list(e) for e in self.edges()],
        }

    @classmethod
    def from_dict(cls, data: Mapping) -> DAG:
        """Rebuild a DAG from ``to_dict()`` output, without importing any task's module."""
        if not isinstance(data, Mapping) or "nodes" not in data:
            raise ValueError(f"not a DAG dict: {str(data)[:80]!r}")
        if data.get("format", FORMAT) != FORMAT:
            raise ValueError(f"unknown DAG format {data.get('format')!r}: expected {FORMAT}")
        dag = cls(data.get("name", "workflow"))
        for nd in data["nodes"]:
            node = Node(
                dag,
                nd["task_name"],
                nd["function"],
                source_file=nd.get("source_file"),
                memory=nd["memory"],
                cpu=nd["cpu"],
                retries=nd.get("retries", 0),
                retry_backoff=nd.get("retry_backoff", 1.0),
                system_args=tuple(nd.get("system_args", ())),
            )
            node.name = validate_name(nd["name"], "task name")
            node.alias_name = nd.get("alias")
            node._encoded = {"args": list(nd["args"]), "kwargs": dict(nd["kwargs"])}
            if node.name in dag.names():
                raise ValueError(f"duplicate task name {node.name!r} in DAG dict")
            dag.nodes.append(node)
        names = dag.names()
        for nd, node in zip(data["nodes"], dag.nodes):
            refs = referenced_names(nd["args"], nd["kwargs"]) + list(nd.get("after", []))
            for ref in refs:
                if ref not in names:
                    raise ValueError(f"task {node.name!r} refers to unknown task {ref!r}")
            node.after = [dag.node(a) for a in nd.get("after", [])]
        dag.validate()
        return dag

    def __eq__(self, other: object) -> bool:
        return isinstance(other, DAG) and self.to_dict() == other.to_dict()

    __hash__ = None  # type: ignore[assignment]

    def __len__(self) -> int:
        return len(self.nodes)

    def __repr__(self) -> str:
        return f"DAG(name={self.name!r}, nodes={[n.name for n in self.nodes]})"


# -- values inside arguments ---------------------------------------------------

def iter_nodes(value: Any, _seen: set[int] | None = None) -> Iterator[Node]:
    """Every Node inside ``value``: itself, or within lists, tuples, sets and dicts."""
    if isinstance(value, Node):
        yield value
        return
    if not isinstance(value, _CONTAINERS):
        return
    seen = _seen if _seen is not None else set()
    if id(value) in seen:
        return
    seen.add(id(value))
    items = value.items() if isinstance(value, dict) else value
    for item in items:
        if isinstance(value, dict):
            yield from iter_nodes(item[0], seen)
            yield from iter_nodes(item[1], seen)
        else:
            yield from iter_nodes(item, seen)


def contains_node(value: Any) -> bool:
    return next(iter_nodes(value), None) is not None


def check_containers(value: Any, task: str) -> None:
    """Nodes may sit only in plain list/tuple/set/frozenset/dict (not subclasses)."""
    if isinstance(value, Node) or not isinstance(value, _CONTAINERS):
        return
    if type(value) not in _CONTAINERS and contains_node(value):
        raise ValueError(
            f"task {task!r}: a task node is inside a {type(value).__name__}; "
            "use a plain list, tuple, set or dict to pass task results"
        )
    items = value.items() if isinstance(value, dict) else value
    for item in items:
        for part in item if isinstance(value, dict) else (item,):
            check_containers(part, task)


def _json_exact(value: Any, depth: int = 0) -> bool:
    if depth > 100:
        return False
    if value is None or type(value) in (bool, int, str):
        return True
    if type(value) is float:
        return math.isfinite(value)
    if type(value) is list:
        return all(_json_exact(v, depth + 1) for v in value)
    if type(value) is dict:
        return all(type(k) is str and _json_exact(v, depth + 1) for k, v in value.items())
    return False


def encode_value(value: Any, task: str = "?") -> dict:
    """One argument as JSON data: a node reference, a tagged container or a constant."""
    if isinstance(value, Node):
        return {"node": value.name}
    if not contains_node(value):
        if _json_exact(value):
            return {"value": value}
        try:
            blob = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception as exc:
            raise ValueError(
                f"task {task!r}: argument {_short(value)} cannot be pickled "
                f"({type(exc).__name__}: {exc}); arguments must be JSON values or picklable"
            ) from exc
        return {"pickle": base64.b64encode(blob).decode("ascii")}
    kind = type(value)
    if kind is dict:
        return {"dict": [[encode_value(k, task), encode_value(v, task)] for k, v in value.items()]}
    if kind in (list, tuple, set, frozenset):
        return {kind.__name__: [encode_value(v, task) for v in value]}
    raise ValueError(
        f"task {task!r}: a task node is inside a {kind.__name__}; "
        "use a plain list, tuple, set or dict to pass task results"
    )


def decode_value(data: Mapping, lookup: Callable[[str], Any]) -> Any:
    """Inverse of ``encode_value``; ``lookup(name)`` gives the value of a node reference."""
    if "node" in data:
        return lookup(data["node"])
    if "value" in data:
        return data["value"]
    if "pickle" in data:
        return pickle.loads(base64.b64decode(data["pickle"]))
    if "dict" in data:
        return {decode_value(k, lookup): decode_value(v, lookup) for k, v in data["dict"]}
    for kind in (list, tuple, set, frozenset):
        if kind.__name__ in data:
            return kind(decode_value(v, lookup) for v in data[kind.__name__])
    raise ValueError(f"not an encoded argument: {str(data)[:80]!r}")


def referenced_names(args: list, kwargs: dict) -> list[str]:
    """Node names referenced in encoded arguments (``encode_value``), first occurrence order.
    A constant is never a reference, even a dict with a ``"node"`` key."""
    out: list[str] = []

    def walk(enc: Any) -> None:
        if not isinstance(enc, dict) or len(enc) != 1:
            raise ValueError(f"not an encoded argument: {str(enc)[:80]!r}")
        (tag, body), = enc.items()
        if tag == "node":
            if body not in out:
                out.append(body)
        elif tag == "dict":
            for k, v in body:
                walk(k)
                walk(v)
        elif tag in ("list", "tuple", "set", "frozenset"):
            for v in body:
                walk(v)
        elif tag not in ("value", "pickle"):
            raise ValueError(f"not an encoded argument: {str(enc)[:80]!r}")

    for enc in [*args, *kwargs.values()]:
        walk(enc)
    return out


def resolve_value(value: Any, lookup: Callable[[Node], Any]) -> Any:
    """``value`` with every Node replaced by ``lookup(node)`` (containers rebuilt as needed)."""
    if isinstance(value, Node):
        return lookup(value)
    if not contains_node(value):
        return value
    if type(value) is dict:
        return {resolve_value(k, lookup): resolve_value(v, lookup) for k, v in value.items()}
    return type(value)(resolve_value(v, lookup) for v in value)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def source_file_of(func: Callable) -> str | None:
    """The file a ``__main__`` function was defined in (so another process can load it)."""
    if func.__module__ != "__main__":
        return None
    try:
        return inspect.getsourcefile(func)
    except TypeError:
        return None
