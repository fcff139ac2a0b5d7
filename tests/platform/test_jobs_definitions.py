"""Issue 4, job definitions: the reference's classes and signatures, name normalisation,
entrypoints another process can load, and bad input refused when the job is defined."""

import inspect
import json
import subprocess
import sys
import textwrap

import pytest
from support import jobs_entry

from localtailr import App, BatchJob, Environment, ExcelAddin, Resources, Service, User
from localtailr.core import entrypoints
from localtailr.platform import jobs
from localtailr.platform.context import context


def test_signatures_follow_the_reference():
    common = ["name", "entrypoint", "environment", "image", "run_as", "resources", "acl"]
    tail = ["python_version", "python_requirements", "build_script_pre", "build_script_post",
            "env_vars", "update_existing"]
    app = inspect.signature(App.__init__).parameters
    assert [p for p in app if p not in ("self", "app_section")] == [*common, "framework", *tail]
    for cls in (Service, ExcelAddin):
        params = inspect.signature(cls.__init__).parameters
        assert [p for p in params if p != "self"] == [*common, *tail]
        assert params["environment"].default is Environment.DEV
        assert params["python_version"].default == "3.12"
        assert params["python_requirements"].default == ""
        assert params["env_vars"].default == {}
        assert params["update_existing"].default is False
        assert params["resources"].default == Resources()


@pytest.mark.parametrize("given, expected", [
    ("Simple Service - alice", "simple-service-alice"),
    ("simple-service-alice", "simple-service-alice"),
    ("  My__API  v2!! ", "my-api-v2"),
    ("Ünïcode Name", "n-code-name"),
])
def test_names_are_normalised(given, expected):
    assert jobs.normalise_name(given) == expected


@pytest.mark.parametrize("bad", ["", "---", "!!", None, 3])
def test_bad_names_are_refused(bad):
    with pytest.raises(ValueError, match="invalid job name"):
        jobs.normalise_name(bad)


def test_commands_accept_either_form(localtailr_home):
    Service("Simple Service - alice", jobs_entry.serve).save()
    ctx = context()
    assert jobs.get(ctx, "Simple Service - alice")["name"] == "simple-service-alice"
    assert jobs.get(ctx, "simple-service-alice")["display_name"] == "Simple Service - alice"


def test_definition_has_the_contract_shape(localtailr_home):
    svc = Service("Pricer", jobs_entry.serve, resources=Resources("512m", 0.5),
                  env_vars={"A": "x", "N": 3, "F": 1.5, "B": True}, python_requirements="")
    d = svc.save()["definition"]
    assert d["name"] == "pricer" and d["display_name"] == "Pricer" and d["type"] == "service"
    assert d["environment"] == "dev" and d["run_as"] == "root"
    assert d["entrypoint"] == {
        "module": "support.jobs_entry", "qualname": "serve", "kind": "module",
        "sys_path": str(jobs_entry.__file__).rsplit("/", 2)[0], "file": jobs_entry.__file__,
    }
    assert d["resources"] == {"memory": "512m", "cpu": 0.5}
    assert d["env_vars"] == {"A": "x", "N": 3, "F": 1.5, "B": True}
    assert d["image"]["python_version"] == "3.12"
    assert d["framework"] is None and d["schedule"] is None and d["workflow"] is None
    assert json.loads(svc.to_json())["name"] == "pricer"


def test_entrypoint_in_a_package_gives_the_folder_the_package_is_imported_from(tmp_path, monkeypatch):
    pkg = tmp_path / "src" / "mypkg" / "sub"
    pkg.mkdir(parents=True)
    (pkg.parent / "__init__.py").write_text("")
    (pkg / "__init__.py").write_text("")
    (pkg / "mod.py").write_text("def main():\n    return 1\n\nclass Holder:\n    @staticmethod\n    def run():\n        pass\n")
    monkeypatch.syspath_prepend(str(tmp_path / "src"))
    import mypkg.sub.mod as mod

    ep = entrypoints.entrypoint_of(mod.main)
    assert ep == {"module": "mypkg.sub.mod", "qualname": "main", "sys_path": str(tmp_path / "src"),
                  "file": str(pkg / "mod.py"), "kind": "module"}
    assert entrypoints.entrypoint_of(mod.Holder.run)["qualname"] == "Holder.run"
    assert entrypoints.entrypoint_of("mypkg.sub.mod:main")["sys_path"] == str(tmp_path / "src")
    whole = entrypoints.entrypoint_of(mod)
    assert whole["qualname"] is None and whole["module"] == "mypkg.sub.mod"


def test_entrypoint_in_a_script_run_as_main(tmp_path):
    script = tmp_path / "deploy.py"
    script.write_text(textwrap.dedent("""
        import json
        from localtailr.core.entrypoints import entrypoint_of

        def main():
            pass

        if __name__ == "__main__":
            print(json.dumps(entrypoint_of(main)))
    """))
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == {"module": "__main__", "qualname": "main", "kind": "script",
                                      "sys_path": str(tmp_path), "file": str(script)}


def test_lambda_and_nested_functions_are_refused(localtailr_home):
    with pytest.raises(ValueError, match="lambda"):
        Service("x", lambda: None)

    def inner():
        pass

    with pytest.raises(ValueError, match="nested"):
        BatchJob("x", inner)
    with pytest.raises(ValueError, match="invalid entrypoint"):
        Service("x", len)
    with pytest.raises(ValueError, match="cannot be found"):
        Service("x", "no_such_module_here:main")


def test_resources_are_validated_when_the_job_is_defined(localtailr_home):
    for memory in ("12x", "-1", "0", 0, -1):
        with pytest.raises(ValueError, match="invalid memory"):
            Service("x", jobs_entry.serve, resources={"memory": memory, "cpu": 1})
    for cpu in (0, -1, "12x", float("nan")):
        with pytest.raises(ValueError, match="invalid cpu"):
            Service("x", jobs_entry.serve, resources={"memory": "1g", "cpu": cpu})
    # the service layer checks the stored form too
    with pytest.raises(ValueError, match="invalid memory"):
        jobs.check_resources({"memory": "12x", "cpu": 1})
    with pytest.raises(ValueError, match="only memory and cpu"):
        jobs.check_resources({"memory": "1g", "cpu": 1, "gpu": 1})


def test_env_vars_are_validated(localtailr_home):
    with pytest.raises(ValueError, match=r"invalid env_vars value for X: \[1\]"):
        Service("x", jobs_entry.serve, env_vars={"X": [1]})
    with pytest.raises(ValueError, match="invalid env_vars value for X: None"):
        Service("x", jobs_entry.serve, env_vars={"X": None})
    with pytest.raises(ValueError, match="invalid env_vars name '1X'"):
        Service("x", jobs_entry.serve, env_vars={"1X": "a"})
    with pytest.raises(ValueError, match="invalid env_vars name 'A-B'"):
        Service("x", jobs_entry.serve, env_vars={"A-B": "a"})
    with pytest.raises(ValueError, match="set by the platform"):
        Service("x", jobs_entry.serve, env_vars={"DATATAILR_JOB_NAME": "a"})


def test_run_as_must_be_an_existing_user(localtailr_home):
    with pytest.raises(ValueError, match="run_as user 'ghost' does not exist"):
        Service("x", jobs_entry.serve, run_as="ghost")
    with pytest.raises(ValueError, match="run_as user 'ghost' does not exist"):
        jobs.save(context(), {"name": "x", "type": "service", "run_as": "ghost",
                              "entrypoint": {"module": "support.jobs_entry", "qualname": "serve"}})
    User.add("alice")
    assert Service("x", jobs_entry.serve, run_as=User.get("alice")).save()["run_as"] == "alice"


def test_only_an_admin_defines_a_job_running_as_someone_else(localtailr_home):
    User.add("alice")
    User.add("bob")
    localtailr_home.as_user("alice")
    with pytest.raises(ValueError, match="only an admin"):
        Service("x", jobs_entry.serve, run_as="bob").save()
    assert Service("x", jobs_entry.serve, run_as="alice").save()["run_as"] == "alice"


def test_framework_is_checked_and_inferred(localtailr_home, tmp_path, monkeypatch):
    with pytest.raises(ValueError, match="unknown framework 'rails'"):
        App("x", jobs_entry.serve, framework="rails")
    assert App("x", jobs_entry.serve, framework="Flask").to_dict()["framework"] == "flask"
    (tmp_path / "dash_app.py").write_text("import dash\nfrom flask import Flask\n\ndef main():\n    pass\n")
    (tmp_path / "plain_app.py").write_text("def main():\n    pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    # a "module:function" entrypoint is found without importing it (dash is not installed)
    assert App("d", "dash_app:main").to_dict()["framework"] == "dash"
    assert App("p", "plain_app:main").to_dict()["framework"] is None
    with pytest.raises(ValueError, match="framework 'flask' is for apps"):
        jobs.save(context(), {**Service("s", jobs_entry.serve).to_dict(), "framework": "flask"})


def test_each_save_is_a_new_version(localtailr_home):
    svc = Service("s", jobs_entry.serve)
    assert svc.save()["version"] == 1
    assert svc.save()["version"] == 2
    assert [v["version"] for v in svc.versions()] == [1, 2]


def test_another_type_with_the_same_name_needs_update_existing(localtailr_home):
    Service("Same", jobs_entry.serve).save()
    with pytest.raises(ValueError, match="is a service job, not a app job.*update_existing=True"):
        App("Same", jobs_entry.serve).save()
    assert len(Service("Same", jobs_entry.serve).versions()) == 1  # nothing half-saved
    job = App("Same", jobs_entry.serve, update_existing=True).save()
    assert job["type"] == "app" and job["version"] == 2


def test_image_is_built_from_the_python_arguments(localtailr_home):
    svc = Service("s", jobs_entry.serve, python_version="3.11", python_requirements=["six"])
    image = svc.to_dict()["image"]
    assert image["python_version"] == "3.11"
    assert image["python_requirements"] == ["six"]
