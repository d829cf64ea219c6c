"""Look inside a checkpoint: does it follow the words of a text-to-image prompt?

    /usr/bin/python3 models/train/probe.py colors --checkpoint CKPT "a red circle" "a blue circle" …
    /usr/bin/python3 models/train/probe.py attention --checkpoint CKPT "a large red circle in the center"

`colors`: the prompt with every image token masked (t = 1), one dense forward; the
probability mass the model puts on the image codes of each palette colour, summed over the
256 positions (`bg` = the white background code). A model that reads colour words puts
most of the non-background mass on the prompt's colour.

`attention`: the same forward; per layer and head, the attention mass the masked image
tokens put on each prompt token (mean over the 256 queries). Shows which words some head
reads (e.g. one head on the shape word, one on the size word) and which no head reads.
"""
import argparse
import json
import math
import os
import sys
from typing import List, Tuple

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import repo_root  # noqa: E402
from model import Denoiser, dense_bias, load_checkpoint  # noqa: E402

PALETTE_NAMES = ['red', 'green', 'blue', 'yellow', 'purple', 'orange']
# models/world/render.ts PALETTE, in the same order.
PALETTE = [(220, 30, 40), (40, 170, 60), (40, 80, 220), (245, 215, 30), (150, 60, 190), (250, 140, 20)]


def code_colors(package: str, palette: List[Tuple[int, int, int]]) -> List[str]:
    """The palette colour of each codebook patch by its non-white pixels ('bg' if none)."""
    codes = np.frombuffer(open(os.path.join(package, 'codebook.bin'), 'rb').read(), np.uint8).reshape(-1, 16, 3).astype(float)
    out = []
    for patch in codes:
        ink = patch[(255 * 3 - patch.sum(1)) > 60]
        if len(ink) == 0:
            out.append('bg')
            continue
        mean = ink.mean(0)
        out.append(PALETTE_NAMES[int(np.argmin([np.sum((np.array(c) - mean) ** 2) for c in palette]))])
    return out


def masked_forward(model: Denoiser, vocab: List[str], prompt: str, t2i_id: int, mask_id: int, grid: int):
    try:
        words = [vocab.index(w) for w in prompt.split()]
    except ValueError as e:
        raise SystemExit(f'probe: {e} (the vocabulary is in models/shapes-tiny/vocab.json)')
    ids = [t2i_id] + words
    layout = model.cfg.layout
    pos = list(layout.prompt_positions('t2i', len(ids))) + list(layout.answer_positions('t2i', grid * grid))
    x = torch.tensor([ids + [mask_id] * grid * grid])
    p = torch.tensor([pos])
    return ids, x, p, dense_bias(torch.ones(1, x.shape[1], dtype=torch.bool))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('what', choices=['colors', 'attention'])
    ap.add_argument('--checkpoint', required=True)
    ap.add_argument('--package', default=os.path.join(repo_root(), 'models', 'shapes-tiny'))
    ap.add_argument('prompts', nargs='+')
    a = ap.parse_args()
    manifest = json.load(open(os.path.join(a.package, 'manifest.json')))
    vocab = json.load(open(os.path.join(a.package, manifest['vocab']['file'])))['tokens']
    special, image = manifest['vocab']['special'], manifest['vocab']['image']
    grid = manifest['image']['grid']
    model, _ = load_checkpoint(a.checkpoint)
    torch.set_grad_enabled(False)
    if a.what == 'colors':
        colors = code_colors(a.package, PALETTE)
        for prompt in a.prompts:
            ids, x, p, bias = masked_forward(model, vocab, prompt, special['t2i'], special['mask'], grid)
            logits, _ = model(x, p, bias)
            probs = torch.softmax(logits[0, len(ids):, image['start']:image['start'] + image['count']], -1).numpy()
            mass = {}
            for code, color in enumerate(colors):
                mass[color] = mass.get(color, 0.0) + float(probs[:, code].sum())
            ink = sum(v for k, v in mass.items() if k != 'bg')
            shares = ', '.join(f'{k} {mass.get(k, 0.0) / max(ink, 1e-9):.2f}' for k in PALETTE_NAMES)
            print(f'{prompt!r}: non-background mass {ink:.1f} of {grid * grid} tokens; colour shares: {shares}')
        return
    for prompt in a.prompts:
        ids, x, p, bias = masked_forward(model, vocab, prompt, special['t2i'], special['mask'], grid)
        n_prompt = len(ids)
        print(f'{prompt!r}: attention of the masked image tokens on ' + ' | '.join(vocab[i] for i in ids))
        h = model.tok(x) + model.pos(p)
        for li, blk in enumerate(model.blocks):
            b, n, _ = h.shape
            qkv = blk.qkv(blk.ln1(h)).view(b, n, 3, blk.n_heads, blk.head_dim).permute(2, 0, 3, 1, 4)
            att = torch.softmax(qkv[0] @ qkv[1].transpose(-1, -2) / math.sqrt(blk.head_dim) + bias, -1)
            per_token = att[0, :, n_prompt:, :n_prompt].mean(1)  # [H, prompt]
            for head in range(blk.n_heads):
                cells = ' '.join(f'{v:4.2f}' for v in per_token[head].tolist())
                print(f'  layer {li} head {head}: {cells}')
            h, _ = blk(h, bias, None)


if __name__ == '__main__':
    main()
