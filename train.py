"""Train and test one experiment: ``python train.py model=lstm features=mfcc ...``."""

import hydra
from omegaconf import DictConfig

from ser.train import train


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def main(cfg: DictConfig) -> float | None:
    metrics = train(cfg)
    # Sweepers (Optuna) maximise what main returns.
    return metrics.get(cfg.get("optimized_metric"))


if __name__ == "__main__":
    main()
