"""The Estimator workflow of framework models: model_dir options, atomic checkpoints, resume, source copy, summaries."""
from __future__ import annotations

import atexit
import inspect
import json
import os
import shutil
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, fields
from typing import Any, Callable

from .. import signals
from ..errors import BatchkitTypeError, BatchkitValueError, ModelError

__all__ = ['Checkpoint', 'ModelDir', 'ModelDirOptions', 'fsync_dir', 'parse_options']

INDEX = 'checkpoint.json'
FINGERPRINT = 'fingerprint.json'
SOURCE_DIR = 'source'
# Test-only hook: seconds to sleep after the framework has written a checkpoint into its temporary directory and
# before it is moved into place, so a test can SIGKILL the process mid-write (see tests/models/test_model_dir.py).
PAUSE_ENV = 'BATCHKIT_TEST_CHECKPOINT_PAUSE'
_TMP_PREFIX = '.tmp-'

# NOTE [ Atomic checkpoints ]
# A checkpoint is a directory `ckpt-<step>/` holding whatever the framework writes (a `.keras` file, a TF Saver
# prefix). It is written into a hidden temporary directory beside it, every file and the directory fsynced,
# then renamed into place with os.replace. Only then is the index `checkpoint.json` rewritten, through its own
# temporary file + fsync + os.replace. The index is the single source of truth: a process killed at any point
# leaves either the old index (naming the previous, complete checkpoint) or the new one (naming a complete
# directory). Directories the index does not name are leftovers of killed writes and are removed on rotation.
# Rewriting the checkpoint of a step the index already names (`save(..., replace=True)`) writes a new directory
# `ckpt-<step>.<revision>`, never the named one, so the same argument holds.


@dataclass(frozen=True)
class ModelDirOptions:
    """The model_dir options of a framework model's config (API.md section 5)."""

    model_dir: str | None = None
    seed: int | None = None
    save_checkpoints_steps: int | None = None
    save_checkpoints_secs: float | None = None
    keep_checkpoint_max: int = 5
    save_summary_steps: int | None = 100
    warm_start_from: str | None = None
    export_format: str | None = None


_NAMES = tuple(f.name for f in fields(ModelDirOptions))


def _positive(name: str, value: Any, kind: tuple, owner: str, allow_none: bool = True) -> None:
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, kind) or value <= 0:
        expected = 'a positive int' if kind == (int,) else 'a positive number'
        raise BatchkitValueError(f"Expected `{name}` of {owner} to be {expected}{' or None' if allow_none else ''}. "
                                 f"Received: {name}={value!r}")


def parse_options(config: dict, owner: str = 'the model', export_formats: tuple[str, ...] = ()) -> ModelDirOptions:
    """Validate the model_dir options in `config` (other keys are ignored).

    Args:
        config: a model config.
        owner: how error messages name the model.
        export_formats: the `export_format` values the model can write (any str when empty).

    Returns:
        The options, with defaults (Estimator's: checkpoints every 600 s when neither steps nor secs are given).

    Raises:
        BatchkitValueError, BatchkitTypeError: an option of the wrong type or out of range, or both
            `save_checkpoints_steps` and `save_checkpoints_secs`.

    >>> parse_options({'keep_checkpoint_max': 2}).keep_checkpoint_max
    2
    """
    opts = {name: config[name] for name in _NAMES if name in config}
    for name in ('model_dir', 'warm_start_from'):
        value = opts.get(name)
        if value is not None and not isinstance(value, (str, os.PathLike)):
            raise BatchkitTypeError(f"Expected `{name}` of {owner} to be a path (str or os.PathLike) or None. "
                                    f"Received: {name}={value!r:.80}")
        if value is not None:
            opts[name] = os.fspath(value)
    seed = opts.get('seed')
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or seed < 0):
        raise BatchkitValueError(f"Expected `seed` of {owner} to be a non-negative int or None. Received: {seed=!r}")
    _positive('save_checkpoints_steps', opts.get('save_checkpoints_steps'), (int,), owner)
    _positive('save_checkpoints_secs', opts.get('save_checkpoints_secs'), (int, float), owner)
    _positive('keep_checkpoint_max', opts.get('keep_checkpoint_max', 5), (int,), owner, allow_none=False)
    _positive('save_summary_steps', opts.get('save_summary_steps'), (int,), owner)
    if opts.get('save_checkpoints_steps') is not None and opts.get('save_checkpoints_secs') is not None:
        raise BatchkitValueError(f"Expected at most one of `save_checkpoints_steps` and `save_checkpoints_secs` for "
                                 f"{owner}. Received: save_checkpoints_steps={opts['save_checkpoints_steps']!r}, "
                                 f"save_checkpoints_secs={opts['save_checkpoints_secs']!r}. Drop one of them.")
    if 'save_checkpoints_steps' not in opts and 'save_checkpoints_secs' not in opts:
        opts['save_checkpoints_secs'] = 600
    fmt = opts.get('export_format')
    if fmt is not None and not isinstance(fmt, str):
        raise BatchkitTypeError(f"Expected `export_format` of {owner} to be a str or None. Received: {fmt!r:.80}")
    if fmt is not None and export_formats and fmt not in export_formats:
        raise BatchkitValueError(f"Expected `export_format` of {owner} to be one of {list(export_formats)} or None. "
                                 f"Received: export_format={fmt!r}.")
    return ModelDirOptions(**opts)


@dataclass(frozen=True)
class Checkpoint:
    """A complete checkpoint: the directory the framework wrote into, and the global step it holds."""

    step: int
    path: str


def fsync_dir(path: str) -> None:
    """Flush a directory entry (a rename inside it) to disk; a no-op where directories cannot be opened."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _fsync_tree(path: str) -> None:
    for root, _dirs, files in os.walk(path):
        for name in files:
            with open(os.path.join(root, name), 'rb+') as f:
                os.fsync(f.fileno())
        fsync_dir(root)


def _write_json_atomic(path: str, data: Any) -> None:
    tmp = os.path.join(os.path.dirname(path), f"{_TMP_PREFIX}{os.getpid()}-{uuid.uuid4().hex}.json")
    with open(tmp, 'w') as f:
        json.dump(data, f, indent=1)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fsync_dir(os.path.dirname(path))


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _revision(name: str) -> int:
    """The revision of a checkpoint directory name: 0 for `ckpt-<step>`, r for `ckpt-<step>.<r>`."""
    _, _, rev = name.partition('.')
    return int(rev) if rev.isdigit() else 0


class ModelDir:
    """The directory of one model: checkpoints, their index, the fingerprint, the source copy and summaries.

    Thread safe: a lock serializes saves and summary writes. The directory is created on first use;
    `model_dir=None` makes a temporary one, removed at interpreter exit.

    Args:
        options: parsed options (see `parse_options`).
        owner: the model; sender of `batchkit.signals.checkpoint_saved`.
        name: the model's name in signals (a model does not know its pipeline name: its class name by default).

    >>> md = ModelDir(parse_options({'save_checkpoints_steps': 10}), owner=None, name='demo')
    >>> cp = md.save(10, lambda tmp: open(os.path.join(tmp, 'w.txt'), 'w').close())
    >>> md.latest().step
    10
    """

    def __init__(self, options: ModelDirOptions, owner: Any = None, name: str | None = None) -> None:
        self.options = options
        self.owner = owner
        self.name = name or (type(owner).__name__ if owner is not None else 'model')
        self._path = options.model_dir
        if self._path is not None:
            self._check_directory(self._path)
        self._lock = threading.RLock()
        self._last_save_step: int | None = None
        self._last_save_time = time.monotonic()
        self._writers: dict[str, Any] = {}
        self._pending: dict[str, list] = {}
        self._rate_mark: tuple[int, float] | None = None

    # --- the directory ---------------------------------------------------------------------------------------
    @property
    def path(self) -> str:
        """The directory (created, or made temporary, on first access)."""
        with self._lock:
            if self._path is None:
                self._path = tempfile.mkdtemp(prefix='batchkit-model-')
                atexit.register(shutil.rmtree, self._path, ignore_errors=True)
            self._check_directory(self._path)
            try:
                os.makedirs(self._path, exist_ok=True)
            except (FileExistsError, NotADirectoryError) as e:    # a file appeared, or a parent is a file
                raise self._not_a_directory(self._path) from e
            return self._path

    def _not_a_directory(self, path: str) -> ModelError:
        return ModelError(f"Expected `model_dir` of {self.name} to be a directory (or a path where one can be "
                          f"created). Received: model_dir={path!r}, which is an existing file (or lies under one). "
                          f"Pass the path of a directory, e.g. a new one beside that file.")

    def _check_directory(self, path: str) -> None:
        # the nearest existing ancestor must be a directory: os.makedirs would fail on a file anywhere on the path
        probe = os.path.abspath(path)
        while not os.path.exists(probe) and os.path.dirname(probe) != probe:
            probe = os.path.dirname(probe)
        if os.path.exists(probe) and not os.path.isdir(probe):
            raise self._not_a_directory(path)

    def _index(self) -> dict:
        path = os.path.join(self.path, INDEX)
        if not os.path.exists(path):
            return {'checkpoints': []}
        with open(path) as f:
            return json.load(f)

    def checkpoints(self) -> list[Checkpoint]:
        """The complete checkpoints the index names, oldest first."""
        return [Checkpoint(c['step'], os.path.join(self.path, c['name'])) for c in self._index()['checkpoints']]

    def latest(self) -> Checkpoint | None:
        """The latest complete checkpoint, or None."""
        found = self.checkpoints()
        return found[-1] if found else None

    # --- ownership ---------------------------------------------------------------------------------------------
    def claim(self, fingerprint: dict, source: Any = None) -> None:
        """Check the directory holds no other model's checkpoints, record `fingerprint`, copy `source`'s file.

        Args:
            fingerprint: JSON-able description of the model (its class or model_fn and architecture); a directory
                with checkpoints and a different fingerprint is refused.
            source: the class or function whose defining file is copied byte for byte into `<model_dir>/source/`.

        Raises:
            ModelError: the directory holds checkpoints of another model.
        """
        fingerprint = json.loads(json.dumps(fingerprint))
        with self._lock:
            path = os.path.join(self.path, FINGERPRINT)
            found = None
            if os.path.exists(path):
                with open(path) as f:
                    found = json.load(f)
                if found != fingerprint and self.latest() is not None:
                    raise ModelError(f"Expected model_dir {self.path!r} to be empty or hold checkpoints of "
                                     f"{fingerprint}. Received: a directory with checkpoints of {found}. Give "
                                     f"this model another model_dir, or delete that directory.")
            if found != fingerprint:
                _write_json_atomic(path, fingerprint)
            if source is not None:
                self.copy_source(source)

    def copy_source(self, obj: Any) -> str | None:
        """Copy the file that defines `obj` (a class or function) into `<model_dir>/source/`; its path, or None."""
        try:
            src = inspect.getsourcefile(obj)
        except TypeError:  # builtins and classes without a file (defined in a REPL)
            return None
        if src is None or not os.path.isfile(src):
            return None
        dest_dir = os.path.join(self.path, SOURCE_DIR)
        os.makedirs(dest_dir, exist_ok=True)
        dest = os.path.join(dest_dir, os.path.basename(src))
        tmp = os.path.join(dest_dir, f"{_TMP_PREFIX}{os.getpid()}-{uuid.uuid4().hex}")
        shutil.copyfile(src, tmp)
        os.replace(tmp, dest)
        return dest

    # --- checkpoints -------------------------------------------------------------------------------------------
    def due(self, step: int) -> bool:
        """Whether the policy asks for a checkpoint at `step` (by steps since the last save, or seconds)."""
        opts = self.options
        if opts.save_checkpoints_steps is not None:
            last = self._last_save_step if self._last_save_step is not None else 0
            return step - last >= opts.save_checkpoints_steps
        return time.monotonic() - self._last_save_time >= opts.save_checkpoints_secs

    def resumed_at(self, step: int) -> None:
        """Tell the policy the model was restored at `step`, so counting starts there."""
        self._last_save_step = step
        self._last_save_time = time.monotonic()
        self._rate_mark = None

    def save(self, step: int, write: Callable[[str], None], replace: bool = False) -> Checkpoint:
        """Write a checkpoint at `step` atomically (NOTE [ Atomic checkpoints ]), rotate, send `checkpoint_saved`.

        Args:
            step: the global step the checkpoint holds.
            write: called with an empty temporary directory; writes the framework's files into it.
            replace: when the latest checkpoint already holds `step`, write a new one for that step anyway and
                let it replace the old one (the model changed without advancing its step). The new checkpoint
                gets a directory of its own (`ckpt-<step>.<revision>`), so the swap is the index rewrite alone.

        Returns:
            The new checkpoint (or the existing one, if the latest already holds `step` and not `replace`).
        """
        step = int(step)
        with self._lock:
            latest = self.latest()
            name = f"ckpt-{step}"
            if latest is not None and latest.step == step:
                if not replace:
                    self._last_save_step, self._last_save_time = step, time.monotonic()
                    return latest
                revision = _revision(os.path.basename(latest.path))
                name = f"ckpt-{step}.{revision + 1}"
            root = self.path
            final = os.path.join(root, name)
            tmp = os.path.join(root, f"{_TMP_PREFIX}{os.getpid()}-{uuid.uuid4().hex}-{name}")
            os.makedirs(tmp)
            try:
                write(tmp)
                _fsync_tree(tmp)
                pause = os.environ.get(PAUSE_ENV)
                if pause:
                    open(os.path.join(root, '.paused'), 'w').close()
                    time.sleep(float(pause))
                if os.path.exists(final):  # a leftover the index does not name (a write killed after its rename)
                    shutil.rmtree(final)
                os.replace(tmp, final)
                fsync_dir(root)
            except BaseException:
                shutil.rmtree(tmp, ignore_errors=True)
                raise
            index = self._index()
            kept = [c for c in index['checkpoints'] if c['step'] < step]
            kept.append({'name': name, 'step': step, 'time': time.time()})
            kept = kept[-self.options.keep_checkpoint_max:]
            _write_json_atomic(os.path.join(root, INDEX), {'checkpoints': kept, 'latest': name})
            self._rotate({c['name'] for c in kept})
            self._last_save_step, self._last_save_time = step, time.monotonic()
            checkpoint = Checkpoint(step, final)
        if signals.checkpoint_saved.receivers:
            signals.checkpoint_saved.send(self.owner, name=self.name, path=final, step=step)
        return checkpoint

    def _rotate(self, keep: set[str]) -> None:
        for entry in os.listdir(self.path):
            full = os.path.join(self.path, entry)
            if entry.startswith('ckpt-') and entry not in keep:
                shutil.rmtree(full, ignore_errors=True)
            elif entry.startswith(_TMP_PREFIX):
                pid = entry[len(_TMP_PREFIX):].split('-', 1)[0]
                if pid.isdigit() and int(pid) != os.getpid() and not _pid_alive(int(pid)):
                    if os.path.isdir(full):
                        shutil.rmtree(full, ignore_errors=True)
                    else:
                        os.remove(full)

    @staticmethod
    def find(path: str) -> Checkpoint | None:
        """The latest checkpoint of another model_dir, or `path` itself if it is a checkpoint directory; or None."""
        path = os.fspath(path)
        index = os.path.join(path, INDEX)
        if os.path.exists(index):
            with open(index) as f:
                found = json.load(f)['checkpoints']
            return Checkpoint(found[-1]['step'], os.path.join(path, found[-1]['name'])) if found else None
        base = os.path.basename(os.path.normpath(path))
        stem = base[5:].split('.', 1)
        if os.path.isdir(path) and base.startswith('ckpt-') and all(p.isdigit() for p in stem):
            return Checkpoint(int(stem[0]), path)
        return None

    # --- summaries ---------------------------------------------------------------------------------------------
    def summarize(self, step: int, scalars: dict[str, float], subdir: str | None = None,
                  force: bool = False) -> bool:
        """Collect `scalars` of a step; every `save_summary_steps` write their means (and steps_per_sec).

        Args:
            step: the global step after this batch.
            scalars: e.g. {'loss': 0.3, 'accuracy': 0.9}.
            subdir: e.g. 'eval', for evaluation summaries in `<model_dir>/eval`.
            force: write now, whatever the step (what was collected since the last write).

        Returns:
            Whether a summary was written.
        """
        every = self.options.save_summary_steps
        if every is None and not force:
            return False
        key = subdir or ''
        with self._lock:
            self._pending.setdefault(key, []).append(scalars)
            if not force and step % every != 0:
                return False
            pending = self._pending.pop(key)
            means = {k: sum(p[k] for p in pending if k in p) / sum(k in p for p in pending)
                     for k in dict.fromkeys(k for p in pending for k in p)}
            now = time.monotonic()
            if not subdir:
                if self._rate_mark is not None and now > self._rate_mark[1] and step > self._rate_mark[0]:
                    means['steps_per_sec'] = (step - self._rate_mark[0]) / (now - self._rate_mark[1])
                self._rate_mark = (step, now)
            self._write_scalars(key, step, means)
            return True

    def flush_summaries(self, step: int) -> bool:
        """Write the means of the train scalars collected since the last write (the last, partial window of a run)
        at `step`; nothing if none were. Returns whether a summary was written."""
        with self._lock:
            if not self._pending.get(''):
                return False
            return self.summarize(step, {}, force=True)

    def _write_scalars(self, key: str, step: int, values: dict[str, float]) -> None:
        from .._optional import import_optional
        tf = import_optional('tensorflow', extra='tf')
        writer = self._writers.get(key)
        if writer is None:
            logdir = os.path.join(self.path, key) if key else self.path
            # Eager writer in the default context, so graph-mode models in graphs of their own can use it too.
            with tf.init_scope():
                writer = self._writers[key] = tf.summary.create_file_writer(logdir)
        with tf.init_scope(), writer.as_default():
            for tag, value in values.items():
                tf.summary.scalar(tag, float(value), step=int(step))
        writer.flush()

    def close(self) -> None:
        """Close the summary writers (a later summary reopens them)."""
        with self._lock:
            writers, self._writers = self._writers, {}
        for writer in writers.values():
            writer.close()
