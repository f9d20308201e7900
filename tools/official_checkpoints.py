"""Optimizer states in the form the official training code saves them, for the converter's tests and
the test models (tools/make_test_models.py); written from our notes on the official code, not copied.

LSGM (`util/ema.py`) and DDGAN (`EMA.py`) wrap Adam in an `EMA` optimizer that, after each step, keeps
`state[p]['ema']` for every parameter that has a gradient, as slices of one stacked tensor per shape.
A parameter with requires_grad=False (a frozen Fourier projection) never has a gradient, so neither
Adam nor the EMA creates state for it. `optimizer.state_dict()` then numbers the parameters by their
position in `param_groups` (all of `net.parameters()`, frozen ones included) and holds no entry for the
frozen ones.
"""
import copy

import torch


def optimizer_state_with_ema(net, raw, ema_of):
    """The `state_dict()` of an Adam+EMA optimizer over `net`'s parameters after one step, with raw
    weights `raw` (a state dict of `net`) and EMA values `ema_of(name, raw_value)` for every trainable
    parameter (`ema_of=None`: a run with ema_decay 0, Adam state only). `raw` is not modified."""
    net = copy.deepcopy(net)
    net.load_state_dict(raw, strict=True)
    for p in net.parameters():
        if p.requires_grad:
            p.grad = torch.full_like(p, 1e-3)
    opt = torch.optim.Adam(net.parameters(), lr=1e-4)
    opt.step()
    if ema_of is None:
        return opt.state_dict()
    names = {id(p): n for n, p in net.named_parameters()}
    by_shape = {}
    for p in net.parameters():
        if p.grad is not None:
            by_shape.setdefault(tuple(p.shape), []).append(p)
    for shape, ps in by_shape.items():
        # As the official EMA stores them: rows of one stack per parameter shape.
        stack = torch.stack([ema_of(names[id(p)], raw[names[id(p)]]) for p in ps])
        for row, p in enumerate(ps):
            opt.state[p]["ema"] = stack[row]
    return opt.state_dict()
