"""scikit-learn's full estimator contract, with no expected failures.

``max_iter`` is small: the checks test the contract, not the quality of the fit.
"""

from sklearn.utils.estimator_checks import parametrize_with_checks

from skae import AutoEncoder, DenoisingAE, LinearAE

ESTIMATORS = [
    AutoEncoder(max_iter=20, random_state=0),
    AutoEncoder(loss="mse", activation="tanh", hidden_layer_sizes=(8, 4), max_iter=5,
                early_stopping=True, random_state=0),
    LinearAE(max_iter=5, random_state=0),
    DenoisingAE(max_iter=10, random_state=0),
    DenoisingAE(noise="salt_and_pepper", noise_level=0.3, max_iter=5, random_state=0),
]


@parametrize_with_checks(ESTIMATORS)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)
