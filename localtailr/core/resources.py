"""``Resources``: the CPU and memory a job may use."""

from __future__ import annotations

import re
from dataclasses import dataclass

DEFAULT_MEMORY = "256m"
DEFAULT_CPU = 1.0

_MEMORY = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)i?b?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}


def parse_memory(value: object) -> int:
    """Bytes for a memory figure such as "128m", "1g", "512Mi", "1.5g" or an int of bytes."""
    if isinstance(value, bool):
        raise ValueError(f"invalid memory {value!r}")
    number: float
    if isinstance(value, int):
        number, unit = value, ""
    elif isinstance(value, str) and (m := _MEMORY.fullmatch(value)):
        number, unit = float(m.group(1)), m.group(2).lower()
    else:
        raise ValueError(
            f"invalid memory {value!r}: use a positive size like '128m', '1g' or '512k'"
        )
    size = int(number * _UNITS[unit])
    if size <= 0:
        raise ValueError(f"invalid memory {value!r}: it must be more than zero")
    return size


def format_memory(size: int) -> str:
    """The shortest exact-ish figure for ``size`` bytes: "256m", "1g", "300m"."""
    for unit in ("t", "g", "m", "k"):
        if size >= _UNITS[unit]:
            n = size / _UNITS[unit]
            return f"{n:.0f}{unit}" if n >= 10 or n == int(n) else f"{n:.1f}{unit}"
    return f"{size}"


def parse_cpu(value: object) -> float:
    """A CPU figure: a positive number of cores (0.25, 0.5, 2)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ValueError(f"invalid cpu {value!r}: use a positive number of cores like 0.5 or 2")
    try:
        cpu = float(value)
    except ValueError:
        raise ValueError(f"invalid cpu {value!r}: use a positive number of cores like 0.5 or 2") from None
    if not cpu > 0 or cpu != cpu or cpu == float("inf"):
        raise ValueError(f"invalid cpu {value!r}: it must be a positive number of cores")
    return cpu


@dataclass
class Resources:
    """Represents the compute resources allocated to a job container.

    Attributes:
        memory: Memory limit as a string (e.g. "256m", "1g").
        cpu: Number of CPU cores to allocate (e.g. 1, 0.5).
    """

    memory: str = DEFAULT_MEMORY
    cpu: float = DEFAULT_CPU

    def __post_init__(self) -> None:
        parse_memory(self.memory)
        self.cpu = parse_cpu(self.cpu)

    @property
    def memory_bytes(self) -> int:
        return parse_memory(self.memory)

    def to_dict(self) -> dict:
        return {"memory": self.memory, "cpu": self.cpu}

    @classmethod
    def from_dict(cls, data: dict) -> Resources:
        return cls(memory=data.get("memory", DEFAULT_MEMORY), cpu=data.get("cpu", DEFAULT_CPU))
