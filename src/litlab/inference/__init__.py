"""Models out of litlab: a checkpoint exported to ONNX or torch.export with its parity measured, and
a checkpoint served over HTTP. What runs without torch (bundles, the server) is in litlab.runtime."""
