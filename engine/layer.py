"""The FF layer h = ReLU(W x) without bias, its goodness, the two losses, the closed-form
gradient and the optimisers (plain SGD, SGD with momentum, Adam)."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

Tensor = torch.Tensor


def init_weights(width: int, inputs: int, init: str, generator: torch.Generator, device, dtype) -> Tensor:
    """W ~ N(0, 2/n) (assumption 5), or Kaiming fan-in N(0, 2/m) as an option."""
    std = math.sqrt(2.0 / width) if init == "report" else math.sqrt(2.0 / inputs)
    w = torch.randn(width, inputs, generator=generator, device=device, dtype=dtype)
    return w.mul_(std)


def forward(w: Tensor, x: Tensor) -> tuple[Tensor, Tensor]:
    """Pre-activations Z = X W^T and activations H = ReLU(Z) (eq. 1), rows are samples."""
    z = x @ w.T
    return z, torch.relu(z)


def goodness(h: Tensor) -> Tensor:
    """g_k = |h_k|_2^2 per sample (the summand of eq. 3)."""
    return torch.linalg.vecdot(h, h)


def theorem_weights(mode: str, batch: int, n_pos: int, like: Tensor) -> Tensor:
    """c_k of the report's losses: +1 for all in descent mode (eq. 3), -1 positives / +1 negatives in ff (eq. 5)."""
    c = torch.ones(batch, dtype=like.dtype, device=like.device)
    if mode == "ff":
        c[:n_pos] = -1.0
    return c


def loss_and_weights(mode: str, loss: str, g: Tensor, n_pos: int, theta: float,
                     signs: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """The batch loss L = sum_k l_k(g_k) and its per-sample weights c_k = dL/dg_k.

    linear: descent L = sum g - theta (eq. 3); ff L = G(H-) - G(H+) = sum c_k g_k (eq. 5).
    logistic (Hinton 2022): softplus(theta - g) for positives, softplus(g - theta) for negatives
    (and for every sample in descent mode). `signs` may pass theorem_weights made beforehand."""
    c = theorem_weights(mode, g.shape[0], n_pos, g) if signs is None else signs
    if loss == "linear":
        value = torch.dot(c, g) if mode == "ff" else g.sum() - theta
        return value, c
    margin = c * (g - theta)  # theta - g for positives, g - theta for negatives
    return F.softplus(margin).sum(), c * torch.sigmoid(margin)


def gradient(h: Tensor, x: Tensor, c: Tensor) -> Tensor:
    """dL/dW = sum_k 2 c_k h_k x_k^T (eq. 15, 49 with the loss weights c_k)."""
    return 2.0 * (h * c.unsqueeze(1)).T @ x


class Optimizer:
    """Produces the weight change dW from the gradient; W' = W + dW."""

    def __init__(self, kind: str, lr: float, momentum: float = 0.0, weight_decay: float = 0.0,
                 beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8) -> None:
        self.kind = kind
        self.lr = lr
        self.momentum = momentum
        self.weight_decay = weight_decay
        self.beta1 = beta1
        self.beta2 = beta2
        self.eps = eps
        self.steps = 0
        self._m: Tensor | None = None
        self._v: Tensor | None = None

    def configure(self, lr: float, momentum: float, weight_decay: float, beta1: float, beta2: float) -> None:
        """New hyper-parameters from the next step on; the moment buffers are kept."""
        self.lr, self.momentum, self.weight_decay = lr, momentum, weight_decay
        self.beta1, self.beta2 = beta1, beta2

    @property
    def is_gradient_step(self) -> bool:
        """True when dW = -lr (grad + wd W): SGD without momentum, no state carried between steps
        (engine/step.py then takes the post-step activations from the batch kernel)."""
        return self.kind == "sgd" and self.momentum == 0.0

    def delta(self, grad: Tensor, w: Tensor) -> Tensor:
        if self.weight_decay:
            grad = grad + self.weight_decay * w
        self.steps += 1
        if self.kind == "sgd":
            if self.momentum == 0.0:
                self._m = None
                return grad.mul(-self.lr)
            if self._m is None:
                self._m = grad.clone()
            else:
                self._m.mul_(self.momentum).add_(grad)
            return self._m.mul(-self.lr)
        if self._m is None:
            self._m = torch.zeros_like(grad)
            self._v = torch.zeros_like(grad)
        assert self._v is not None
        self._m.mul_(self.beta1).add_(grad, alpha=1.0 - self.beta1)
        self._v.mul_(self.beta2).addcmul_(grad, grad, value=1.0 - self.beta2)
        m_hat = self._m / (1.0 - self.beta1 ** self.steps)
        v_hat = self._v / (1.0 - self.beta2 ** self.steps)
        return m_hat.div_(v_hat.sqrt_().add_(self.eps)).mul_(-self.lr)
