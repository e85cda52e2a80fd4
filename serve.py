"""Serve a model on 127.0.0.1: `python serve.py ckpt_path=RUN [port=8000]` or `python serve.py bundle=DIR`;
the same as `litlab serve ...` (litlab.run.commands).

POST /predict with {"rows": [...]} (tables) or {"images": [base64, ...]} (images); GET /health.
A bundle is served by onnxruntime without importing torch (docs/deploy.md).
"""

import sys

from litlab.run.commands import run

if __name__ == "__main__":
    run("serve", sys.argv[1:])
