"""The whole split as one uint8 tensor on the training device, batches gathered by index.

Augmentation runs batched on the device (see :mod:`robustarch.data.augment`), so there are no
worker processes and no per-image Python on the hot path. All randomness comes from one
``torch.Generator`` on the device, whose state is checkpointed with the model.

A split of full frames (ImageNette's training split, :mod:`robustarch.data.splits`) comes with
each frame's true size; the loader hands each batch's sizes to the augmentation, whose
resized crop samples within them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import torch

from ..settings import Augmentation as AugmentSettings
from .splits import frame_size_problem

# augmentation(images, generator) or, for full frames, augmentation(images, generator,
# sizes=...) with the batch's true (height, width) per image
Augmentation = Callable[..., torch.Tensor]

CROPS = ("crop_flip", "resized_crop", "resized_crop_flip")


def make_augmentation(settings: AugmentSettings, image_size: int) -> Augmentation | None:
    """The training augmentation of a dataset config, in the authors' order.

    ``crop_flip`` (CIFAR-10): AutoAugment on the image as it is, then the zero-padded random
    crop and the horizontal flip (their ``CIFAR10Policy(), RandomCrop(32, padding=4),
    RandomHorizontalFlip()``), so AutoAugment never sees the padding. ``resized_crop``
    (ImageNette: ``RandomResizedCrop(224), ImageNetPolicy()``, no flip) and
    ``resized_crop_flip``: the crop first, then AutoAugment on the ``image_size`` crop.
    The returned function takes ``sizes`` (the frames' true sizes) for a full-frame split, which
    only the resized crops can read.
    """
    from . import augment

    crop, policy, impl = settings.crop, settings.autoaugment, settings.autoaugment_impl
    if crop is None and policy is None:
        return None
    if crop not in (None, *CROPS):
        raise ValueError(f"unknown crop {crop!r}; use {', '.join(CROPS)} or null")

    def auto(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        if policy is None:
            return x
        return augment.autoaugment(x, policy=policy, impl=impl, generator=generator)

    def apply(x: torch.Tensor, generator: torch.Generator,
              sizes: torch.Tensor | None = None) -> torch.Tensor:
        if sizes is not None and crop not in ("resized_crop", "resized_crop_flip"):
            raise ValueError(
                f"this split holds full frames of different sizes, which only a resized crop "
                f"turns into {image_size} px images; the dataset's augment.crop is {crop!r}: "
                "use resized_crop or resized_crop_flip")
        if crop == "crop_flip":
            return augment.random_crop_flip(auto(x, generator), padding=4, generator=generator)
        if crop is not None:
            kwargs = {} if sizes is None else {"sizes": sizes}
            x = augment.random_resized_crop_flip(x, size=image_size, flip=crop.endswith("_flip"),
                                                 generator=generator, **kwargs)
        return auto(x, generator)

    return apply


class DeviceLoader:
    """Iterate ``(images in [0, 1] float32, labels)`` batches of a split held on ``device``."""

    def __init__(
        self,
        x: torch.Tensor,
        y: torch.Tensor,
        sizes: torch.Tensor | None = None,
        *,
        batch_size: int,
        shuffle: bool,
        augmentation: Augmentation | None = None,
        seed: int = 0,
        drop_last: bool = False,
        device: str | torch.device = "cpu",
        memory_format: torch.memory_format = torch.contiguous_format,
    ):
        if x.dtype != torch.uint8:
            raise TypeError(f"expected uint8 images, got {x.dtype}")
        if sizes is not None:
            problem = frame_size_problem(x, sizes)
            if problem or augmentation is None:
                raise ValueError(f"full frames need their sizes and a resized-crop "
                                 f"augmentation: {problem or 'no augmentation given'}")
        self.device = torch.device(device)
        self.x = x.to(self.device)
        self.y = y.to(self.device)
        # (N, 2) true frame sizes of a full-frame split (None: fixed-size images)
        self.sizes = None if sizes is None else sizes.to(self.device)
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.augmentation = augmentation
        self.drop_last = drop_last
        self.memory_format = memory_format
        self.generator = torch.Generator(device=self.device)
        self.generator.manual_seed(seed)
        self._order: torch.Tensor | None = None  # the current epoch's sample order
        self._position = 0

    def __len__(self) -> int:
        n = len(self.x)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        if self._order is None:  # a new epoch; otherwise continue one restored mid-way
            n = len(self.x)
            if self.shuffle:
                self._order = torch.randperm(n, device=self.device, generator=self.generator)
            else:
                self._order = torch.arange(n, device=self.device)
            self._position = 0
        while self._position < len(self):
            b = self._position
            idx = self._order[b * self.batch_size:(b + 1) * self.batch_size]
            images = self.x[idx]
            if self.sizes is not None:
                images = self.augmentation(images, self.generator, sizes=self.sizes[idx])
            elif self.augmentation is not None:
                images = self.augmentation(images, self.generator)
            images = images.float().div_(255).contiguous(memory_format=self.memory_format)
            self._position += 1
            yield images, self.y[idx]
        self._order = None

    @property
    def position(self) -> int:
        """Batches already yielded in the current epoch (0 between epochs)."""
        return 0 if self._order is None else self._position

    def state_dict(self) -> dict[str, Any]:
        """Generator state, plus the epoch's order and position when saved mid-epoch (so a
        preempted job resumes at the next batch with the same data order)."""
        state: dict[str, Any] = {"generator": self.generator.get_state()}
        if self._order is not None:
            state.update(order=self._order.cpu(), position=self._position)
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.generator.set_state(state["generator"])
        if "order" in state:
            self._order = state["order"].to(self.device)
            self._position = int(state["position"])
        else:
            self._order = None
