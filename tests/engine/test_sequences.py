"""Passes over sequences in row chunks (engine/sequences.py): the layout, bad lengths, and the E-step of sequences
split over chunks against the same sequences in one piece."""

from __future__ import annotations

import dask
import dask.array as da
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from daskem.engine.sequences import POSTERIORS, VITERBI, Reader, SequenceBlocks, Sequences
from daskem.exceptions import InputError
from daskem.families.gaussian import GaussianFamily
from daskem.families.hmm import GaussianHMMFamily, HMMParams, PoissonHMMFamily, unit_weights
from daskem.families.poisson import PoissonFamily
from daskem.families.product import MeanParams
from daskem.kernels.gaussian import GaussianParams


@pytest.mark.parametrize(("lengths", "message"), [
    ([3, 4], "lengths sum to 7 steps, but the data have 10 rows"),
    ([5, 0, 5], r"lengths\[1\] is 0: each sequence has at least one step"),
    ([12, -2], r"lengths\[1\] is -2"),
    ([2.5, 7.5], "lengths must be whole numbers of steps"),
    (["5", "5"], "lengths must be whole numbers of steps"),
    ([[5], [5]], r"lengths must be a 1-D array of sequence lengths, got shape \(2, 1\)"),
    ([], "lengths must be a 1-D array"),
    ([np.nan, 10], r"lengths must be whole numbers|lengths\[0\] is nan"),
])
def test_bad_lengths_are_refused_in_one_line(lengths, message):
    with pytest.raises(InputError, match=message) as error:
        Sequences.of(lengths, 10)
    assert "\n" not in str(error.value)


def test_lengths_of_whole_numbers_in_floats_are_taken():
    np.testing.assert_array_equal(Sequences.of(np.array([4.0, 6.0]), 10).starts, [0, 4, 10])
    np.testing.assert_array_equal(Sequences.of(None, 10).starts, [0, 10])


@given(st.lists(st.integers(1, 30), min_size=1, max_size=12), st.lists(st.integers(1, 25), min_size=1, max_size=12))
def test_chunks_move_to_sequence_boundaries_and_pieces_cover_every_row(lengths, chunks):
    """Aligned chunks cover the rows, none empty; a boundary stays inside a sequence only where that sequence is
    longer than the largest chunk; the pieces of each chunk cover it in order and say where sequences begin
    and end."""
    n_rows = sum(lengths)
    chunks = (chunks * n_rows)[: n_rows]  # enough sizes, then cut to the rows
    chunks = chunks[: next(i for i in range(len(chunks)) if sum(chunks[: i + 1]) >= n_rows) + 1]
    chunks[-1] -= sum(chunks) - n_rows
    sequences = Sequences.of(lengths, n_rows)
    aligned = sequences.aligned_chunks(chunks)
    assert sum(aligned) == n_rows and min(aligned) >= 1
    starts = set(sequences.starts.tolist())
    for boundary in np.cumsum(aligned)[:-1]:
        if boundary not in starts:
            sequence = np.searchsorted(sequences.starts, boundary, side="right") - 1
            assert lengths[sequence] > max(chunks)
    first = 0
    for size in aligned:
        pieces = sequences.pieces(first, first + size)
        assert [piece.start for piece in pieces][0] == first and pieces[-1].stop == first + size
        for before, after in zip(pieces, pieces[1:]):
            assert before.stop == after.start and before.closes and after.opens
        for piece in pieces:
            assert piece.opens == (piece.start in starts) and piece.closes == (piece.stop in starts)
        first += size


def gaussian_model(rng, k, d):
    means = rng.normal(scale=3.0, size=(k, d)) + 1e3
    factors = rng.normal(size=(k, d, d)) / np.sqrt(d) + np.eye(d)
    emission = unit_weights(GaussianParams.from_covariances(np.full(k, 1 / k), means,
                                                            factors @ np.swapaxes(factors, 1, 2)))
    return GaussianHMMFamily(GaussianFamily("full", missing="error")), emission


def poisson_model(rng, k, d):
    return PoissonHMMFamily(PoissonFamily(missing="error")), MeanParams(
        np.ones(k), rng.uniform(0.5, 8.0, size=(k, d)))


def draw(rng, family, params, n_rows):
    """Rows of the model's emissions for random states (the layout, not the model, is under test)."""
    states = rng.integers(params.n_components, size=n_rows)
    X = np.empty((n_rows, params.n_features))
    for k in range(params.n_components):
        X[states == k] = family.emission.sample(MeanParams(np.eye(params.n_components)[k], params.emission.means)
                                                if isinstance(params.emission, MeanParams) else
                                                GaussianParams.from_covariances(
                                                    np.eye(params.n_components)[k], params.emission.means,
                                                    params.emission.covariances), int((states == k).sum()), rng)[0]
    return X


def scale_of(value):
    return max(1.0, float(np.abs(value).max()))


@pytest.mark.parametrize("model", [gaussian_model, poisson_model])
@given(seed=st.integers(0, 2**32 - 1), lengths=st.lists(st.integers(1, 40), min_size=1, max_size=8),
       chunk_rows=st.lists(st.integers(1, 50), min_size=1, max_size=20))
def test_split_sequences_give_the_statistics_posteriors_and_paths_of_whole_ones(model, seed, lengths, chunk_rows):
    """Any chunking, any lengths: the pass's statistics, posteriors and Viterbi paths equal those of the sequences
    in one piece.  The recursions are the same step for step, but the emissions' log densities come from matrix
    products over other sets of rows (BLAS rounds those by their size) and each piece's sums are added apart:
    1e-10 of each array's scale; the paths are the same."""
    rng = np.random.default_rng(seed)
    family, emission = model(rng, 3, 2)
    params = HMMParams(rng.dirichlet(np.ones(3)), rng.dirichlet(np.ones(3), size=3), emission)
    n_rows = sum(lengths)
    X = draw(rng, family, params, n_rows)
    sizes = []
    while sum(sizes) < n_rows:
        sizes.append(min(chunk_rows[len(sizes) % len(chunk_rows)], n_rows - sum(sizes)))
    blocks = SequenceBlocks.of(da.from_array(X, chunks=(tuple(sizes), 2)), Sequences.of(lengths, n_rows))
    whole = family.sequences_statistics(X, params, 0, np.array(lengths))
    ((split,),) = dask.compute(blocks.statistics([(family, params)]))
    assert (split.n_steps, split.n_sequences) == (n_rows, len(lengths))
    assert split.log_likelihood == pytest.approx(whole.log_likelihood, rel=1e-10)
    for ours, reference in [(split.start, whole.start), (split.transitions, whole.transitions),
                            *zip(split.emission, whole.emission)]:
        np.testing.assert_allclose(ours, reference, rtol=0, atol=1e-10 * scale_of(reference))
    posteriors, total = dask.compute(*blocks.per_step(POSTERIORS, (family, params), 3, np.float64))
    np.testing.assert_allclose(posteriors, family.sequences_posteriors(X, params, 0, np.array(lengths))[0],
                               rtol=0, atol=1e-10)
    assert total == pytest.approx(whole.log_likelihood, rel=1e-10)
    path, log_prob = dask.compute(*blocks.per_step(VITERBI, (family, params), None, np.int64))
    expected_path, expected = family.sequences_viterbi(X, params, 0, np.array(lengths))
    np.testing.assert_array_equal(path, expected_path)
    assert log_prob == pytest.approx(expected, rel=1e-12)


def test_the_chains_read_their_rows_as_they_reach_them():
    """The tasks of a split sequence's chains depend on no task that reads the data (idle workers would run those
    ahead of the chain and keep every chunk of a long sequence in memory until it came): each reads its own rows
    when it runs, through the pass's Reader."""
    rng = np.random.default_rng(0)
    family, emission = gaussian_model(rng, 2, 2)
    params = HMMParams(np.full(2, 0.5), np.full((2, 2), 0.5), emission)
    X = da.from_array(rng.normal(size=(100, 2)) + 1e3, chunks=(10, 2))
    blocks = SequenceBlocks.of(X, Sequences.of([5, 90, 5], 100))
    graph, _ = blocks._graph(VITERBI, [(family, params)])
    reads = set(blocks.graph)
    chains = {key: task for key, task in graph.items()
              if isinstance(key, tuple) and key[0] in ("daskem-forward", "daskem-backward")}
    assert len(chains) == 10 + 9  # 10 pieces of the long sequence: 10 backward tasks, 9 forward
    for task in chains.values():
        keys = {value for value in task if isinstance(value, (tuple, str)) and value in graph}
        assert not keys & reads and any(isinstance(graph[key], Reader) for key in keys if isinstance(key, str))
