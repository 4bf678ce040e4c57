"""The hidden Markov model estimators against hmmlearn step by step, out of core, and on bad input."""

from __future__ import annotations

import warnings

import dask
import dask.array as da
import numpy as np
import pytest
import zarr
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from sklearn.base import clone

import daskem
from daskem.exceptions import InputError, NotFittedError
from tests.helpers import write_zarr

hmmlearn = pytest.importorskip("hmmlearn.hmm", reason="hmmlearn is part of the test install")

K, D = 3, 2
STARTPROB = np.array([0.6, 0.3, 0.1])
TRANSMAT = np.array([[0.9, 0.05, 0.05], [0.1, 0.8, 0.1], [0.05, 0.15, 0.8]])
LENGTHS = [500, 700, 300]
SHIFT = 100.0  # far enough from the origin that the statistics must be taken about the means


def gaussian_sequences(n_steps: int = 1500, seed: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Steps of a sticky 3-state Gaussian HMM 100 from the origin, and their states."""
    model = hmmlearn.GaussianHMM(K, "full")
    model.startprob_, model.transmat_ = STARTPROB, TRANSMAT
    model.means_ = np.array([[0.0, 0.0], [3.0, 3.0], [-3.0, 3.0]]) + SHIFT
    model.covars_ = np.stack([np.eye(D) * v for v in (1.0, 0.5, 2.0)])
    return model.sample(n_steps, random_state=seed)


def start(X: np.ndarray) -> dict[str, np.ndarray]:
    """A start that leaves Baum–Welch work to do: uniform start probabilities, a mildly sticky transition
    matrix, three rows as means and the data's covariance for every state."""
    transmat = np.full((K, K), 1 / K) + 0.2 * np.eye(K)
    return {"startprob_": np.full(K, 1 / K), "transmat_": transmat / transmat.sum(axis=1, keepdims=True),
            "means_": X[[0, 600, 1200]], "covars_": np.stack([np.cov(X.T)] * K)}


def typed(covariances: np.ndarray, covariance_type: str) -> np.ndarray:
    diagonals = np.diagonal(covariances, axis1=1, axis2=2)
    return {"full": covariances, "tied": covariances[0], "diag": diagonals,
            "spherical": diagonals.mean(axis=1)}[covariance_type]


def their_covariances(model, covariance_type: str) -> np.ndarray:
    """hmmlearn's covariances in the shape of the type (its ``covars_`` getter mislays tied and spherical ones,
    so its own arrays are read)."""
    if covariance_type == "full":
        return model.covars_
    return model._covars_.mean(axis=1) if covariance_type == "spherical" else model._covars_


def set_attributes(model, values):
    for name, value in values.items():
        setattr(model, name, value)
    return model


def assert_close(ours, theirs, tolerance=1e-8):
    """Equal to ``tolerance`` of the array's scale."""
    theirs = np.asarray(theirs)
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=tolerance * max(1.0, np.abs(theirs).max()))


def stepped(model, X, lengths, **fit):
    """The model's parameters after each iteration of one fit (from the callbacks)."""
    seen = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # max_iter reached
        model.fit(X, lengths, callbacks=[seen.append], **fit)
    return [info.params for info in seen]


@pytest.mark.parametrize("covariance_type", ["full", "tied", "diag", "spherical"])
def test_each_step_equals_hmmlearns(covariance_type):
    """Five Baum–Welch steps from the same start, three sequences, sequences split over chunks of 97 rows:
    start and transition probabilities, means and covariances equal hmmlearn's after every step to 1e-8 of each
    array's scale, and so do the log-likelihoods (hmmlearn's covariance prior and daskem's reg_covar both 0)."""
    X, _ = gaussian_sequences()
    values = start(X)
    ours = set_attributes(daskem.GaussianHMM(K, covariance_type=covariance_type, reg_covar=0.0, init_params="",
                                             max_iter=5, tol=0.0, chunk_rows=97), values)
    steps = stepped(ours, X, LENGTHS)
    theirs = hmmlearn.GaussianHMM(K, covariance_type, covars_prior=0.0, init_params="", n_iter=1,
                                  implementation="scaling")
    set_attributes(theirs, {**values, "covars_": typed(values["covars_"], covariance_type)})
    for step, params in enumerate(steps):
        theirs.fit(X, LENGTHS)  # one step from its own attributes
        assert_close(params.startprob, theirs.startprob_)
        assert_close(params.transmat, theirs.transmat_)
        assert_close(params.emission.means, theirs.means_)
        assert_close(params.emission.covariances, their_covariances(theirs, covariance_type))
        assert ours.history_[step] * len(X) == pytest.approx(theirs.monitor_.history[-1], rel=1e-10)
    assert_close(ours.covariances_, their_covariances(theirs, covariance_type))


def test_poisson_steps_equal_hmmlearns():
    """PoissonHMM from the same start, split over chunks of 64 rows: every step's parameters to 1e-8 of scale."""
    rng = np.random.default_rng(5)
    truth = hmmlearn.PoissonHMM(K)
    truth.startprob_, truth.transmat_ = STARTPROB, TRANSMAT
    truth.lambdas_ = np.array([[1.0, 10.0, 3.0], [6.0, 2.0, 0.5], [15.0, 15.0, 8.0]])
    X, _ = truth.sample(1500, random_state=rng.integers(1000))
    values = {"startprob_": np.full(K, 1 / K), "transmat_": np.full((K, K), 1 / K),
              "lambdas_": X[[0, 700, 1400]].astype(float) + 0.5}
    ours = set_attributes(daskem.PoissonHMM(K, init_params="", max_iter=5, tol=0.0, chunk_rows=64), values)
    steps = stepped(ours, X, LENGTHS)
    theirs = set_attributes(hmmlearn.PoissonHMM(K, init_params="", n_iter=1, implementation="scaling"), values)
    for params in steps:
        theirs.fit(X, LENGTHS)
        assert_close(params.startprob, theirs.startprob_)
        assert_close(params.transmat, theirs.transmat_)
        assert_close(params.emission.means, theirs.lambdas_)
    assert_close(ours.lambdas_, theirs.lambdas_)


def test_bernoulli_steps_equal_a_two_symbol_categorical_hmm():
    """A BernoulliHMM on one feature is hmmlearn's CategoricalHMM on two symbols (probabilities 1 − p, p)."""
    truth = hmmlearn.CategoricalHMM(K)
    truth.startprob_, truth.transmat_ = STARTPROB, TRANSMAT
    truth.emissionprob_ = np.array([[0.9, 0.1], [0.5, 0.5], [0.2, 0.8]])
    X, _ = truth.sample(1500, random_state=2)
    p = np.array([[0.3], [0.5], [0.7]])
    ours = set_attributes(daskem.BernoulliHMM(K, init_params="", max_iter=5, tol=0.0, chunk_rows=50),
                          {"startprob_": np.full(K, 1 / K), "transmat_": np.full((K, K), 1 / K), "means_": p})
    steps = stepped(ours, X.astype(float), LENGTHS)
    theirs = set_attributes(hmmlearn.CategoricalHMM(K, init_params="", n_iter=1, implementation="scaling"),
                            {"startprob_": np.full(K, 1 / K), "transmat_": np.full((K, K), 1 / K),
                             "emissionprob_": np.hstack([1 - p, p])})
    for params in steps:
        theirs.fit(X, LENGTHS)
        assert_close(params.transmat, theirs.transmat_)
        assert_close(params.emission.means[:, 0], theirs.emissionprob_[:, 1])


@pytest.mark.parametrize("chunk_rows", [None, 37])
def test_decoding_and_scores_equal_hmmlearns(chunk_rows):
    """On a fitted model — whole sequences in one chunk, or split over chunks of 37 rows — the Viterbi path is
    hmmlearn's and so are its log probability, the posteriors, the log-likelihood and the MAP decoding (to 1e-10
    of their scale)."""
    X, _ = gaussian_sequences()
    ours = daskem.GaussianHMM(K, covariance_type="diag", max_iter=3, tol=0.0, random_state=0, chunk_rows=chunk_rows)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours.fit(X, LENGTHS)
    theirs = hmmlearn.GaussianHMM(K, "diag", implementation="scaling")
    theirs.n_features = D
    set_attributes(theirs, {"startprob_": ours.startprob_, "transmat_": ours.transmat_, "means_": ours.means_,
                            "covars_": ours.covariances_})
    log_prob, path = ours.decode(X, LENGTHS)
    their_log_prob, their_path = theirs.decode(X, LENGTHS)
    np.testing.assert_array_equal(path, their_path)
    np.testing.assert_array_equal(ours.predict(X, LENGTHS), their_path)
    assert log_prob == pytest.approx(their_log_prob, rel=1e-10)
    assert ours.score(X, LENGTHS) == pytest.approx(theirs.score(X, LENGTHS), rel=1e-10)
    assert_close(ours.predict_proba(X, LENGTHS), theirs.predict_proba(X, LENGTHS), 1e-10)
    map_score, map_path = ours.decode(X, LENGTHS, algorithm="map")
    their_map_score, their_map_path = theirs.decode(X, LENGTHS, algorithm="map")
    np.testing.assert_array_equal(map_path, their_map_path)
    assert map_score == pytest.approx(their_map_score, rel=1e-10)


@settings(max_examples=10)
@given(seed=st.integers(0, 2**32 - 1), lengths=st.lists(st.integers(1, 120), min_size=1, max_size=6),
       chunk_rows=st.lists(st.integers(5, 90), min_size=1, max_size=8))
def test_a_fit_does_not_depend_on_the_chunking(seed, lengths, chunk_rows):
    """Three steps from one start, on random sequence lengths in random chunks (a Dask array): the parameters and
    log-likelihoods equal those of the data in one chunk to 1e-10 of each array's scale."""
    assume(sum(lengths) >= K)
    X, _ = gaussian_sequences(sum(lengths), seed=seed % 1000)
    sizes = []
    while sum(sizes) < len(X):
        sizes.append(min(chunk_rows[len(sizes) % len(chunk_rows)], len(X) - sum(sizes)))
    values = {"startprob_": np.full(K, 1 / K), "transmat_": np.full((K, K), 1 / K),
              "means_": np.array([[0.0, 0.0], [3.0, 3.0], [-3.0, 3.0]]) + SHIFT, "covars_": np.stack([np.eye(D)] * K)}
    fitted = []
    for data in (X, da.from_array(X, chunks=(tuple(sizes), D))):
        model = set_attributes(daskem.GaussianHMM(K, init_params="", max_iter=3, tol=0.0), values)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fitted.append(model.fit(data, lengths))
    whole, split = fitted
    for name in ("startprob_", "transmat_", "means_", "covars_", "history_"):
        assert_close(getattr(split, name), getattr(whole, name), 1e-10)


def test_the_log_likelihood_never_decreases_and_n_init_keeps_the_best():
    X, _ = gaussian_sequences()
    seen = []
    model = daskem.GaussianHMM(K, n_init=3, max_iter=30, tol=1e-6, random_state=0, chunk_rows=200)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(X, LENGTHS, callbacks=[seen.append])
    for candidate in range(3):
        history = [info.mean_log_likelihood for info in seen if info.candidate == candidate]
        assert np.all(np.diff(history) >= -1e-12 * np.abs(history[-1]))
        assert model.lower_bound_ >= history[-1] - 1e-12 * abs(history[-1])
    assert model.lower_bound_ in [info.mean_log_likelihood for info in seen]


def test_a_fit_finds_the_model_the_data_came_from():
    """From daskem's own start (k-means++ on the emissions), 6,000 steps: the states are found (up to their
    order), with transition probabilities within 0.03 and means within 0.1 of the truth."""
    X, states = gaussian_sequences(6000, seed=11)
    model = daskem.GaussianHMM(K, random_state=0, tol=1e-8, max_iter=200).fit(X)
    order = [int(np.argmin(np.abs(model.means_ - mean).sum(axis=1)))
             for mean in np.array([[0.0, 0.0], [3.0, 3.0], [-3.0, 3.0]]) + SHIFT]
    assert sorted(order) == [0, 1, 2] and model.converged_
    np.testing.assert_allclose(model.transmat_[np.ix_(order, order)], TRANSMAT, atol=0.03)
    np.testing.assert_allclose(model.means_[order], np.array([[0.0, 0.0], [3.0, 3.0], [-3.0, 3.0]]) + SHIFT,
                               atol=0.1)
    assert (np.asarray(order)[states] == model.predict(X)).mean() > 0.97


def test_zarr_and_numpy_give_the_same_fit(tmp_path):
    X, _ = gaussian_sequences()
    store = write_zarr(tmp_path / "steps.zarr", X, chunk_rows=111)
    fits = [daskem.GaussianHMM(K, random_state=0, max_iter=5, tol=0.0) for _ in range(2)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fits[0].fit(X, LENGTHS)
        fits[1].fit(str(store), LENGTHS, variable="X")
    for name in ("startprob_", "transmat_", "means_", "covars_"):
        assert_close(getattr(fits[1], name), getattr(fits[0], name), 1e-10)
    np.testing.assert_array_equal(fits[1].predict(str(store), LENGTHS, variable="X"), fits[0].predict(X, LENGTHS))


def test_sample_follows_the_model():
    """10,000 steps drawn from a fitted model: each step lies near its state's mean, and the transitions counted
    are the transition matrix within 0.03; the same random_state draws the same steps; currstate is the first."""
    X, _ = gaussian_sequences()
    model = daskem.GaussianHMM(K, random_state=0, max_iter=50).fit(X, LENGTHS)
    drawn, states = model.sample(10_000, random_state=1)
    assert drawn.shape == (10_000, D) and states.shape == (10_000,)
    counts = np.zeros((K, K))
    np.add.at(counts, (states[:-1], states[1:]), 1)
    np.testing.assert_allclose(counts / counts.sum(axis=1, keepdims=True), model.transmat_, atol=0.03)
    for k in range(K):
        np.testing.assert_allclose(drawn[states == k].mean(axis=0), model.means_[k], atol=0.1)
    again = model.sample(10_000, random_state=1)
    np.testing.assert_array_equal(again[0], drawn)
    np.testing.assert_array_equal(again[1], states)
    assert (model.sample(20, random_state=3, currstate=2)[1][0]) == 2


@pytest.mark.parametrize(("settings_", "message"), [
    ({"params": "stmx"}, "params must be a string of the letters 'stmc'"),
    ({"params": "stm"}, "params must update the Gaussian emissions whole: give all of 'mc' or none"),
    ({"init_params": "st"}, "init_params='st' leaves means_, covars_ to be given, but they are not set"),
    ({"algorithm": "forward"}, "algorithm='forward' is not supported"),
    ({"startprob_prior": -1.0}, "startprob_prior must be a finite number >= 0"),
    ({"covariance_type": "banded"}, "covariance_type='banded' is not supported"),
])
def test_bad_settings_are_refused_in_one_line(settings_, message):
    X, _ = gaussian_sequences(100)
    with pytest.raises(InputError, match=message) as error:
        daskem.GaussianHMM(K, **settings_).fit(X)
    assert "\n" not in str(error.value)


def test_bad_input_is_refused_in_one_line():
    X, _ = gaussian_sequences(100)
    model = daskem.GaussianHMM(K, max_iter=2)
    for lengths, message in [([50, 49], "lengths sum to 99 steps, but the data have 100 rows"),
                             ([50, 0, 50], r"lengths\[1\] is 0"), ([120, -20], r"lengths\[1\] is -20")]:
        with pytest.raises(InputError, match=message):
            model.fit(X, lengths)
    holed = X.copy()
    holed[5, 1] = np.nan
    with pytest.raises(daskem.DaskemError, match="row 5"):
        clone(model).set_params(missing="error").fit(holed)
    with pytest.raises(InputError, match="a hidden Markov model takes no sample_weight"):
        model.fit(X, sample_weight=np.ones(len(X)))
    with pytest.raises(NotFittedError, match="not fitted"):
        model.predict(X)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(X)
    with pytest.raises(InputError, match="X has 3 features, but the model has 2"):
        model.predict(np.hstack([X, X[:, :1]]))
    with pytest.raises(InputError, match="transmat_ must hold probabilities summing to 1 in each row"):
        set_attributes(clone(model).set_params(init_params="mc"), {
            "transmat_": np.ones((K, K)), "startprob_": model.startprob_}).fit(X)


def test_clone_keeps_the_settings():
    model = daskem.GaussianHMM(4, covariance_type="diag", transmat_prior=2.0, algorithm="map", params="st")
    assert clone(model).get_params() == model.get_params()


class Crash(Exception):
    pass


def assert_same_fit(ours, reference):
    for name in ("startprob_", "transmat_", "means_", "covars_", "history_"):
        np.testing.assert_array_equal(getattr(ours, name), getattr(reference, name))
    assert (ours.n_iter_, ours.converged_) == (reference.n_iter_, reference.converged_)


@pytest.mark.parametrize("estimator", ["GaussianHMM", "PoissonHMM", "BernoulliHMM"])
def test_model_files_give_the_same_model_back(tmp_path, estimator):
    """Zarr and netCDF: the loaded model has the same settings and arrays, bit for bit, and decodes the same."""
    X, _ = gaussian_sequences()
    X = {"GaussianHMM": X, "PoissonHMM": np.round(np.abs(X - SHIFT)),
         "BernoulliHMM": (X > SHIFT + 1.0) * 1.0}[estimator]
    letters = {"GaussianHMM": "mc", "PoissonHMM": "l", "BernoulliHMM": "e"}[estimator]
    model = getattr(daskem, estimator)(K, max_iter=4, random_state=0, params="st" + letters, transmat_prior=1.5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(X, LENGTHS)
    for path in (tmp_path / "model.zarr", tmp_path / "model.nc"):
        model.save(path)
        loaded = daskem.load(path)
        assert type(loaded) is type(model) and loaded.get_params() == model.get_params()
        for name in ("startprob_", "transmat_", "means_", "history_"):
            np.testing.assert_array_equal(getattr(loaded, name), getattr(model, name))
        np.testing.assert_array_equal(loaded.predict(X, LENGTHS), model.predict(X, LENGTHS))
        assert loaded.score(X, LENGTHS) == model.score(X, LENGTHS)
    with pytest.raises(daskem.DaskemError, match="holds a gaussian_hmm model, not one for PoissonHMM"), \
            warnings.catch_warnings():
        warnings.simplefilter("ignore")
        daskem.PoissonHMM.from_dataset(daskem.GaussianHMM(K, max_iter=1).fit(X[:, :1] if estimator == "GaussianHMM"
                                                                            else np.abs(X[:, :1]) + 0.5)
                                       .to_dataset())


def test_a_damaged_model_file_is_refused(tmp_path):
    X, _ = gaussian_sequences()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = daskem.GaussianHMM(K, max_iter=2, random_state=0).fit(X, LENGTHS).to_dataset()
    bad = ds.copy()
    bad["transmat"] = bad["transmat"] * 2
    with pytest.raises(daskem.DaskemError, match="transmat must hold probabilities summing to 1 in each row"):
        daskem.GaussianHMM.from_dataset(bad)
    bad = ds.drop_vars("startprob")
    with pytest.raises(daskem.DaskemError, match="startprob"):
        daskem.GaussianHMM.from_dataset(bad)


def test_resume_after_a_crash_is_bitwise_identical(tmp_path):
    """Two starts in shared passes, sequences split over chunks: killed after the fourth pass and resumed from
    its checkpoint, the fit ends as the uninterrupted one, bit for bit."""
    X, _ = gaussian_sequences()
    folder = tmp_path / "checkpoint"

    def model():
        return daskem.GaussianHMM(K, n_init=2, random_state=0, max_iter=12, tol=1e-9, chunk_rows=200)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        uninterrupted = model().fit(X, LENGTHS)

        def crash(info):
            if info.iteration == 4:
                raise Crash

        with pytest.raises(Crash):
            model().fit(X, LENGTHS, checkpoint=folder, callbacks=[crash])
        iterations = []
        resumed = model().fit(X, LENGTHS, checkpoint=folder, callbacks=[iterations.append])
        assert min(info.iteration for info in iterations) == 4
        assert_same_fit(resumed, uninterrupted)
        with pytest.raises(daskem.DaskemError, match="other settings"):
            model().fit(X, [700, 800], checkpoint=folder)


@pytest.mark.parametrize("scheduler", ["sync", "processes"])
def test_the_same_bits_on_every_local_scheduler(tmp_path, scheduler):
    path = str(write_zarr(tmp_path / "steps.zarr", gaussian_sequences()[0], chunk_rows=130))

    def fit():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return daskem.GaussianHMM(K, random_state=0, max_iter=5).fit(path, LENGTHS, variable="X")

    with dask.config.set(scheduler="threads"):
        reference = fit()
    with dask.config.set(scheduler=scheduler):
        assert_same_fit(fit(), reference)


def test_sequence_ids_and_stored_lengths_give_the_fit_of_lengths(tmp_path):
    """Sequences given as one id per row (runs of an id, in any order of ids) or as arrays stored beside the rows
    in the Zarr group: the same fit as the lengths, bit for bit."""
    X, _ = gaussian_sequences()
    ids = np.repeat([7, 2, 9], LENGTHS)
    store = write_zarr(tmp_path / "steps.zarr", X, chunk_rows=128)
    group = zarr.open_group(store, mode="r+")
    group.create_array("ids", data=ids, chunks=(100,))
    group.create_array("lengths", data=np.array(LENGTHS), chunks=(3,))

    def fit(*args, **kwargs):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return daskem.GaussianHMM(K, random_state=0, max_iter=4, tol=0.0).fit(*args, **kwargs)

    reference = fit(str(store), LENGTHS, variable="X")
    assert_same_fit(fit(str(store), variable="X", sequence_ids="ids"), reference)
    assert_same_fit(fit(str(store), "lengths", variable="X"), reference)
    assert_same_fit(fit(X, sequence_ids=ids), fit(X, LENGTHS))
    with pytest.raises(InputError, match="give lengths or sequence_ids, not both"):
        fit(X, LENGTHS, sequence_ids=ids)
    with pytest.raises(InputError, match="sequence id 7 has rows 0 and 1200 with other sequences' rows between"):
        fit(X, sequence_ids=np.repeat([7, 2, 7], LENGTHS))
    with pytest.raises(InputError, match="lengths names a variable, which needs X to be a Zarr path"):
        fit(X, "lengths")


def test_the_same_bits_on_a_distributed_cluster(tmp_path):
    """A distributed scheduler runs the chains of tasks of split sequences and the second reads as the local one."""
    distributed = pytest.importorskip("distributed")
    path = str(write_zarr(tmp_path / "steps.zarr", gaussian_sequences()[0], chunk_rows=130))

    def fit():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = daskem.GaussianHMM(K, random_state=0, max_iter=4, chunk_rows=100)
            return model.fit(path, LENGTHS, variable="X")

    reference = fit()
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster):
        assert_same_fit(fit(), reference)


def test_aic_and_bic_count_the_parameters_hmmlearn_counts():
    """The same criteria as hmmlearn's for the same model: its log-likelihood and its count of free parameters
    (start and transition probabilities, means and each covariance type's own)."""
    X, _ = gaussian_sequences()
    for covariance_type in ("full", "tied", "diag", "spherical"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ours = daskem.GaussianHMM(K, covariance_type=covariance_type, max_iter=3, random_state=0).fit(X, LENGTHS)
        theirs = hmmlearn.GaussianHMM(K, covariance_type, implementation="scaling")
        theirs.n_features = D
        set_attributes(theirs, {"startprob_": ours.startprob_, "transmat_": ours.transmat_, "means_": ours.means_,
                                "covars_": ours.covariances_})
        assert ours.aic(X, LENGTHS) == pytest.approx(theirs.aic(X, LENGTHS), rel=1e-10)
        assert ours.bic(X, LENGTHS) == pytest.approx(theirs.bic(X, LENGTHS), rel=1e-10)
