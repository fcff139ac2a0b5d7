"""What an image is made of: interpreter request, normalised requirements, build scripts.

Two specs that would build the same environment have the same key.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping
from functools import cached_property
from pathlib import Path

from .buildscript import BuildScript, parse_build_script
from .image_key import KEY_FORMAT, KEY_LENGTH, host_paths, source_folder  # noqa: F401 (re-exported)
from .python_request import Interpreter, parse_request
from .requirements import AUTO, find_project, normalise, parse_requirements, project_requires_python
from .sha256 import sha256

# An Image's dict form (``Image.to_dict()``): the fields that make the environment, and
# the ones that only describe where the code came from.
BUILD_FIELDS = ("python_version", "python_requirements", "build_script_pre", "build_script_post")
SOURCE_FIELDS = ("branch_name", "commit_hash", "path_to_repo", "path_to_module")


_FIELDS = ("python_version", "requirements", "build_script_pre", "build_script_post")


class ImageSpec:
    """A parsed, validated image definition. (A plain immutable class, not a dataclass: a
    cold ``localtailr run`` would pay ~7 ms for importing dataclasses and inspect.)"""

    python_version: str
    requirements: tuple[str, ...]  # normalised: canonical names, sorted
    build_script_pre: BuildScript
    build_script_post: BuildScript

    def __init__(self, python_version: str = "auto", requirements: tuple[str, ...] = (),
                 build_script_pre: BuildScript | None = None,
                 build_script_post: BuildScript | None = None):
        for name, value in zip(_FIELDS, (python_version, requirements,
                                         build_script_pre or BuildScript(),
                                         build_script_post or BuildScript())):
            object.__setattr__(self, name, value)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"cannot assign to field {name!r}: ImageSpec is immutable")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"cannot delete field {name!r}: ImageSpec is immutable")

    def _values(self) -> tuple:
        return tuple(getattr(self, name) for name in _FIELDS)

    def __eq__(self, other: object) -> bool:
        return self._values() == other._values() if type(other) is ImageSpec else NotImplemented

    def __hash__(self) -> int:
        return hash(self._values())

    def __repr__(self) -> str:
        return "ImageSpec(" + ", ".join(f"{n}={getattr(self, n)!r}" for n in _FIELDS) + ")"

    @classmethod
    def make(
        cls,
        python_version: str = "auto",
        python_requirements: str | os.PathLike | list[str] | None = "",
        build_script_pre: str | os.PathLike | None = "",
        build_script_post: str | os.PathLike | None = "",
        base_dir: Path | None = None,
    ) -> ImageSpec:
        """Parse and validate every part (raises ValueError/TypeError before any build)."""
        if not isinstance(python_version, str):
            raise TypeError(f"python_version {python_version!r} must be a string such as '3.12'")
        python_version = python_version.strip() or "auto"
        if python_version != "auto":
            parse_request(python_version)
        elif isinstance(python_requirements, str) and python_requirements.strip() == AUTO:
            project = find_project(base_dir)
            wanted = project_requires_python(project) if project else None
            if wanted:
                # packaging (~20 ms): only for a project's requires-python
                from packaging.specifiers import SpecifierSet

                current = ".".join(str(p) for p in sys.version_info[:3])
                if not SpecifierSet(wanted).contains(current, prereleases=True):
                    python_version = wanted
        return cls(
            python_version=python_version,
            requirements=tuple(normalise(parse_requirements(python_requirements, base_dir))),
            build_script_pre=parse_build_script(build_script_pre, base_dir),
            build_script_post=parse_build_script(build_script_post, base_dir),
        )

    @classmethod
    def from_image_dict(cls, image: object, base_dir: Path | None = None) -> ImageSpec:
        """The spec of an Image's dict form, every field checked as a job's launch will
        (ValueError naming the field): for saving a definition that can build."""
        if image is None:
            image = {}
        if not isinstance(image, Mapping):
            raise ValueError(f"invalid image {image!r}: expected Image.to_dict(), a dict")
        unknown = set(image) - {*BUILD_FIELDS, *SOURCE_FIELDS}
        if unknown:
            raise ValueError(f"invalid image: unknown field(s) {', '.join(map(repr, sorted(unknown, key=str)))};"
                             f" an image has {', '.join(BUILD_FIELDS + SOURCE_FIELDS)}")
        for name in SOURCE_FIELDS:
            if image.get(name) is not None and not isinstance(image[name], str):
                raise ValueError(f"invalid image: {name} must be a string, not {image[name]!r}")
        reqs = image.get("python_requirements") or ""
        if not (isinstance(reqs, str) or (isinstance(reqs, (list, tuple))
                                          and all(isinstance(r, str) for r in reqs))):
            raise ValueError(f"invalid image: python_requirements must be a string or a list of"
                             f" strings, not {reqs!r}")
        reqs = list(reqs) if isinstance(reqs, tuple) else reqs
        for name in ("python_version", "build_script_pre", "build_script_post"):
            if image.get(name) is not None and not isinstance(image[name], str):
                raise ValueError(f"invalid image: {name} must be a string, not {image[name]!r}")
        try:
            return cls.make(image.get("python_version") or "auto", reqs, image.get("build_script_pre") or "",
                            image.get("build_script_post") or "", base_dir)
        except (ValueError, TypeError, OSError) as exc:
            raise ValueError(f"invalid image: {exc}") from None

    @cached_property
    def env(self) -> dict[str, str]:
        """Variables set by the ENV lines of both build scripts."""
        out = self.build_script_pre.env()
        out.update(self.build_script_post.env(out))
        return out

    def key(self, interpreter: Interpreter) -> str:
        """The cache key: a hash of ``interpreter`` (``runtime.images.interpreters`` finds
        the one for ``python_version``), requirements, build scripts and host paths."""
        cache = self.__dict__.setdefault("_keys", {})
        found = cache.get(interpreter)
        if found is None:
            text = json.dumps(
                {
                    "format": KEY_FORMAT,
                    "python": [interpreter.version, interpreter.path, self.python_version],
                    "requirements": list(self.requirements),
                    "pre": self.build_script_pre.canonical(),
                    "post": self.build_script_post.canonical(),
                    "host": host_paths(),
                },
                sort_keys=True,
            )
            found = cache[interpreter] = sha256(text.encode()).hexdigest()[:KEY_LENGTH]
        return found
