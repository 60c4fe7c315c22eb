"""How a question is shown to the student, shared by training and evaluation so the two never drift apart."""

from __future__ import annotations

from typing import Literal

from .grading import ANSWER_PHRASE
from .records import Example

PromptStyle = Literal["plain", "chat"]

# Chat-tuned students that were never distilled need to be told the output format.
# No literal placeholder ("X"): a weak model copies it instead of answering.
CHAT_INSTRUCTION = (f'Think step by step, then finish with a sentence that starts with "{ANSWER_PHRASE}" '
                    "followed by your answer itself.")


def plain_prompt(example: Example) -> str:
    """EDIT's uniform student prompt: the task description, the question, then "A:" for the rationale."""
    head = f"Task Description:\n{example.task_description}\n" if example.task_description else ""
    return f"{head}Q:{example.question}\n\nA:"


def student_prompt(example: Example, style: PromptStyle = "plain", tokenizer=None) -> str:
    """The text the student continues: the plain prompt, or it wrapped in the tokenizer's chat template."""
    if style == "plain":
        return plain_prompt(example)
    if tokenizer is None or tokenizer.chat_template is None:
        raise ValueError("prompt style 'chat' needs a tokenizer with a chat template")
    return tokenizer.apply_chat_template(
        [{"role": "user", "content": chat_user_message(example)}], tokenize=False, add_generation_prompt=True
    )


def chat_user_message(example: Example) -> str:
    """The question as a chat user turn: the plain prompt without its "A:", then the output format."""
    return f"{plain_prompt(example)[:-2].rstrip()}\n\n{CHAT_INSTRUCTION}"
