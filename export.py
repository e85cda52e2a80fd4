"""Export a checkpoint: `python export.py ckpt_path=RUN format=onnx|torch_export [out=DIR]`; the same as
`litlab export ...` (litlab.run.commands).

Writes a bundle dir (the network, bundle.json, parity.json); `python predict.py bundle=DIR` and
`python serve.py bundle=DIR` run an ONNX bundle without torch (docs/deploy.md).
"""

import sys

from litlab.run.commands import run

if __name__ == "__main__":
    run("export", sys.argv[1:])
