"""Model errors: each names the model, says what was expected and received, and how to fix it."""
from __future__ import annotations

import numpy as np
import pytest

import numpy_models as nm
from batchkit import B, BatchkitError, Dataset, F, I, M, Pipeline, R, V
from batchkit.errors import ModelError, UnknownNameError
from batchkit.models import BaseModel


def _run(p, **kw):
    return p.run(50, n_epochs=1, **kw)


def _unknown_in_train(ds):
    _run(ds.p.init_model('my_model', nm.LinearRegression, 'static').train_model('my_modle', B('images'), B('labels')))


def _unknown_in_predict(ds):
    _run(ds.p.init_model('my_model', nm.LinearRegression, 'static').predict_model('my_mdoel', B('images')))


def _unknown_never_initialized(ds):
    _run(ds.p.train_model('resnet', B('images'), B('labels')))


def _unknown_in_action(ds):
    _run(ds.p.peek_model('basic_modle'))


def _unknown_in_batch_outside_pipeline(ds):
    next(ds.gen_batch(10)).get_model_by_name('advanced_modle')


def _unknown_model_expression(ds):
    _run(ds.p.init_model('m', nm.LinearRegression, 'static').use_model(M('mm')))


def _unknown_batch_class_model(ds):
    ds.p.init_model('advanced_modle')


def _unknown_batch_class_model_in_template(ds):
    _run(Pipeline().init_model('fc_modle') << ds)


def _import_unknown(ds):
    source = ds.p.init_model('resnet', nm.LinearRegression, 'static')
    Pipeline().import_model('resnett', source)


def _import_not_a_pipeline(ds):
    Pipeline().import_model('resnet', object())


def _dynamic_before_the_first_batch(ds):
    ds.p.init_model('late', nm.LinearRegression, 'dynamic').save_model_now('late', path='x.npz')


def _dynamic_get_before_run(ds):
    ds.p.init_model('late', nm.LinearRegression, 'dynamic').get_model_by_name('late')


def _static_config_with_batch(ds):
    ds.p.init_model('shape_model', nm.LinearRegression, 'static', config={'n_features': B('images_shape')})


def _static_config_with_function(ds):
    ds.p.init_model('fn_model', nm.LinearRegression, 'static', config={'n_features': F(lambda b: b.images.shape[1])})


def _static_config_with_random(ds):
    ds.p.init_model('rnd_model', nm.LinearRegression, 'static', config={'lr': R('uniform', 0, 1)})


def _static_config_with_iteration(ds):
    ds.p.init_model('it_model', 'static', nm.LinearRegression, config={'lr': 1 / I('current')})


def _static_config_unknown_variable(ds):
    ds.p.init_model('v_model', nm.LinearRegression, 'static', config={'n_features': V('n_feats')})


def _dynamic_config_raises(ds):
    _run(ds.p.init_model('dyn', nm.LinearRegression, 'dynamic', config={'lr': F(lambda b: 1 / 0)}))


def _dynamic_config_unknown_component(ds):
    _run(ds.p.init_model('dyn', nm.LinearRegression, 'dynamic', config={'n_features': B('imagez')}))


def _load_missing_path_now(ds):
    ds.p.load_model_now('my_model', nm.LinearRegression, 'static', path='/nonexistent/dir/model.npz')


def _load_missing_path_before(ds):
    _run(ds.p.before.load_model('my_model', nm.LinearRegression, 'dynamic', path='/nonexistent/model.npz'))


def _load_missing_path_config(ds):
    ds.p.init_model('my_model', nm.LinearRegression, 'static', config={'build': False,
                                                                      'load': {'path': '/nonexistent/m.npz'}})


def _constructor_raises_static(ds):
    ds.p.init_model('bad_net', nm.FailingModel, 'static')


def _constructor_raises_dynamic(ds):
    _run(ds.p.init_model('bad_net', nm.FailingModel, 'dynamic').train_model('bad_net', B('images'), B('labels')))


def _no_train(ds):
    _run(ds.p.init_model('no_train', nm.NoTrainModel, 'static').train_model('no_train', B('images'), B('labels')))


def _base_model_without_train(ds):
    _run(ds.p.init_model('rec', nm.RecordingModel, 'static').train_model('rec', B('images'), B('labels')))


def _base_model_without_predict(ds):
    _run(ds.p.init_model('rec', nm.RecordingModel, 'static').predict_model('rec', B('images')))


def _no_save(ds):
    ds.p.init_model('no_train', nm.NoTrainModel, 'static').save_model_now('no_train', path='x')


def _mistyped_mode(ds):
    ds.p.init_model('m', nm.LinearRegression, 'statc')


def _unknown_keyword(ds):
    ds.p.init_model('m', nm.LinearRegression, 'static', cfg={})


def _no_name_no_class(ds):
    ds.p.init_model('static')


def _config_not_a_dict(ds):
    nm.LinearRegression(config=[1, 2])


def _load_not_a_dict(ds):
    nm.RecordingModel(config={'load': '/some/path'})


def _make_data_not_callable(ds):
    _run(ds.p.init_model('m', nm.LinearRegression, 'static').train_model('m', make_data='images'))


def _make_data_returns_a_list(ds):
    _run(ds.p.init_model('m', nm.LinearRegression, 'static').train_model('m', make_data=lambda batch, model: [1]))


def _two_targets_one_output(ds):
    _run(ds.p.init_model('m', nm.LinearRegression, 'static').init_variables('a', 'b')
         .train_model('m', B('images'), B('labels'), save_to=[V('a'), V('b')]))


ERRORS = [
    (_unknown_in_train, UnknownNameError, r"'my_modle'.*Did you mean 'my_model'"),
    (_unknown_in_predict, UnknownNameError, r"'my_mdoel'.*Did you mean 'my_model'"),
    (_unknown_never_initialized, UnknownNameError, r"'resnet'.*init_model\('resnet', ModelClass"),
    (_unknown_in_action, UnknownNameError, r"'basic_modle'.*Did you mean 'basic_model'"),
    (_unknown_in_batch_outside_pipeline, UnknownNameError, r"'advanced_modle'.*Did you mean 'advanced_model'"),
    (_unknown_model_expression, UnknownNameError, r"'mm'.*Did you mean 'm'"),
    (_unknown_batch_class_model, UnknownNameError, r"init_model\('advanced_modle'\).*Did you mean 'advanced_model'"),
    (_unknown_batch_class_model_in_template, UnknownNameError, r"'fc_modle'.*@model of RegBatch"),
    (_import_unknown, UnknownNameError, r"import_model\('resnett'.*Did you mean 'resnet'"),
    (_import_not_a_pipeline, TypeError, r"Expected import_model\(name, pipeline\).*Received: object"),
    (_dynamic_before_the_first_batch, ModelError, r"dynamic model 'late'.*first batch"),
    (_dynamic_get_before_run, ModelError, r"dynamic model 'late'"),
    (_static_config_with_batch, ModelError, r"static model 'shape_model'.*need no batch.*mode='dynamic'"),
    (_static_config_with_function, ModelError, r"static model 'fn_model'.*mode='dynamic'"),
    (_static_config_with_random, ModelError, r"static model 'rnd_model'.*mode='dynamic'"),
    (_static_config_with_iteration, ModelError, r"static model 'it_model'.*mode='dynamic'"),
    (_static_config_unknown_variable, KeyError, r"config of model 'v_model'.*'n_feats'.*init_variable"),
    (_dynamic_config_raises, ModelError, r"config of model 'dyn'.*ZeroDivisionError"),
    (_dynamic_config_unknown_component, AttributeError, r"config of model 'dyn'.*'imagez'.*Did you mean 'images'"),
    (_load_missing_path_now, ModelError, r"model 'my_model'.*'/nonexistent/dir/model.npz'.*does not exist.*save_model"),
    (_load_missing_path_before, ModelError, r"model 'my_model'.*'/nonexistent/model.npz'"),
    (_load_missing_path_config, ModelError, r"model 'my_model'.*'/nonexistent/m.npz'"),
    (_constructor_raises_static, ModelError, r"model 'bad_net' \(FailingModel\).*ValueError: bad layer size"),
    (_constructor_raises_dynamic, ModelError, r"model 'bad_net' \(FailingModel\).*bad layer size"),
    (_no_train, TypeError, r"model 'no_train' \(NoTrainModel\).*'train' or 'train_on_batch'"),
    (_base_model_without_train, TypeError, r"model 'rec' \(RecordingModel\).*'train' or 'train_on_batch'"),
    (_base_model_without_predict, TypeError, r"model 'rec' \(RecordingModel\).*'predict' or 'predict_on_batch'"),
    (_no_save, TypeError, r"model 'no_train' \(NoTrainModel\).*'save'"),
    (_mistyped_mode, TypeError, r"'statc'.*Did you mean 'static'"),
    (_unknown_keyword, TypeError, r"unknown keywords \['cfg'\]"),
    (_no_name_no_class, TypeError, r"Expected a model name or class.*Received: neither"),
    (_config_not_a_dict, TypeError, r"Expected a model config dict. Received: list"),
    (_load_not_a_dict, TypeError, r"config\['load'\] to be a dict"),
    (_make_data_not_callable, TypeError, r"make_data to be a callable"),
    (_make_data_returns_a_list, TypeError, r"make_data of train_model to return a dict.*Received: list \[1\]"),
    (_two_targets_one_output, ValueError, r"Expected 2 values for the 2 targets"),
]


@pytest.mark.parametrize('fn, exc, regex', ERRORS, ids=[fn.__name__.strip('_') for fn, *_ in ERRORS])
def test_model_errors(reg_ds, tmp_path, monkeypatch, fn, exc, regex):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(exc, match=regex) as info:
        fn(reg_ds)
    assert isinstance(info.value, BatchkitError)


def test_a_failed_dynamic_build_is_retried_and_names_the_model(reg_ds):
    calls = []

    class Flaky(nm.LinearRegression):
        def _build(self):
            calls.append(1)
            if len(calls) == 1:
                raise RuntimeError('out of memory')
            super()._build()

    p = reg_ds.p.init_model('flaky', Flaky, 'dynamic').train_model('flaky', B('images'), B('labels'))
    with pytest.raises(ModelError, match="'flaky'.*out of memory"):
        p.run(50, n_epochs=1)
    p.run(50, n_epochs=1)
    assert p.get_model_by_name('flaky').steps == 4 and len(calls) == 2


def test_errors_happen_before_any_batch_for_class_models():
    """init_model(name) of a template is checked at run start: no batch is processed."""
    seen = []
    x, y = nm.make_regression(20)
    ds = Dataset(20, batch_class=nm.RegBatch, preloaded={'images': x, 'labels': y})
    p = Pipeline().call(lambda b: seen.append(1)).init_model('nope') << ds
    with pytest.raises(UnknownNameError):
        p.run(5, n_epochs=1)
    assert seen == []


def test_base_model_placeholder_messages():
    with pytest.raises(TypeError, match=r"Expected RecordingModel to implement `predict`"):
        nm.RecordingModel().predict(np.zeros(3))
    assert isinstance(nm.RecordingModel(), BaseModel)


@pytest.mark.parametrize('step', ['train_model', 'predict_model', 'test_model'])
@pytest.mark.parametrize('options, pattern', [
    ({'save_to': 5}, r"save_to to be B\('name'\), V\('name'\).*Received: 5"),
    ({'append_to': B()}, r"save_to to be B\('name'\).*Received: B\(\)"),
    ({'save_to': V('loss'), 'mode': 'zz'}, r"update mode.*Received: mode='zz'"),
    ({'make_data': 'images'}, r"make_data to be a callable"),
    ({'use_lock': 'm_lock'}, r"`use_lock` to be True or False.*Received: use_lock='m_lock' of type str"),
])
def test_model_step_options_fail_when_chained(reg_ds, step, options, pattern):
    p = reg_ds.p.init_model('m', nm.LinearRegression, 'static')
    with pytest.raises(BatchkitError, match=pattern):
        getattr(p, step)('m', B('images'), **options)          # no run: the chain itself refuses
