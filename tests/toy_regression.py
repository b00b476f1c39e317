"""A tiny problem the trainer tests share: linear regression y = 2 x1 - 3.4 x2 + 4.2 (+ noise)."""

import torch
from torch import nn
from torch.nn import functional as F

import d2l_lib as d2l


class Regression(d2l.DataModule):
    def __init__(self, num_train=256, num_val=128, batch_size=32, noise=0.01):
        super().__init__()
        self.save_hyperparameters()
        n = num_train + num_val
        self.X = torch.randn(n, 2)
        self.y = self.X @ torch.tensor([[2.0], [-3.4]]) + 4.2 + noise * torch.randn(n, 1)

    def get_dataloader(self, train):
        part = slice(0, self.num_train) if train else slice(self.num_train, None)
        return self.get_tensorloader((self.X, self.y), train, part)


class Linear(d2l.Module):
    def __init__(self, lr=0.1):
        super().__init__()
        self.save_hyperparameters()
        self.net = nn.Linear(2, 1)

    def loss(self, y_hat, y):
        return F.mse_loss(y_hat, y)
