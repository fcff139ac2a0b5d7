"""@workflow: building, local runs, system arguments, JSON, the daemon hook."""

from __future__ import annotations

import base64
import datetime
import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import pytest
from support import workflow_tasks as wt
from support.workflow_tasks import Point, add, boom, collect, flaky, move, one, shape, when

from localtailr.core.dag import DAG
from localtailr.sdk import workflow as wf_module
from localtailr.sdk.workflow import (
    WorkflowBuildError,
    WorkflowFailed,
    parse_duration,
    run_local,
    run_node,
    set_submitter,
    workflow,
)

TESTS = Path(__file__).resolve().parents[1]
ROOT = TESTS.parent


@pytest.fixture
def submitted():
    calls: list[tuple] = []

    def submitter(dag_json, options, save_only):
        calls.append((dag_json, options, save_only))
        return "ok"

    set_submitter(submitter)
    yield calls
    set_submitter(None)


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for key in list(os.environ):
        if key.startswith("DATATAILR_BATCH_ARG_") or key == "DATATAILR_JOB_NAME":
            monkeypatch.delenv(key)


@workflow("Numbers")
def numbers(start=1):
    a = add(start, 1).alias("a")
    b = add(a).alias("b")  # keyword default b=10
    c = collect(a, b, 5, scale=[a, {"b": b}]).alias("c")
    c >> add(a, b=b)  # plain add, named 'add', ordered after c


def test_local_run_returns_results_by_name():
    assert numbers(local_run=True) == {
        "a": 2,
        "b": 12,
        "c": {"items": [2, 12, 5], "named": {"scale": [2, {"b": 12}]}},
        "add": 14,
    }
    assert numbers(5, local_run=True)["a"] == 6


def test_varargs_from_a_list_of_nodes():
    @workflow()
    def fan_in():
        collect(*[one().alias(f"num_{i}") for i in range(4)])

    result = fan_in(local_run=True)
    assert result["collect"] == {"items": [1, 1, 1, 1], "named": {}}
    assert fan_in.__name__ == "fan_in"


def test_constants_pass_as_values():
    @workflow
    def consts():
        shape((1, "x", None, {1, 2}, frozenset({3}), Point(1, 2), {"k": (1,)}))
        move(Point(1, 2), 3)

    out = consts(local_run=True)
    assert out["shape"] == (1, "x", None, {1, 2}, frozenset({3}), Point(1, 2), {"k": (1,)})
    assert out["move"] == Point(4, 2)


def test_system_args_filled_by_name(monkeypatch):
    @workflow(name="Dated")
    def dated():
        when(1).alias("first")
        when(x=2)

    today = datetime.date.today().isoformat()
    out = dated(local_run=True)
    assert out["first"]["x"] == 1 and out["when"]["x"] == 2
    assert out["first"]["rundate"] == today
    assert out["first"]["job_name"] == "first" and out["when"]["job_name"] == "when"
    assert out["first"]["batch_name"] == "Dated"
    datetime.datetime.fromisoformat(out["first"]["started_at"])
    datetime.datetime.fromisoformat(out["first"]["scheduled_time"])

    monkeypatch.setenv("DATATAILR_BATCH_ARG_RUNDATE", "2026-04-09")
    assert dated(local_run=True)["first"]["rundate"] == "2026-04-09"


def test_system_arg_passed_in_the_body_is_refused():
    @workflow()
    def explicit():
        when(1, rundate="2020-01-01")

    with pytest.raises(WorkflowBuildError, match="rundate is a system argument"):
        explicit(local_run=True)


def test_direct_call_fills_missing_system_args(monkeypatch):
    monkeypatch.setenv("DATATAILR_BATCH_ARG_RUNDATE", "2024-02-29")
    out = when(3)
    assert out["rundate"] == "2024-02-29" and out["job_name"] == "when"
    assert when(3, rundate="x")["rundate"] == "x"  # outside a workflow the caller wins


def test_failure_skips_dependents_and_others_finish():
    @workflow(name="Fails")
    def fails():
        a = one()
        bad = boom(a)
        add(bad, 1).alias("after_bad")
        add(add(bad, 2), 3).alias("further")
        add(a, 5).alias("independent")

    with pytest.raises(WorkflowFailed) as info:
        fails(local_run=True)
    err = info.value
    assert "'Fails'" in str(err) and "'boom'" in str(err) and "boom 1" in str(err)
    assert err.results == {"one": 1, "independent": 6}
    assert set(err.failed) == {"boom"} and isinstance(err.failed["boom"], RuntimeError)
    assert sorted(err.skipped) == ["add", "after_bad", "further"]
    assert err.states["boom"] == "failed" and err.states["further"] == "skipped"
    assert isinstance(err.__cause__, RuntimeError)


def test_retries_then_success_and_then_failure():
    @workflow()
    def retrying(fail_times):
        flaky(fail_times)

    wt.CALLS["flaky"] = 0
    assert retrying(2, local_run=True) == {"flaky": 3}
    wt.CALLS["flaky"] = 0
    with pytest.raises(WorkflowFailed, match="attempt 3 failed"):
        retrying(5, local_run=True)
    assert wt.CALLS["flaky"] == 3


def test_body_that_raises_names_the_workflow_and_saves_nothing(submitted):
    @workflow(name="Broken")
    def broken():
        one()
        raise KeyError("oops")

    for kwargs in ({}, {"save_only": True}, {"local_run": True}, {"to_json": True}):
        with pytest.raises(WorkflowBuildError, match="workflow 'Broken' failed while building") as i:
            broken(**kwargs)
        assert isinstance(i.value.__cause__, KeyError)
    assert submitted == []


def test_cycle_in_the_body_is_a_build_error():
    @workflow()
    def cyclic():
        a, b = one().alias("a"), one().alias("b")
        a >> b >> a

    with pytest.raises(WorkflowBuildError, match="cycle in workflow: (a >> b >> a|b >> a >> b)"):
        cyclic(local_run=True)


def test_empty_workflow_is_an_error():
    @workflow()
    def empty():
        pass

    with pytest.raises(WorkflowBuildError, match="no tasks"):
        empty(local_run=True)


def test_default_call_and_save_only_go_to_the_submitter(submitted):
    class Every:
        def get_cron_string(self):
            return "0 */5 * * * *"

    @workflow(name="Shipped", schedule=Every(), fail_after="1h 30m", env_vars={"A": 1},
              python_requirements=["requests"], max_parallel=3)
    def shipped():
        add(one(), 2)

    assert shipped() == "ok"
    assert shipped(save_only=True, expire_after=datetime.timedelta(minutes=2)) == "ok"
    (dag1, opts1, save1), (dag2, opts2, save2) = submitted
    assert save1 is False and save2 is True
    assert DAG.from_dict(dag1).to_dict() == dag1 and json.loads(json.dumps(dag1)) == dag1
    assert [n["name"] for n in dag1["nodes"]] == ["one", "add"]
    assert opts1["name"] == "Shipped" and opts1["cron"] == "0 */5 * * * *"
    assert opts1["fail_after"] == 5400.0 and opts1["expire_after"] is None
    assert opts2["expire_after"] == 120.0
    assert opts1["env_vars"] == {"A": 1} and opts1["max_parallel"] == 3
    assert opts1["python_requirements"] == ["requests"]
    assert opts1["function"].endswith(":test_default_call_and_save_only_go_to_the_submitter"
                                      ".<locals>.shipped")


def test_without_a_submitter_the_daemon_path_is_a_clear_error():
    import localtailr.sdk.workflow_run as registered

    set_submitter(None)  # as if the runtime had been unregistered after import

    @workflow()
    def later():
        one()

    with pytest.raises(RuntimeError, match="needs the runtime"):
        later()
    with pytest.raises(RuntimeError, match="needs the runtime"):
        later(save_only=True)
    set_submitter(registered.submit)


def test_to_json_round_trip_and_local_run_of_the_rebuilt_dag():
    @workflow(name="Json")
    def as_json():
        a = one()
        b = move(Point(0, 0), a)
        shape({"p": b, "n": [a, add(a, 1)]}).alias("all")

    text = as_json(to_json=True)
    data = json.loads(text)
    assert data["workflow"]["name"] == "Json" and data["name"] == "Json"
    rebuilt = DAG.from_dict(data)
    assert all(n.func is None for n in rebuilt.nodes)
    assert run_local(rebuilt) == as_json(local_run=True)
    assert run_local(rebuilt)["all"] == {"p": Point(1, 0), "n": [1, 2]}


def test_run_node_in_a_fresh_subprocess():
    @workflow(name="Sub")
    def sub():
        a = one()
        when(move(Point(1, 1), a)).alias("dated")

    data = json.loads(sub(to_json=True))
    node = DAG.from_dict(data).node("dated").to_dict()
    upstream = {"move": Point(2, 1)}
    payload = base64.b64encode(
        pickle.dumps((node, upstream, {"rundate": "2030-01-02", "batch_name": "Sub"}))
    )
    code = (
        "import base64, pickle, sys\n"
        "from localtailr.sdk.workflow import run_node\n"
        "node, inputs, system = pickle.loads(base64.b64decode(sys.stdin.buffer.read()))\n"
        "sys.stdout.write(base64.b64encode(pickle.dumps(run_node(node, inputs, system))).decode())\n"
    )
    venv_python = ROOT / ".venv" / "bin" / "python"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), str(ROOT)])}
    proc = subprocess.run(
        [str(venv_python if venv_python.exists() else sys.executable), "-c", code],
        input=payload, capture_output=True, env=env, cwd=str(TESTS), timeout=120,
    )
    assert proc.returncode == 0, proc.stderr.decode()
    result = pickle.loads(base64.b64decode(proc.stdout))
    assert result["x"] == Point(2, 1)
    assert result["rundate"] == "2030-01-02" and result["batch_name"] == "Sub"
    assert result["job_name"] == "dated"


def test_run_node_with_an_unimportable_function():
    node = {"name": "x", "function": "no_such_module_xyz:f", "args": [], "kwargs": {}}
    with pytest.raises(ImportError, match="cannot import task function 'no_such_module_xyz:f'"):
        run_node(node, {}, {})


def test_run_node_missing_input_is_named():
    dag = DAG.from_dict(json.loads(_json_of(lambda: add(one(), 1))))
    with pytest.raises(ValueError, match="needs the result of 'one'"):
        run_node(dag.node("add").to_dict(), {}, {})


def _json_of(body):
    @workflow()
    def tmp():
        body()

    return tmp(to_json=True)


def test_main_script_functions_run_in_another_process(tmp_path):
    script = tmp_path / "pipeline.py"
    script.write_text(
        "from localtailr.sdk.workflow import task, workflow\n"
        "@task()\n"
        "def double(x):\n"
        "    return 2 * x\n"
        "@workflow(name='Script')\n"
        "def script():\n"
        "    double(double(3))\n"
        "if __name__ == '__main__':\n"
        "    print(script(to_json=True))\n"
    )
    py = str(ROOT / ".venv" / "bin" / "python")
    made = subprocess.run([py, str(script)], capture_output=True, text=True, timeout=120)
    assert made.returncode == 0, made.stderr
    data = json.loads(made.stdout)
    node = data["nodes"][1]
    assert node["function"] == "__main__:double" and node["source_file"] == str(script)
    code = (
        "import json, sys\n"
        "from localtailr.sdk.workflow import run_node\n"
        "print(run_node(json.loads(sys.stdin.read()), {'double': 6}, {}))\n"
    )
    ran = subprocess.run([py, "-c", code], input=json.dumps(node), capture_output=True,
                         text=True, timeout=120, cwd=str(tmp_path))
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.strip() == "12"  # the script's __main__ block did not run again


def test_bad_options_are_refused_at_decoration():
    with pytest.raises(ValueError, match="invalid schedule"):
        workflow(schedule="0 * * * *")(lambda: None)
    with pytest.raises(ValueError, match="invalid duration"):
        workflow(fail_after="soon")(lambda: None)
    with pytest.raises(ValueError, match="invalid max_parallel"):
        workflow(max_parallel=0)(lambda: None)
    with pytest.raises(ValueError, match="invalid env_vars name"):
        workflow(env_vars={"A-B": "1"})(lambda: None)


def test_bad_task_options():
    from localtailr.sdk.workflow import task

    with pytest.raises(ValueError, match="memory"):
        task(memory="lots")(lambda: 1)
    with pytest.raises(ValueError, match="cpu"):
        task(cpu=-1)(lambda: 1)
    with pytest.raises(ValueError, match="retries"):
        task(retries=-1)(lambda: 1)


def test_parse_duration():
    assert parse_duration("2h 15s") == 7215.0
    assert parse_duration("45m") == 2700.0
    assert parse_duration(10) == 10.0
    assert parse_duration(None) is None
    for bad in ("", "0s", "1d", -5):
        with pytest.raises(ValueError):
            parse_duration(bad)


def test_the_hook_names_exist():
    assert callable(wf_module.submit) and callable(wf_module.set_submitter)
    with pytest.raises(TypeError):
        set_submitter("not callable")


def _doc_examples() -> list[str]:
    text = (ROOT / "docs" / "workflows.md").read_text()
    return [block.split("```", 1)[0] for block in text.split("```python\n")[1:]]


@pytest.mark.parametrize("index", range(len(_doc_examples())))
def test_docs_examples_run(index, tmp_path):
    script = tmp_path / f"example_{index}.py"
    script.write_text(_doc_examples()[index])
    env = {k: v for k, v in os.environ.items() if not k.startswith("DATATAILR_")}
    proc = subprocess.run([str(ROOT / ".venv" / "bin" / "python"), str(script)],
                          capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 0, proc.stderr


def test_module_level_workflow_call_does_not_submit_from_the_child(tmp_path):
    (tmp_path / "unguarded_mod.py").write_text(
        "from localtailr.sdk.workflow import task, workflow\n"
        "@task()\n"
        "def double(x):\n"
        "    return 2 * x\n"
        "@workflow()\n"
        "def wf():\n"
        "    double(1)\n"
        "wf()  # no __main__ guard: would need the runtime if it ran\n"
    )
    node = {"name": "double", "function": "unguarded_mod:double", "args": [{"value": 4}],
            "kwargs": {}}
    code = (
        "import json, os, sys\n"
        "from localtailr.sdk.workflow import run_node\n"
        "print(run_node(json.loads(sys.stdin.read()), {}, {}))\n"
        "print(os.environ.get('DATATAILR_BATCH_DONT_RUN_WORKFLOW'))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    env.pop("DATATAILR_BATCH_DONT_RUN_WORKFLOW", None)
    ran = subprocess.run([str(ROOT / ".venv" / "bin" / "python"), "-c", code],
                         input=json.dumps(node), capture_output=True, text=True, timeout=120,
                         env=env)
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.split() == ["8", "None"]
