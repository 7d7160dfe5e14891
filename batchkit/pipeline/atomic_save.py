"""Atomic model saves: write next to the target under a temporary name, fsync, then rename over the target.

NOTE [ Atomic saves ]
A save killed halfway (SIGKILL, power loss, a full disk) must leave the previous save loadable. So the model
saves to a temporary path in the target's folder (same file system, so the rename is atomic) whose name ends
with the target's own name: `.saving-<token>-model.keras` keeps the suffixes Keras insists on (`.keras`,
`.weights.h5`) and any other extension a format checks. The written files are fsynced, then `os.replace`d over
the target and the folder is fsynced. A save that adds its own extension (`np.savez('m')` writes `m.npz`) or
writes several files (`m.index`, `m.data-...`) is followed: every `<temporary path><suffix>` becomes
`<target><suffix>`. A model that saves a directory gets it renamed: the old directory first steps aside under a
temporary name, then the new one takes its place, then the old one is deleted (POSIX cannot swap two
directories in one step, so a kill between the two renames leaves the previous save under `.replaced-...`).
A save that raises removes its temporary files and leaves the target as it was.
"""
from __future__ import annotations

import glob
import os
import shutil
import uuid
from collections.abc import Callable
from typing import Any

from ..errors import ModelError

__all__ = ['atomic_save', 'save_path']


def save_path(args: tuple, kwargs: dict) -> str | None:
    """The path a `save(*args, **kwargs)` call writes to: `path=`, or a first positional str/PathLike; else None."""
    path = kwargs.get('path', args[0] if args else None)
    return os.fspath(path) if isinstance(path, (str, os.PathLike)) else None


def _fsync(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_tree(path: str) -> None:
    if os.path.isdir(path):
        for folder, _, files in os.walk(path):
            for name in files:
                _fsync(os.path.join(folder, name))
            _fsync(folder)
    else:
        _fsync(path)


def _remove(path: str) -> None:
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path, ignore_errors=True)
    elif os.path.lexists(path):
        os.remove(path)


def _replace(src: str, dst: str, token: str) -> None:
    if os.path.isdir(src) and os.path.isdir(dst):
        folder, base = os.path.split(dst)
        aside = os.path.join(folder, f'.replaced-{token}-{base}')
        os.rename(dst, aside)
        os.rename(src, dst)
        shutil.rmtree(aside, ignore_errors=True)
    else:
        os.replace(src, dst)


def atomic_save(save: Callable[..., Any], args: tuple, kwargs: dict, what: str) -> None:
    """Call `save` with its path swapped for a temporary one next to it, then move what it wrote into place.

    >>> import numpy as np, tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), 'w.npy')
    >>> atomic_save(lambda p: np.save(p, np.arange(3)), (path,), {}, 'weights')
    >>> np.load(path).tolist()
    [0, 1, 2]
    """
    target = os.path.abspath(save_path(args, kwargs))
    folder, base = os.path.split(target)
    token = uuid.uuid4().hex[:12]
    temp = os.path.join(folder, f'.saving-{token}-{base}')
    if 'path' in kwargs:
        kwargs = {**kwargs, 'path': temp}
    else:
        args = (temp, *args[1:])
    try:
        save(*args, **kwargs)
        written = sorted(glob.glob(glob.escape(temp) + '*'))
        if not written:
            raise ModelError(f"Expected the save of {what} to write to the path it was given. Received: nothing at "
                             f"{temp!r} (nor with a suffix added), for the target {target!r}. Save through the path "
                             "argument, not to a path of the model's own.")
        for path in written:
            _fsync_tree(path)
        for path in written:
            _replace(path, target + path[len(temp):], token)
        _fsync(folder)
    except BaseException:
        for path in glob.glob(glob.escape(temp) + '*'):
            _remove(path)
        raise
