"""
EncoderClassifier: a pretrained encoder, fine-tuned to classify
===============================================================

:class:`~skae.EncoderClassifier` puts a softmax layer on an autoencoder's encoder and
fine-tunes both on the labels, the recipe of Hinton and Salakhutdinov (2006) and Bengio et
al. (2007): the unsupervised pretraining gives the network a start, the labels finish it.
Here beside a logistic regression on the pixels and on 32 principal components.
"""

import warnings

import matplotlib.pyplot as plt
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import ConfusionMatrixDisplay
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skae import EncoderClassifier, StackedAE

warnings.filterwarnings("ignore", category=ConvergenceWarning)

X_train, X_test, y_train, y_test = train_test_split(
    *load_digits(return_X_y=True), random_state=0, stratify=load_digits().target
)
classifiers = {
    "logistic regression, pixels": make_pipeline(
        StandardScaler(), LogisticRegression(max_iter=2000)
    ),
    "logistic regression, PCA(32)": make_pipeline(
        StandardScaler(), PCA(32), LogisticRegression(max_iter=2000)
    ),
    "EncoderClassifier(StackedAE)": make_pipeline(
        StandardScaler(),
        EncoderClassifier(
            StackedAE(32, hidden_layer_sizes=(128,), pretrain_iter=10, max_iter=20),
            max_iter=60,
            random_state=0,
        ),
    ),
}
for name, clf in classifiers.items():
    clf.fit(X_train, y_train)
    print(f"{name:30s} test accuracy {clf.score(X_test, y_test):.3f}")

# %%
# Where the fine-tuned classifier still errs.
ConfusionMatrixDisplay.from_estimator(
    classifiers["EncoderClassifier(StackedAE)"], X_test, y_test, colorbar=False
)
plt.show()
