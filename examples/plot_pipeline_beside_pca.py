"""
Autoencoders in a pipeline, beside PCA
======================================

A :class:`~skae.DenoisingAE` reduces the digits to 16 dimensions before a logistic
regression, in the same :class:`~sklearn.pipeline.Pipeline` and grid search as
:class:`~sklearn.decomposition.PCA`; the 2-D codes of PCA and of an autoencoder are then
drawn side by side with :class:`~skae.plotting.CodesDisplay`: the manifold comparison at a
glance.
"""

from sklearn.datasets import load_digits
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import MinMaxScaler

from skae import AutoEncoder, DenoisingAE
from skae.plotting import CodesDisplay

X, y = load_digits(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)

pipe = Pipeline(
    [
        ("scale", MinMaxScaler()),
        ("reduce", DenoisingAE(n_components=16, max_iter=30, random_state=0)),
        ("clf", LogisticRegression(max_iter=1000)),
    ]
)
search = GridSearchCV(
    pipe,
    {"reduce": [PCA(16), DenoisingAE(16, noise_level=0.2, max_iter=30, random_state=0)]},
    cv=3,
)
search.fit(X_train, y_train)
for params, score in zip(
    search.cv_results_["params"], search.cv_results_["mean_test_score"], strict=True
):
    print(f"{type(params['reduce']).__name__:12s} mean CV accuracy {score:.3f}")
print(f"best on the test set: {search.score(X_test, y_test):.3f}")

# %%
# The 2-D codes, coloured by digit
scaler = MinMaxScaler().fit(X_train)
models = {
    "PCA": PCA(2).fit(scaler.transform(X_train)),
    "AutoEncoder": AutoEncoder(2, max_iter=100, random_state=0).fit(scaler.transform(X_train)),
}
display = CodesDisplay.from_estimators(models, scaler.transform(X_test), y_test)
