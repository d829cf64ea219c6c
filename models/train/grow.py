"""Grow a trained checkpoint: more attention heads per layer, the same function.

    /usr/bin/python3 models/train/grow.py --checkpoint IN.pt --heads 6 --out runs/NAME/last.pt

Each layer gets new heads next to its old ones: their query/key/value weights are drawn like
a fresh layer's, and their columns of the output projection are zero, so the grown model
computes exactly what the old one did (checked on a batch before saving) and training starts
from there with room to learn new attention patterns. The output is a weights-only
checkpoint (train.py --resume starts a fresh optimizer from it).

Why: a model with 3 heads per layer had given every head a job (local copying in the image,
and one head each for the shape, size and count words) and none attended to colour or
position words, so prompts' colours and cells were ignored; see README.md.
"""
import argparse
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from model import Denoiser, ModelConfig  # noqa: E402


def grow_heads(old: Denoiser, heads: int, seed: int = 0) -> Denoiser:
    cfg = old.cfg
    if heads <= cfg.n_heads:
        raise ValueError(f'--heads {heads} must exceed the checkpoint\'s {cfg.n_heads}')
    new_cfg = ModelConfig(**{**cfg.to_dict(), 'n_heads': heads})
    torch.manual_seed(seed)
    new = Denoiser(new_cfg)
    state = new.state_dict()
    old_state = old.state_dict()
    d, dh = cfg.d_model, cfg.head_dim
    inner_old, inner_new = cfg.n_heads * dh, heads * dh
    for name, value in old_state.items():
        if name.endswith('qkv.weight'):
            grown = state[name].clone().view(3, inner_new, d)
            grown[:, :inner_old] = value.view(3, inner_old, d)
            state[name] = grown.view(3 * inner_new, d)
        elif name.endswith('qkv.bias'):
            grown = torch.zeros(3, inner_new)
            grown[:, :inner_old] = value.view(3, inner_old)
            state[name] = grown.view(-1)
        elif name.endswith('proj.weight'):
            grown = torch.zeros(d, inner_new)
            grown[:, :inner_old] = value
            state[name] = grown
        else:
            state[name] = value.clone()
    new.load_state_dict(state)
    return new


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--checkpoint', required=True)
    p.add_argument('--heads', type=int, required=True)
    p.add_argument('--out', required=True)
    p.add_argument('--seed', type=int, default=0)
    a = p.parse_args()
    ckpt = torch.load(a.checkpoint, map_location='cpu')
    old = Denoiser(ModelConfig(**ckpt['config']))
    old.load_state_dict(ckpt['model'])
    old.eval()
    try:
        new = grow_heads(old, a.heads, a.seed)
    except ValueError as e:
        raise SystemExit(f'grow.py: {e}')
    new.eval()
    # Same function: a random batch of real-looking ids through both.
    g = torch.Generator().manual_seed(1)
    n = 40
    ids = torch.randint(0, old.cfg.vocab_size, (2, n), generator=g)
    pos = torch.randint(0, old.cfg.layout.size, (2, n), generator=g)
    bias = torch.zeros(2, 1, n, n)
    with torch.no_grad():
        diff = (old(ids, pos, bias)[0] - new(ids, pos, bias)[0]).abs().max().item()
    if diff > 1e-4:
        raise SystemExit(f'grown model differs from the checkpoint by {diff}')
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    args = dict(ckpt.get('args', {}))
    args['heads'] = a.heads
    torch.save({
        'model': new.state_dict(), 'step': ckpt['step'], 'elapsed': ckpt['elapsed'], 'tokens': ckpt.get('tokens', 0),
        'config': new.cfg.to_dict(), 'args': args, 'grown_from': {'checkpoint': a.checkpoint, 'heads': old.cfg.n_heads},
    }, a.out)
    params = sum(t.numel() for t in new.parameters())
    print(f'grew {a.checkpoint} from {old.cfg.n_heads} to {a.heads} heads per layer ({params} parameters), '
          f'max |logit difference| {diff:.2e}; wrote {a.out}')


if __name__ == '__main__':
    main()
