"""Recipes: YAML files merged over the defaults below, with dot-list overrides (``--set key=value``).

Everything a run did is recoverable from the resolved recipe, the seed and the commit, which the engine
writes to ``<output_dir>/run.yaml`` next to its logs.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from enhancekit.errors import EnhanceKitError

DEFAULTS: dict = {
    "name": "run",
    "seed": 0,
    "output_dir": "runs/${name}",
    # model: {name: registered name, args: constructor overrides, weights: optional initial weights file}
    "model": {"name": None, "args": {}, "weights": None},
    "data": {
        # train / val: {target: dir, input: dir | null, degrade: spec | null, patch_size, augment, repeat,
        #               split: [start, stop] | null}
        "train": None,
        "val": None,
        "batch_size": 16,
        "num_workers": 0,
    },
    "loss": [{"name": "l1", "weight": 1.0}],
    # Deep supervision for multi-scale models (ADL): the loss weight of each output scale, finest first.
    "loss_scales": None,
    "optimizer": {"name": "adam", "lr": 1e-4, "betas": [0.9, 0.999], "weight_decay": 0.0},
    # scheduler: none | plateau {factor, patience, min_lr} | linear_decay {start_epoch}
    #            | step {step_size, gamma}
    "scheduler": {"name": "none"},
    # GAN training: a discriminator and its objective; null trains the model on the loss alone.
    "adversarial": None,
    # Unpaired GAN training (data.train gives `low` and `high` folders): UEGAN or CycleGAN; see below.
    "unpaired": None,
    "val": {"metrics": ["psnr", "ssim"], "color": None, "crop": None, "monitor": "psnr"},
    "early_stopping": {"patience": None, "restore_best": True},
    # Exponential moving average of the weights (Lightning's EMAWeightAveraging), null = off. Validation,
    # checkpoints' state_dict and the exported model use the average; the raw weights stay in the checkpoint
    # for resuming. It damps the epoch-to-epoch swings of GAN generators. Batch-norm statistics are averaged
    # too, so a batch-norm network trained from scratch validates badly until the early networks have left
    # the average: DnCNN at decay 0.995 scored 20.6 dB averaged vs 25.6 raw after 320 steps. Set start_step
    # past that transient (a few hundred steps) for such networks.
    "ema": {"decay": None, "start_step": 0},
    # Passed to lightning.Trainer as keyword arguments.
    "trainer": {
        "max_epochs": 100,
        "accelerator": "auto",
        "devices": "auto",
        "strategy": "auto",
        "precision": "32-true",
        "log_every_n_steps": 10,
    },
}

ADVERSARIAL_DEFAULTS: dict = {
    "discriminator": {"name": None, "args": {}},
    "loss": "vanilla",
    "weight": 0.01,
    # Epochs during which only the generator trains, on the loss alone (a warm start before the GAN game).
    "warmup_epochs": 0,
    # Then epochs during which only the discriminator trains, against the frozen generator (ADL's phase 2).
    "discriminator_warmup_epochs": 0,
    "optimizer": {"name": "adam", "lr": 1e-4, "betas": [0.9, 0.999], "weight_decay": 0.0},
}


UNPAIRED_DEFAULTS: dict = {
    "kind": "uegan",  # uegan | cyclegan
    "discriminator": {"name": None, "args": {}},
    "loss": "relativistic_hinge",
    # UEGAN's weights (Ni et al. 2020): quality (adversarial) 0.1, consistency 1, identity 0.1.
    "quality_weight": 0.1,
    "consistency_weight": 1.0,
    "identity_weight": 0.1,
    # Consistency (content) term: `vgg` (UEGAN's, needs the VGG19 ImageNet weights) or `structure`
    # (weight-free, see enhancekit.losses.ssim.StructureLoss).
    "content": "structure",
    "content_args": {},  # e.g. {per_channel: true} for `structure`
    # CycleGAN: cycle weight (lambda) and the identity weight as a fraction of it.
    "cycle_weight": 10.0,
    "pool_size": 50,
    "optimizer": {"name": "adam", "lr": 4e-4, "betas": [0.5, 0.999], "weight_decay": 0.0},
}

# CycleGAN's own values (Zhu et al. 2017) where they differ from UEGAN's; its generator updates on the fake
# logits alone, which a relativistic loss cannot do.
CYCLEGAN_DEFAULTS: dict = {
    "loss": "lsgan",
    "identity_weight": 0.5,
    "optimizer": {"lr": 2e-4},
}


def _check_sections(keys: Sequence[Any], where: str) -> None:
    unknown = sorted({str(key) for key in keys} - set(DEFAULTS))
    if unknown:
        raise EnhanceKitError(
            f"unknown section {unknown[0]!r} in {where}; the sections are: {', '.join(DEFAULTS)}"
        )


def load_config(path: str | Path | None, overrides: Sequence[str] = ()) -> DictConfig:
    """The defaults, merged with the recipe at ``path`` and then with ``key=value`` overrides."""
    layers = [OmegaConf.create(DEFAULTS)]
    try:
        if path is not None:
            path = Path(path)
            if not path.is_file():
                raise EnhanceKitError(f"recipe not found: {path}")
            recipe = OmegaConf.load(path)
            if not isinstance(recipe, DictConfig):
                raise EnhanceKitError(
                    f"bad recipe {path}: it must be a mapping of sections (model, data, ...)"
                )
            _check_sections(recipe.keys(), f"recipe {path}")
            layers.append(recipe)
        bad = [o for o in overrides if "=" not in o]
        if bad:
            raise EnhanceKitError(f"overrides must look like key=value, got {bad[0]!r}")
        # A mistyped section (optimzer.lr=...) would otherwise be merged in and silently ignored.
        _check_sections([o.split("=", 1)[0].split(".", 1)[0] for o in overrides], "--set")
        layers.append(OmegaConf.from_dotlist(list(overrides)))
        config = OmegaConf.merge(*layers)
        if config.adversarial is not None:
            config.adversarial = OmegaConf.merge(OmegaConf.create(ADVERSARIAL_DEFAULTS), config.adversarial)
        if config.unpaired is not None:
            defaults = [OmegaConf.create(UNPAIRED_DEFAULTS)]
            if config.unpaired.get("kind") == "cyclegan":
                defaults.append(OmegaConf.create(CYCLEGAN_DEFAULTS))
            config.unpaired = OmegaConf.merge(*defaults, config.unpaired)
        OmegaConf.resolve(config)
    except (OmegaConfBaseException, yaml.YAMLError) as exc:
        raise EnhanceKitError(f"bad recipe {path}: {' '.join(str(exc).split())}") from exc
    if not config.model.name:
        raise EnhanceKitError("the recipe names no model (model.name)")
    if config.data.train is None:
        raise EnhanceKitError("the recipe has no training data (data.train)")
    return config
