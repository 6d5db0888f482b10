"""``train(config)``: build data, model and task from a recipe and run Lightning's Trainer.

Outputs in ``<output_dir>``: ``run.yaml`` (resolved recipe, seed, commit; ``run.resume-stepN.yaml`` for
each resume), ``checkpoints/best.ckpt`` and ``last.ckpt`` (full state, for ``--resume``), ``logs/metrics.csv``
and TensorBoard events, and the best model's weights as ``model.safetensors`` with a model card
``model.json``.

Data parallelism uses PyTorch's DDP through Lightning: ``trainer.devices=2 trainer.strategy=ddp`` (gloo on
CPU, NCCL on GPU), or a ``torchrun --nproc-per-node N`` launch, whose environment Lightning detects.
"""

from __future__ import annotations

import csv
import inspect
import io
import json
import os
import subprocess
import sys
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import (
    EarlyStopping,
    EMAWeightAveraging,
    LearningRateMonitor,
    ModelCheckpoint,
    RichProgressBar,
)
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger
from lightning.pytorch.utilities import rank_zero_info
from omegaconf import DictConfig, OmegaConf
from safetensors.torch import save as safetensors_bytes
from torch.utils.data import DataLoader

import enhancekit
from enhancekit.data.datasets import build_paired_dataset, build_unpaired_dataset
from enhancekit.data.io import atomic_output
from enhancekit.errors import EnhanceKitError
from enhancekit.losses.adversarial import AdversarialLoss
from enhancekit.losses.composite import CompositeLoss
from enhancekit.losses.perceptual import PerceptualLoss
from enhancekit.losses.ssim import StructureLoss
from enhancekit.metrics import METRICS, parse_metrics
from enhancekit.registry import (
    CHECKPOINT_CARD_KEY,
    WEIGHTS_ARGS_KEY,
    WEIGHTS_MODEL_KEY,
    count_parameters,
    create_model,
    get_model_entry,
    weights_card_args,
)
from enhancekit.tasks import TASK_DEFAULTS
from enhancekit.training.tasks import AdversarialTask, RestorationTask
from enhancekit.training.unpaired import CycleGANTask, UEGANTask

#: UEGAN consistency (content) terms: VGG19 features of output vs input (UEGAN's), or the weight-free one.
CONTENT_LOSSES = {"vgg": PerceptualLoss, "structure": StructureLoss}


class ModelDeviceEMA(EMAWeightAveraging):
    """Lightning's EMA callback, with the averaged copy kept on the model's device.

    Lightning builds the copy in ``setup``, before the strategy moves the model to the GPU, so it would stay
    on the CPU and every step would copy all the weights across the bus; ``on_fit_start`` comes after the
    move."""

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._average_model is not None:
            self._average_model.to(pl_module.device)


class LatestCheckpoint(ModelCheckpoint):
    """``last.ckpt``, rewritten after every validation (every epoch by default), for ``--resume``.

    It is saved when validation ends, after the GAN schedules have stepped, so a resumed run starts from a
    consistent epoch; with ``trainer.check_val_every_n_epoch > 1`` a resume may repeat up to that many epochs.

    A monitored ``ModelCheckpoint(save_last=True)`` rewrites ``last.ckpt`` only in epochs that improve the
    best score (Lightning 2.6), so a run resumed from it would silently restart from its best epoch."""

    def __init__(self, dirpath: Path) -> None:
        super().__init__(dirpath=dirpath, filename="last", save_top_k=1, enable_version_counter=False)

    @property
    def state_key(self) -> str:
        return type(self).__name__


class FromEpoch:
    """Makes a validation-driven callback (best checkpoint, early stopping) ignore validations before
    ``first_epoch``: a GAN recipe's exported model must come from its adversarial phase, and warm-up epochs,
    which score higher on PSNR, would otherwise win the selection and use up the early-stopping patience."""

    def __init__(self, *args: Any, first_epoch: int = 0, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.first_epoch = first_epoch

    @property
    def state_key(self) -> str:
        # Lightning files a callback's state under its class name: keep the parent's, so that a run
        # checkpointed before these classes existed resumes with its best score and patience.
        parent = next(base for base in type(self).__mro__[1:] if base is not FromEpoch)
        return super().state_key.replace(type(self).__qualname__, parent.__qualname__, 1)

    # Lightning's callbacks act in either hook, depending on how often validation runs.
    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.current_epoch >= self.first_epoch:
            super().on_validation_end(trainer, pl_module)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.current_epoch >= self.first_epoch:
            super().on_train_epoch_end(trainer, pl_module)


class BestCheckpoint(FromEpoch, ModelCheckpoint):
    pass


class PhaseEarlyStopping(FromEpoch, EarlyStopping):
    pass


def selection_start(config: DictConfig) -> int:
    """The first epoch whose validation may select the exported model: the first adversarial epoch of a GAN
    recipe whose adversarial phase starts within ``trainer.max_epochs``, else 0 (a recipe that postpones the
    adversarial phase past its end, as a fine-tune of the denoiser alone does, selects among all epochs)."""
    adversarial = config.adversarial
    if adversarial is None:
        return 0
    start = int(adversarial.warmup_epochs) + int(adversarial.discriminator_warmup_epochs)
    max_epochs = config.trainer.get("max_epochs")
    unbounded = max_epochs is None or int(max_epochs) < 0  # -1: until max_time or max_steps
    return start if unbounded or start < int(max_epochs) else 0


class RecipeScheduleOnResume(L.Callback):
    """Sets the learning rate from the recipe's ``linear_decay`` when training starts.

    A resumed run may extend its recipe (more epochs, so a slower decay), but the restored optimiser holds
    the rate the old schedule set, and would train a whole epoch with it before the new schedule steps."""

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        for scheduler_config in trainer.lr_scheduler_configs:
            scheduler = scheduler_config.scheduler
            if isinstance(scheduler, torch.optim.lr_scheduler.LambdaLR):
                for group, base_lr, factor in zip(
                    scheduler.optimizer.param_groups, scheduler.base_lrs, scheduler.lr_lambdas, strict=True
                ):
                    group["lr"] = base_lr * factor(scheduler.last_epoch)


def _git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, cwd=Path(__file__).parent
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def _model_args(spec: DictConfig) -> dict[str, Any]:
    """The constructor arguments a model spec resolves to, including those recorded with its initial
    weights, so the exported card describes the network completely."""
    args = OmegaConf.to_container(spec.args, resolve=True) if spec.get("args") is not None else {}
    weights = spec.get("weights")
    return {**weights_card_args(spec.name, weights), **args} if weights else args


def _build_model(spec: DictConfig, *, load_weights: bool = True) -> torch.nn.Module:
    """The network a model spec describes, with its initial weights unless ``load_weights`` is false (the
    architecture still follows their card). A model named by a shipped name (``dncnn-gray``) without
    ``weights`` starts from its shipped weights: naming it is asking to fine-tune it; the family's name
    (``dncnn``) trains from scratch."""
    weights = spec.get("weights") if load_weights else None
    shipped = load_weights and weights is None and get_model_entry(spec.name).weights is not None
    if shipped:
        rank_zero_info(f"{spec.name}: training starts from its shipped weights (fine-tuning)")
    return create_model(spec.name, pretrained=shipped, weights=weights, **_model_args(spec)).train()


def _loader(dataset, batch_size: int, *, shuffle: bool, num_workers: int) -> DataLoader:
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=shuffle,
        num_workers=num_workers,
        drop_last=shuffle,
        persistent_workers=num_workers > 0,
    )


def build_task(config: DictConfig) -> tuple[L.LightningModule, str]:
    """The Lightning module a recipe describes, and the model's task name."""
    entry = get_model_entry(config.model.name)
    defaults = TASK_DEFAULTS[entry.task]
    model = _build_model(config.model)
    scale = int(getattr(model, "scale", 1))
    metrics = parse_metrics(list(config.val.metrics), volumes=getattr(model, "spatial_dims", 2) == 3)
    monitor = config.val.monitor
    if monitor not in METRICS or METRICS[monitor] not in metrics:
        raise EnhanceKitError(f"val.monitor {monitor!r} must be one of val.metrics")
    color = config.val.color or defaults.color
    crop = config.val.crop if config.val.crop is not None else (scale if defaults.crop_is_scale else 0)
    scheduler = OmegaConf.to_container(config.scheduler, resolve=True)
    scheduled = scheduler.get("name", "none") != "none"
    gan = config.adversarial is not None or config.unpaired is not None
    if config.data.val is None and (scheduler.get("name") == "plateau" or (scheduled and gan)):
        # Plateau schedules read the validation score, and GAN schedules step at the end of validation.
        raise EnhanceKitError("this scheduler needs validation data (data.val)")
    once_per_epoch = (
        int(config.trainer.get("check_val_every_n_epoch", 1) or 1) == 1
        and float(config.trainer.get("val_check_interval", 1.0) or 1.0) == 1.0
    )
    if (scheduler.get("name") == "plateau" or (scheduled and gan)) and not once_per_epoch:
        # Lightning steps a plateau schedule every epoch and fails where no score was logged; GAN schedules
        # would step more or less often than once an epoch.
        raise EnhanceKitError(
            "this scheduler steps on each epoch's validation: keep trainer.check_val_every_n_epoch and "
            "trainer.val_check_interval at 1"
        )
    if scheduler.get("name") == "plateau":
        scheduler.setdefault("mode", "max" if METRICS[monitor].higher_is_better else "min")
    common: dict[str, Any] = {
        "optimizer": OmegaConf.to_container(config.optimizer, resolve=True),
        "scheduler": scheduler,
        "metrics": metrics,
        "color": color,
        "crop": int(crop),
        "monitor": monitor,
        "loss_scales": None if config.loss_scales is None else list(config.loss_scales),
    }
    if config.unpaired is not None:
        return _unpaired_task(config, model, common), entry.task
    loss = CompositeLoss(OmegaConf.to_container(config.loss, resolve=True))
    if config.adversarial is None:
        return RestorationTask(model, loss, **common), entry.task
    adv = config.adversarial
    discriminator = _build_model(adv.discriminator)
    task = AdversarialTask(
        model,
        discriminator,
        loss,
        adversarial_loss=AdversarialLoss(adv.loss),
        adversarial_weight=adv.weight,
        warmup_epochs=int(adv.warmup_epochs),
        discriminator_warmup_epochs=int(adv.discriminator_warmup_epochs),
        discriminator_optimizer=OmegaConf.to_container(adv.optimizer, resolve=True),
        **common,
    )
    return task, entry.task


def _unpaired_task(config: DictConfig, model: torch.nn.Module, common: dict[str, Any]) -> L.LightningModule:
    spec = config.unpaired
    if config.adversarial is not None:
        raise EnhanceKitError("a recipe has either `adversarial` (paired) or `unpaired`, not both")
    if spec.kind not in ("uegan", "cyclegan"):
        raise EnhanceKitError(f"unknown unpaired.kind {spec.kind!r}; available: uegan, cyclegan")
    if not spec.discriminator.name:
        raise EnhanceKitError("the unpaired recipe names no discriminator (unpaired.discriminator.name)")
    shared = {
        "adversarial_loss": AdversarialLoss(spec.loss),
        "discriminator_optimizer": OmegaConf.to_container(spec.optimizer, resolve=True),
        "pool_size": int(spec.pool_size),
        "seed": int(config.seed),
        **common,
    }
    if spec.kind == "cyclegan":
        if spec.loss == "relativistic_hinge":
            raise EnhanceKitError(
                "unpaired.loss relativistic_hinge does not suit CycleGAN (its generator step has no real "
                "images to compare with); use lsgan, vanilla or hinge"
            )
        return CycleGANTask(
            model,
            # The high -> low generator starts fresh: model.weights are for the low -> high direction.
            _build_model(config.model, load_weights=False),
            _build_model(spec.discriminator),
            _build_model(spec.discriminator),
            cycle_weight=float(spec.cycle_weight),
            identity_weight=float(spec.identity_weight),
            **shared,
        )
    if spec.content not in CONTENT_LOSSES:
        raise EnhanceKitError(
            f"unknown unpaired.content {spec.content!r}; available: {', '.join(CONTENT_LOSSES)}"
        )
    try:
        content_loss = CONTENT_LOSSES[spec.content](**spec.content_args)
    except TypeError as error:
        raise EnhanceKitError(f"unpaired.content_args for {spec.content!r}: {error}") from None
    return UEGANTask(
        model,
        _build_model(spec.discriminator),
        content_loss,
        quality_weight=float(spec.quality_weight),
        consistency_weight=float(spec.consistency_weight),
        identity_weight=float(spec.identity_weight),
        **shared,
    )


def build_dataloaders(config: DictConfig, model: torch.nn.Module) -> tuple[DataLoader, DataLoader | None]:
    """Training and validation loaders; the model says its scale and channel count."""
    scale = int(getattr(model, "scale", 1))
    channels = getattr(model, "in_channels", None)
    spatial_dims = int(getattr(model, "spatial_dims", 2))
    data = config.data
    train_spec = OmegaConf.to_container(data.train, resolve=True)
    size_multiple = int(getattr(model, "size_multiple", 1))
    patch = train_spec.get("patch_size")
    # Training patches go through the model unpadded, so they must fit its downsampling levels.
    if patch is not None and any(
        side % size_multiple for side in ([patch] if isinstance(patch, int) else patch)
    ):
        raise EnhanceKitError(
            f"data.train.patch_size {patch} must be a multiple of {size_multiple} for {config.model.name}"
        )
    if int(data.batch_size) < 1 or int(data.num_workers) < 0:
        raise EnhanceKitError(
            f"data.batch_size must be >= 1 and data.num_workers >= 0, got {data.batch_size} and "
            f"{data.num_workers}"
        )
    if config.get("unpaired") is not None:
        _check_keys(train_spec, build_unpaired_dataset, "data.train", set_here=("channels", "seed"))
        train_set = build_unpaired_dataset(channels=channels, seed=config.seed, **train_spec)
    else:
        _check_keys(train_spec, build_paired_dataset, "data.train", set_here=_SET_FOR_PAIRED)
        train_set = build_paired_dataset(
            channels=channels, scale=scale, seed=config.seed, spatial_dims=spatial_dims, **train_spec
        )
    if len(train_set) < data.batch_size:
        raise EnhanceKitError(
            f"the training set serves {len(train_set)} samples per epoch, fewer than one batch of "
            f"{data.batch_size}; raise data.train.repeat or lower data.batch_size"
        )
    train = _loader(train_set, data.batch_size, shuffle=True, num_workers=data.num_workers)
    if data.val is None:
        return train, None
    val_spec = OmegaConf.to_container(data.val, resolve=True)
    _check_keys(val_spec, build_paired_dataset, "data.val", set_here=(*_SET_FOR_PAIRED, "fixed_noise"))
    val_set = build_paired_dataset(
        channels=channels,
        scale=scale,
        fixed_noise=True,
        seed=config.seed,
        spatial_dims=spatial_dims,
        **val_spec,
    )
    return train, _loader(val_set, 1, shuffle=False, num_workers=0)


# Dataset arguments the runner takes from the model and the recipe's seed, not from data.train / data.val.
_SET_FOR_PAIRED = ("channels", "scale", "seed", "spatial_dims")


def _check_keys(spec: dict[str, Any], builder: Any, section: str, *, set_here: Sequence[str]) -> None:
    """A mistyped key in a recipe section is a one-line error naming it and the keys the section takes."""
    accepted = set(inspect.signature(builder).parameters) - set(set_here)
    unknown = sorted(set(spec) - accepted)
    if unknown:
        raise EnhanceKitError(
            f"unknown key {section}.{unknown[0]}; {section} takes: {', '.join(sorted(accepted))}"
        )


def _trainer_kwargs(config: DictConfig, task: L.LightningModule) -> dict[str, Any]:
    kwargs = OmegaConf.to_container(config.trainer, resolve=True)
    # Under torchrun, Lightning must be told as many local devices as torchrun started processes.
    if "LOCAL_WORLD_SIZE" in os.environ and kwargs.get("devices") == "auto":
        kwargs["devices"] = int(os.environ["LOCAL_WORLD_SIZE"])
        if kwargs.get("strategy") == "auto":
            kwargs["strategy"] = "ddp"
    # A GAN step's backward reaches only one network (the other's inputs are detached), which plain DDP
    # rejects as unused parameters.
    if kwargs.get("strategy") == "ddp" and not task.automatic_optimization:
        kwargs["strategy"] = "ddp_find_unused_parameters_true"
    return kwargs


def _read_checkpoint(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise EnhanceKitError(f"checkpoint not found: {path}")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=False, mmap=True)
    except Exception:  # torch raises several types, with misleading messages, for a file that is not one
        raise EnhanceKitError(
            f"cannot read checkpoint {path}: not a checkpoint of `enhancekit train`, or a damaged one"
        ) from None
    if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint:
        raise EnhanceKitError(f"cannot resume from {path}: it holds no training state (use it as --weights)")
    return checkpoint


def _check_resumable(task: L.LightningModule, checkpoint: dict[str, Any], path: Path) -> None:
    """A checkpoint of other networks (another model or other widths) is one line, not a key dump."""
    saved, own = checkpoint["state_dict"], task.state_dict()
    differing = sorted(
        key
        for key in own.keys() | saved.keys()
        if key not in own or key not in saved or tuple(own[key].shape) != tuple(saved[key].shape)
    )
    if differing:
        raise EnhanceKitError(
            f"checkpoint {path} does not fit this recipe's networks ({len(differing)} tensors differ, e.g. "
            f"{differing[0]}); resume with the recipe and --set options of the run that wrote it"
        )


class ModelCardInCheckpoint(L.Callback):
    """Checkpoints carry the model's name and arguments, so ``--weights best.ckpt`` rebuilds the network
    they were trained in, as ``model.safetensors`` does."""

    def __init__(self, card: dict[str, Any]) -> None:
        self.card = card

    def on_save_checkpoint(
        self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        checkpoint[CHECKPOINT_CARD_KEY] = self.card


def _keep_metrics_history(csv_logger: CSVLogger) -> None:
    """Lightning's CSV writer deletes an existing ``metrics.csv`` when it starts; a resumed run appends to it
    instead, so that the file keeps the whole training curve."""
    metrics_file = Path(csv_logger.log_dir) / "metrics.csv"
    if not metrics_file.is_file():
        return
    history = metrics_file.read_text()
    writer = csv_logger.experiment
    metrics_file.write_text(history)
    # The writer appends under this header and rewrites the file when new columns appear.
    writer.metrics_keys = next(csv.reader(io.StringIO(history)), [])


def train(config: DictConfig, resume: str | Path | None = None) -> Path:
    """Run a recipe; returns the output folder. ``resume`` continues from a Lightning checkpoint."""
    resumed = None if resume is None else _read_checkpoint(Path(resume))
    resume_step = 0 if resumed is None else int(resumed.get("global_step", 0))
    # Offset by the step a run resumes at, so that it does not replay its first epochs' crops and noise.
    L.seed_everything(int(config.seed) + resume_step, workers=True, verbose=False)
    output_dir = Path(config.output_dir)
    if output_dir.exists() and not output_dir.is_dir():
        raise EnhanceKitError(f"output_dir {output_dir} exists and is not a folder")
    if resume is None and (output_dir / "model.safetensors").exists():
        raise EnhanceKitError(
            f"{output_dir} already holds a finished run; set another output_dir (--set name=...) or --resume"
        )
    interrupted = output_dir / "checkpoints" / "last.ckpt"
    if resume is None and interrupted.exists():
        # Starting over would overwrite its checkpoints, log and run record.
        raise EnhanceKitError(
            f"{output_dir} holds an interrupted run; continue it with --resume {interrupted}, or set another "
            "output_dir (--set name=...)"
        )
    task, task_name = build_task(config)
    if resumed is not None:
        _check_resumable(task, resumed, Path(resume))
        del resumed  # Lightning reads the file again when it restores the whole state
    train_loader, val_loader = build_dataloaders(config, task.model)
    monitor = f"val/{config.val.monitor}"
    mode = "max" if METRICS[config.val.monitor].higher_is_better else "min"
    has_val = val_loader is not None
    checkpoint = BestCheckpoint(
        dirpath=output_dir / "checkpoints",
        filename="best",
        monitor=monitor if has_val else None,
        mode=mode,
        save_top_k=1,
        auto_insert_metric_name=False,
        first_epoch=selection_start(config) if has_val else 0,
    )
    callbacks: list[L.Callback] = [
        checkpoint,
        LatestCheckpoint(output_dir / "checkpoints"),
        RecipeScheduleOnResume(),
        ModelCardInCheckpoint({"model": config.model.name, "args": _model_args(config.model)}),
        LearningRateMonitor(logging_interval="epoch"),
    ]
    if sys.stderr.isatty() and config.trainer.get("enable_progress_bar", True):
        callbacks.append(RichProgressBar())
    if config.early_stopping.patience is not None and has_val:
        stopping = PhaseEarlyStopping(
            monitor=monitor,
            mode=mode,
            patience=int(config.early_stopping.patience),
            first_epoch=checkpoint.first_epoch,
        )
        callbacks.append(stopping)
    if config.ema.decay is not None:
        if not 0.0 < float(config.ema.decay) < 1.0:
            raise EnhanceKitError(f"ema.decay must be between 0 and 1, got {config.ema.decay}")
        callbacks.append(
            ModelDeviceEMA(decay=float(config.ema.decay), update_starting_at_step=int(config.ema.start_step))
        )
    loggers = [
        CSVLogger(output_dir, name="logs", version=""),
        TensorBoardLogger(output_dir, name="logs", version=""),
    ]
    trainer_kwargs = _trainer_kwargs(config, task)
    _check_keys(trainer_kwargs, L.Trainer, "trainer", set_here=("callbacks", "logger", "default_root_dir"))
    try:
        trainer = L.Trainer(
            callbacks=callbacks, logger=loggers, default_root_dir=output_dir, **trainer_kwargs
        )
    except Exception as exc:  # Lightning rejects bad values with several types, some without a message
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise EnhanceKitError(f"bad trainer settings ({reason}): check the trainer.* values") from exc
    if trainer.is_global_zero:
        output_dir.mkdir(parents=True, exist_ok=True)
        run_info = {
            "recipe": OmegaConf.to_container(config, resolve=True),
            "seed": int(config.seed),
            "commit": _git_commit(),
            "enhancekit": enhancekit.__version__,
            "torch": str(torch.__version__),
            "command": sys.argv,
            "resume": str(resume) if resume else None,
            "resume_step": resume_step,
            "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }
        # A resumed run keeps the first run's record and adds its own.
        record = "run.yaml" if resume is None else f"run.resume-step{resume_step}.yaml"
        if resume is not None:
            _keep_metrics_history(loggers[0])
        OmegaConf.save(OmegaConf.create(run_info), output_dir / record)
    trainer.fit(task, train_loader, val_loader, ckpt_path=str(resume) if resume else None)

    best = checkpoint.best_model_path
    exported_epoch = trainer.current_epoch - 1
    if config.early_stopping.restore_best and best and Path(best).is_file():
        saved = torch.load(best, map_location="cpu", weights_only=False)
        task.load_state_dict(saved["state_dict"])
        exported_epoch = int(saved["epoch"])
    if trainer.is_global_zero:
        _export(task, config, task_name, trainer, checkpoint, output_dir, exported_epoch)
    return output_dir


def _export(
    task: L.LightningModule,
    config: DictConfig,
    task_name: str,
    trainer: L.Trainer,
    checkpoint: ModelCheckpoint,
    output_dir: Path,
    exported_epoch: int,
) -> None:
    state = {k: v.detach().cpu().contiguous() for k, v in task.model.state_dict().items()}
    # The architecture travels inside the file too: a weights file copied without its card still rebuilds
    # the network it was trained as (ADL's residual and sigmoid heads have identical tensors).
    args = _model_args(config.model)
    metadata = {WEIGHTS_MODEL_KEY: config.model.name, WEIGHTS_ARGS_KEY: json.dumps(args)}
    # Atomic, and with the folder's usual permissions (safetensors' own writer makes the file owner-only).
    with atomic_output(output_dir / "model.safetensors") as handle:
        handle.write(safetensors_bytes(state, metadata=metadata))
    scores = {
        k.removeprefix("val/"): float(v) for k, v in trainer.callback_metrics.items() if k.startswith("val/")
    }
    best_score = checkpoint.best_model_score
    card = {
        "model": config.model.name,
        "args": args,
        "task": task_name,
        "parameters": count_parameters(task.model),
        "recipe": OmegaConf.to_container(config, resolve=True),
        "epochs": trainer.current_epoch,
        "steps": trainer.global_step,
        # Which epoch's weights these are, and for a GAN recipe from which phase (see selection_start).
        "exported_epoch": exported_epoch,
        **({"exported_phase": task.phase_of(exported_epoch)} if isinstance(task, AdversarialTask) else {}),
        "commit": _git_commit(),
        "best_checkpoint": {
            "monitor": f"val/{config.val.monitor}",
            "score": float(best_score) if best_score is not None else None,
        },
        "last_validation": scores,
        # What `enhancekit models` shows; shipped cards replace it with test-set figures.
        "scores": {f"val {config.val.monitor}": round(float(best_score), 4)}
        if best_score is not None
        else {},
    }
    with atomic_output(output_dir / "model.json") as handle:
        handle.write(json.dumps(card, indent=2).encode())
