"""Export a checkpoint: `python export.py ckpt_path=RUN format=onnx|torch_export [out=DIR]`.

Writes a bundle dir (the network, bundle.json, parity.json); `python predict.py bundle=DIR` and
`python serve.py bundle=DIR` run an ONNX bundle without torch (docs/deploy.md).
"""

import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig


@hydra.main(version_base="1.3", config_path="pkg://litlab.conf", config_name="export")
def main(cfg: DictConfig) -> None:
    from litlab.errors import exit_on_user_error
    from litlab.inference.export import export  # here: --help and --cfg import no torch (see train.py)

    exit_on_user_error(
        lambda: export(cfg.ckpt_path, cfg.format, cfg.out, cfg.paths.log_dir, cfg.tolerance), cfg.extras.traceback
    )


if __name__ == "__main__":
    from litlab.run.cli_help import answer_help  # Hydra's own --help takes over a second: see there

    if not answer_help(Path(__file__), "export", sys.argv[1:]):
        main()
