"""scikit-learn's full estimator contract for every public estimator, no expected failures.

``max_iter`` is small: the checks test the contract, not the quality of the fit. Several
instances per class exercise other code paths (early stopping's validation split, noise,
the autograd Jacobian, pretraining noise).
"""

from sklearn.utils.estimator_checks import parametrize_with_checks

from skae import (
    AutoEncoder,
    ContractiveAE,
    DenoisingAE,
    EncoderClassifier,
    LinearAE,
    SparseAE,
    StackedAE,
    VariationalAE,
)

ESTIMATORS = [
    AutoEncoder(max_iter=20, random_state=0),
    AutoEncoder(activation="tanh", hidden_layer_sizes=(8, 4), max_iter=5,
                early_stopping=True, random_state=0),
    LinearAE(max_iter=5, random_state=0),
    DenoisingAE(max_iter=10, random_state=0),
    DenoisingAE(noise="salt_and_pepper", noise_level=0.3, max_iter=5, random_state=0),
    ContractiveAE(max_iter=20, random_state=0),
    ContractiveAE(activation="tanh", hidden_layer_sizes=(8, 4), max_iter=5,
                  early_stopping=True, random_state=0),
    ContractiveAE(hidden_layer_sizes=(), activation="logistic", max_iter=5, random_state=0),
    SparseAE(max_iter=20, random_state=0),
    SparseAE(sparsity="l1", max_iter=10, random_state=0),
    SparseAE(hidden_layer_sizes=(8,), early_stopping=True, max_iter=5, random_state=0),
    StackedAE(max_iter=10, pretrain_iter=5, random_state=0),
    StackedAE(activation="tanh", hidden_layer_sizes=(8,), pretrain_noise="salt_and_pepper",
              pretrain_noise_level=0.2, pretrain_iter=3, max_iter=5, early_stopping=True,
              random_state=0),
    EncoderClassifier(StackedAE(n_components=8, hidden_layer_sizes=(16,), pretrain_iter=5,
                                max_iter=0, random_state=0), max_iter=50, random_state=0),
    EncoderClassifier(max_iter=30, random_state=0),
    VariationalAE(max_iter=10, random_state=0),
    VariationalAE(loss="mse", activation="tanh", hidden_layer_sizes=(8, 4), beta=4.0,
                  max_iter=5, early_stopping=True, random_state=0),
]


@parametrize_with_checks(ESTIMATORS)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)
