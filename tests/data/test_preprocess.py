"""Preprocessing against NumPy/SVD computations; fitted statistics apply to new data."""

import numpy as np
import pytest

from graphc import data


def correlated(n=400, d=5, seed=0):
    rng = np.random.default_rng(seed)
    mix = rng.normal(size=(d, d))
    return rng.normal(size=(n, d)) @ mix + rng.normal(size=d) * 3


def test_mean_subtraction_uses_training_means_on_new_data():
    train, new = correlated(), correlated(seed=1)
    pre = data.MeanSubtraction().fit(train)
    np.testing.assert_allclose(pre.transform(new), new - train.mean(0), rtol=1e-12)
    np.testing.assert_allclose(pre.transform(train).mean(0), 0, atol=1e-12)
    glob = data.MeanSubtraction(per_feature=False).fit(train)
    np.testing.assert_allclose(glob.transform(new), new - train.mean(), rtol=1e-12)


def test_standardize_and_its_inverse():
    train = correlated()
    out = data.Standardize().fit_transform(train)
    np.testing.assert_allclose(out.mean(0), 0, atol=1e-12)
    np.testing.assert_allclose(out.std(0), 1, rtol=1e-12)
    pre = data.Standardize().fit(train)
    np.testing.assert_allclose(pre.inverse_transform(out), train, rtol=1e-12)


def test_standardize_leaves_constant_features_at_zero():
    x = np.array([[1.0, 5.0], [3.0, 5.0]])
    np.testing.assert_array_equal(data.Standardize().fit_transform(x), [[-1, 0], [1, 0]])


def test_min_max_scale():
    train = np.array([[0.0, 10.0], [2.0, 20.0], [4.0, 30.0]])
    pre = data.MinMaxScale((-1, 1)).fit(train)
    np.testing.assert_allclose(pre.transform(train), [[-1, -1], [0, 0], [1, 1]])
    np.testing.assert_allclose(pre.transform(np.array([[6.0, 15.0]])), [[2, -0.5]])
    with pytest.raises(ValueError, match="low < high"):
        data.MinMaxScale((1, 1))


def test_pca_matches_the_eigendecomposition_of_the_covariance():
    train = correlated()
    pca = data.PCA(n_components=3).fit(train)
    cov = np.cov(train, rowvar=False)
    eigenvalues, eigenvectors = np.linalg.eigh(cov)
    order = np.argsort(eigenvalues)[::-1][:3]
    np.testing.assert_allclose(pca.explained_variance_, eigenvalues[order], rtol=1e-10)
    # Components agree with the eigenvectors up to sign.
    np.testing.assert_allclose(np.abs(pca.components_ @ eigenvectors[:, order]), np.eye(3),
                               atol=1e-10)
    projected = pca.transform(train)
    assert projected.shape == (400, 3)
    np.testing.assert_allclose(np.cov(projected, rowvar=False), np.diag(eigenvalues[order]),
                               atol=1e-9)


def test_pca_with_all_components_round_trips():
    train = correlated()
    pca = data.PCA().fit(train)
    np.testing.assert_allclose(pca.inverse_transform(pca.transform(train)), train, rtol=1e-10)


def test_pca_whitening_gives_identity_covariance():
    train = correlated()
    out = data.PCA(whiten=True).fit_transform(train)
    np.testing.assert_allclose(np.cov(out, rowvar=False), np.eye(5), atol=1e-10)


def test_zca_whitening_gives_identity_covariance_and_stays_symmetric():
    train = correlated()
    zca = data.ZCAWhitening(eps=0).fit(train)
    out = zca.transform(train)
    np.testing.assert_allclose(np.cov(out, rowvar=False), np.eye(5), atol=1e-10)
    np.testing.assert_allclose(zca.whitening_, zca.whitening_.T, atol=1e-12)
    # The inverse square root of the covariance, computed independently by eigh.
    eigenvalues, vectors = np.linalg.eigh(np.cov(train, rowvar=False))
    np.testing.assert_allclose(zca.whitening_, vectors @ np.diag(eigenvalues ** -0.5) @ vectors.T,
                               rtol=1e-8)
    np.testing.assert_allclose(zca.inverse_transform(out), train, rtol=1e-10)


def test_zca_on_rank_deficient_data_needs_eps():
    x = np.random.default_rng(0).normal(size=(3, 6))  # fewer samples than features
    with pytest.raises(ValueError, match="singular"):
        data.ZCAWhitening(eps=0).fit(x)
    assert data.ZCAWhitening(eps=0.1).fit_transform(x).shape == (3, 6)


def test_images_keep_their_shape_and_float32():
    images = np.random.default_rng(0).random((50, 1, 4, 4)).astype(np.float32)
    for pre in (data.MeanSubtraction(), data.Standardize(), data.MinMaxScale(),
                data.ZCAWhitening(eps=0.1)):
        out = pre.fit_transform(images)
        assert out.shape == images.shape and out.dtype == np.float32
    out = data.PCA(n_components=4).fit_transform(images)
    assert out.shape == (50, 4) and out.dtype == np.float32


def test_pipeline_fits_each_step_on_the_previous_output():
    train = correlated()
    pipe = data.Pipeline(data.MeanSubtraction(), data.PCA(n_components=2, whiten=True)).fit(train)
    manual = data.PCA(n_components=2, whiten=True).fit(train - train.mean(0))
    np.testing.assert_allclose(pipe.transform(train), manual.transform(train - train.mean(0)),
                               rtol=1e-10)


def test_errors_are_clear():
    with pytest.raises(RuntimeError, match="fit"):
        data.Standardize().transform(np.ones((2, 2)))
    pre = data.Standardize().fit(np.random.default_rng(0).random((5, 3)))
    with pytest.raises(ValueError, match=r"fitted on features of shape \(3,\)"):
        pre.transform(np.ones((2, 4)))
    with pytest.raises(ValueError, match="finite"):
        data.Standardize().fit(np.array([[1.0, np.nan], [0.0, 1.0]]))
    with pytest.raises(ValueError, match="samples"):
        data.Standardize().fit(np.ones(4))
    with pytest.raises(ValueError, match="n_components"):
        data.PCA(n_components=9).fit(np.random.default_rng(0).random((5, 3)))
