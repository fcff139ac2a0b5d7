"""The ``Environment`` enum."""

from __future__ import annotations

from enum import Enum


class Environment(Enum):
    """Enum representing different environments for DataTailr jobs."""

    DEV = "dev"
    PRE = "pre"
    PROD = "prod"

    def __str__(self) -> str:
        return self.value
