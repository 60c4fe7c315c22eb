"""Prompt templates: defaults render with the answer format, per-task overrides win, bad templates and
exemplar files fail naming the file and line, teacher answers lose thinking and trailing chatter."""

from __future__ import annotations

import json

import pytest
from teach_testutil import choice_examples

from cotdistill.errors import CotdistillError
from cotdistill.records import Example
from cotdistill.teachers.base import Completion
from cotdistill.teachers.prompted import clean_rationale
from cotdistill.teachers.prompts import TEMPLATE_NAMES, PromptSet, load_exemplars, pick_exemplars


def test_every_default_template_renders_and_asks_for_the_answer_sentence():
    example = choice_examples(1)[0]
    values = {"task_description": "d", "question": example.question, "task": "t", "answer": "(C)",
              "rationale": "r", "exemplars": "e", "demonstrations": "x"}
    for name in TEMPLATE_NAMES:
        messages = PromptSet().get(name).render(**values)
        assert [m["role"] for m in messages] == ["system", "user"]
        assert "Therefore, the answer is" in messages[0]["content"] + messages[1]["content"]
        assert "Which shelf holds box 0?" in messages[1]["content"]


def test_braces_and_dollars_in_questions_are_kept_verbatim():
    question = "Complete: { [ < $5 ${x}"
    text = PromptSet().get("cot").render(task_description="", question=question, task="t")[1]["content"]
    assert question in text and not text.startswith("\n")


def test_a_task_override_beats_a_global_one_which_beats_the_default(tmp_path):
    (tmp_path / "dyck").mkdir()
    (tmp_path / "cot.txt").write_text("[user]\nGLOBAL ${question}")
    (tmp_path / "dyck" / "cot.txt").write_text("[system]\nS\n[user]\nDYCK ${question}")
    prompts = PromptSet(tmp_path)
    assert prompts.get("cot", "dyck").render(question="q", task_description="", task="dyck")[1]["content"] == "DYCK q"
    assert prompts.get("cot", "other").render(question="q", task_description="", task="o") == [
        {"role": "user", "content": "GLOBAL q"}]
    assert "Hint" in prompts.get("hint").user  # not overridden: the default
    assert prompts.fingerprint(["dyck"]) != PromptSet().fingerprint(["dyck"])


def test_an_unknown_placeholder_names_the_template_file(tmp_path):
    (tmp_path / "hint.txt").write_text("[user]\n${question} ${gold}")
    with pytest.raises(CotdistillError, match=r"hint\.txt: unknown placeholder \$\{gold\}"):
        PromptSet(tmp_path).get("hint").render(question="q", task_description="", task="t", answer="a")


def test_exemplar_file_errors_name_file_line_and_field(tmp_path):
    path = tmp_path / "shots.jsonl"
    path.write_text(json.dumps({"question": "q", "rationale": "Therefore, the answer is (A)."}) + "\n"
                    + json.dumps({"question": "q2"}) + "\n")
    with pytest.raises(CotdistillError, match=r"shots\.jsonl:2: field 'rationale'"):
        load_exemplars(path)
    path.write_text(json.dumps({"question": "q", "rationale": "no answer stated"}) + "\n")
    with pytest.raises(CotdistillError, match=r"shots\.jsonl:1: field 'rationale': must end with"):
        load_exemplars(path)


def test_exemplars_of_the_task_come_first(tmp_path):
    path = tmp_path / "shots.jsonl"
    rows = [{"question": f"g{i}", "rationale": "Therefore, the answer is 1."} for i in range(2)]
    rows += [{"question": "own", "rationale": "Therefore, the answer is 2.", "task": "navigate"}]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    picked = pick_exemplars(load_exemplars(path), "navigate", 2)
    assert [e.question for e in picked] == ["own", "g0"]


def test_answers_lose_thinking_labels_and_what_follows_the_answer_sentence():
    raw = ("<think>maybe (A)?</think>Flawed solution: Step one. Step two.\nTherefore, the answer is (B). "
           "Question: next one...\nTherefore, the answer is (D).")
    assert clean_rationale(raw) == "Step one. Step two.\nTherefore, the answer is (B)."
    assert clean_rationale("No answer here.") == "No answer here."


def test_few_shot_prompts_use_the_exemplar_file(tmp_path):
    from cotdistill.teachers.base import SamplingParams
    from cotdistill.teachers.prompted import PromptedTeacher
    from cotdistill.teachers.prompts import Exemplar

    class Echo:  # a TextGenerator that returns its prompt, to see what the teacher sent
        model = "echo"

        def generate(self, prompts, n, params):
            return [[Completion(text=p[-1]["content"])] * n for p in prompts]

    example = Example(id="e", task="navigate", question="Go left?", answer="No", answer_format="label",
                      choices=["Yes", "No"])
    shots = [Exemplar(question="Go right?", rationale="I turn. Therefore, the answer is Yes.", task="navigate")]
    few = PromptedTeacher(Echo(), exemplars=shots, params=SamplingParams()).solve([example])[0][0]
    zero = PromptedTeacher(Echo(), params=SamplingParams()).solve([example])[0][0]
    assert "Go right?" in few.text and "Go right?" not in zero.text
