"""Token vocabulary with d2l's semantics: `<unk>` is index 0, then reserved tokens, then the
remaining tokens by descending frequency (ties in order of first appearance)."""
from collections import Counter
from collections.abc import Iterable


class Vocab:
    unk = 0

    def __init__(self, tokens: Iterable[str] = (), min_freq: int = 0,
                 reserved_tokens: Iterable[str] = ()):
        counts = Counter(tokens)
        self.token_freqs = sorted(counts.items(), key=lambda kv: kv[1], reverse=True)
        self.idx_to_token = ["<unk>", *reserved_tokens]
        self.token_to_idx = {tok: i for i, tok in enumerate(self.idx_to_token)}
        for tok, freq in self.token_freqs:
            if freq < min_freq:
                break  # sorted by frequency: every later token is rarer
            if tok not in self.token_to_idx:
                self.token_to_idx[tok] = len(self.idx_to_token)
                self.idx_to_token.append(tok)

    def __len__(self) -> int:
        return len(self.idx_to_token)

    def __getitem__(self, token: str) -> int:
        return self.token_to_idx.get(token, self.unk)

    def indices(self, tokens: Iterable[str]) -> list[int]:
        return [self[t] for t in tokens]

    def to_tokens(self, indices: Iterable[int]) -> list[str]:
        return [self.idx_to_token[int(i)] for i in indices]
