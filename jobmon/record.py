"""``Record``: a small immutable value class over ``__slots__``, without ``dataclasses``.

``import dataclasses`` costs a command ~14 ms (it imports ``inspect``); the
few value classes every ``jobmon`` command builds (settings, job ids) derive
from this instead. A subclass lists its fields in ``__slots__``, annotates
them, and sets them in ``__init__`` with :meth:`Record._set`. Records compare
equal field by field (same class only), hash, and refuse assignment as a
frozen dataclass does (``AttributeError``).
"""

from __future__ import annotations


class Record:
    __slots__: tuple[str, ...] = ()

    def _set(self, *values: object) -> None:
        for name, value in zip(self.__slots__, values):
            object.__setattr__(self, name, value)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"cannot assign to field {name!r}")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"cannot delete field {name!r}")

    def _values(self) -> tuple[object, ...]:
        return tuple(getattr(self, n) for n in self.__slots__)

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        assert isinstance(other, Record)
        return self._values() == other._values()

    def __hash__(self) -> int:
        return hash(tuple(tuple(sorted(v.items())) if isinstance(v, dict) else v for v in self._values()))

    def __repr__(self) -> str:
        body = ", ".join(f"{n}={getattr(self, n)!r}" for n in self.__slots__)
        return f"{type(self).__name__}({body})"
