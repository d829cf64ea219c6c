"""Grow a trained checkpoint: more attention heads per layer, or more layers; the same function.

    /usr/bin/python3 models/train/grow.py --checkpoint IN.pt --heads 6 --out runs/NAME/last.pt
    /usr/bin/python3 models/train/grow.py --checkpoint IN.pt --layers 6 [--insert-at 2] --out …

`--heads`: each layer gets new heads next to its old ones: their query/key/value weights are
drawn like a fresh layer's, and their columns of the output projection are zero.
`--layers`: new layers go in after layer `--insert-at` (default: the middle); their attention
and MLP are drawn like a fresh layer's except the two projections back into the residual
stream, which are zero, so each new layer starts as the identity.
Either way the grown model computes exactly what the old one did (checked on a batch before
saving) and training starts from there with room to learn new patterns. The output is a
weights-only checkpoint (train.py --resume starts a fresh optimizer from it).

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


def grow_layers(old: Denoiser, layers: int, insert_at: int, seed: int = 0) -> Denoiser:
    cfg = old.cfg
    if layers <= cfg.n_layers:
        raise ValueError(f'--layers {layers} must exceed the checkpoint\'s {cfg.n_layers}')
    if not 0 <= insert_at <= cfg.n_layers:
        raise ValueError(f'--insert-at {insert_at} must lie in 0..{cfg.n_layers}')
    torch.manual_seed(seed)
    new = Denoiser(ModelConfig(**{**cfg.to_dict(), 'n_layers': layers}))
    added = layers - cfg.n_layers
    # Old layer i keeps index i below the insertion point and moves up by `added` above it.
    where = {i: (i if i < insert_at else i + added) for i in range(cfg.n_layers)}
    state = new.state_dict()
    for name, value in old.state_dict().items():
        if name.startswith('blocks.'):
            _, i, rest = name.split('.', 2)
            state[f'blocks.{where[int(i)]}.{rest}'] = value.clone()
        else:
            state[name] = value.clone()
    for j in range(insert_at, insert_at + added):
        for part in ('proj', 'fc2'):
            state[f'blocks.{j}.{part}.weight'].zero_()
            state[f'blocks.{j}.{part}.bias'].zero_()
    new.load_state_dict(state)
    return new


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--checkpoint', required=True)
    p.add_argument('--heads', type=int)
    p.add_argument('--layers', type=int)
    p.add_argument('--insert-at', type=int, help='with --layers: new layers follow this many old ones (default half)')
    p.add_argument('--out', required=True)
    p.add_argument('--seed', type=int, default=0)
    a = p.parse_args()
    ckpt = torch.load(a.checkpoint, map_location='cpu')
    old = Denoiser(ModelConfig(**ckpt['config']))
    old.load_state_dict(ckpt['model'])
    old.eval()
    if (a.heads is None) == (a.layers is None):
        raise SystemExit('grow.py: give exactly one of --heads N and --layers N')
    if a.insert_at is not None and a.layers is None:
        raise SystemExit('grow.py: --insert-at goes with --layers only')
    try:
        if a.heads is not None:
            new = grow_heads(old, a.heads, a.seed)
        else:
            new = grow_layers(old, a.layers, old.cfg.n_layers // 2 if a.insert_at is None else a.insert_at, a.seed)
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
    grown = {'heads': old.cfg.n_heads} if a.heads is not None else {'layers': old.cfg.n_layers}
    args.update({'heads': new.cfg.n_heads, 'layers': new.cfg.n_layers})
    torch.save({
        'model': new.state_dict(), 'step': ckpt['step'], 'elapsed': ckpt['elapsed'], 'tokens': ckpt.get('tokens', 0),
        'config': new.cfg.to_dict(), 'args': args, 'grown_from': {'checkpoint': a.checkpoint, **grown},
    }, a.out)
    params = sum(t.numel() for t in new.parameters())
    what = f'{old.cfg.n_heads} to {a.heads} heads per layer' if a.heads is not None else f'{old.cfg.n_layers} to {a.layers} layers'
    print(f'grew {a.checkpoint} from {what} ({params} parameters), '
          f'max |logit difference| {diff:.2e}; wrote {a.out}')


if __name__ == '__main__':
    main()
