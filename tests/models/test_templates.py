"""Models of template pipelines: static ones shared by all children, dynamic ones each child's own; imports."""
from __future__ import annotations

import threading

import numpy as np
import pytest

import numpy_models as nm
from batchkit import B, Dataset, Pipeline, V


@pytest.fixture
def template():
    """Seed 002: m1 static, m2 dynamic, both trained."""
    return (Pipeline()
            .init_model('m1', nm.LinearRegression, 'static')
            .init_model('m2', nm.LinearRegression, 'dynamic')
            .init_variable('loss2', default=list)
            .train_model('m1', B('images'), B('labels'))
            .train_model('m2', B('images'), B('labels'), save_to=V('loss2', mode='a'))
            .train_advanced())


@pytest.fixture
def two_datasets():
    made = []
    for seed, n in ((5, 100), (6, 60)):
        x, y = nm.make_regression(n, seed=seed)
        made.append(Dataset(n, batch_class=nm.RegBatch, preloaded={'images': x, 'labels': y}))
    return made


def test_static_model_is_created_once_in_the_template_and_shared(template, two_datasets, built):
    assert nm.LinearRegression.builds.value == 1                    # m1, when init_model was chained
    m1 = template.get_model_by_name('m1')
    mnist = (template << two_datasets[0]).run(20, n_epochs=2)
    cifar = (template << two_datasets[1]).run(20, n_epochs=2)
    assert mnist.get_model_by_name('m1') is cifar.get_model_by_name('m1') is m1
    assert mnist.models.get(mnist, 'm1').lock is cifar.models.get(cifar, 'm1').lock
    assert m1.steps == 10 + 6                                        # trained by both children
    assert not any(name == 'm1' for _, name, *_ in built)              # the children built no m1 of their own


def test_each_child_gets_its_own_dynamic_models(template, two_datasets, built):
    mnist = (template << two_datasets[0]).run(20, n_epochs=2)
    cifar = (template << two_datasets[1]).run(20, n_epochs=2)
    a, b = mnist.get_model_by_name('m2'), cifar.get_model_by_name('m2')
    assert a is not b and (a.steps, b.steps) == (10, 6)
    assert len(mnist.get_variable('loss2')) == 10 and len(cifar.get_variable('loss2')) == 6
    adv_a, adv_b = mnist.get_model_by_name('advanced_model'), cifar.get_model_by_name('advanced_model')
    assert adv_a is not adv_b and (len(adv_a['losses']), len(adv_b['losses'])) == (10, 6)
    assert nm.DYNAMIC_BUILDS.value == 2
    assert sorted((sender is mnist, name) for sender, name, *_ in built) == \
        [(False, 'advanced_model'), (False, 'm2'), (True, 'advanced_model'), (True, 'm2')]
    with pytest.raises(Exception, match="dynamic model 'm2'"):
        template.get_model_by_name('m2')                              # the template itself never builds it


def test_a_child_built_twice_from_one_template_gets_fresh_dynamic_models(template, two_datasets):
    first = (template << two_datasets[0]).run(20, n_epochs=1)
    second = (template << two_datasets[0]).run(20, n_epochs=1)
    assert first.get_model_by_name('m2') is not second.get_model_by_name('m2')
    assert first.get_model_by_name('m1') is second.get_model_by_name('m1')


def test_config_merge_keeps_the_shared_static_model(template, two_datasets):
    child = (template << {'lr': 0.5}) << two_datasets[0]
    assert child.get_model_by_name('m1') is template.get_model_by_name('m1')
    assert child.config == {'lr': 0.5}


def test_children_trained_concurrently_share_the_static_lock(two_datasets):
    template = (Pipeline().init_model('m', nm.OverlapDetector, 'static')
                .train_model('m', B('images'), B('labels')))
    children = [template << ds for ds in two_datasets]
    errors = []

    def run(p):
        try:
            p.run(4, n_epochs=3, prefetch=2)
        except BaseException as exc:   # noqa: BLE001 - reported by the test
            errors.append(exc)
    threads = [threading.Thread(target=run, args=(c,)) for c in children]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    model = template.get_model_by_name('m')
    assert model.overlaps == 0 and model.calls == model.steps == 3 * (25 + 15)


def test_reset_in_one_child_does_not_touch_the_template_or_siblings(template, two_datasets):
    a, b = (template << two_datasets[0]), (template << two_datasets[1])
    m1 = template.get_model_by_name('m1')
    a.run(20, n_epochs=1, reset='models')
    assert a.get_model_by_name('m1') is not m1
    assert b.get_model_by_name('m1') is m1 and template.get_model_by_name('m1') is m1


def test_concatenated_pipelines_share_models(two_datasets):
    models = Pipeline().init_model('m', nm.LinearRegression, 'static')
    training = Pipeline().train_model('m', B('images'), B('labels'))
    p = (models + training) << two_datasets[0]
    p.run(20, n_epochs=1)
    assert p.get_model_by_name('m') is models.get_model_by_name('m') and models.get_model_by_name('m').steps == 5


def test_import_into_a_template_before_the_source_ran(reg_ds, two_datasets):
    """The import resolves on first use: the very same object the source trains (a dynamic one too)."""
    train = (reg_ds.p.init_model('net', nm.LinearRegression, 'dynamic')
             .train_model('net', B('images'), B('labels')))
    infer_template = (Pipeline()
                      .import_model('net', train)
                      .predict_model('net', B('images'), save_to=B('predictions')))
    train.run(20, n_epochs=10)
    infer = infer_template << two_datasets[1]
    batch = infer.next_batch(60, n_epochs=1)
    net = train.get_model_by_name('net')
    assert infer.get_model_by_name('net') is net and net.steps == 100
    assert np.array_equal(batch.predictions, net.predict(batch.images))
    train.run(20, n_epochs=1)                               # training goes on: the import sees it
    assert infer.get_model_by_name('net').steps == 110


def test_template_with_a_batch_class_model_by_name_only(cardio_ds):
    """Seed 003: Pipeline(config={'fc_model': config}).init_model('fc_model'), linked later."""
    template = Pipeline(config={'fc_model': {}}).init_model('fc_model').init_variable('prediction', default=list) \
        .predict_on_batch('fc_model')
    a, b = (template << cardio_ds), (template << cardio_ds)
    a.run(50, n_epochs=1, prefetch=4)
    b.run(50, n_epochs=1)
    assert nm.FC_BUILDS.value == 2 and a.get_model_by_name('fc_model') is not b.get_model_by_name('fc_model')
    assert len(a.get_variable('prediction')) == 4
