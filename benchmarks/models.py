"""The models each benchmark compares, configured for the data they run on."""

from sklearn.decomposition import PCA

import skae


def family(n_components, *, bernoulli, max_iter, hidden, linear_iter=500, random_state=0):
    """PCA and every skae autoencoder at one code size, with one training budget.

    ``bernoulli``: data in [0, 1] modelled with ``loss="bce"``; else standardised data
    with squared error. ``max_iter`` is the epoch budget of each autoencoder,
    ``linear_iter`` the LinearAE's EM iterations (on float64 moments: cheap).
    """
    loss = "bce" if bernoulli else "mse"
    common = {
        "n_components": n_components,
        "hidden_layer_sizes": hidden,
        "loss": loss,
        "max_iter": max_iter,
        "random_state": random_state,
    }
    noise = (
        {"noise": "masking", "noise_level": 0.25}
        if bernoulli
        else {"noise": "gaussian", "noise_level": 0.3}
    )
    return {
        "PCA": PCA(n_components=n_components, random_state=random_state),
        "LinearAE": skae.LinearAE(
            n_components=n_components, max_iter=linear_iter, random_state=random_state
        ),
        "AutoEncoder": skae.AutoEncoder(**common),
        "DenoisingAE": skae.DenoisingAE(**common, **noise),
        "StackedAE": skae.StackedAE(**common, pretrain_iter=max(1, max_iter // 5)),
        "ContractiveAE": skae.ContractiveAE(**common),
        "SparseAE": skae.SparseAE(**common),
        "VariationalAE": skae.VariationalAE(**common),
    }


def architectures(n_components, *, input_shape, hidden, max_iter, loss, random_state=0, **training):
    """PCA and AutoEncoder with the MLP and with the convolutional network, one budget."""
    common = {
        "n_components": n_components,
        "loss": loss,
        "max_iter": max_iter,
        "random_state": random_state,
        **training,
    }
    return {
        "PCA": PCA(n_components=n_components, random_state=random_state),
        f"AutoEncoder, MLP {'-'.join(map(str, hidden))}": skae.AutoEncoder(
            module=skae.MLP(hidden_layer_sizes=hidden), **common
        ),
        "AutoEncoder, ConvNet (32, 64)": skae.AutoEncoder(
            module=skae.ConvNet(input_shape=input_shape), **common
        ),
    }
