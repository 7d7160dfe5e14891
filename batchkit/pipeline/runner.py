"""The run loop: compile the steps once, make batches from the plan, push them through the ops in order."""
from __future__ import annotations

import contextlib
import functools
import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from .. import signals
from .._naming import suggest
from ..batch.base import RunInfo, batch_rng
from ..errors import BatchkitRuntimeError, BatchkitTypeError, BatchkitValueError, SkipBatch, StopPipeline
from ..index import DEFAULT, BatchPlan, DatasetIndex, _check_bool
from ..locks import LockRegistry
from .builtins import BUILTINS
from .expressions import step_context
from .model_steps import dynamic_model_of
from .ops import ActionOp, TimedOp
from .prefetch import SKIPPED, STOPPED, Done, engine_kind, make_engine, make_recipe, run_ops, split_head
from .profile import ProfileInfo

__all__ = ['RunOptions', 'iterate']

logger = logging.getLogger('batchkit')


_INTERNAL = frozenset({'forever', 'resets'})     # fields make() sets; never run options a user passes


@dataclass
class RunOptions:
    """The options of one run (see Pipeline.run); `forever` and `resets` are internal, set by `make`."""
    batch_size: int
    n_epochs: Any = DEFAULT
    n_iters: int | None = None
    shuffle: Any = False
    drop_last: bool = False
    prefetch: int = 0
    target: str = 'threads'
    executor: Any = None
    engine: str | None = None
    address: str | None = None
    bar: Any = False
    profile: bool = False
    ignore_exceptions: bool = False
    seed: int | None = None
    reset: Any = None
    forever: bool = False
    resets: tuple = ()            # `reset` checked and normalized by make()

    @classmethod
    def make(cls, batch_size: int, n_epochs: Any, n_iters: Any, shuffle: Any, drop_last: bool,
             *, _forever: bool = False, **options: Any) -> 'RunOptions':
        """Checked run options; `_forever` (next_batch only) makes a plan without end."""
        forever = bool(_forever)
        known = {f.name for f in fields(cls)} - _INTERNAL
        for name in options:
            if name not in known:
                raise BatchkitTypeError(f"Expected run options among {sorted(known)}. Received: {name!r}."
                                        f"{suggest(name, known, list_known=False)}")
        opts = cls(batch_size, n_epochs, n_iters, shuffle, drop_last, **options, forever=forever)
        if isinstance(opts.prefetch, (bool, np.bool_)) or not isinstance(opts.prefetch, (int, np.integer)):
            raise BatchkitTypeError(f"Expected `prefetch` to be a non-negative int. Received: prefetch={opts.prefetch!r} "
                                    f"of type {type(opts.prefetch).__name__}")
        if opts.prefetch < 0:
            raise BatchkitValueError(f"Expected `prefetch` to be a non-negative int. Received: prefetch={opts.prefetch!r}")
        opts.prefetch = int(opts.prefetch)
        if isinstance(opts.shuffle, np.bool_):
            opts.shuffle = bool(opts.shuffle)
        if isinstance(opts.drop_last, np.bool_):
            opts.drop_last = bool(opts.drop_last)
        seed = opts.seed
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0):
            raise (BatchkitValueError if isinstance(seed, (int, np.integer)) and not isinstance(seed, bool)
                   else BatchkitTypeError)(f"Expected `seed` to be a non-negative int or None. Received: seed={seed!r}")
        for flag in ('ignore_exceptions', 'profile'):
            _check_bool(flag, getattr(opts, flag))
        if not isinstance(opts.bar, (bool, np.bool_, dict)):
            raise BatchkitTypeError(f"Expected `bar` to be a bool or a dict of tqdm options. Received: bar={opts.bar!r}")
        reset = opts.reset
        resets = () if reset is None else (reset,) if isinstance(reset, str) else \
            tuple(reset) if isinstance(reset, (list, tuple, set, frozenset)) else None
        if resets is None or not all(isinstance(r, str) for r in resets) or not set(resets) <= {'models', 'variables'}:
            error = BatchkitTypeError if resets is None else BatchkitValueError     # a wrong type, or a wrong name
            raise error(f"Expected reset to be 'models', 'variables' or a list of them. Received: reset={reset!r}")
        opts.resets = resets
        return opts


def _run_seed(opts: RunOptions, rng: np.random.Generator | None) -> int:
    """The run's seed: `seed=`, else the shuffle seed, else drawn from the shuffle generator or fresh entropy."""
    if opts.seed is not None:
        return int(opts.seed)
    if isinstance(opts.shuffle, (int, np.integer)) and not isinstance(opts.shuffle, bool):
        return int(opts.shuffle)
    if isinstance(opts.shuffle, np.random.Generator):
        return int(opts.shuffle.integers(2 ** 63))
    return int(np.random.SeedSequence().entropy % 2 ** 63)


def _dynamic_models(pipeline: Any) -> list[str]:
    """The dynamic models the main chain's init_model steps declare (NOTE [ Building under prefetch ])."""
    return [name for step in pipeline.steps['main'] if step.name == 'init_model'
            and (name := dynamic_model_of(pipeline, *step.args, **step.kwargs)) is not None]


def _compile(pipeline: Any, section: str) -> list:
    cls = pipeline.batch_class
    ops = []
    for i, step in enumerate(pipeline.steps[section]):
        kind = pipeline._resolve(step.name, cls)
        where = f"step {i + 1} of the pipeline{'' if section == 'main' else f' ({section})'}, '{step.name}'"
        with step_context(where):
            if kind == 'action':
                ops.append(ActionOp(cls.actions[step.name], cls, step.args, dict(step.kwargs), pipeline))
            else:
                op = BUILTINS[step.name].compile(pipeline, *step.args, **step.kwargs)
                if op is not None:
                    ops.append(op)
    return ops


def iterate(pipeline: Any, opts: RunOptions) -> Iterator[Any]:
    """Check the run now (errors before any batch), then return the generator of processed batches."""
    dataset = pipeline.dataset
    if dataset is None:
        raise BatchkitValueError("Expected a pipeline linked to a dataset. Received: a template with no dataset. "
                                 "Link one with `pipeline << dataset`, or start from `dataset.p`.")
    if opts.forever:
        plan = BatchPlan.forever(len(dataset), opts.batch_size, shuffle=opts.shuffle, drop_last=opts.drop_last)
    else:
        plan = BatchPlan(len(dataset), opts.batch_size, opts.n_epochs, opts.n_iters, opts.shuffle, opts.drop_last)
    return _Run(pipeline, opts, plan).batches()


# Random streams of the `before` and `after` batches, far past any batch position of a run.
_SECTION_STREAMS = {'before': 2 ** 62, 'after': 2 ** 62 + 1}   # exact in Philox's counter (2**63 is not)


class _Run:
    """One run of a pipeline: its plan, compiled ops, locks and engine."""

    def __init__(self, pipeline: Any, opts: RunOptions, plan: BatchPlan) -> None:
        self.pipeline, self.opts, self.plan = pipeline, opts, plan
        self.n_batches = None if opts.forever else len(plan)
        self.info = RunInfo(_run_seed(opts, plan.rng), self.n_batches)
        self.locks = LockRegistry()
        self.profile_table: dict = {}
        self.ops = {section: self._timed(_compile(pipeline, section), section) for section in ('before', 'main', 'after')}
        self.unbuilt = _dynamic_models(pipeline)
        # Split and check now, so that a wrong option or an argument that does not pickle fails before any batch.
        kind = engine_kind(opts.prefetch, opts.target, opts.executor, opts.engine, opts.address)
        executor = opts.executor
        if executor is not None and (getattr(executor, '_shutdown', False) is True
                                     or getattr(executor, '_shutdown_thread', False) is True):
            raise BatchkitRuntimeError(f"Expected `executor` to accept work. Received: a {type(executor).__name__} "
                                       "that was shut down. Pass an executor that is still open.")
        self.lead, self.head, self.tail = split_head(self.ops['main'], kind == 'remote')
        self.recipe = make_recipe(self.head, pipeline.batch_class) if kind == 'remote' else None

    def _timed(self, ops: list, section: str) -> list:
        if not self.opts.profile:
            return ops
        lock = threading.Lock()
        return [TimedOp(op, self.profile_table, lock, f'{section}: {i} {op.name}') for i, op in enumerate(ops)]

    def _empty_batch(self, section: str) -> Any:
        dataset = self.pipeline.dataset
        batch = dataset.batch_class(DatasetIndex._subset_of(dataset.index, np.arange(0)), preloaded=dataset.preloaded,
                                    dataset=dataset)
        batch._attach(self.pipeline, self.info, 0, self.locks)
        # Its own random stream: at position 0 a `before` draw would repeat the first batch's draws.
        batch._random = batch_rng(self.info.seed, _SECTION_STREAMS[section])
        return batch

    def _jobs(self) -> Iterator[tuple[tuple, Any]]:
        dataset, pipeline, info, locks = self.pipeline.dataset, self.pipeline, self.info, self.locks
        cls, index, preloaded, subset = dataset.batch_class, dataset.index, dataset.preloaded, DatasetIndex._subset_of
        for pos, (epoch, last, positions) in enumerate(self.plan):
            batch = cls(subset(index, positions), preloaded, dataset=dataset)
            batch.pipeline, batch._run_info, batch._pos, batch._locks = pipeline, info, pos, locks
            yield (pos, epoch, last), batch

    def batches(self) -> Iterator[Any]:
        pipeline, opts = self.pipeline, self.opts
        if 'models' in opts.resets:
            pipeline.models.reset(pipeline)
        if 'variables' in opts.resets:
            pipeline.variables.reset()
        pipeline.variables.start_run()
        # An empty head (the chain starts with an ordered step) leaves the workers nothing to do: shipping each
        # batch there and back would only cost time, so such a run goes inline.
        engine = (make_engine(opts.prefetch, opts.target, opts.executor, opts.engine, opts.address)
                  if self.head else None)
        if engine is not None and engine.adaptive:
            key = (opts.batch_size, opts.prefetch)           # NOTE [ Adaptive threads ]
            engine.settled = pipeline._thread_modes.get(key)
            engine.remember = functools.partial(pipeline._thread_modes.__setitem__, key)
        bar = self._make_bar()
        done, stopped, outcomes = 0, False, None
        try:
            if signals.run_started.receivers:
                signals.run_started.send(pipeline, n_batches=self.n_batches, batch_size=opts.batch_size)
            self._run_once('before')
            outcomes = self._inline() if engine is None else self._prefetched(engine)
            for (pos, epoch, last), batch in outcomes:
                if batch is STOPPED:
                    stopped = True
                    break
                if batch is not SKIPPED:
                    if self.unbuilt:
                        self._build_unused(batch)
                    done += 1
                    if bar is not None:
                        self._update_bar(bar, batch)
                    if signals.batch_processed.receivers:
                        signals.batch_processed.send(pipeline, batch=batch, iteration=pos + 1)
                    yield batch
                batch = None              # no reference kept while the next batch is made (bounded memory)
                if last and signals.epoch_finished.receivers:
                    signals.epoch_finished.send(pipeline, epoch=epoch)
            self._run_once('after')
            pipeline.models.on_run_end()
            if signals.run_finished.receivers:
                signals.run_finished.send(pipeline, n_batches=done, stopped=stopped)
        finally:
            if outcomes is not None:
                outcomes.close()          # cancels the batches not started yet
            if engine is not None:
                engine.close()            # stops every worker
            if bar is not None:
                bar.close()
            if opts.profile:
                pipeline.profile_info = ProfileInfo(self.profile_table)

    def _build_unused(self, batch: Any) -> None:
        """Dynamic models no step used, built from the first batch as it ends its chain (a no-op for built ones)."""
        names, self.unbuilt = self.unbuilt, []
        for name in names:
            self.pipeline.models.get(self.pipeline, name, batch)

    def _run_once(self, section: str) -> None:
        if self.ops[section]:
            run_ops(self.ops[section], self._empty_batch(section), self.pipeline)

    def _failed(self, meta: tuple, exc: BaseException) -> bool:
        """True to drop the batch (ignore_exceptions), False to re-raise."""
        if not self.opts.ignore_exceptions:
            return False
        logger.warning('batchkit: batch #%d (epoch %d) dropped after %s: %s', meta[0] + 1, meta[1],
                       type(exc).__name__, exc, exc_info=exc)
        return True

    def _inline(self) -> Iterator[tuple[tuple, Any]]:
        ops, pipeline = self.ops['main'], self.pipeline
        for meta, batch in self._jobs():
            try:
                for op in ops:
                    batch = op(batch, pipeline)
            except SkipBatch:
                batch = SKIPPED
            except StopPipeline:
                batch = STOPPED
            except Exception as exc:
                if not self._failed(meta, exc):
                    raise
                batch = SKIPPED
            yield meta, batch

    def _prefetched(self, engine: Any) -> Iterator[tuple[tuple, Any]]:
        """The head of each batch in the engine's workers, the tail here, in batch order (NOTE [ Head and tail ])."""
        pipeline, head, tail = self.pipeline, self.head, self.tail
        if engine.remote:
            from .remote import RemoteHead
            submit_head: Any = RemoteHead(self.recipe, pipeline.batch_class)
        else:
            def submit_head(batch: Any) -> Any:
                return run_ops(head, batch, pipeline)
        jobs = self._led(self._jobs()) if self.lead else self._jobs()
        with contextlib.closing(engine.ordered(submit_head, jobs, self.n_batches)) as futures:
            for meta, future in futures:
                try:
                    batch = engine.result(future)
                    del future
                    if engine.remote and batch is not SKIPPED and batch is not STOPPED:
                        batch = self._returned(batch, meta[0])
                    if tail and batch is not SKIPPED and batch is not STOPPED:
                        batch = run_ops(tail, batch, pipeline)
                except Exception as exc:
                    if engine.broken or not self._failed(meta, exc):
                        raise             # a dead worker is no batch's error: never ignored
                    batch = SKIPPED
                yield meta, batch
                del batch

    def _led(self, jobs: Iterator[tuple[tuple, Any]]) -> Iterator[tuple[tuple, Any]]:
        """Jobs after the lead ops ran on them here; a batch they settle (skip, stop, error) is not shipped."""
        lead, pipeline = self.lead, self.pipeline
        for meta, batch in jobs:
            try:
                batch = run_ops(lead, batch, pipeline)
            except Exception as exc:
                yield meta, Done(error=exc)       # raised at this batch's turn, like a worker's error
                continue
            yield meta, (Done(batch) if batch is SKIPPED or batch is STOPPED else batch)

    def _returned(self, batch: Any, position: int) -> Any:
        """A batch back from another process (with the generator its head used), attached to this run again."""
        batch._attach(self.pipeline, self.info, position, self.locks)
        batch._dataset = self.pipeline.dataset
        return batch

    def _make_bar(self) -> Any:
        if not self.opts.bar:
            return None
        from tqdm.auto import tqdm
        options = dict(self.opts.bar) if isinstance(self.opts.bar, dict) else {}
        self.bar_exprs = {k: options.pop(k) for k in ('desc', 'postfix') if k in options}
        return tqdm(total=self.n_batches, **options)

    def _update_bar(self, bar: Any, batch: Any) -> None:
        from .expressions import evaluate
        if self.bar_exprs:
            values = evaluate(self.bar_exprs, batch, self.pipeline)
            if 'desc' in values:
                bar.set_description(str(values['desc']), refresh=False)
            if 'postfix' in values:
                postfix = values['postfix']
                bar.set_postfix(postfix if isinstance(postfix, dict) else {'value': postfix}, refresh=False)
        bar.update(1)
