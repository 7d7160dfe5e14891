"""Pipeline: an immutable chain of actions over a dataset, with variables, config and models."""
from __future__ import annotations

import collections
import functools
import inspect
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from .._naming import suggest
from ..errors import BatchkitTypeError, BatchkitValueError, UnknownNameError
from ..index import DEFAULT, BatchPlan, _check_bool, shuffle_key
from .builtins import BUILTINS
from .ops import Step
from .variables import VariableStore

if TYPE_CHECKING:
    from ..batch.base import Batch
    from ..dataset import Dataset
    from .runner import RunOptions

__all__ = ['Pipeline']

_SECTIONS = ('before', 'main', 'after')
_RUN_POSITIONAL = ('batch_size', 'n_epochs', 'n_iters', 'shuffle', 'drop_last')   # as in gen_batch


def _step(method: Callable[..., 'Pipeline']) -> Callable[..., 'Pipeline']:
    """Mark a pipeline method that chains a built-in step of the same name.

    NOTE [ Built-in names ]
    A batch-class action named like a built-in step (old-style `train_model` or `update` actions) wins: when the
    pipeline's batch class has that action, the call is chained as the action, with the caller's arguments as
    they are. Otherwise the arguments are checked against the method's signature (so a wrong call fails when
    chained; the method's body never runs: it is the signature and the docstring) and the step records them as
    given, not normalized, so a template linked later (`template << ds`) to a batch class that has such an
    action hands the action the very arguments of the call.
    """
    name = method.__name__
    signature = inspect.signature(method)

    @functools.wraps(method)
    def chain(self: 'Pipeline', *args: Any, **kwargs: Any) -> 'Pipeline':
        cls = self.batch_class
        if cls is None or name not in cls.actions:
            try:
                signature.bind(self, *args, **kwargs)
            except TypeError as exc:
                from ..decorators import describe_call, describe_params
                raise BatchkitTypeError(
                    f"Expected the arguments of {name}({describe_params(list(signature.parameters.values())[1:])}). "
                    f"Received: {describe_call(name, args, kwargs)}: {exc}.") from None
        return self._chain(name, args, kwargs)
    return chain


@functools.lru_cache(maxsize=1024)
def _action_signature(fn: Callable) -> inspect.Signature | None:
    try:
        return inspect.signature(fn)
    except (TypeError, ValueError):      # a callable Python cannot introspect: nothing to check
        return None


def _check_action_call(spec: Any, cls: type, args: tuple, kwargs: Mapping[str, Any]) -> None:
    """Fail when chained (or linked), not mid-run, on arguments that do not fit the action's signature.

    The method receives the batch, then the item (for @inbatch_parallel), then the model descriptor (for
    @action(model=...)), then the chained arguments; named expressions fit any parameter.
    """
    fn = spec.fn if spec.parallel is None else spec.parallel.fn
    signature = _action_signature(fn)
    if signature is None:
        return
    lead = 1 + (spec.parallel is not None) + (spec.model is not None)
    try:
        signature.bind(*(None,) * lead, *args, **kwargs)
    except TypeError as exc:
        params = list(signature.parameters.values())[lead:]
        from ..decorators import describe_call, describe_params
        raise BatchkitTypeError(f"Expected the arguments of action {cls.__name__}.{spec.name}({describe_params(params)}). "
                                f"Received: {describe_call(spec.name, args, kwargs)}: {exc}. "
                                "Fix the arguments where the action is chained.") from None


class _Section:
    """`pipeline.before` / `pipeline.after`: chaining on it adds steps to that part, returns the whole pipeline."""

    def __init__(self, pipeline: 'Pipeline', section: str) -> None:
        self._pipeline, self._section = pipeline, section

    def __getattr__(self, name: str) -> Callable[..., 'Pipeline']:
        if name.startswith('_'):
            raise AttributeError(name)
        pipeline = self._pipeline
        cls = pipeline.batch_class
        if (cls is None or name not in cls.actions) and name not in BUILTINS and hasattr(Pipeline, name):
            raise BatchkitTypeError(f"Expected a step after `.{self._section}`: an action or a built-in step such as "
                                    f"init_variable, update, call or save_model. Received: {name!r}, a pipeline "
                                    f"method that is not a step.")

        def add(*args: Any, **kwargs: Any) -> 'Pipeline':
            target = self._pipeline._copy(_section=self._section)
            result = getattr(target, name)(*args, **kwargs)
            result._section = 'main'
            return result
        return add


class Pipeline:
    """A lazy, immutable chain of steps; `run` pushes the dataset's batches through it.

    >>> p = ds.p.normalize().update(V('sizes', mode='a'), B('size'))     # doctest: +SKIP
    >>> p.run(batch_size=32, n_epochs=1)                                  # doctest: +SKIP
    """

    def __init__(self, dataset: 'Dataset | None' = None, config: dict | None = None) -> None:
        from ..dataset import Dataset
        from .model_registry import PipelineModels

        if config is not None and not isinstance(config, dict):
            raise BatchkitTypeError(f"Expected `config` to be a dict. Received: {type(config).__name__}")
        if dataset is not None and not isinstance(dataset, Dataset):
            raise BatchkitTypeError(f"Expected `dataset` to be a batchkit Dataset or None. Received: "
                                    f"{type(dataset).__name__}. Wrap arrays with "
                                    "Dataset.from_arrays(name=array) or Dataset(index, batch_class, preloaded).")
        self._dataset = dataset
        self.config: dict = dict(config or {})
        self._steps: dict[str, tuple[Step, ...]] = {s: () for s in _SECTIONS}
        self._section = 'main'
        self.variables = VariableStore()
        self.models = PipelineModels()
        self._lazy: dict | None = None
        self._next_batch: Any = None          # a NextBatch, made by the first next_batch
        self._thread_modes: dict = {}         # (batch size, prefetch) -> (mode, left, stretch), NOTE [ Adaptive threads ]
        self.profile_info: Any = None

    # --- building --------------------------------------------------------------------------------------------
    def _copy(self, **overrides: Any) -> 'Pipeline':
        new = object.__new__(type(self))
        new.__dict__.update(self.__dict__)
        new._steps = dict(self._steps)
        new.config = dict(self.config)
        new.variables = self.variables.copy()
        new.models = self.models.copy()
        new._next_batch = None
        new._thread_modes = {}                # other steps or data: measured afresh
        new.profile_info = None
        new.__dict__.update(overrides)
        return new

    @property
    def dataset(self) -> 'Dataset | None':
        """The dataset the pipeline runs over (None for a template)."""
        return self._dataset

    @property
    def batch_class(self) -> type | None:
        """The dataset's batch class (None for a template)."""
        return None if self._dataset is None else self._dataset.batch_class

    def _resolve(self, name: str, batch_class: type | None) -> str:
        """'action' if the batch class has it (it wins over a built-in), 'builtin', or 'pending' without a dataset."""
        if batch_class is not None and name in batch_class.actions:
            return 'action'
        if name in BUILTINS:
            return 'builtin'
        if batch_class is None:
            return 'pending'
        known = [*batch_class.actions, *BUILTINS]
        hint = ''
        if callable(getattr(batch_class, name, None)):
            hint = f' {batch_class.__name__}.{name} is a method but not an action: decorate it with @action.'
        raise UnknownNameError(f"Expected an action of {batch_class.__name__} or a pipeline method. Received: "
                               f"{name!r}.{suggest(name, known)}{hint}")

    def _check_steps(self, batch_class: type) -> None:
        """Resolve every step against `batch_class` and check the arguments of its actions."""
        for section in _SECTIONS:
            for step in self._steps[section]:
                if self._resolve(step.name, batch_class) == 'action':
                    _check_action_call(batch_class.actions[step.name], batch_class, step.args, step.kwargs)

    def _chain(self, name: str, args: tuple, kwargs: dict) -> 'Pipeline':
        kind = self._resolve(name, self.batch_class)
        if kind == 'action':
            _check_action_call(self.batch_class.actions[name], self.batch_class, args, kwargs)
        new = self._copy()
        new._steps[self._section] = self._steps[self._section] + (Step(name, args, kwargs),)
        if kind == 'builtin' and BUILTINS[name].on_chain is not None:
            BUILTINS[name].on_chain(new, *args, **kwargs)
        return new

    def __getattr__(self, name: str) -> Callable[..., 'Pipeline']:
        if name.startswith('_'):
            raise AttributeError(name)
        self._resolve(name, self.batch_class)
        return lambda *args, **kwargs: self._chain(name, args, kwargs)

    @property
    def before(self) -> _Section:
        """Chain a step onto the part run once before the first batch: `p.before.init_variable(...)`."""
        return _Section(self, 'before')

    @property
    def after(self) -> _Section:
        """Chain a step onto the part run once after the last batch: `p.after.save_model(...)`."""
        return _Section(self, 'after')

    def __lshift__(self, other: Any) -> 'Pipeline':
        """`template << dataset` links a runnable copy; `pipeline << {config}` merges config."""
        from ..dataset import Dataset

        if isinstance(other, dict):
            return self._copy(config={**self.config, **other})
        if isinstance(other, Dataset):
            self._check_steps(other.batch_class)
            return self._copy(_dataset=other, models=self.models.child())
        raise BatchkitTypeError(f"Expected `pipeline << dataset` or `pipeline << {{config}}`. "
                                f"Received: {type(other).__name__}")

    def __add__(self, other: 'Pipeline') -> 'Pipeline':
        """Concatenate: p1's steps then p2's, and the variables, models and config of both.

        The right side's config wins on a shared key; a variable both declare keeps the left side's value. A model
        name both declare is an error (ModelError) unless it is the very same declaration (both pipelines were
        chained from one that declares it): two different models under one name would leave one side's steps
        training a model they never declared. Rename one, or use `import_model(name, p1)` in the other.
        """
        if not isinstance(other, Pipeline):
            return NotImplemented
        if self._dataset is not None and other._dataset is not None and self._dataset is not other._dataset:
            raise BatchkitValueError("Expected at most one of the added pipelines to have a dataset. "
                                     "Received: two different datasets. Link the sum to one with `<<`.")
        dataset = self._dataset if self._dataset is not None else other._dataset
        new = self._copy(_dataset=dataset, config={**self.config, **other.config})
        for section in _SECTIONS:
            new._steps[section] = self._steps[section] + other._steps[section]
        if new.batch_class is not None:
            new._check_steps(new.batch_class)
        new.variables.merge(other.variables)
        new.models.merge(other.models)
        return new

    def __repr__(self) -> str:
        names = ' -> '.join(s.name for s in self._steps['main']) or 'empty'
        return f'Pipeline({names}; dataset={self._dataset!r})'

    @property
    def steps(self) -> dict[str, tuple[Step, ...]]:
        """The chained steps by part: {'before': (...), 'main': (...), 'after': (...)}."""
        return dict(self._steps)

    # --- variables ---------------------------------------------------------------------------------------------
    @_step
    def init_variable(self, name: str, default: Any = None, init_on_each_run: Any = None) -> 'Pipeline':
        """Declare a variable. A default that makes values (a class such as `list`, a function, a lambda, a
        partial; or `init_on_each_run=`) is called afresh at each run start; any other default, callable objects
        such as models included, is stored as is and persists across runs."""
        ...

    @_step
    def init_variables(self, *names: Any) -> 'Pipeline':
        """Declare variables: names, a list of names (default None) or a dict {name: default}."""
        ...

    def get_variable(self, name: str, *default: Any) -> Any:
        """The value of variable `name` (also `p.v(name)`); `default` if given and the variable is unknown."""
        return self.variables.get(name, *default)

    def set_variable(self, name: str, value: Any) -> None:
        """Set a variable now (not a step)."""
        self.variables.set(name, value)

    v = get_variable

    @_step
    def update(self, target: Any, value: Any, mode: str = 'w') -> 'Pipeline':
        """A step: store `value` (named expressions evaluated per batch) into `target` in `mode` ('w' 'a' 'e' 'u')."""
        ...

    @_step
    def call(self, fn: Callable, *args: Any, save_to: Any = None, mode: str = 'w', append_to: Any = None,
             **kwargs: Any) -> 'Pipeline':
        """A step: `fn(batch, *args, **kwargs)`; the result goes to `save_to` (or is appended to the older
        `append_to=`), or replaces the batch if it is one."""
        ...

    # --- models --------------------------------------------------------------------------------------------------
    @_step
    def init_model(self, *args: Any, **kwargs: Any) -> 'Pipeline':
        """Declare a model: `init_model(name, cls, mode, config)` (also the older `(mode, cls, name, config)`).

        A name already declared in this pipeline is an error (ModelError, naming the model), so that a second
        `init_model` does not silently drop the first model: pass `replace=True` to replace it on purpose.

        >>> p = ds.p.init_model('m', MyModel, 'static')                      # doctest: +SKIP
        >>> p = p.init_model('m', OtherModel, 'static', replace=True)        # doctest: +SKIP
        """
        ...

    @_step
    def import_model(self, name: str, pipeline: 'Pipeline', replace: bool = False) -> 'Pipeline':
        """Use the very same model object (and lock) as model `name` of another pipeline.

        A name this pipeline already declares (another model, or an import from another pipeline) is an error
        unless `replace=True`; importing the same model again is allowed.
        """
        ...

    @_step
    def train_model(self, name: str, *args: Any, **kwargs: Any) -> 'Pipeline':
        """A step: `model.train(*args, **kwargs)`; also make_data=, save_to=, mode=, use_lock=True."""
        ...

    @_step
    def predict_model(self, name: str, *args: Any, **kwargs: Any) -> 'Pipeline':
        """A step: `model.predict(*args, **kwargs)`; also make_data=, save_to=, mode=, use_lock=True."""
        ...

    @_step
    def test_model(self, name: str, *args: Any, **kwargs: Any) -> 'Pipeline':
        """A step: `model.test(*args, **kwargs)` (or `test_on_batch`); also make_data=, save_to=, mode=."""
        ...

    @_step
    def save_model(self, name: str, *args: Any, **kwargs: Any) -> 'Pipeline':
        """A step: `model.save(*args, **kwargs)` (per batch, or once under `before`/`after`)."""
        ...

    @_step
    def load_model(self, *args: Any, **kwargs: Any) -> 'Pipeline':
        """A step: create model `(name, cls, mode)` and `load(**kwargs)` it (per batch, or once under before)."""
        ...

    def save_model_now(self, name: str, *args: Any, **kwargs: Any) -> None:
        """Save model `name` of this pipeline now."""
        self.models.save_now(self, name, *args, **kwargs)

    def load_model_now(self, *args: Any, **kwargs: Any) -> None:
        """Create a model and load it now: `load_model_now(name, cls, mode, path=...)`."""
        self.models.load_now(self, *args, **kwargs)

    def get_model_by_name(self, name: str, batch: 'Batch | None' = None) -> Any:
        """The model `name` of this pipeline (also `p.m(name)`); a dynamic one is built from `batch`."""
        return self.models.get(self, name, batch).model

    m = get_model_by_name

    # --- running -------------------------------------------------------------------------------------------------
    def gen_batch(self, batch_size: int, n_epochs: Any = DEFAULT, n_iters: int | None = None, shuffle: Any = False,
                  drop_last: bool = False, **options: Any) -> Iterator['Batch']:
        """Yield processed batches; options as in `run` (prefetch, target, executor, bar, ...)."""
        from .runner import RunOptions, iterate
        return iterate(self, RunOptions.make(batch_size, n_epochs, n_iters, shuffle, drop_last, **options))

    def next_batch(self, batch_size: int | None = None, n_epochs: Any = None, n_iters: int | None = None,
                   shuffle: Any = False, drop_last: bool = False, **options: Any) -> 'Batch':
        """The next processed batch of a stored run; the same rules as `Dataset.next_batch`.

        It cycles forever unless `n_epochs`/`n_iters` is given; other arguments start a new run; when a finite
        run ends, StopIteration is raised and the next call starts over. With no arguments after
        `run(..., lazy=True)` it goes batch by batch through the run those stored arguments describe (so
        `n_epochs=1` unless they say otherwise, as in `run`), then raises StopIteration.

        >>> p = ds.p.normalize().run(8, n_epochs=1, lazy=True)     # doctest: +SKIP
        >>> batch = p.next_batch()                                  # doctest: +SKIP
        """
        from ..index import NextBatch
        if self._next_batch is None:
            self._next_batch = NextBatch()
        given = n_epochs is not None or n_iters is not None or shuffle is not False or drop_last or options
        if batch_size is None:
            if self._lazy is None or given:
                raise BatchkitTypeError("Expected next_batch(batch_size, ...), or next_batch() after run(..., "
                                        f"lazy=True). Received: batch_size=None"
                                        f"{' with other arguments' if given else ' and no stored run'}.")
            stored = self._lazy
            return self._next_batch.next(('lazy', stored['token']),
                                         lambda: self.gen_batch(*stored['args'], **stored['kwargs']))
        key = (batch_size, n_epochs, n_iters, shuffle_key(shuffle), drop_last,
               repr(sorted(options.items(), key=lambda kv: kv[0])))

        def start() -> Iterator['Batch']:
            from .runner import RunOptions, iterate
            opts = RunOptions.make(batch_size, n_epochs, n_iters, shuffle, drop_last,
                                   _forever=n_epochs is None and n_iters is None, **options)
            return iterate(self, opts)
        return self._next_batch.next(key, start)

    def _run_options(self, args: tuple, kwargs: dict) -> 'RunOptions':
        """The checked options of `run(*args, **kwargs)`; a signature error names `run` itself."""
        from .runner import RunOptions
        if len(args) > len(_RUN_POSITIONAL):
            raise BatchkitTypeError(f"Expected at most {len(_RUN_POSITIONAL)} positional arguments to run: "
                                    f"{', '.join(_RUN_POSITIONAL)}. Received: {len(args)}, {args!r:.80}. "
                                    "Pass the other options by keyword, e.g. run(32, prefetch=2).")
        options = dict(zip(_RUN_POSITIONAL, args))
        twice = sorted(set(options) & set(kwargs))
        if twice:
            raise BatchkitTypeError(f"Expected each argument of run once. Received: {', '.join(twice)} both by "
                                    "position and by keyword.")
        options.update(kwargs)
        if 'batch_size' not in options:
            raise BatchkitTypeError(f"Expected run(batch_size, ...): the batch size first. Received: run() with only "
                                    f"{', '.join(f'{k}=' for k in kwargs)}. Pass it, e.g. run(32, n_epochs=1).")
        return RunOptions.make(options.pop('batch_size'), options.pop('n_epochs', DEFAULT),
                               options.pop('n_iters', None), options.pop('shuffle', False),
                               options.pop('drop_last', False), **options)

    def run(self, *args: Any, lazy: bool = False, **kwargs: Any) -> 'Pipeline':
        """Run the pipeline through all batches of its dataset; returns the pipeline.

        `run()` without arguments runs with the arguments stored by `run(..., lazy=True)`.

        Keyword Args:
            batch_size (int): items per batch (also the first positional argument).
            n_epochs (int): passes over the dataset (default 1 when `n_iters` is not given).
            n_iters (int | None): the exact number of batches, cycling through epochs; not with `n_epochs`.
            shuffle (bool | int | numpy.random.Generator): False, True, an int seed or a Generator.
            drop_last (bool): drop the last short batch of each epoch.
            prefetch (int): process up to this many batches ahead in workers (0: all in the calling thread).
            target (str): 'threads' (the default) or 'processes', the workers of `prefetch`.
            executor (concurrent.futures.Executor | None): an executor to run the workers on (e.g. a Dask
                client's `get_executor()`).
            engine (str | None): 'dask' to run the workers on a Dask cluster opened for this run.
            address (str | None): the Dask scheduler's address for `engine='dask'` (None starts a LocalCluster).
            bar (bool | dict): True for a tqdm progress bar, or a dict of tqdm options (`desc` and `postfix` may
                be named expressions).
            profile (bool): time every step; the table goes to `pipeline.profile_info`.
            ignore_exceptions (bool): drop a batch whose steps raise (logged on the `batchkit` logger) instead
                of stopping.
            seed (int | None): the seed of the batches' random generators (default: the `shuffle` seed, else
                fresh entropy).
            reset (str | list | None): 'models' to rebuild the pipeline's models first, 'variables' to give
                every variable its declared value again (values set or updated by earlier runs are dropped),
                or a list of both.
            lazy (bool): only store the arguments, for a later `run()`.

        >>> p.run(batch_size=32, n_epochs=2, shuffle=42, prefetch=2)      # doctest: +SKIP
        """
        _check_bool('lazy', lazy)
        if not args and not kwargs and not lazy:
            if self._lazy is None:
                raise BatchkitValueError("Expected run(batch_size, ...) or arguments stored by run(..., lazy=True). "
                                         "Received: run() with neither.")
            args, kwargs = self._lazy['args'], self._lazy['kwargs']
        opts = self._run_options(args, kwargs)
        if lazy:
            if self.dataset is not None:      # the plan's own checks (a batch size too big, ...) now, not later
                BatchPlan(len(self.dataset), opts.batch_size, opts.n_epochs, opts.n_iters, opts.shuffle, opts.drop_last)
            self._lazy = {'args': args, 'kwargs': kwargs, 'token': object()}   # token: which stored run
            return self
        from .runner import iterate
        # A zero-length deque drops each batch at once: no batch stays alive while the next one is made.
        collections.deque(iterate(self, opts), maxlen=0)
        return self
