"""The run loop: SkipBatch, StopPipeline, errors, progress bars and profiling."""
from __future__ import annotations

import re

import pytest

from batchkit import B, BatchkitTypeError, BatchkitValueError, I, R, SkipBatch, StopPipeline, V


def _raise_at(first_id: int, exc: type):
    def fn(batch):
        if batch.indices[0] == first_id:
            raise exc
    return fn


# --- SkipBatch / StopPipeline ------------------------------------------------------------------------------------
def test_skip_batch_drops_exactly_that_batch(ds):
    p = (ds.p.init_variable('seen', list).init_variable('late', list)
         .update(V('seen', mode='a'), I('current'))
         .call(_raise_at(3, SkipBatch))
         .update(V('late', mode='a'), I('current')))
    yielded = [b.indices.tolist() for b in p.gen_batch(3)]
    assert yielded == [[0, 1, 2], [6, 7, 8], [9]]
    assert p.get_variable('seen') == [1, 2, 3, 4] and p.get_variable('late') == [1, 3, 4]


def test_skip_batch_in_every_batch_yields_nothing_and_finishes(ds):
    p = ds.p.call(lambda b: (_ for _ in ()).throw(SkipBatch())).after.update(V('done'), True)
    assert list(p.gen_batch(3)) == []
    assert p.get_variable('done') is True


def test_skip_batch_raised_in_an_action(ds):
    events = []
    p = ds.p.call(_raise_at(4, SkipBatch)).log(events)
    p.run(2)
    assert [e[1][0] for e in events] == [0, 2, 6, 8]


def test_stop_pipeline_ends_the_run_cleanly(ds):
    p = (ds.p.init_variable('seen', list).call(_raise_at(6, StopPipeline))
         .update(V('seen', mode='a'), B('indices')[0])
         .after.update(V('after'), 'ran'))
    assert p.run(3) is p
    assert [int(i) for i in p.get_variable('seen')] == [0, 3]
    assert p.get_variable('after') == 'ran'


def test_stop_pipeline_in_gen_batch_stops_the_iteration(ds):
    batches = list(ds.p.call(_raise_at(4, StopPipeline)).gen_batch(2, n_epochs=3))
    assert [b.indices.tolist() for b in batches] == [[0, 1], [2, 3]]


def test_stop_pipeline_with_prefetch(ds):
    batches = list(ds.p.call(_raise_at(4, StopPipeline)).gen_batch(2, n_epochs=3, prefetch=2))
    assert [b.indices.tolist() for b in batches] == [[0, 1], [2, 3]]


def test_skip_batch_with_prefetch(ds):
    batches = list(ds.p.call(_raise_at(4, SkipBatch)).gen_batch(2, prefetch=2))
    assert [b.indices[0] for b in batches] == [0, 2, 6, 8]


def test_an_error_in_an_action_reaches_the_caller(ds):
    def boom(batch):
        raise ZeroDivisionError('boom')
    with pytest.raises(ZeroDivisionError, match='boom'):
        ds.p.call(boom).run(3)


def test_action_returning_a_non_batch_is_a_clear_error(ds):
    from batchkit import ArrayBatch, Dataset, action

    class Bad(ArrayBatch):
        @action
        def oops(self):
            return 42
    with pytest.raises(BatchkitTypeError, match=r"action 'oops' to return a batch.*Received: int 42.*return self"):
        Dataset.from_arrays(batch_class=Bad, x=[1, 2]).p.oops().run(1)


@pytest.mark.parametrize('kwargs, exc, message', [
    ({'n_epochs': 1, 'n_iters': 2}, BatchkitValueError, r"either `n_epochs` or `n_iters`"),
    ({'n_epochs': None}, BatchkitValueError, r"would never stop"),
    ({'bar': True, 'prefech': 2}, BatchkitTypeError, r"'prefech'.*Did you mean 'prefetch'"),
    ({'prefetch': -1}, BatchkitValueError, r"`prefetch` to be a non-negative int"),
])
def test_bad_run_arguments_fail_before_any_batch(ds, kwargs, exc, message):
    events = []
    with pytest.raises(exc, match=message):
        ds.p.log(events).run(3, **kwargs)
    assert events == []


# --- progress bar --------------------------------------------------------------------------------------------------
class FakeBar:
    """Records what the run asks of its tqdm bar."""
    made: list = []

    def __init__(self, total=None, **kwargs):
        self.total, self.kwargs, self.updates, self.descriptions, self.closed = total, kwargs, 0, [], False
        FakeBar.made.append(self)

    def update(self, n=1):
        self.updates += n

    def set_description(self, desc, refresh=True):
        self.descriptions.append(desc)

    def set_postfix(self, *args, **kwargs):
        self.postfix = (args, kwargs)

    def close(self):
        self.closed = True


@pytest.fixture
def fake_tqdm(monkeypatch):
    import tqdm.auto
    FakeBar.made = []
    monkeypatch.setattr(tqdm.auto, 'tqdm', FakeBar)
    return FakeBar.made


@pytest.mark.parametrize('run_kwargs, total', [
    ({'n_epochs': 1}, 4), ({'n_epochs': 3}, 12), ({'n_iters': 7}, 7), ({'n_epochs': 2, 'drop_last': True}, 6)])
def test_bar_has_the_total_number_of_batches(ds, fake_tqdm, run_kwargs, total):
    ds.p.add(1).run(3, bar=True, **run_kwargs)
    (bar,) = fake_tqdm
    assert bar.total == total and bar.updates == total and bar.closed


def test_no_bar_by_default(ds, fake_tqdm):
    ds.p.add(1).run(3)
    assert fake_tqdm == []


def test_bar_shows_a_live_variable(ds, fake_tqdm):
    p = ds.p.init_variable('loss', 0).update(V('loss'), I('current') * 10)
    p.run(3, bar={'desc': V('loss'), 'postfix': {'n': I('current')}, 'ncols': 80})
    (bar,) = fake_tqdm
    assert bar.descriptions == ['10', '20', '30', '40']
    assert bar.kwargs == {'ncols': 80} and bar.postfix[0] == ({'n': 4},)


def test_bar_counts_only_batches_that_reach_the_end(ds, fake_tqdm):
    ds.p.call(_raise_at(3, SkipBatch)).run(3, bar=True)
    assert fake_tqdm[0].total == 4 and fake_tqdm[0].updates == 3


def test_bar_is_closed_when_the_run_fails(ds, fake_tqdm):
    with pytest.raises(ZeroDivisionError):
        ds.p.call(lambda b: 1 / 0).run(3, bar=True)
    assert fake_tqdm[0].closed


def test_real_tqdm_bar_prints_the_total(ds, capsys):
    ds.p.add(1).run(3, n_epochs=2, bar=True)
    err = capsys.readouterr().err
    assert re.search(r'\b8/8\b', err), err


# --- profile -------------------------------------------------------------------------------------------------------
def test_profile_counts_every_action_once_per_batch(ds):
    p = ds.p.add(1).normalize().call(len).before.update(V('x'), 1)
    p.run(3, n_epochs=2, profile=True)
    info = p.profile_info.as_dict()
    main = {label: row for label, row in info.items() if label.startswith('main')}
    assert [row['calls'] for row in main.values()] == [8, 8, 8]
    assert any('add' in label for label in main) and any('normalize' in label for label in main)
    assert [row['calls'] for label, row in info.items() if label.startswith('before')] == [1]
    assert all(row['total_s'] >= 0 and row['mean_us'] >= 0 for row in info.values())


def test_profile_counts_skip_a_batch_after_the_raising_op(ds):
    p = ds.p.add(1).call(_raise_at(3, SkipBatch)).normalize()
    p.run(3, profile=True)
    calls = [row['calls'] for row in p.profile_info.as_dict().values()]
    assert calls == [4, 4, 3]


def test_profile_info_prints_as_a_table(ds):
    p = ds.p.add(1).normalize()
    p.run(5, profile=True)
    lines = str(p.profile_info).splitlines()
    assert re.match(r'op\s+calls\s+total s\s+mean us', lines[0])
    assert len(lines) == 3 and re.search(r'add\s+2\s', lines[1]) and re.search(r'normalize\s+2\s', lines[2])
    assert repr(p.profile_info) == str(p.profile_info)


def test_profile_info_is_none_without_profiling_and_fresh_per_run(ds):
    p = ds.p.add(1)
    p.run(5)
    assert p.profile_info is None
    p.run(5, profile=True)
    p.run(2, profile=True)
    assert [row['calls'] for row in p.profile_info.as_dict().values()] == [5]
    assert p.add(2).profile_info is None


def test_before_and_after_draw_from_their_own_random_streams(ds):
    draw = R('integers', 0, 10 ** 9)
    p = (ds.p.init_variable('before').init_variable('after').init_variable('main', default=list)
         .before.update(V('before'), draw).after.update(V('after'), draw).update(V('main', mode='a'), draw))
    p.run(5, seed=123)
    draws = [p.get_variable('before'), p.get_variable('after'), *p.get_variable('main')]
    assert len(set(draws)) == 4                    # a before draw once repeated the first batch's
    again = p.run(5, seed=123)
    assert [again.get_variable('before'), again.get_variable('after'), *again.get_variable('main')] == draws
