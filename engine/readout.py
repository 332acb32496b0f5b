"""A linear classifier read from the network's activations (Config.readout "linear"), reported beside
the goodness classifier's test error (engine/evaluate.py).

After loeweX/Forward-Forward's downstream classifier: a softmax regression without bias, W (10, F),
starting at zero, on the features of an image with a neutral label (every one of the 10 label
entries a tenth of the label value: 1/10 for label_value "one", a tenth of the image's largest
value for "max"): the unit-length activations of the layers the goodness classifier scores
(Config.score_layers: all, or all but the first), concatenated first to last, F the sum of those
layers' widths. Each layer's input is the unit-length activation of the layer below, as the stack
feeds it. It is trained on every batch on the batch's positive images, before the layers step (the
features come from the weights the layers' own step starts from), by the mean cross-entropy of
softmax(W f) against the true labels, with its own Adam (the run's lr, betas 0.9 and 0.999). The
layers never see it: the features are computed without gradients and nothing the layers' training
reads (weights, optimiser state, random generators) is touched.

Differences from loeweX: its activations are scaled to root mean square 1 (length sqrt(width)),
fftui's to length 1; its classifier shares the layers' optimiser (SGD), fftui's has its own Adam."""
from __future__ import annotations

from collections.abc import Sequence

import torch

from .inputs import LABEL_PIXELS, unit_rows, unit_rows_
from .layer import Optimizer

Tensor = torch.Tensor

CLASSES = 10
BETAS = (0.9, 0.999)  # the readout's Adam (torch's defaults)


def neutral_rows(pixels: Tensor, label_value: str = "one") -> Tensor:
    """Rows of pixels (N, m), as the pixel table holds them, with every one of the 10 label entries
    set to a tenth of the label value ("one": 0.1; "max": the row's largest value before the head
    is written, over 10), then scaled to unit length. A new tensor (N, m)."""
    x = pixels.clone()
    head = x[:, :LABEL_PIXELS]
    if label_value == "max":
        head.copy_((x.amax(dim=1, keepdim=True) / CLASSES).expand_as(head))
    else:
        head.fill_(1.0 / CLASSES)
    return unit_rows_(x)


def features(weights: Sequence[Tensor], x: Tensor, skip_first: bool = False) -> Tensor:
    """The readout's features of inputs x (N, m): each layer's activation ReLU(x_l W_l^T) scaled to
    unit length (an all-zero activation stays zero), x_{l+1} that scaled activation, the scored
    layers' (all, or all but the first) concatenated first to last. (N, F)."""
    parts = []
    for layer, w in enumerate(weights):
        x = unit_rows(torch.relu(x @ w.T))
        if layer > 0 or not skip_first:
            parts.append(x)
    return torch.cat(parts, dim=1)


def cross_entropy_gradient(w: Tensor, f: Tensor, labels: Tensor) -> Tensor:
    """d/dW of the mean over rows of -log softmax(f W^T)[label]: (softmax(f W^T) - onehot)^T f / N.
    w (10, F), f (N, F), labels (N,) int64; returns (10, F)."""
    p = torch.softmax(f @ w.T, dim=1)
    p[torch.arange(p.shape[0], device=p.device), labels] -= 1.0
    return p.T @ f / f.shape[0]


class Readout:
    """The classifier's weights `w` (10, F), zero at first, and its Adam `optimizer`; `skip_first`
    and `label_value` say which features it reads (see the module's text)."""

    def __init__(self, widths: Sequence[int], skip_first: bool, label_value: str, lr: float,
                 device: torch.device, dtype: torch.dtype) -> None:
        scored = widths[1:] if skip_first else widths
        self.skip_first = skip_first
        self.label_value = label_value
        self.w = torch.zeros(CLASSES, sum(scored), device=device, dtype=dtype)
        self.optimizer = Optimizer("adam", lr, beta1=BETAS[0], beta2=BETAS[1])

    def step(self, weights: Sequence[Tensor], pixels: Tensor, labels: Tensor) -> None:
        """One Adam step on the images `pixels` (N, m, as the pixel table holds them) with their true
        labels (N,), read through the layers' `weights` (first to last) with the neutral label."""
        with torch.inference_mode():
            f = features(weights, neutral_rows(pixels, self.label_value), self.skip_first)
            self.w.add_(self.optimizer.delta(cross_entropy_gradient(self.w, f, labels), self.w))

    def count_wrong(self, weights: Sequence[Tensor], pixels: Tensor, labels: Tensor, rows: int = 1000) -> Tensor:
        """How many of the digits (pixels (T, m), labels (T,)) argmax(W f) misclassifies, a 0-d
        int64 tensor on the device (no host round trip), `rows` digits at a time."""
        wrong = torch.zeros((), dtype=torch.long, device=pixels.device)
        with torch.inference_mode():
            for start in range(0, pixels.shape[0], rows):
                f = features(weights, neutral_rows(pixels[start:start + rows], self.label_value), self.skip_first)
                wrong += ((f @ self.w.T).argmax(dim=1) != labels[start:start + rows]).sum()
        return wrong

    def state(self) -> dict[str, Tensor]:
        """CPU copies of the checkpointed state: "readout_w", "readout_steps" (1-element int64) and,
        once it has stepped, Adam's moments "readout_m" and "readout_v"."""
        out = {"readout_w": self.w.detach().to("cpu", copy=True),
               "readout_steps": torch.tensor([self.optimizer.steps], dtype=torch.int64)}
        for key in ("m", "v"):
            value = getattr(self.optimizer, f"_{key}")
            if value is not None:
                out[f"readout_{key}"] = value.detach().to("cpu", copy=True)
        return out

    def load(self, state: dict[str, Tensor]) -> None:
        """Put back what `state` saved; ValueError (one line) when its weights have another shape."""
        w = state["readout_w"]
        if tuple(w.shape) != tuple(self.w.shape):
            raise ValueError(f"the checkpoint's readout {tuple(w.shape)} is not the configuration's "
                             f"{tuple(self.w.shape)}")
        with torch.inference_mode():
            self.w.copy_(w.to(self.w.device))
        self.optimizer.steps = int(state["readout_steps"].reshape(-1)[0])
        for key in ("m", "v"):
            value = state.get(f"readout_{key}")
            setattr(self.optimizer, f"_{key}",
                    None if value is None else value.to(device=self.w.device, dtype=self.w.dtype))
