"""Pipeline variables: declarations, values that persist or are made fresh each run, atomic updates."""
from __future__ import annotations

import functools
import threading
import types
from dataclasses import dataclass
from typing import Any

from .._naming import suggest
from ..errors import BatchkitKeyError, BatchkitTypeError, BatchkitValueError

__all__ = ['MODES', 'VariableStore', 'apply_mode', 'normalize_mode']

MODES = {'w': 'w', 'write': 'w', 'a': 'a', 'append': 'a', 'e': 'e', 'extend': 'e', 'u': 'u', 'update': 'u'}


def normalize_mode(mode: str) -> str:
    try:
        return MODES[mode]
    except (KeyError, TypeError):
        raise BatchkitValueError(f"Expected an update mode: 'w'/'write', 'a'/'append', 'e'/'extend' or "
                                 f"'u'/'update'. Received: mode={mode!r}") from None


def apply_mode(current: Any, value: Any, mode: str, where: str) -> Any:
    """The new value of a location holding `current` after writing `value` in `mode` (lists, sets, dicts in place)."""
    if mode == 'w':
        return value
    try:
        return _apply_mode(current, value, mode, where)
    except (TypeError, ValueError) as exc:
        if isinstance(exc, (BatchkitTypeError, BatchkitValueError)):
            raise
        wants = {'a': 'an item to append (a mapping to merge, for a dict)', 'e': 'an iterable of items',
                 'u': 'a mapping or iterable of items to merge'}
        raise BatchkitTypeError(
            f"Expected {wants[mode]} to write to {where} in mode {mode!r}, which holds "
            f"{type(current).__name__}. Received: {type(value).__name__} {value!r:.60} ({exc}). Write a value "
            f"that fits, or use mode='w' to replace it.") from exc


def _apply_mode(current: Any, value: Any, mode: str, where: str) -> Any:
    if mode == 'a':
        if current is None:
            return [value]
        if isinstance(current, set):
            current.add(value)
            return current
        if isinstance(current, dict):
            current.update(value)
            return current
        if hasattr(current, 'append'):
            current.append(value)
            return current
    elif mode == 'e':
        if current is None:
            return list(value)
        if hasattr(current, 'extend'):
            current.extend(value)
            return current
    elif mode == 'u':
        if current is None:
            return value
        if isinstance(current, (dict, set)):
            current.update(value)
            return current
        try:
            return current + value        # accumulating objects, e.g. metrics: m1 + m2
        except TypeError:
            pass
    names = {'a': 'append to', 'e': 'extend', 'u': 'update'}
    wants = {'a': 'a list, set or dict', 'e': 'a list', 'u': 'a dict, a set or an object supporting +'}
    raise BatchkitTypeError(
        f"Expected {where} to hold {wants[mode]} to {names[mode]} it (mode={mode!r}). Received: "
        f"{type(current).__name__} {current!r:.60}. Initialize it with a fitting default, e.g. "
        f"init_variable(name, default=list), or use mode='w'.")


_FACTORY_TYPES = (type, types.FunctionType, types.BuiltinFunctionType, types.MethodType, functools.partial)


def is_factory(default: Any) -> bool:
    """True for a default that makes the value (a class, a function, a lambda, a partial): called at each run start.

    Other callables (a Keras model, a torch module, any object with __call__) are values, stored as they are.
    """
    return isinstance(default, _FACTORY_TYPES)


@dataclass(frozen=True)
class VariableDecl:
    name: str
    default: Any
    fresh_each_run: bool      # a callable default (or init_on_each_run=) is called at the start of each run
    pristine: Any = None      # a copy of a list, dict or set default as declared, for reset='variables'

    def declared_value(self) -> Any:
        """The value as declared: the default itself, or a new copy of a list, dict or set it was given as."""
        return self.default if self.pristine is None else type(self.pristine)(self.pristine)


class VariableStore:
    """The variables of one pipeline; every update holds the store's lock, so updates are atomic.

    NOTE [ Atomic updates ]
    An update such as `update(V('n'), V('n') + 1)` reads the variable, then writes it. Two runs of one pipeline
    at the same time (two threads calling `run()`) share this store: were only the write locked, both could
    read the same `n` and one increment would be lost. So an update step holds `transaction()` (the store's
    reentrant lock) from evaluating its value to writing it; `update()` takes the same lock again, which a
    reentrant lock allows. Modes 'a', 'e' and 'u' read the current value inside `update()`, under that lock.
    """

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._values: dict[str, Any] = {}
        self._decls: dict[str, VariableDecl] = {}

    def copy(self) -> 'VariableStore':
        new = VariableStore()
        new._values, new._decls = dict(self._values), dict(self._decls)
        return new

    def merge(self, other: 'VariableStore') -> None:
        for name, decl in other._decls.items():
            self._decls.setdefault(name, decl)
        for name, value in other._values.items():
            self._values.setdefault(name, value)

    def declare(self, name: str, default: Any = None, init_on_each_run: Any = None) -> None:
        if not isinstance(name, str) or not name:
            raise BatchkitTypeError(f"Expected a variable name (a non-empty str). Received: {name!r}")
        if init_on_each_run is not None:
            default, fresh = init_on_each_run, True
        else:
            fresh = is_factory(default)
        # Updates change a list, dict or set default in place, so a reset needs a copy of it as it was declared.
        pristine = type(default)(default) if not fresh and type(default) in (list, dict, set) else None
        self._decls[name] = VariableDecl(name, default, fresh, pristine)
        if fresh:
            self._values.setdefault(name, None)   # made at each run start; readable as None before any run
            if any(default is kind for kind in (list, dict, set)) and self._values[name] is None:
                self._values[name] = default()
        else:
            self._values[name] = default

    def reset(self) -> None:
        """Give every declared variable its declared value again (`run(..., reset='variables')`)."""
        with self._lock:
            for decl in self._decls.values():
                if not decl.fresh_each_run:
                    self._values[decl.name] = decl.declared_value()

    def start_run(self) -> None:
        """Make fresh values for variables declared with a callable default."""
        with self._lock:
            for decl in self._decls.values():
                if decl.fresh_each_run:
                    self._values[decl.name] = decl.default() if callable(decl.default) else decl.default

    def get(self, name: str, *default: Any) -> Any:
        try:
            return self._values[name]
        except KeyError:
            if default:
                return default[0]
            raise BatchkitKeyError(f"Expected a variable of the pipeline. Received: {name!r}, which is not "
                                   f"initialized.{suggest(name, self._values)} Declare it with "
                                   f"init_variable({name!r}, default=...).") from None

    def set(self, name: str, value: Any) -> None:
        with self._lock:
            self._values[name] = value

    def transaction(self) -> threading.RLock:
        """The store's lock, to hold around a read-modify-write: `with store.transaction(): ...`.

        >>> store = VariableStore(); store.declare('n', 0)
        >>> with store.transaction():
        ...     store.update('n', store.get('n') + 1)
        >>> store.get('n')
        1
        """
        return self._lock

    def update(self, name: str, value: Any, mode: str = 'w') -> None:
        mode = normalize_mode(mode)
        with self._lock:
            if mode != 'w' and name not in self._values:
                self.get(name)        # raises the unknown-variable error
            self._values[name] = apply_mode(self._values.get(name), value, mode, f"variable '{name}'")

    def __contains__(self, name: str) -> bool:
        return name in self._values

    def names(self) -> list[str]:
        return list(self._values)
