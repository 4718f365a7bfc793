"""The reference for the training benchmark: a conventional PGD adversarial training loop.

Written the way most adversarial-training code is (Madry et al.'s recipe as found in public
CIFAR-10 repositories): a map-style dataset that hands out PIL images, torchvision's per-image
transforms (``RandomCrop(padding=4)``, ``RandomHorizontalFlip``, ``ToTensor``) batched by a
``DataLoader``, and a PGD attack that calls ``loss.backward()`` on a perturbation leaf, which
also fills every weight's ``.grad`` on each of the attack's steps (work our attack skips by
asking autograd for the input gradient only). Everything else matches our loop: same model,
same AdamW settings, a per-step LR scheduler (constant: its value does not change the work),
attack crafted in eval mode, same PGD budget and steps.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn
from torch.utils.data import DataLoader, Dataset

from robustarch.settings import TrainingSettings


class PILImages(Dataset):
    """uint8 ``(N, C, H, W)`` images served one by one as PIL images, like torchvision's
    CIFAR10 dataset."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, transform):
        self.images = np.ascontiguousarray(x.permute(0, 2, 3, 1).numpy())  # HWC, as PIL wants
        self.labels = y.tolist()
        self.transform = transform

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        image = Image.fromarray(self.images[index])
        return self.transform(image), self.labels[index]


def make_loader(x: torch.Tensor, y: torch.Tensor, *, batch_size: int, seed: int = 0,
                num_workers: int = 0, pin_memory: bool = False) -> DataLoader:
    """``DataLoader`` with the CIFAR crop/flip augmentation done per image in PIL."""
    from torchvision import transforms as T

    size = x.shape[-1]
    transform = T.Compose([T.RandomCrop(size, padding=4), T.RandomHorizontalFlip(), T.ToTensor()])
    return DataLoader(PILImages(x, y, transform), batch_size=batch_size, shuffle=True,
                      num_workers=num_workers, drop_last=True, pin_memory=pin_memory,
                      generator=torch.Generator().manual_seed(seed))


def conventional_pgd(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, eps: float,
                     steps: int, step_size: float) -> torch.Tensor:
    """PGD-ℓ∞ with a random start, the conventional way: ``loss.backward()`` on a leaf
    perturbation (so every parameter's ``.grad`` is computed and accumulated too)."""
    delta = torch.empty_like(x).uniform_(-eps, eps)
    delta = ((x + delta).clamp(0, 1) - x).requires_grad_(True)
    for _ in range(steps):
        loss = F.cross_entropy(model(x + delta), y)
        loss.backward()
        delta.data = (delta.data + step_size * delta.grad.sign()).clamp(-eps, eps)
        delta.data = (x + delta.data).clamp(0, 1) - x
        delta.grad.zero_()
    return (x + delta).detach()


class ConventionalTrainer:
    """Holds the model, optimizer and loader; :meth:`run` trains ``batches`` batches."""

    def __init__(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor,
                 settings: TrainingSettings, *, num_workers: int = 0,
                 device: torch.device | str = "cpu"):
        self.device = torch.device(device)
        self.model = model.to(self.device)
        self.settings = settings
        self.adversary = settings.adversary
        self.loader = make_loader(x, y, batch_size=settings.batch_size, seed=settings.seed,
                                  num_workers=num_workers, pin_memory=self.device.type == "cuda")
        self.optimizer = torch.optim.AdamW(model.parameters(), lr=settings.lr,
                                           betas=settings.betas,
                                           weight_decay=settings.weight_decay)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, lambda step: 1.0)

    def run(self, batches: int | None = None) -> int:
        """Train on ``batches`` batches (default: one epoch); returns the images seen."""
        seen = 0
        for index, (x, y) in enumerate(self.loader):
            if batches is not None and index >= batches:
                break
            x = x.to(self.device, non_blocking=True)
            y = y.to(self.device, non_blocking=True)
            self.model.eval()
            x_adv = conventional_pgd(self.model, x, y, eps=self.adversary.eps,
                                     steps=self.adversary.steps,
                                     step_size=self.adversary.step_size)
            self.model.train()
            loss = F.cross_entropy(self.model(x_adv), y)
            self.optimizer.zero_grad()
            loss.backward()
            self.optimizer.step()
            self.scheduler.step()
            seen += len(y)
        return seen
