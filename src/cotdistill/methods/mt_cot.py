"""MT-CoT (Li et al. 2022), in the form EDIT's authors ran it as a baseline: one question, two tasks.

For each training example that has at least one graded-correct teacher CoT:
  * answer prediction, once per example: prompt + "\\n[Answer Prediction]:" -> "Therefore, the answer is X."
  * explanation generation, once per correct CoT: prompt + "\\n[Explanation Generation]:" -> the whole CoT
(the answer sequence comes first, then the example's CoTs in input order). The task tags follow the tags of
EDIT's code; appending them after the prompt's "A:" is theirs too. Loss = alpha * L_answer + (1 - alpha) *
L_explanation, each a token mean over its task, realised as token weights (see common.py). alpha defaults to
0.1, the default of the script EDIT's table was produced with (the paper does not state it).

At test time the student answers directly from the answer-prediction prompt (`prompt_for_eval`); the answer
target is a full sentence so that strict grading applies unchanged.
"""

from __future__ import annotations

from typing import Any

from ..records import Example
from .base import Method, MethodInputs, TrainingStage, register
from .common import EVAL_PROMPTS, answer_and_rationale_stage, check_params, tagged_prompt

NAME = "mt_cot"
ANSWER_TAG = "\n[Answer Prediction]:"
EXPLAIN_TAG = "\n[Explanation Generation]:"
DEFAULTS: dict[str, Any] = {"alpha": 0.1, "origins": ("teacher",), "prompt_style": "plain"}


def prompt_for_eval(example: Example, style: str = "plain", tokenizer: Any = None,
                    params: dict[str, Any] | None = None) -> str:
    """The answer-prediction prompt the student is evaluated with."""
    return tagged_prompt(example, suffix=ANSWER_TAG, style=style, tokenizer=tokenizer, method=NAME)


def build(inputs: MethodInputs, params: dict[str, Any]) -> list[TrainingStage]:
    p = check_params(NAME, params, DEFAULTS)
    return [answer_and_rationale_stage(inputs, p, method=NAME, answer_tag=("", ANSWER_TAG),
                                       rationale_tag=("", EXPLAIN_TAG), keep_answer_sentence=True)]


EVAL_PROMPTS[NAME] = prompt_for_eval
register(Method(NAME, build, summary="multi-task: answer prediction and explanation generation, tagged prompts"))
