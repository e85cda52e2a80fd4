"""litlab: classic models (linear, logistic, MLP, CNN) trained with Lightning, configured with Hydra."""
