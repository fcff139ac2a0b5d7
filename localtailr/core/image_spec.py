"""What an image is made of: interpreter request, normalised requirements, build scripts.

Two specs that would build the same environment have the same key.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import sysconfig
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from .buildscript import BuildScript, parse_build_script
from .python_request import Interpreter, parse_request
from .requirements import AUTO, find_project, normalise, parse_requirements, project_requires_python

KEY_FORMAT = 1
KEY_LENGTH = 20


@dataclass(frozen=True)
class ImageSpec:
    """A parsed, validated image definition."""

    python_version: str = "auto"
    requirements: tuple[str, ...] = ()  # normalised: canonical names, sorted
    build_script_pre: BuildScript = field(default_factory=BuildScript)
    build_script_post: BuildScript = field(default_factory=BuildScript)

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
    def of_image(cls, image: dict) -> ImageSpec:
        """The spec of an Image's dict form (``Image.to_dict()``, as a definition saves it)."""
        return cls.make(image.get("python_version") or "auto", image.get("python_requirements") or "",
                        image.get("build_script_pre") or "", image.get("build_script_post") or "")

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
            found = cache[interpreter] = hashlib.sha256(text.encode()).hexdigest()[:KEY_LENGTH]
        return found


_host: list[str] = []


def source_folder() -> str:
    """The folder that holds the ``localtailr`` package."""
    return str(Path(__file__).resolve().parents[2])


def host_paths() -> list[str]:
    """What a job environment falls back on (after its own packages): the folder holding
    localtailr and the site-packages of the environment localtailr runs in."""
    if not _host:
        paths = [source_folder()]
        for name in ("purelib", "platlib"):
            p = sysconfig.get_paths()[name]
            if p not in paths:
                paths.append(p)
        _host.extend(paths)
    return list(_host)
