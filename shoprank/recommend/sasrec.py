"""SASRec: causal self-attention over a user's recent events, read like nanoGPT.

An item's vector is a learned ID embedding plus a projection of its text-encoder vector, so
a product with no events still has one. Each input position also carries the event type
(view, click, cart, purchase...) and its distance from the newest event. The output for the
newest position, dotted with every item's vector, scores the whole catalogue.

References: Kang & McAuley, "Self-Attentive Sequential Recommendation" (2018); Petrov &
Macdonald, "gSASRec" (2023) and Klenitskiy & Vasilev, "Turning Dross Into Gold Loss" (2023)
for training with many negatives / full cross-entropy instead of one-negative BCE.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from shoprank.data.limits import EVENT_TYPES


@dataclass
class SASRecConfig:
    n_items: int  # catalogue size; item index 0 is padding, so tables have n_items + 1 rows
    text_dim: int = 384  # width of the text-encoder vectors (0: ID embeddings only)
    n_types: int = len(EVENT_TYPES)  # event types; type index 0 is padding
    max_len: int = 50  # most recent events the model reads
    d_model: int = 64
    n_layers: int = 2
    n_heads: int = 2
    dropout: float = 0.2
    id_dropout: float = 0.1  # share of items whose ID embedding is hidden per training step (text alone must do)

    def __post_init__(self) -> None:
        if self.d_model % self.n_heads:
            raise ValueError(f"d_model ({self.d_model}) must be a multiple of n_heads ({self.n_heads})")
        if self.n_items < 1 or self.max_len < 2:
            raise ValueError("n_items must be at least 1 and max_len at least 2")

    def to_dict(self) -> dict[str, int | float]:
        return asdict(self)


class ItemEncoder(nn.Module):
    """Item index -> vector: ID embedding + projected (frozen) text vector."""

    def __init__(self, cfg: SASRecConfig) -> None:
        super().__init__()
        self.id = nn.Embedding(cfg.n_items + 1, cfg.d_model, padding_idx=0)
        nn.init.normal_(self.id.weight, std=0.01)
        self.text = nn.Linear(cfg.text_dim, cfg.d_model) if cfg.text_dim else None
        self.register_buffer("text_vectors", torch.zeros(cfg.n_items + 1, max(cfg.text_dim, 1)), persistent=False)
        self.id_dropout = cfg.id_dropout

    def forward(self, idx: torch.Tensor) -> torch.Tensor:  # idx (...) -> (..., d)
        v = self.id(idx)
        if self.training and self.id_dropout > 0:  # hide some items' IDs: learn to score from text alone
            keep = torch.rand(self.id.num_embeddings, device=idx.device) >= self.id_dropout
            v = v * keep[idx].unsqueeze(-1)
        if self.text is not None:
            v = v + self.text(self.text_vectors[idx])
        return v * (idx > 0).unsqueeze(-1)  # padding is exactly zero

    def all(self) -> torch.Tensor:  # (n_items + 1, d): every item, for full-catalogue scoring
        return self(torch.arange(self.id.num_embeddings, device=self.id.weight.device))


class CausalSelfAttention(nn.Module):
    def __init__(self, cfg: SASRecConfig) -> None:
        super().__init__()
        self.qkv = nn.Linear(cfg.d_model, 3 * cfg.d_model)
        self.proj = nn.Linear(cfg.d_model, cfg.d_model)
        self.n_heads, self.dropout = cfg.n_heads, cfg.dropout

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:  # x (B, L, d), mask (B, 1, L, L)
        B, L, d = x.shape
        q, k, v = self.qkv(x).split(d, dim=2)  # 3 x (B, L, d)
        q, k, v = (t.view(B, L, self.n_heads, d // self.n_heads).transpose(1, 2) for t in (q, k, v))  # (B, h, L, d/h)
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=self.dropout if self.training else 0.0)
        return self.proj(y.transpose(1, 2).reshape(B, L, d))  # (B, L, d)


class Block(nn.Module):
    def __init__(self, cfg: SASRecConfig) -> None:
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(cfg.d_model), nn.LayerNorm(cfg.d_model)
        self.attn = CausalSelfAttention(cfg)
        self.mlp = nn.Sequential(
            nn.Linear(cfg.d_model, 4 * cfg.d_model), nn.GELU(), nn.Linear(4 * cfg.d_model, cfg.d_model),
            nn.Dropout(cfg.dropout),
        )

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln1(x), mask)
        return x + self.mlp(self.ln2(x))


class SASRec(nn.Module):
    def __init__(self, cfg: SASRecConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.items = ItemEncoder(cfg)
        self.types = nn.Embedding(cfg.n_types + 1, cfg.d_model, padding_idx=0)
        self.recency = nn.Embedding(cfg.max_len, cfg.d_model)  # 0 = the newest event
        self.drop = nn.Dropout(cfg.dropout)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layers))
        self.ln_f = nn.LayerNorm(cfg.d_model)

    def forward(self, items: torch.Tensor, types: torch.Tensor) -> torch.Tensor:
        """items, types: (B, L) indices, left-padded with 0, oldest first -> hidden states (B, L, d)."""
        B, L = items.shape
        recency = torch.arange(L - 1, -1, -1, device=items.device).clamp(max=self.cfg.max_len - 1)  # (L,)
        x = self.items(items) * math.sqrt(self.cfg.d_model) + self.types(types) + self.recency(recency)  # (B, L, d)
        x = self.drop(x) * (items > 0).unsqueeze(-1)
        causal = torch.ones(L, L, dtype=torch.bool, device=items.device).tril()  # (L, L)
        mask = causal & ((items > 0)[:, None, :] | torch.eye(L, dtype=torch.bool, device=items.device))  # (B, L, L)
        for block in self.blocks:
            x = block(x, mask.unsqueeze(1))
        return self.ln_f(x)  # (B, L, d)

    def user_vectors(self, items: torch.Tensor, types: torch.Tensor) -> torch.Tensor:  # (B, L) -> (B, d)
        return self(items, types)[:, -1]

    def score(self, items: torch.Tensor, types: torch.Tensor, item_vectors: torch.Tensor | None = None) -> torch.Tensor:
        """Scores of every item for each sequence's next event: (B, L) -> (B, n_items + 1); column 0 is -inf."""
        vectors = self.items.all() if item_vectors is None else item_vectors  # (N+1, d)
        scores = self.user_vectors(items, types) @ vectors.T  # (B, N+1)
        scores[:, 0] = -math.inf
        return scores

    def loss(self, items: torch.Tensor, types: torch.Tensor, targets: torch.Tensor, negatives: int = 0) -> torch.Tensor:
        """Next-item cross-entropy at every position with a target (targets: (B, L), 0 = none).

        ``negatives == 0``: softmax over the whole catalogue. Otherwise a sampled softmax over
        ``negatives`` items drawn uniformly and shared by the batch (accidental hits masked).
        """
        h = self(items, types)[targets > 0]  # (P, d): the positions that have a next item
        y = targets[targets > 0]  # (P,)
        if negatives <= 0:
            logits = h @ self.items.all().T  # (P, N+1)
            logits[:, 0] = -math.inf
            return F.cross_entropy(logits, y)
        neg = torch.randint(1, self.cfg.n_items + 1, (negatives,), device=h.device)  # (S,)
        pos_logit = (h * self.items(y)).sum(-1, keepdim=True)  # (P, 1)
        neg_logits = h @ self.items(neg).T  # (P, S)
        neg_logits = neg_logits.masked_fill(neg[None, :] == y[:, None], -math.inf)
        logits = torch.cat([pos_logit, neg_logits], dim=1)  # (P, 1+S), the target is column 0
        return F.cross_entropy(logits, torch.zeros_like(y))

    def add_items(self, text_vectors: torch.Tensor) -> None:
        """Grow the catalogue by ``len(text_vectors)`` items with no events: zero ID embedding, their text."""
        n_new = text_vectors.shape[0]
        old = self.items.id.weight.data
        grown = nn.Embedding(old.shape[0] + n_new, old.shape[1], padding_idx=0)
        grown.weight.data.zero_()
        grown.weight.data[: old.shape[0]] = old
        self.items.id = grown
        self.items.text_vectors = torch.cat([self.items.text_vectors, text_vectors.to(self.items.text_vectors)])
        self.cfg.n_items += n_new
