"""Prediction without torch: new inputs read with numpy by a model's data contract (litlab.data_spec's
DataSpec) and scaled with its statistics, ONNX models run by onnxruntime, the outputs table, and the HTTP
server. Nothing here imports torch or Lightning (tests/test_export.py checks), so a bundle predicts and
serves where neither is installed; the checkpoint path uses the same readers with its own torch model."""
