"""Distilling step-by-step (Hsieh et al. 2023): label and rationale as two tasks told apart by a prefix.

For each training example that has at least one graded-correct teacher CoT:
  * label, once per example: "[label] " + prompt -> "Therefore, the answer is X."
  * rationale, once per correct CoT: "[rationale] " + prompt -> the CoT without its answer sentence
(label first, then the example's rationales in input order). Loss = alpha * L_label + (1 - alpha) *
L_rationale, each a token mean over its task, as token weights (common.py); alpha = 0.5 as the paper
recommends. alpha weights the *label* loss, as in the authors' code; at 0.5 the orientation does not matter.

From the paper: two prefixed tasks on one input, the rationale without the label, the alpha mix, only the label
task at test time. Our choices: the prefixes (the paper's T5 code uses "predict: " / "explain: "; both are
parameters), prefixes prepended to our uniform student prompt, and the label target written as the answer
sentence so that strict grading applies. Evaluate with `prompt_for_eval` ("[label] " + prompt).
"""

from __future__ import annotations

from typing import Any

from ..records import Example
from .base import Method, MethodInputs, TrainingStage, register
from .common import EVAL_PROMPTS, answer_and_rationale_stage, check_params, tagged_prompt

NAME = "step_by_step"
DEFAULTS: dict[str, Any] = {
    "alpha": 0.5, "label_prefix": "[label] ", "rationale_prefix": "[rationale] ", "origins": ("teacher",),
    "prompt_style": "plain",
}


def prompt_for_eval(example: Example, style: str = "plain", tokenizer: Any = None,
                    params: dict[str, Any] | None = None) -> str:
    """The label-task prompt the student is evaluated with ("[label] " + prompt by default)."""
    prefix = check_params(NAME, params or {}, DEFAULTS)["label_prefix"]
    return tagged_prompt(example, prefix=prefix, style=style, tokenizer=tokenizer, method=NAME)


def build(inputs: MethodInputs, params: dict[str, Any]) -> list[TrainingStage]:
    p = check_params(NAME, params, DEFAULTS)
    return [answer_and_rationale_stage(inputs, p, method=NAME, answer_tag=(p["label_prefix"], ""),
                                       rationale_tag=(p["rationale_prefix"], ""), keep_answer_sentence=False)]


EVAL_PROMPTS[NAME] = prompt_for_eval
register(Method(NAME, build, summary="distilling step-by-step: [label]/[rationale] prefixed tasks, alpha mix"))
