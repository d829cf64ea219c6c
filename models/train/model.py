"""The shapes-tiny denoiser: a small pre-LN transformer with hand-written attention that
matches the ONNX contract of docs/design.md section 3.

    forward(input_ids [B,N], position_ids [B,N], attn_bias [B,1,N,C+N], past=[(k,v)]*layers)
        -> logits [B,N,V], [(new_key, new_value)]*layers   (k, v: [B,H,N,Dh])

Columns of `attn_bias` are the cache (C) then the current tokens (N); 0 = may attend,
NEG_INF = may not. Positions carry 2D structure during training (segment + row + column
tables shared by the source and answer grids, a 1D table for text and registers); `fold()`
turns them into the single position table the exported graph uses.

The attention-bias builders below encode docs/design.md section 1: `dense_bias` (full
bidirectional among real tokens) and `step_causal_bias` (block rule of the training mask).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from common import PositionLayout

NEG_INF = -1e9
KV = Tuple[torch.Tensor, torch.Tensor]

# Segment numbers of the 2D position parameterization (order of PositionLayout.segments).
_SEGMENTS = ('task', 'source', 'sep', 'text', 'image', 'answer', 'registers')


@dataclass
class ModelConfig:
    vocab_size: int = 161
    d_model: int = 256
    n_layers: int = 4
    n_heads: int = 4
    head_dim: int = 64
    d_ff: int = 1024
    registers: int = 8
    grid: int = 16
    text_len: int = 32
    answer_len: int = 32
    pos_mode: str = '2d'  # '2d' (segment+row+col+1D) or '1d' (one learned table)
    dropout: float = 0.0
    image_start: int = 58  # vocab.image.start; code 0 (this id) is the white background
    image_count: int = 103

    @property
    def layout(self) -> PositionLayout:
        return PositionLayout(grid=self.grid, text_len=self.text_len, answer_len=self.answer_len, registers=self.registers)

    def to_dict(self) -> dict:
        return asdict(self)


def _position_index_tables(layout: PositionLayout) -> Tuple[np.ndarray, ...]:
    """For each position id: segment, row (grid+1 = none), column, 1D index (none = last)."""
    size = layout.size
    none_rc = layout.grid
    none_lin = max(layout.text_len, layout.answer_len, layout.registers)
    seg = np.zeros(size, np.int64)
    row = np.full(size, none_rc, np.int64)
    col = np.full(size, none_rc, np.int64)
    lin = np.full(size, none_lin, np.int64)
    for s, name in enumerate(_SEGMENTS):
        info = layout.segments[name]
        idx = np.arange(info['start'], info['start'] + info['count'])
        seg[idx] = s
        k = np.arange(info['count'])
        if name in ('source', 'image'):
            row[idx] = k // layout.grid
            col[idx] = k % layout.grid
        elif name in ('text', 'answer', 'registers'):
            lin[idx] = k
    return seg, row, col, lin


class PositionEmbedding(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        layout = cfg.layout
        self.mode = cfg.pos_mode
        d = cfg.d_model
        if self.mode == '1d':
            self.table = nn.Parameter(torch.randn(layout.size, d) * 0.02)
            return
        seg, row, col, lin = _position_index_tables(layout)
        for name, arr in (('seg_idx', seg), ('row_idx', row), ('col_idx', col), ('lin_idx', lin)):
            self.register_buffer(name, torch.from_numpy(arr), persistent=False)
        self.seg = nn.Embedding(len(_SEGMENTS), d)
        self.row = nn.Embedding(layout.grid + 1, d, padding_idx=layout.grid)
        self.col = nn.Embedding(layout.grid + 1, d, padding_idx=layout.grid)
        n_lin = max(layout.text_len, layout.answer_len, layout.registers)
        self.lin = nn.Embedding(n_lin + 1, d, padding_idx=n_lin)
        for emb in (self.seg, self.row, self.col, self.lin):
            nn.init.normal_(emb.weight, std=0.02)
            if emb.padding_idx is not None:
                with torch.no_grad():
                    emb.weight[emb.padding_idx].zero_()

    def full_table(self) -> torch.Tensor:
        """[positions, d]: the embedding of every position id (what fold() bakes in)."""
        if self.mode == '1d':
            return self.table
        return self.seg(self.seg_idx) + self.row(self.row_idx) + self.col(self.col_idx) + self.lin(self.lin_idx)

    def forward(self, position_ids: torch.Tensor) -> torch.Tensor:
        return F.embedding(position_ids, self.full_table())


class FoldedPositions(nn.Module):
    """The export form: one table indexed by position id."""

    def __init__(self, table: torch.Tensor):
        super().__init__()
        self.table = nn.Parameter(table.detach().clone())

    def full_table(self) -> torch.Tensor:
        return self.table

    def forward(self, position_ids: torch.Tensor) -> torch.Tensor:
        return F.embedding(position_ids, self.table)


class Block(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        inner = cfg.n_heads * cfg.head_dim
        self.n_heads, self.head_dim = cfg.n_heads, cfg.head_dim
        self.ln1 = nn.LayerNorm(cfg.d_model)
        self.qkv = nn.Linear(cfg.d_model, 3 * inner)
        self.proj = nn.Linear(inner, cfg.d_model)
        self.ln2 = nn.LayerNorm(cfg.d_model)
        self.fc1 = nn.Linear(cfg.d_model, cfg.d_ff)
        self.fc2 = nn.Linear(cfg.d_ff, cfg.d_model)

    def forward(self, x: torch.Tensor, bias: torch.Tensor, past: Optional[KV]) -> Tuple[torch.Tensor, KV]:
        b, n, _ = x.shape
        qkv = self.qkv(self.ln1(x)).view(b, n, 3, self.n_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]  # [B,H,N,Dh]
        if past is not None:
            k_all = torch.cat([past[0], k], dim=2)
            v_all = torch.cat([past[1], v], dim=2)
        else:
            k_all, v_all = k, v
        scores = torch.matmul(q, k_all.transpose(-1, -2)) * (1.0 / math.sqrt(self.head_dim)) + bias
        attn = torch.softmax(scores, dim=-1)
        out = torch.matmul(attn, v_all).transpose(1, 2).reshape(b, n, self.n_heads * self.head_dim)
        x = x + self.proj(out)
        x = x + self.fc2(F.gelu(self.fc1(self.ln2(x))))
        return x, (k, v)


class Denoiser(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.tok = nn.Embedding(cfg.vocab_size, cfg.d_model)
        nn.init.normal_(self.tok.weight, std=0.02)
        self.pos: nn.Module = PositionEmbedding(cfg)
        self.blocks = nn.ModuleList([Block(cfg) for _ in range(cfg.n_layers)])
        self.ln_f = nn.LayerNorm(cfg.d_model)
        self.head = nn.Linear(cfg.d_model, cfg.vocab_size)
        for blk in self.blocks:
            for lin in (blk.qkv, blk.proj, blk.fc1, blk.fc2):
                nn.init.normal_(lin.weight, std=0.02)
                nn.init.zeros_(lin.bias)
            # GPT-2 style: scale the residual projections by depth.
            for lin in (blk.proj, blk.fc2):
                lin.weight.data.mul_(1.0 / math.sqrt(2 * cfg.n_layers))

    def forward(
        self,
        input_ids: torch.Tensor,
        position_ids: torch.Tensor,
        attn_bias: torch.Tensor,
        past: Optional[Sequence[KV]] = None,
    ) -> Tuple[torch.Tensor, List[KV]]:
        x = self.tok(input_ids) + self.pos(position_ids)
        new: List[KV] = []
        for i, blk in enumerate(self.blocks):
            x, kv = blk(x, attn_bias, past[i] if past is not None else None)
            new.append(kv)
        return self.head(self.ln_f(x)), new

    def fold(self) -> 'Denoiser':
        """A copy whose positions are one table (the form exported to ONNX); same outputs."""
        import copy
        folded = copy.deepcopy(self)
        with torch.no_grad():
            folded.pos = FoldedPositions(self.pos.full_table())
        return folded

    def empty_past(self, batch: int, device=None) -> List[KV]:
        z = torch.zeros(batch, self.cfg.n_heads, 0, self.cfg.head_dim, device=device)
        return [(z, z) for _ in range(self.cfg.n_layers)]


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


# ---------------------------------------------------------------------------------------
# Attention biases (docs/design.md section 1). `valid` marks real tokens (False = batch padding).

def _to_bias(allowed: torch.Tensor) -> torch.Tensor:
    """[B,Nq,Nk] bool -> [B,1,Nq,Nk] float additive bias."""
    return torch.where(allowed, torch.zeros((), device=allowed.device), torch.full((), NEG_INF, device=allowed.device)).unsqueeze(1)


def dense_bias(valid: torch.Tensor) -> torch.Tensor:
    """Dense MDM: every real token attends to every real token. valid: [B,N] bool."""
    allowed = valid[:, None, :].expand(-1, valid.shape[1], -1)
    return _to_bias(allowed)


def step_causal_allowed(blocks: torch.Tensor, n_clean: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """The step-causal rule (docs/design.md section 1, "Training").

    blocks: [B,N] block of each token (0 = prompt, 1..M = clean answer blocks in cache order,
    M+1.. = masked blocks, each with its own registers); n_clean: [B] M per example.
    Query block i may attend key block j iff (i <= M and j <= i) or (i > M and (j <= M or j == i)).
    """
    bq = blocks[:, :, None]
    bk = blocks[:, None, :]
    m = n_clean[:, None, None]
    allowed = ((bq <= m) & (bk <= bq)) | ((bq > m) & ((bk <= m) | (bk == bq)))
    return allowed & valid[:, None, :]


def step_causal_bias(blocks: torch.Tensor, n_clean: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    return _to_bias(step_causal_allowed(blocks, n_clean, valid))


def calibrate_object_logits(model: Denoiser, obj_weight: float) -> None:
    """Undo the object-token loss weighting in the output layer.

    Training weights the cross-entropy of non-background image targets by w, whose optimum
    is q(y) ∝ w(y)·p(y); subtracting log w from those logits gives back p (calibrated
    probabilities, so temperature sampling does not over-draw objects).
    """
    if obj_weight == 1.0:
        return
    cfg = model.cfg
    with torch.no_grad():
        model.head.bias[cfg.image_start + 1:cfg.image_start + cfg.image_count] -= math.log(obj_weight)


def load_checkpoint(path: str, map_location='cpu', calibrate: bool = True) -> Tuple[Denoiser, dict]:
    """Loads a training checkpoint (train.py) -> (model in eval mode, the checkpoint dict).

    With `calibrate` (the default, and what export.py ships) the object-weighting of the
    loss is undone in the output bias (calibrate_object_logits), so the PyTorch model and
    denoiser.onnx give the same logits.
    """
    ckpt = torch.load(path, map_location=map_location)
    cfg = ModelConfig(**ckpt['config'])
    model = Denoiser(cfg)
    model.load_state_dict(ckpt['model'])
    if calibrate:
        calibrate_object_logits(model, float(ckpt.get('args', {}).get('obj_weight', 1.0)))
    model.eval()
    return model, ckpt
