"""A virtual environment written in-process, and scripts' shebangs pointed at it."""

import os
import subprocess
import sys

from localtailr.core.image_key import current_interpreter_path
from localtailr.runtime.images import layout

VERSION = ".".join(str(p) for p in sys.version_info[:3])


def test_written_environment_is_a_venv_of_its_interpreter(tmp_path):
    root = tmp_path / "env"
    layout.write_venv(root, current_interpreter_path(), VERSION, "demo")
    out = subprocess.run([str(root / "bin" / "python"), "-c",
                          "import sys, site; print(sys.prefix); print(site.getsitepackages()[0])"],
                         capture_output=True, text=True, check=True).stdout.splitlines()
    assert out == [str(root), str(layout.site_packages(root, VERSION))]
    assert os.readlink(root / "bin" / "python3") == "python"
    assert "(demo) " in (root / "bin" / "activate").read_text()


def test_shebang_is_short_or_goes_through_sh():
    assert layout.shebang("/x/bin/python") == b"#!/x/bin/python\n"
    long = "/x" * 70 + "/bin/python"
    assert layout.shebang(long).startswith(b"#!/bin/sh\n'''exec' '" + long.encode())
    assert layout.shebang("/a b/python").startswith(b"#!/bin/sh\n")


def test_fix_shebangs_rewrites_the_base_interpreters_scripts_only(tmp_path):
    base = current_interpreter_path()
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    body = b"import sys\nprint(sys.executable)\n"
    (bin_dir / "short").write_bytes(f"#!{base}\n".encode() + body)
    (bin_dir / "elsewhere").write_bytes(layout.shebang("/y" * 70 + base) + body)
    exec_form = b"#!/bin/sh\n'''exec' '" + base.encode() + b"' \"$0\" \"$@\"\n' '''\n"
    (bin_dir / "sh").write_bytes(exec_form + body)
    (bin_dir / "other").write_bytes(b"#!/bin/sh\necho hi\n")
    os.symlink("short", bin_dir / "link")
    new = str(tmp_path / "env" / "bin" / "python")
    assert layout.fix_shebangs(bin_dir, base, new) == 2  # short and sh: the base's
    assert (bin_dir / "short").read_bytes() == f"#!{new}\n".encode() + body
    assert (bin_dir / "sh").read_bytes() == layout.shebang(new) + body
    assert (bin_dir / "other").read_bytes() == b"#!/bin/sh\necho hi\n"
    assert (bin_dir / "elsewhere").read_bytes() == layout.shebang("/y" * 70 + base) + body


def test_fix_shebangs_keeps_a_long_path_runnable(tmp_path):
    """A new python path too long for a shebang line: the script starts through /bin/sh."""
    base = current_interpreter_path()
    deep = tmp_path / ("d" * 60) / ("e" * 60)
    layout.write_venv(deep, base, VERSION, "deep")
    (deep / "bin" / "tool").write_bytes(
        layout.shebang(base) + b"import sys\nprint(sys.prefix)\n")
    os.chmod(deep / "bin" / "tool", 0o755)
    assert layout.fix_shebangs(deep / "bin", base, str(deep / "bin" / "python")) == 1
    assert (deep / "bin" / "tool").read_bytes().startswith(b"#!/bin/sh\n")
    out = subprocess.run([str(deep / "bin" / "tool")], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == str(deep)
