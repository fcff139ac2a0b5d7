"""The DAG model: edges from arguments and >>/<<, names, aliases, cycles, JSON."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support.workflow_tasks import Point, add, collect, one, shape

from localtailr.core.dag import DAG, CycleError, Node, referenced_names


def build(body) -> DAG:
    dag = DAG("t")
    with dag.building():
        body()
    return dag


def edges(dag: DAG) -> set[tuple[str, str]]:
    return set(dag.edges())


def test_nodes_from_nested_arguments_are_edges():
    def body():
        a, b, c, d, e = (one().alias(n) for n in "abcde")
        f = one().alias("f")
        shape([a, (b, {"k": c, d: 1}), {e}, frozenset([f])]).alias("z")

    dag = build(body)
    assert edges(dag) == {(n, "z") for n in "abcdef"}
    assert [n.name for n in dag.topological_order()][-1] == "z"


def test_task_call_outside_a_workflow_runs():
    assert add(1, 2) == 3
    assert add(1) == 11
    assert collect(1, 2, k=3) == {"items": [1, 2], "named": {"k": 3}}


def test_rshift_lshift_chains_and_lists():
    def body():
        a, b, c, d, e = (one().alias(n) for n in "abcde")
        a >> b >> c
        a >> [d, e]
        [d, e] >> c
        e << b
        d << [a, b]
        [c] << e  # no-op ordering: c already after e

    dag = build(body)
    assert edges(dag) == {
        ("a", "b"), ("b", "c"), ("a", "d"), ("a", "e"), ("d", "c"), ("e", "c"),
        ("b", "e"), ("b", "d"),
    }
    order = [n.name for n in dag.topological_order()]
    assert order == ["a", "b", "d", "e", "c"]


def test_cycle_is_named():
    def body():
        a, b, c = (one().alias(n) for n in "abc")
        one().alias("free")
        a >> b >> c >> a

    dag = build(body)
    with pytest.raises(CycleError) as info:
        dag.topological_order()
    cycle = info.value.cycle
    assert cycle[0] == cycle[-1] and set(cycle) == {"a", "b", "c"} and len(cycle) == 4
    assert "a" in str(info.value) and ">>" in str(info.value)
    # the named cycle follows the edges
    for up, down in zip(cycle, cycle[1:]):
        assert (up, down) in dag.edges()


def test_self_edge_is_a_cycle():
    def body():
        a = one()
        a >> a

    with pytest.raises(CycleError, match="one >> one"):
        build(body).validate()


def test_repeated_names_and_aliases():
    def body():
        one(), one(), one()
        one().alias("x")
        one()

    assert [n.name for n in build(body).nodes] == ["one", "one-1", "one-2", "x", "one-3"]


def test_alias_frees_the_name_for_the_next_call():
    def body():
        one().alias("first")
        one()

    assert [n.name for n in build(body).nodes] == ["first", "one"]


@pytest.mark.parametrize("bad", ["", "  ", "a/b", "a\\b", ".", "..", "a\x00b", 3, None])
def test_invalid_alias(bad):
    def body():
        one().alias(bad)

    with pytest.raises(ValueError, match="invalid alias"):
        build(body)


def test_duplicate_alias_is_an_error():
    def body():
        one().alias("x")
        one().alias("x")

    with pytest.raises(ValueError, match="duplicate task name 'x'"):
        build(body)

    def body2():
        one()
        one().alias("one")

    with pytest.raises(ValueError, match="duplicate task name 'one'"):
        build(body2)


def test_alias_with_spaces_and_same_name_is_fine():
    def body():
        n = one().alias("Add a and b")
        assert n.alias("Add a and b") is n

    assert build(body).nodes[0].name == "Add a and b"


def test_node_from_another_dag_is_refused():
    other = build(lambda: one())
    stray = other.nodes[0]
    with pytest.raises(ValueError, match="another workflow"):
        build(lambda: add(stray, 1))
    with pytest.raises(ValueError, match="another workflow"):
        build(lambda: one() >> stray)


def test_node_inside_an_object_is_refused():
    class Box(list):
        pass

    with pytest.raises(ValueError, match="inside a Box"):
        build(lambda: shape(Box([one()])))


def test_wrong_arguments_name_the_task():
    with pytest.raises(TypeError, match="task 'add'"):
        build(lambda: add(1, 2, 3))


def test_to_dict_is_json_and_round_trips():
    def body():
        a = one()
        b = add(a, b=Point(1, 2))  # a constant JSON cannot hold: pickled
        c = shape({"k": [a, (b, 2.5)], "s": {a}, "t": ("x", None)}).alias("mixed")
        collect(a, b, 7, flag=True)
        c >> one().alias("last")

    dag = build(body)
    data = dag.to_dict()
    text = json.dumps(data)
    rebuilt = DAG.from_dict(json.loads(text))
    assert rebuilt == dag
    assert rebuilt.to_dict() == data
    assert [n.name for n in rebuilt.topological_order()] == [
        n.name for n in dag.topological_order()
    ]
    assert set(rebuilt.edges()) == set(dag.edges())
    add_node = data["nodes"][1]
    assert add_node["function"] == "support.workflow_tasks:add"
    assert add_node["args"] == [{"node": "one"}]
    assert set(add_node["kwargs"]["b"]) == {"pickle"}
    assert data["nodes"][3]["memory"] == "256m" and data["nodes"][3]["cpu"] == 1.0
    assert data["nodes"][-1]["after"] == ["mixed"]


def test_from_dict_refuses_unknown_reference_and_cycles():
    data = build(lambda: add(one(), 1)).to_dict()
    bad = json.loads(json.dumps(data))
    bad["nodes"][1]["args"][0] = {"node": "nope"}
    with pytest.raises(ValueError, match="unknown task 'nope'"):
        DAG.from_dict(bad)
    cyc = json.loads(json.dumps(data))
    cyc["nodes"][0]["after"] = ["add"]
    with pytest.raises(CycleError):
        DAG.from_dict(cyc)


def test_unpicklable_constant_is_a_clear_error():
    dag = build(lambda: shape(lambda: 1))
    with pytest.raises(ValueError, match="cannot be pickled"):
        dag.to_dict()


def test_local_function_cannot_be_serialised():
    from localtailr.sdk.workflow import task

    @task()
    def inner():
        return 1

    dag = build(lambda: inner())
    with pytest.raises(ValueError, match="top level of a module"):
        dag.to_dict()


def test_nodes_cannot_be_iterated_or_pickled():
    import pickle

    def body():
        n = one()
        with pytest.raises(TypeError, match="no result yet"):
            list(n)
        with pytest.raises(TypeError, match="cannot be pickled"):
            pickle.dumps(n)

    build(body)


@st.composite
def random_dags(draw):
    """n nodes with a hidden rank; edges only go up in rank (acyclic by construction).

    Nodes are created in an independent random order; an argument edge needs its
    upstream created first, an explicit (>>) edge does not.
    """
    n = draw(st.integers(min_value=1, max_value=12))
    rank = draw(st.permutations(range(n)))
    created = draw(st.permutations(range(n)))  # node i is created at created[i]
    up_rank = [(i, j) for i in range(n) for j in range(n) if rank[i] < rank[j]]
    as_args = [(i, j) for i, j in up_rank if created[i] < created[j]]
    data_edges = draw(st.lists(st.sampled_from(as_args), unique=True)) if as_args else []
    explicit = draw(st.lists(st.sampled_from(up_rank), unique=True)) if up_rank else []
    return n, created, data_edges, explicit


@settings(max_examples=200, deadline=None)
@given(random_dags())
def test_random_dags_have_a_valid_topological_order(spec):
    n, created, data_edges, explicit = spec
    dag = DAG("random")
    nodes: dict[int, Node] = {}
    with dag.building():
        for i in sorted(range(n), key=lambda i: created[i]):
            ups = [nodes[u] for u, d in data_edges if d == i]
            nodes[i] = shape({"ups": ups}).alias(f"n{i}")
        for u, d in explicit:
            nodes[u] >> nodes[d]
    order = {node.name: k for k, node in enumerate(dag.topological_order())}
    assert len(order) == n
    for u, d in set(data_edges) | set(explicit):
        assert order[f"n{u}"] < order[f"n{d}"]
    assert set(dag.edges()) == {(f"n{u}", f"n{d}") for u, d in set(data_edges) | set(explicit)}
    assert DAG.from_dict(json.loads(json.dumps(dag.to_dict()))) == dag


def test_a_constant_dict_that_looks_like_a_reference_is_not_one():
    """The one reading of "which arguments reference a task" (the DAG's edges and the task
    runner's inputs both use it): a constant ``{"node": "a"}`` is data, not a reference."""
    def body():
        a = one().alias("a")
        shape({"node": "a"}).alias("b") << a  # ordered after a, but takes no result of it
        shape({"k": a, "node": "c"}).alias("d")

    nodes = {n["name"]: n for n in build(body).to_dict()["nodes"]}
    assert nodes["b"]["depends_on"] == ["a"]
    assert referenced_names(nodes["b"]["args"], nodes["b"]["kwargs"]) == []
    assert referenced_names(nodes["d"]["args"], nodes["d"]["kwargs"]) == ["a"]
    with pytest.raises(ValueError, match="not an encoded argument"):
        referenced_names([{"node": "a", "value": 1}], {})
