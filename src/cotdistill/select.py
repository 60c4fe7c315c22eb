"""MoRSD rationale selection: accuracy, then diversity, then Rationale Difficulty (RD) measured by the student.

RD(q, r, a) = PPL_S(a | q, r) / PPL_S(a | q), the student's perplexity of the gold answer with the rationale in
front of it over its perplexity without. A low RD means the rationale makes the answer easier for *this*
student, and low-RD rationales are kept first (MoRSD's reading; methods.md §3.1). The stages are separate
functions so a pipeline can cache each: `candidate_rationales` needs no model (unless the embedding diversity
flag is on), `rationale_difficulty` runs the student, `keep_by_difficulty` ranks.

Scoring uses exactly the token layout training uses (methods.encode: prompt, then " " + target), with the
target cut right after the scored answer tokens, since later tokens cannot change a causal model's earlier
predictions. Rows are left-padded with explicit position ids, so every row ends at the same position and only the
last few logits are computed (no batch x length x vocabulary tensor), and padding changes nothing.
"""

from __future__ import annotations

import math
import random
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

import torch
from pydantic import Field

from .config import Section, parse_section
from .errors import CotdistillError
from .grading import ANSWER_PHRASE, closing_sentence_start, final_answer_sentence
from .methods.encode import encode, tokens_in_spans
from .prompting import PromptStyle, student_prompt
from .records import Example, Origin, Rationale, write_jsonl
from .similarity import ngram_similarity

AnswerText = Literal["bare", "sentence"]
Similarity = Callable[[Rationale, Rationale], float]


class SelectionConfig(Section):
    """Every open choice of MoRSD's selection (docs/methods.md, "MoRSD", says why each default)."""

    origins: list[Origin] = Field(default_factory=lambda: ["teacher"])  # candidates: the teacher's own samples
    require_correct: bool = True  # accuracy filter: keep only rationales graded correct
    diversity: Literal["ngram", "embedding", "none"] = "ngram"
    ngram: int = Field(3, ge=1)  # word n-gram size for the Jaccard similarity
    diversity_threshold: float = 0.7  # keep a rationale only if its similarity to every kept one is below this
    answer_text: AnswerText = "bare"  # score the answer string only, or the whole closing sentence
    keep: Literal["top_k", "fraction", "all"] = "top_k"
    top_k: int = Field(6, ge=1)  # per question, when keep == "top_k"
    fraction: float = Field(0.3, gt=0, le=1)  # of all scored rationales, when keep == "fraction"
    # low RD first (MoRSD); "high" is the ablation; "random" the control: the same filters and count, RD ignored
    prefer: Literal["low", "high", "random"] = "low"
    seed: int = 0  # orders the candidates when prefer is "random" (a study sets its seed)
    batch_size: int = Field(8, ge=1)
    prompt_style: PromptStyle = "plain"
    scorer: Literal["base", "warm"] = "base"  # which student scores RD; read by the pipeline, not here

    @classmethod
    def from_params(cls, params: dict[str, Any], where: str = "morsd") -> SelectionConfig:
        """Build from a recipe's params; an unknown key or a bad value raises an error naming it."""
        return parse_section(cls, params, where)


# ---- accuracy ------------------------------------------------------------------------------------------------


def accuracy_filter(rationales: Iterable[Rationale]) -> tuple[list[Rationale], list[Rationale]]:
    """(graded correct, the rest); an ungraded rationale (correct is None) counts as not correct."""
    kept, dropped = [], []
    for r in rationales:
        (kept if r.correct is True else dropped).append(r)
    return kept, dropped


# ---- diversity -----------------------------------------------------------------------------------------------


def diversity_filter(rationales: Sequence[Rationale], threshold: float,
                     similarity: Similarity) -> tuple[list[Rationale], dict[str, tuple[str, float]]]:
    """Greedy, per question, in the given order: keep a rationale if its similarity to every rationale already
    kept for the same question is below `threshold`. Returns the kept ones and, for each dropped id, the kept
    rationale it duplicated and their similarity. threshold > 1 keeps everything; 1.0 drops exact duplicates."""
    kept_by_question: dict[str, list[Rationale]] = defaultdict(list)
    kept: list[Rationale] = []
    dropped: dict[str, tuple[str, float]] = {}
    for r in rationales:
        closest = max(((k.id, similarity(r, k)) for k in kept_by_question[r.example_id]),
                      key=lambda pair: pair[1], default=None)
        if closest is not None and closest[1] >= threshold:
            dropped[r.id] = closest
            continue
        kept_by_question[r.example_id].append(r)
        kept.append(r)
    return kept, dropped


@torch.no_grad()
def mean_hidden_states(model, tokenizer, texts: Sequence[str], batch_size: int = 8) -> torch.Tensor:
    """L2-normalised mean of the model's last-layer hidden states over each text's tokens, [N, H]."""
    device = next(model.parameters()).device
    out = []
    for start in range(0, len(texts), batch_size):
        rows = [tokenizer(t, add_special_tokens=False).input_ids or [tokenizer.eos_token_id]
                for t in texts[start:start + batch_size]]
        ids, mask, positions = _left_pad(rows, _pad_id(tokenizer))
        hidden = model(input_ids=ids.to(device), attention_mask=mask.to(device), position_ids=positions.to(device),
                       output_hidden_states=True).hidden_states[-1].float()
        m = mask.to(device).unsqueeze(-1).float()
        out.append(torch.nn.functional.normalize((hidden * m).sum(1) / m.sum(1), dim=-1).cpu())
    return torch.cat(out) if out else torch.empty(0, 0)


def embedding_similarity(model, tokenizer, rationales: Sequence[Rationale], batch_size: int = 8) -> Similarity:
    """Cosine similarity of the student's mean hidden states of two rationales (embedded once, up front)."""
    vectors = mean_hidden_states(model, tokenizer, [r.text for r in rationales], batch_size)
    index = {r.id: i for i, r in enumerate(rationales)}
    return lambda a, b: float(vectors[index[a.id]] @ vectors[index[b.id]])


# ---- rationale difficulty ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DifficultyScore:
    """Mean answer-token NLLs with and without the rationale; RD = exp(with - without) = the perplexity ratio."""

    rationale_id: str
    example_id: str
    nll_with: float
    nll_without: float
    answer_tokens: int

    @property
    def rd(self) -> float:
        return math.exp(self.nll_with - self.nll_without)


def rationale_body(text: str) -> str:
    """The rationale without its closing answer sentence (from the last "Therefore, the answer is" on)."""
    return text[:closing_sentence_start(text)].rstrip()


def answer_target(body: str, answer: str, answer_text: AnswerText) -> tuple[str, tuple[int, int]]:
    """The target text `body` + the gold answer sentence, and the character span scored in it.

    "bare": only the answer string (after "Therefore, the answer is "); "sentence": the whole closing sentence.
    """
    sentence = final_answer_sentence(answer)
    target = f"{body} {sentence}" if body else sentence
    start = len(target) - len(sentence)
    if answer_text == "sentence":
        return target, (start, len(target))
    a = start + len(ANSWER_PHRASE) + 1
    return target, (a, a + len(answer.strip()))


def _pad_id(tokenizer) -> int:
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    if pad is None:
        raise CotdistillError("the student's tokenizer has neither a pad nor an EOS token to pad batches with")
    return pad


def _left_pad(rows: Sequence[Sequence[int]], pad: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Left-padded ids, attention mask and position ids that start at 0 on each row's first real token."""
    width = max(map(len, rows))
    ids = torch.tensor([[pad] * (width - len(r)) + list(r) for r in rows])
    mask = torch.tensor([[0] * (width - len(r)) + [1] * len(r) for r in rows])
    positions = (mask.cumsum(1) - 1).clamp(min=0)
    return ids, mask, positions


@dataclass(frozen=True)
class _Item:
    key: tuple[str, str]  # (example id, rationale id or "" for the question alone)
    ids: list[int]  # prompt + target up to the last scored token
    prompt_len: int
    scored: int  # how many trailing tokens are answer tokens


def _item(tokenizer, prompt: str, body: str, example: Example, answer_text: AnswerText, rid: str) -> _Item:
    target, span = answer_target(body, example.answer, answer_text)
    enc = encode(tokenizer, prompt, target)
    inside = tokens_in_spans(enc.target_offsets, [span])
    positions = [i for i, hit in enumerate(inside) if hit]
    if not positions:
        raise CotdistillError(f"example {example.id}: the answer {example.answer!r} covers no token to score")
    first, last = positions[0], positions[-1]
    return _Item((example.id, rid), enc.prompt_ids + enc.target_ids[:last + 1], len(enc.prompt_ids),
                 last - first + 1)


def _causal_logprobs(model, batch: Sequence[_Item], pad: int, device) -> list[torch.Tensor]:
    """Log-probabilities of each row's trailing scored tokens under a causal LM."""
    ids, mask, positions = _left_pad([b.ids for b in batch], pad)
    keep = max(b.scored for b in batch) + 1  # every row ends at the last column: only these logits matter
    kwargs = dict(input_ids=ids.to(device), attention_mask=mask.to(device), position_ids=positions.to(device))
    try:
        logits = model(**kwargs, logits_to_keep=keep).logits
    except TypeError:  # a model without logits_to_keep: compute all and slice
        logits = model(**kwargs).logits
    logprobs = torch.log_softmax(logits[:, -keep:].float(), dim=-1)
    targets = ids[:, -keep + 1:].to(device)  # token t is predicted from the column before it
    token_lp = logprobs[:, :-1].gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    return [token_lp[row, -b.scored:] for row, b in enumerate(batch)]


def _seq2seq_logprobs(model, batch: Sequence[_Item], pad: int, device) -> list[torch.Tensor]:
    """The same for an encoder-decoder: the prompt feeds the encoder, the target is the decoder's labels."""
    prompts = [b.ids[:b.prompt_len] for b in batch]
    targets = [b.ids[b.prompt_len:] for b in batch]
    width, dec_width = max(map(len, prompts)), max(map(len, targets))
    ids = torch.tensor([p + [pad] * (width - len(p)) for p in prompts], device=device)
    mask = torch.tensor([[1] * len(p) + [0] * (width - len(p)) for p in prompts], device=device)
    labels = torch.tensor([t + [-100] * (dec_width - len(t)) for t in targets], device=device)
    logits = model(input_ids=ids, attention_mask=mask, labels=labels).logits
    out = []
    for row, (b, t) in enumerate(zip(batch, targets)):
        lp = torch.log_softmax(logits[row, len(t) - b.scored:len(t)].float(), dim=-1)
        out.append(lp.gather(-1, labels[row, len(t) - b.scored:len(t)].unsqueeze(-1)).squeeze(-1))
    return out


@torch.no_grad()
def _mean_nlls(model, items: Sequence[_Item], pad: int, batch_size: int) -> dict[tuple[str, str], tuple[float, int]]:
    """Mean NLL of each item's trailing `scored` tokens, batched by length."""
    device = next(model.parameters()).device
    score = _seq2seq_logprobs if getattr(model.config, "is_encoder_decoder", False) else _causal_logprobs
    order = sorted(range(len(items)), key=lambda i: len(items[i].ids))
    out: dict[tuple[str, str], tuple[float, int]] = {}
    for start in range(0, len(order), batch_size):
        batch = [items[i] for i in order[start:start + batch_size]]
        for b, token_lp in zip(batch, score(model, batch, pad, device)):
            out[b.key] = (-token_lp.sum().item() / b.scored, b.scored)
    return out


def rationale_difficulty(model, tokenizer, examples: Sequence[Example], rationales: Sequence[Rationale],
                         batch_size: int = 8, answer_text: AnswerText = "bare",
                         prompt_style: PromptStyle = "plain") -> list[DifficultyScore]:
    """RD of each rationale under `model` (a causal LM or an encoder-decoder), in the order given.

    The gold answer of the rationale's example is scored (not the rationale's own extracted answer), once after
    prompt + rationale body and once after the prompt alone; the second is shared by a question's rationales.
    """
    by_id = {e.id: e for e in examples}
    items: list[_Item] = []
    needed: set[str] = set()
    for r in rationales:
        example = by_id.get(r.example_id)
        if example is None:
            raise CotdistillError(f"rationale {r.id}: its example {r.example_id!r} is not among the examples")
        prompt = student_prompt(example, prompt_style, tokenizer)
        items.append(_item(tokenizer, prompt, rationale_body(r.text), example, answer_text, r.id))
        if example.id not in needed:
            needed.add(example.id)
            items.append(_item(tokenizer, prompt, "", example, answer_text, ""))
    was_training = model.training
    model.eval()
    try:
        nlls = _mean_nlls(model, items, _pad_id(tokenizer), batch_size)
    finally:
        model.train(was_training)
    scores = []
    for r in rationales:
        with_r, n = nlls[(r.example_id, r.id)]
        scores.append(DifficultyScore(r.id, r.example_id, with_r, nlls[(r.example_id, "")][0], n))
    return scores


# ---- ranking and the whole selection --------------------------------------------------------------------------


def keep_by_difficulty(scores: Sequence[DifficultyScore], keep: str = "top_k", top_k: int = 6,
                       fraction: float = 0.3, prefer: str = "low", seed: int = 0) -> list[DifficultyScore]:
    """The scores kept, in input order: the top_k per question, or a fraction of all, best RD first (prefer
    "random": in an order drawn with `seed`, so the kept set has MoRSD's size without its choice).

    Ties keep the input order (a stable sort), so the result is deterministic."""
    if prefer == "random":
        ranked = list(range(len(scores)))
        random.Random(seed).shuffle(ranked)
    else:
        sign = 1.0 if prefer == "low" else -1.0
        ranked = sorted(range(len(scores)), key=lambda i: sign * scores[i].rd)
    chosen: set[int] = set()
    if keep == "all":
        chosen = set(ranked)
    elif keep == "top_k":
        taken: dict[str, int] = defaultdict(int)
        for i in ranked:
            if taken[scores[i].example_id] < top_k:
                taken[scores[i].example_id] += 1
                chosen.add(i)
    elif keep == "fraction":
        chosen = set(ranked[:math.ceil(fraction * len(scores))])
    else:
        raise CotdistillError(f"keep must be top_k, fraction or all, got {keep!r}")
    return [s for i, s in enumerate(scores) if i in chosen]


@dataclass
class Selection:
    kept: list[Rationale]
    table: list[dict[str, Any]]  # one row per input rationale: status, reason, RD parts (JSONL-ready)

    def write_table(self, path) -> int:
        return write_jsonl(path, self.table)


def candidate_rationales(rationales: Sequence[Rationale], config: SelectionConfig, model=None,
                         tokenizer=None) -> tuple[list[Rationale], dict[str, dict[str, Any]]]:
    """Origin, accuracy, then diversity filters; returns the candidates and a table row for each dropped one.

    Only rationales of `config.origins` are candidates: MoRSD chooses among the teacher's own samples, not the
    rectified or corrupted CoTs made from them (written with a hint, or wrong on purpose).
    """
    rows: dict[str, dict[str, Any]] = {}
    candidates = [r for r in rationales if r.origin in config.origins]
    for r in rationales:
        if r.origin not in config.origins:
            rows[r.id] = {"status": "dropped", "reason": "origin"}
    if config.require_correct:
        candidates, wrong = accuracy_filter(candidates)
        for r in wrong:
            rows[r.id] = {"status": "dropped", "reason": "incorrect" if r.correct is False else "ungraded"}
    if config.diversity != "none":
        if config.diversity == "embedding":
            if model is None or tokenizer is None:
                raise CotdistillError("morsd: diversity 'embedding' needs the student model and tokenizer")
            similarity = embedding_similarity(model, tokenizer, candidates, config.batch_size)
        else:
            similarity = ngram_similarity(config.ngram)
        candidates, duplicates = diversity_filter(candidates, config.diversity_threshold, similarity)
        for rid, (other, sim) in duplicates.items():
            rows[rid] = {"status": "dropped", "reason": "similar", "similar_to": other, "similarity": round(sim, 6)}
    return candidates, rows


def select_rationales(model, tokenizer, examples: Sequence[Example], rationales: Sequence[Rationale],
                      config: SelectionConfig | None = None) -> Selection:
    """MoRSD end to end: accuracy -> diversity -> RD (scored by `model`) -> keep; plus a row per rationale."""
    config = config or SelectionConfig()
    candidates, rows = candidate_rationales(rationales, config, model, tokenizer)
    scores = rationale_difficulty(model, tokenizer, examples, candidates, config.batch_size, config.answer_text,
                                  config.prompt_style)
    kept_ids = {s.rationale_id for s in keep_by_difficulty(scores, config.keep, config.top_k, config.fraction,
                                                           config.prefer, config.seed)}
    for s in scores:
        rows[s.rationale_id] = {"status": "kept" if s.rationale_id in kept_ids else "dropped",
                                "reason": "" if s.rationale_id in kept_ids else "rank",
                                **asdict(s), "rd": s.rd}
    table = [{"rationale_id": r.id, "example_id": r.example_id, **rows[r.id]} for r in rationales]
    return Selection([r for r in rationales if r.id in kept_ids], table)
