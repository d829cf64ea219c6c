"""Writes the fixture that checks the exported denoiser.onnx against PyTorch: inputs and
PyTorch outputs of a dense call (cache length 0) and of a sparse step against a cache.
test/model-parity.test.ts runs the same inputs through onnxruntime-node.

    /usr/bin/python3 models/train/parity.py --checkpoint CKPT [--out test/fixtures/denoiser-parity.json] [--package models/shapes-tiny]
"""
from __future__ import annotations

import argparse
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import repo_root  # noqa: E402
from model import NEG_INF, load_checkpoint  # noqa: E402


def _flat(t: torch.Tensor) -> dict:
    # 7 significant digits: exact enough for a 1e-4 comparison, half the bytes of repr().
    return {'dims': list(t.shape), 'data': [float(f'{x:.7g}') for x in t.detach().reshape(-1).tolist()]}


def _call(model, ids, pos, bias, past):
    logits, kv = model(ids, pos, bias, past)
    return {
        'inputs': {
            'input_ids': {'dims': list(ids.shape), 'data': [int(x) for x in ids.reshape(-1).tolist()]},
            'position_ids': {'dims': list(pos.shape), 'data': [int(x) for x in pos.reshape(-1).tolist()]},
            'attn_bias': _flat(bias),
            **{f'past_key_{i}': _flat(k) for i, (k, _) in enumerate(past)},
            **{f'past_value_{i}': _flat(v) for i, (_, v) in enumerate(past)},
        },
        'outputs': {
            'logits': _flat(logits),
            **{f'new_key_{i}': _flat(k) for i, (k, _) in enumerate(kv)},
            **{f'new_value_{i}': _flat(v) for i, (_, v) in enumerate(kv)},
        },
    }, kv


@torch.no_grad()
def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument('--checkpoint', required=True)
    p.add_argument('--out', default=os.path.join(repo_root(), 'test', 'fixtures', 'denoiser-parity.json'))
    p.add_argument('--package', default=os.path.join(repo_root(), 'models', 'shapes-tiny'),
                   help='the package whose manifest and vocabulary the fixture uses')
    a = p.parse_args()
    model, _ = load_checkpoint(a.checkpoint)
    model = model.fold()
    cfg = model.cfg
    layout = cfg.layout
    with open(os.path.join(a.package, 'manifest.json')) as f:
        vocab = json.load(f)['vocab']
    sp = vocab['special']
    words = {w: i for i, w in enumerate(json.load(open(os.path.join(a.package, 'vocab.json')))['tokens'])}
    prompt = [sp['t2i']] + [words[w] for w in 'a red circle'.split()]
    ppos = torch.from_numpy(layout.prompt_positions('t2i', len(prompt)))
    apos = torch.from_numpy(layout.answer_positions('t2i', 256))
    img0 = vocab['image']['start']

    # Dense: the prompt and a few answer positions, some decoded, some masked; B = 2 with the
    # second row padded (its last token masked out), as batched guidance branches are.
    answer_idx = [0, 17, 34, 120, 255]
    answer_ids = [img0, sp['mask'], img0 + 5, sp['mask'], sp['mask']]
    ids = torch.tensor([prompt + answer_ids, prompt[:1] + answer_ids + [sp['pad']] * (len(prompt) - 1)])
    pos = torch.stack([torch.cat([ppos, apos[answer_idx]]), torch.cat([ppos[:1], apos[answer_idx], ppos[1:] * 0])])
    n = ids.shape[1]
    bias = torch.zeros(2, 1, n, n)
    bias[1, 0, :, 1 + len(answer_ids):] = NEG_INF
    dense, _ = _call(model, ids, pos, bias, model.empty_past(2))

    # Sparse: prefill the prompt, then one step with last step's tokens, masks and registers.
    _, cache = model(torch.tensor([prompt]), ppos[None], torch.zeros(1, 1, len(prompt), len(prompt)))
    prev_idx, prev_tok = [3, 200], [img0 + 1, img0]
    now_idx = [40, 41, 90]
    R = cfg.registers
    ids = torch.tensor([prev_tok + [sp['mask']] * len(now_idx) + [sp['reg']] * R])
    pos = torch.cat([apos[prev_idx], apos[now_idx], torch.from_numpy(layout.register_positions())])[None]
    c, n = len(prompt), ids.shape[1]
    bias = torch.zeros(1, 1, n, c + n)
    bias[0, 0, :len(prev_idx), c + len(prev_idx):] = NEG_INF
    sparse, _ = _call(model, ids, pos, bias, cache)

    with open(a.out, 'w') as f:
        json.dump({'checkpoint': os.path.basename(a.checkpoint), 'dense': dense, 'sparse': sparse}, f)
        f.write('\n')
    print(f'wrote {a.out}')


if __name__ == '__main__':
    main()
