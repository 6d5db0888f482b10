"""Training and validation datasets: paired folders and synthetic pairs made from clean images.

Images are read once into memory (the training sets of this toolkit are tens to hundreds of images) and
served as random aligned patches with the dihedral augmentations (flips, 90-degree rotations). Samples are
``(input, target)`` float32 tensors, channel first, in [0, 1]; for SR the target is ``scale`` times larger.

Volumes (for 3D models, ``spatial_dims=3``) are read with :func:`~enhancekit.data.io.read_volume`, normalised
to [0, 1] per file, a 4D file split into its 3D volumes, and served as cubic (or ``[D, H, W]``) patches
augmented by flips along each axis only: volumes are often anisotropic, so rotations would mix axes of
different voxel spacing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from enhancekit.data.degradations import Degradation, imresize, parse_degradation, refuse_saved_noise
from enhancekit.data.io import (
    VolumeData,
    from_float,
    list_inputs,
    pair_by_stem,
    read_image,
    read_volume,
    to_float,
)
from enhancekit.errors import EnhanceKitError


def _load_volumes(path: Path) -> list[np.ndarray]:
    """A file's 3D volumes as D x H x W x 1 arrays in [0, 1] (a 4D file gives one per last-axis index)."""
    return _split_volume(read_volume(path), path)


def _load_volume_pair(input_path: Path, target_path: Path) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """A noisy/clean pair of volume files on one scale: the union of their value ranges maps to [0, 1].

    Each file's own range would stretch them differently (noise widens the noisy file's range), so equal raw
    intensities would no longer match."""
    noisy, clean = read_volume(input_path), read_volume(target_path)
    shared = (
        min(noisy.value_range[0], clean.value_range[0]),
        max(noisy.value_range[1], clean.value_range[1]),
    )
    return (
        _split_volume(replace(noisy, value_range=shared), input_path),
        _split_volume(replace(clean, value_range=shared), target_path),
    )


def _split_volume(volume: VolumeData, path: Path) -> list[np.ndarray]:
    voxels = volume.normalized()
    if voxels.ndim == 3:
        return [voxels[..., None]]
    if voxels.ndim == 4:
        return [np.ascontiguousarray(voxels[..., t, None]) for t in range(voxels.shape[-1])]
    raise EnhanceKitError(f"{path.name}: expected a 3D or 4D volume, got shape {voxels.shape}")


def _load(path: Path, channels: int | None, resize: Sequence[int] | None = None) -> np.ndarray:
    pixels = read_image(path).pixels
    if resize is not None:
        pixels = np.clip(imresize(pixels, output_shape=(int(resize[0]), int(resize[1]))), 0, 1)
    if channels == 1 and pixels.shape[-1] == 3:
        # Gray models train on luma so that colour training folders still work.
        pixels = (pixels @ np.array([0.299, 0.587, 0.114], dtype=np.float32))[..., None]
    elif channels == 3 and pixels.shape[-1] == 1:
        pixels = np.repeat(pixels, 3, axis=-1)
    return np.ascontiguousarray(pixels, dtype=np.float32)


def _to_tensor(image: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(np.moveaxis(image, -1, 0)))


def dihedral(image: np.ndarray, index: int) -> np.ndarray:
    """One of the 8 variants (index 0 is the identity): flips and 90-degree rotations of an H x W x C image,
    flips along each spatial axis of a D x H x W x C volume."""
    if image.ndim == 4:
        axes = tuple(axis for axis in range(3) if index & (1 << axis))
        return np.flip(image, axis=axes) if axes else image
    if index & 4:
        image = image[:, ::-1]
    return np.rot90(image, k=index & 3, axes=(0, 1))


def _check_positive(name: str, *values: int) -> int:
    """The (first) value; patch sizes and repeats below 1 are recipe errors, not something to round up."""
    if any(int(value) < 1 for value in values):
        raise EnhanceKitError(f"data.*.{name} must be at least 1, got {', '.join(map(str, values))}")
    return int(values[0])


def _checked_index(index: int, length: int) -> int:
    """``index`` as a position in ``range(length)``, negative indices counted from the end.

    Out-of-range indices raise IndexError, which is what ends ``for sample in dataset`` (the datasets wrap
    positions onto their images with ``%``, which alone would never stop).
    """
    if not -length <= index < length:
        raise IndexError(f"index {index} out of range for a dataset of {length} samples")
    return index % length


class PairedImageDataset(Dataset):
    """Aligned (input, target) pairs: folders paired by file stem, or clean targets with a degradation.

    ``patch_size`` is the input patch side (``None`` serves whole images, for validation); ``scale`` is
    target size / input size. ``repeat`` serves each image that many times per epoch, so small sets give
    epochs of a useful length. With a ``degradation`` the input is made on the fly from the (cropped)
    target; a fixed seed per index makes validation sets reproducible when ``fixed_noise`` is set.
    ``input_bits`` (8 or 16) stores each made input as an image file of that depth would: clipped to [0, 1]
    and rounded. Real noisy 8-bit images are clipped, and so are the inputs ``enhancekit eval --degrade
    awgn-saved:S`` makes; a denoiser trained on unclipped noise misreads dark and bright regions of such
    images. ``saved_fraction`` (with ``input_bits``) stores only that share of the made inputs so, drawn per
    sample, and leaves the rest as floats: one model for both forms of noise.
    ``names`` (one per target) name the files in error messages.
    """

    def __init__(
        self,
        targets: Sequence[np.ndarray],
        inputs: Sequence[np.ndarray] | None = None,
        *,
        degradation: Degradation | None = None,
        patch_size: int | Sequence[int] | None = None,
        scale: int = 1,
        augment: bool = False,
        repeat: int = 1,
        fixed_noise: bool = False,
        seed: int = 0,
        input_bits: int | None = None,
        saved_fraction: float = 1.0,
        names: Sequence[str] | None = None,
    ) -> None:
        if (inputs is None) == (degradation is None):
            raise ValueError("give either inputs or a degradation")
        # The depth to round to is the recipe's choice (input_bits) here, not a loaded file's.
        refuse_saved_noise(degradation, "data.*.degrade")
        if input_bits not in (None, 8, 16):
            raise EnhanceKitError(f"input_bits must be 8 or 16, got {input_bits}")
        if input_bits is not None and degradation is None:
            raise EnhanceKitError("input_bits applies to inputs made by a degradation, not to input folders")
        if not 0.0 <= saved_fraction <= 1.0 or (saved_fraction != 1.0 and input_bits is None):
            raise EnhanceKitError(
                f"saved_fraction must be in [0, 1] and goes with input_bits, got {saved_fraction} with "
                f"input_bits {input_bits}"
            )
        if not targets:
            raise EnhanceKitError("the dataset has no images")
        self.targets = list(targets)
        self.inputs = list(inputs) if inputs is not None else None
        self.degradation = degradation
        spatial_dims = self.targets[0].ndim - 1
        if isinstance(patch_size, int):
            patch_size = (patch_size,) * spatial_dims
        self.patch_size = None if patch_size is None else tuple(int(p) for p in patch_size)
        if self.patch_size is not None:
            _check_positive("patch_size", *self.patch_size)
            if len(self.patch_size) != spatial_dims:
                raise EnhanceKitError(f"patch_size {list(self.patch_size)} needs {spatial_dims} sides")
            # Checked here, in the main process: an error inside a DataLoader worker reaches the user as a
            # re-raised traceback instead of one line.
            sides = tuple(p * scale for p in self.patch_size)
            for index, target in enumerate(self.targets):
                if any(n < side for n, side in zip(target.shape, sides, strict=False)):
                    size = "x".join(str(n) for n in target.shape[:spatial_dims])
                    where = f"{names[index]}: " if names is not None else ""
                    raise EnhanceKitError(
                        f"{where}an image of size {size} is smaller than the patch size "
                        f"{'x'.join(map(str, sides))} (patch_size x scale {scale}); lower data.*.patch_size"
                    )
        self.scale = scale
        self.augment = augment
        self.repeat = _check_positive("repeat", repeat)
        self.fixed_noise = fixed_noise
        self.seed = seed
        self.input_bits = input_bits
        self.saved_fraction = saved_fraction

    def __len__(self) -> int:
        return len(self.targets) * self.repeat

    def _rng(self, index: int) -> np.random.Generator:
        if self.fixed_noise:
            return np.random.default_rng([self.seed, index])
        # Draw from torch's per-worker seed so DataLoader workers and DDP ranks get different patches.
        return np.random.default_rng([self.seed, index, int(torch.randint(0, 2**31 - 1, ()).item())])

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        index = _checked_index(index, len(self))
        rng = self._rng(index)
        item = index % len(self.targets)
        target = self.targets[item]
        if self.inputs is not None:
            source = self.inputs[item]
            if self.patch_size is not None:
                source, target = self._random_crop(source, target, rng)
        else:
            if self.patch_size is not None:
                target = self._random_crop_target(target, rng)
            target = self.degradation.prepare_target(target)
            source = self.degradation(target, rng=rng)
            # The extra draw only with a fraction, so that recipes without one keep their random streams.
            saved = self.saved_fraction == 1.0 or rng.random() < self.saved_fraction
            if self.input_bits is not None and saved:
                source = to_float(from_float(source, self.input_bits))
        if self.augment:
            k = int(rng.integers(8))
            source, target = dihedral(source, k), dihedral(target, k)
        return _to_tensor(np.asarray(source, np.float32)), _to_tensor(np.asarray(target, np.float32))

    def _random_crop(self, source: np.ndarray, target: np.ndarray, rng: np.random.Generator):
        s = self.scale
        starts = [int(rng.integers(n - p + 1)) for n, p in zip(source.shape, self.patch_size, strict=False)]
        window = tuple(slice(a, a + p) for a, p in zip(starts, self.patch_size, strict=True))
        scaled = tuple(slice(a * s, (a + p) * s) for a, p in zip(starts, self.patch_size, strict=True))
        return source[window], target[scaled]

    def _random_crop_target(self, target: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        sides = [p * self.scale for p in self.patch_size]
        starts = [int(rng.integers(n - p + 1)) for n, p in zip(target.shape, sides, strict=False)]
        return target[tuple(slice(a, a + p) for a, p in zip(starts, sides, strict=True))]


def _mod_crop(target: np.ndarray, input_size: tuple[int, ...], scale: int) -> np.ndarray:
    """``target`` cut to ``input_size * scale`` when it is at most ``scale - 1`` pixels larger: benchmark
    sets (Set5, Set14...) keep the full HR image and make the LR one from its crop to a multiple of the
    scale. Any other mismatch is left for the dataset to report."""
    size = [side * scale for side in input_size]
    if all(0 <= have - want < scale for have, want in zip(target.shape[:2], size, strict=True)):
        return target[: size[0], : size[1]]
    return target


def _check_pair_sizes(
    pairs: Sequence[tuple[Path, Path]],
    inputs: Sequence[np.ndarray],
    targets: Sequence[np.ndarray],
    scale: int,
) -> None:
    """Every target must be its input's size times ``scale``: crops are cut at matching places."""
    for (input_path, target_path), source, target in zip(pairs, inputs, targets, strict=True):
        expected = (source.shape[0] * scale, source.shape[1] * scale)
        if target.shape[:2] != expected:
            raise EnhanceKitError(
                f"{target_path} is {target.shape[1]}x{target.shape[0]} but its input {input_path} is "
                f"{source.shape[1]}x{source.shape[0]} (x{scale} expected); crop the pair to one size, or "
                "set data.*.match_size=true to crop it to the common size"
            )


def build_paired_dataset(
    *,
    target: str | Path,
    input: str | Path | None = None,
    degrade: str | None = None,
    channels: int | None = None,
    scale: int = 1,
    patch_size: int | Sequence[int] | None = None,
    augment: bool = False,
    repeat: int = 1,
    split: tuple[float, float] | None = None,
    split_seed: int = 42,
    resize: Sequence[int] | None = None,
    fixed_noise: bool = False,
    seed: int = 0,
    spatial_dims: int = 2,
    match_size: bool = False,
    input_bits: int | None = None,
    saved_fraction: float = 1.0,
) -> PairedImageDataset:
    """A :class:`PairedImageDataset` from folders, as a recipe describes it.

    ``resize = [H, W]`` resizes every image (MATLAB bicubic) when loaded, for recipes that train on a fixed
    size; models here take any size, so recipes normally crop patches instead.
    ``split = (start, stop)`` keeps a fraction of the (shuffled with ``split_seed``) files, so a recipe can
    carve train (``[0, 0.8]``) and validation (``[0.8, 1]``) parts out of one folder without overlap.
    ``spatial_dims=3`` reads volume files (split by file, before 4D files are split into volumes).
    ``match_size`` crops each (input, target) pair to their common size, for scale-1 pairs whose exports
    differ by a few pixels (some FiveK retouches).
    """
    if input is not None and degrade:
        raise EnhanceKitError(
            f"data.*: inputs come from an input folder or are made with a degradation, not both (degrade: "
            f"{degrade}); set degrade=null to train on your own pairs"
        )
    volumes = spatial_dims == 3
    target_files = list_inputs([target], volumes=volumes)
    if input is not None:
        pairs = pair_by_stem(list_inputs([input], volumes=volumes), target_files)
    else:
        pairs = [(None, t) for t in target_files]
    if split is not None:
        order = np.random.default_rng(split_seed).permutation(len(pairs))
        start, stop = (round(f * len(pairs)) for f in split)
        pairs = [pairs[i] for i in sorted(order[start:stop])]
        if not pairs:
            raise EnhanceKitError(
                f"data.*.split {list(split)} of the {len(order)} files in {target} keeps none of them"
            )
    if volumes:
        if resize is not None:
            raise EnhanceKitError("resize applies to 2D images only")
        if input is None:
            targets, inputs = [v for _, t in pairs for v in _load_volumes(t)], None
        else:
            loaded = [_load_volume_pair(i, t) for i, t in pairs]
            inputs = [v for noisy, _ in loaded for v in noisy]
            targets = [v for _, clean in loaded for v in clean]
    else:
        targets = [_load(t, channels, resize) for _, t in pairs]
        inputs = [_load(i, channels, resize) for i, _ in pairs] if input is not None else None
        if match_size and inputs is not None:
            if scale != 1:
                raise EnhanceKitError("match_size applies to scale-1 pairs only")
            common = [tuple(map(min, i.shape[:2], t.shape[:2])) for i, t in zip(inputs, targets, strict=True)]
            inputs = [i[:h, :w] for i, (h, w) in zip(inputs, common, strict=True)]
            targets = [t[:h, :w] for t, (h, w) in zip(targets, common, strict=True)]
        elif inputs is not None and scale != 1:
            targets = [_mod_crop(t, i.shape[:2], scale) for i, t in zip(inputs, targets, strict=True)]
        if inputs is not None:
            _check_pair_sizes(pairs, inputs, targets, scale)
    degradation = parse_degradation(degrade) if degrade else None
    if inputs is None and degradation is None:
        raise EnhanceKitError("a dataset without an input folder needs a degradation (e.g. degrade: awgn:25)")
    return PairedImageDataset(
        targets,
        inputs,
        degradation=degradation,
        patch_size=patch_size,
        scale=scale,
        augment=augment,
        repeat=repeat,
        fixed_noise=fixed_noise,
        seed=seed,
        input_bits=input_bits,
        saved_fraction=saved_fraction,
        names=None if volumes else [str(t) for _, t in pairs],
    )


def _unpaired_degradation(spec: str | None) -> Degradation | None:
    degradation = parse_degradation(spec) if spec else None
    refuse_saved_noise(degradation, "data.*.low_degrade")
    return degradation


class UnpairedImageDataset(Dataset):
    """Two unrelated image sets for unpaired training: ``(low, high)`` samples where the high-quality image is
    drawn independently of the low-quality one (the two sets are shuffled independently), each a random
    patch with its own augmentation. An epoch serves every low image ``repeat`` times. ``low_degradation``
    (optional) is applied to the low patches, for sets that only have good images."""

    def __init__(
        self,
        lows: Sequence[np.ndarray],
        highs: Sequence[np.ndarray],
        *,
        patch_size: int,
        augment: bool = True,
        repeat: int = 1,
        low_degradation: Degradation | None = None,
        seed: int = 0,
    ) -> None:
        if not lows or not highs:
            raise EnhanceKitError("unpaired training needs images in both the low and the high folder")
        _check_positive("patch_size", patch_size)
        for image in [*lows, *highs]:
            if min(image.shape[:2]) < patch_size:
                raise EnhanceKitError(
                    f"an image of size {image.shape[0]}x{image.shape[1]} is smaller than the patch size "
                    f"{patch_size}; lower data.train.patch_size"
                )
        self.lows, self.highs = list(lows), list(highs)
        self.patch_size = patch_size
        self.augment = augment
        self.repeat = _check_positive("repeat", repeat)
        self.low_degradation = low_degradation
        self.seed = seed

    def __len__(self) -> int:
        return len(self.lows) * self.repeat

    def _patch(self, image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        p = self.patch_size
        y, x = int(rng.integers(image.shape[0] - p + 1)), int(rng.integers(image.shape[1] - p + 1))
        patch = image[y : y + p, x : x + p]
        return dihedral(patch, int(rng.integers(8))) if self.augment else patch

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        index = _checked_index(index, len(self))
        rng = np.random.default_rng([self.seed, index, int(torch.randint(0, 2**31 - 1, ()).item())])
        low = self._patch(self.lows[index % len(self.lows)], rng)
        if self.low_degradation is not None:
            low = self.low_degradation(low, rng=rng)
        high = self._patch(self.highs[int(rng.integers(len(self.highs)))], rng)
        return _to_tensor(np.asarray(low, np.float32)), _to_tensor(np.asarray(high, np.float32))


def build_unpaired_dataset(
    *,
    low: str | Path | Sequence[str | Path],
    high: str | Path | Sequence[str | Path],
    channels: int | None = None,
    patch_size: int = 128,
    augment: bool = True,
    repeat: int = 1,
    low_degrade: str | None = None,
    split: tuple[float, float] | None = None,
    split_seed: int = 42,
    seed: int = 0,
) -> UnpairedImageDataset:
    """An :class:`UnpairedImageDataset` from folders (or lists of folders and files), as a recipe gives it.

    ``split = (start, stop)`` keeps that fraction of each folder (shuffled with ``split_seed``), e.g. to
    leave the pairs of a paired validation split out of training.
    """

    def listing(paths: str | Path | Sequence[str | Path]) -> list[Path]:
        kept = []
        for path in [paths] if isinstance(paths, str | Path) else list(paths):
            files = list_inputs([path])
            if split is not None:
                # Per folder, as a paired split of the same folder draws it: a paired validation set made
                # with the same split_seed holds exactly the files left out here.
                order = np.random.default_rng(split_seed).permutation(len(files))
                start, stop = (round(f * len(files)) for f in split)
                files = [files[i] for i in sorted(order[start:stop])]
            kept.extend(files)
        return kept

    return UnpairedImageDataset(
        [_load(path, channels) for path in listing(low)],
        [_load(path, channels) for path in listing(high)],
        patch_size=patch_size,
        augment=augment,
        repeat=repeat,
        low_degradation=_unpaired_degradation(low_degrade),
        seed=seed,
    )
