"""The pure-torch parts: modules, the PCA start, objectives, likelihoods, estimates and noise.

Nothing here imports skorch, scikit-learn or another part of skae.
"""
