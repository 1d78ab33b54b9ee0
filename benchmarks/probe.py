"""Learning curves of a deep-autoencoder recipe on MNIST: test and training SSE per image.

    python -m benchmarks.probe '{"max_iter": 20, "alpha": 0.01}' --data ../shared/data/mnist.npz

The JSON gives ``AutoEncoder``'s parameters beyond the recipe of table 1 (784-1000-500-250-30,
cross-entropy, Adam, cosine schedule, batch 256, ``random_state=0``), plus ``"every"`` (the
probe's period in epochs) and ``"hidden_dropout"`` (dropout on the hidden layers' inputs,
neither on the data nor on the codes). A skorch callback runs the module in eval mode every
``every`` epochs on the test images and on the first 10,000 training images: the recipes in
``benchmarks/results/recipes.md`` were compared this way.
"""

import argparse
import json
import time

import torch
from skorch.callbacks import Callback
from torch import nn

import skae
from skae._nn.modules import Dropout
from skae.datasets import load_mnist


@torch.no_grad()
def sse(module, X, bernoulli):
    """Mean squared error per image, summed over pixels, in eval mode."""
    was = module.training
    module.eval()
    total = 0.0
    for start in range(0, len(X), 2000):
        x = torch.from_numpy(X[start : start + 2000])
        out = module.decode(module.encode(x))
        out = torch.sigmoid(out) if bernoulli else out
        total += float(((out - x) ** 2).sum())
    module.train(was)
    return total / len(X)


class Probe(Callback):
    def __init__(self, X_test, X_train, every, bernoulli, max_epochs):
        self.X_test, self.X_train = X_test, X_train
        self.every, self.bernoulli, self.max_epochs = every, bernoulli, max_epochs

    def on_train_begin(self, net, **kwargs):
        self.start = time.perf_counter()

    def on_epoch_end(self, net, **kwargs):
        epoch = len(net.history)
        if epoch % self.every and epoch != self.max_epochs:
            return
        test = sse(net.module_, self.X_test, self.bernoulli)
        train = sse(net.module_, self.X_train, self.bernoulli)
        minutes = (time.perf_counter() - self.start) / 60
        print(f"epoch {epoch} test {test:.3f} train10k {train:.3f} min {minutes:.1f}", flush=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("settings", type=json.loads, help="AutoEncoder parameters, as JSON")
    parser.add_argument("--data", default=None, help="MNIST .npz (default: $SKAE_MNIST)")
    args = parser.parse_args(argv)
    data = load_mnist(args.data, download=False)
    settings = {
        "loss": "bce",
        "batch_size": 256,
        "learning_rate": "cosine",
        "learning_rate_init": 1e-3,
        "alpha": 0.0,
        **args.settings,
    }
    every = settings.pop("every", 5)
    dropout = settings.pop("hidden_dropout", 0.0)
    architecture = skae.MLP(hidden_layer_sizes=(1000, 500, 250))
    module = architecture
    if dropout:
        module = architecture.build(data.X_train.shape[1], 30)
        architecture.init_weights(module, torch.Generator().manual_seed(0))
        linears = [m for m in module.modules() if isinstance(m, nn.Linear)]
        n_encoder = sum(isinstance(m, nn.Linear) for m in module.encoder.modules())
        for i, layer in enumerate(linears):
            if i not in (0, n_encoder):  # not on the data, not on the codes
                layer.register_forward_pre_hook(Dropout(dropout))
    probe = Probe(
        data.X_test,
        data.X_train[:10000],
        every,
        settings["loss"] == "bce",
        settings.get("max_iter", 200),
    )
    ae = skae.AutoEncoder(30, module=module, random_state=0, callbacks=[("probe", probe)])
    ae.set_params(**settings)
    print(ae, flush=True)
    ae.fit(data.X_train)
    print(f"final test {sse(ae.module_, data.X_test, settings['loss'] == 'bce'):.3f}")


if __name__ == "__main__":
    main()
