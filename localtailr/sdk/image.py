"""``Image``: the environment a job runs in (locally, a cached virtualenv)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, TypeGuard

from ..core.buildscript import parse_build_script
from ..core.image_spec import ImageSpec
from ..core.requirements import AUTO, parse_requirements

_FIELDS = (
    "python_version",
    "python_requirements",
    "build_script_pre",
    "build_script_post",
    "branch_name",
    "commit_hash",
    "path_to_repo",
    "path_to_module",
)
_OPTIONAL = ("branch_name", "commit_hash", "path_to_repo", "path_to_module")


def _is_file(value: Any) -> TypeGuard[str | os.PathLike]:
    if isinstance(value, os.PathLike):
        return True
    return (
        isinstance(value, str) and value.strip() != "" and "\n" not in value.strip()
        and Path(value.strip()).expanduser().is_file()
    )


class Image:
    """Represents a container image for a job. The image is defined based on its python
    dependencies and two 'build scripts' expressed as Dockerfile commands. All attributes
    can be initialized with either a string or a file name.

    Locally the image is a virtualenv built once per distinct definition and cached in the
    home (see ``localtailr image ls``). A file name given for the requirements or a build
    script, and ``python_requirements="auto"``, are read when the Image is created, so that
    the Image describes the same environment wherever it is used later.
    """

    def __init__(
        self,
        python_version: str = "auto",
        python_requirements: str | list[str] = "",
        build_script_pre: str = "",
        build_script_post: str = "",
        branch_name: str | None = None,
        commit_hash: str | None = None,
        path_to_repo: str | None = None,
        path_to_module: str | None = None,
    ):
        """Initialize an Image configuration.

        Args:
            python_version: Python version for the container (e.g. "3.12"). Use "auto" to
                match the current interpreter version.
            python_requirements: Python dependencies. Accepts a pip-freeze string, a list of
                package specifiers, a path to a requirements.txt (or pyproject.toml) file,
                or "auto" for the caller's project (its pyproject.toml; else the calling
                environment).
            build_script_pre: Dockerfile commands (RUN, ENV) to execute before installing
                Python requirements. Can be a string or a file path.
            build_script_post: Dockerfile commands to execute after installing Python
                requirements. Can be a string or a file path.
            branch_name: Git branch name (populated automatically during build).
            commit_hash: Git commit hash (populated automatically during build).
            path_to_repo: Absolute path to the source repository root.
            path_to_module: Relative path from the repository root to the Python module
                containing the entrypoint.

        Raises:
            ValueError: if a requirement or a build script line is malformed.
            TypeError: if an attribute has the wrong type.
        """
        values = dict(
            python_version=python_version,
            python_requirements=python_requirements,
            build_script_pre=build_script_pre,
            build_script_post=build_script_post,
            branch_name=branch_name,
            commit_hash=commit_hash,
            path_to_repo=path_to_repo,
            path_to_module=path_to_module,
        )
        self._set(values)

    # -- validation ---------------------------------------------------------------------

    @staticmethod
    def _check_types(values: dict[str, Any]) -> None:
        for name, value in values.items():
            if name not in _FIELDS:
                raise AttributeError(f"Image has no attribute {name!r}; attributes: "
                                     + ", ".join(_FIELDS))
            if name == "python_requirements":
                ok = isinstance(value, (str, os.PathLike)) or (
                    isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value)
                )
                if not ok:
                    raise TypeError(f"python_requirements must be a string or a list of "
                                    f"strings, not {type(value).__name__}")
            elif name in _OPTIONAL:
                if value is not None and not isinstance(value, str):
                    raise TypeError(f"{name} must be a string or None, not "
                                    f"{type(value).__name__}")
            elif not isinstance(value, (str, os.PathLike)):
                raise TypeError(f"{name} must be a string, not {type(value).__name__}")

    def _set(self, values: dict[str, Any]) -> None:
        self._check_types(values)
        merged = {name: getattr(self, name, None) for name in _FIELDS} | values
        reqs = merged["python_requirements"]
        spec = ImageSpec.make(
            merged["python_version"] or "auto", reqs,
            merged["build_script_pre"], merged["build_script_post"],
        )
        if "python_requirements" in values:
            if isinstance(reqs, (list, tuple)):
                merged["python_requirements"] = list(reqs)
            elif _is_file(reqs) or (isinstance(reqs, str) and reqs.strip() == AUTO):
                merged["python_requirements"] = "\n".join(parse_requirements(reqs))
            merged["python_version"] = spec.python_version
        for name in ("build_script_pre", "build_script_post"):
            given = merged[name]
            if name in values and _is_file(given):
                path = Path(os.fspath(given).strip()).expanduser()
                parse_build_script(path)
                merged[name] = path.read_text(encoding="utf-8")
        for name in _FIELDS:
            object.__setattr__(self, name, merged[name])
        self._spec = spec

    # -- the SDK's interface --------------------------------------------------------------

    def update(self, **kwargs: Any) -> None:
        """Update one or more Image attributes.

        Raises:
            TypeError: If a string-only attribute receives a non-string value.
            AttributeError: If an attribute name does not exist on the Image.
            ValueError: If a new requirement or build script line is malformed (nothing is
                changed then).
        """
        self._set(kwargs)

    def to_dict(self) -> dict[str, Any]:
        """Convert the Image instance to a dictionary representation."""
        out = {name: getattr(self, name) for name in _FIELDS}
        if isinstance(out["python_requirements"], list):
            out["python_requirements"] = list(out["python_requirements"])
        return out

    def to_json(self) -> str:
        """Convert the Image instance to a JSON string representation."""
        return json.dumps(self.to_dict())

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Image:
        """Create an Image instance from a dictionary representation."""
        if not isinstance(data, dict):
            raise TypeError(f"Image.from_dict needs a dict, not {type(data).__name__}")
        return cls(**{name: data[name] for name in _FIELDS if name in data})

    # -- localtailr ---------------------------------------------------------------------

    def spec(self) -> ImageSpec:
        """What localtailr builds for this Image (for ``runtime.images.ensure_image``)."""
        return self._spec

    def __setattr__(self, name: str, value: Any) -> None:
        if name in _FIELDS:
            self._set({name: value})
        else:
            object.__setattr__(self, name, value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Image) and self.to_dict() == other.to_dict()

    def __hash__(self) -> int:
        return hash(self.to_json())

    def __repr__(self) -> str:
        shown = ", ".join(f"{k}={v!r}" for k, v in self.to_dict().items()
                          if v not in (None, "", []))
        return f"Image({shown})"
