"""The pure-torch parts: modules, objectives, likelihoods, estimates and noise.

Nothing here imports skorch, scikit-learn or another part of skae.
"""
