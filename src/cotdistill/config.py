"""Run configuration: YAML validated by pydantic, with dotted `key=value` overrides from the command line."""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any, Literal, TypeVar, get_args

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .errors import CotdistillError


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DataConfig(Section):
    """Where examples come from."""

    source: Literal["bbh", "bbsub", "file", "hub"] = "bbh"
    subtasks: list[str] | None = None  # BBH subtasks or BB-sub tasks; None = all available
    split: str | None = "test"  # None = every split
    max_per_task: int | None = None  # sampling cap before the split (BBH 250, BB-sub 100 by default)
    limit_per_task: int | None = None  # keep the first N of each task in each split: a quick sample
    seed: int = 0
    # user data (source "file" or "hub")
    path: str | None = None  # a .jsonl or .csv file, or a `datasets` hub name / local dataset folder
    hub_config: str | None = None
    hub_split: str = "train"
    fields: dict[str, str] = Field(default_factory=dict)  # our field -> the user's column
    task: str | None = None  # task name for user data without a task column
    answer_format: Literal["choice", "label", "number", "text"] | None = None


class LoraConfig(Section):
    r: int = 8
    alpha: int = 16
    dropout: float = 0.05
    target_modules: list[str] = Field(default_factory=lambda: ["q_proj", "v_proj"])


class StudentConfig(Section):
    """A transformers causal LM: a local folder, a hub name, a GGUF file, or the alias smollm2-135m-instruct."""

    model: str = "smollm2-135m-instruct"
    gguf_file: str | None = None
    adapter: str | None = None  # an existing PEFT adapter folder to load on top
    lora: LoraConfig | None = None  # a new LoRA to train
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    device: str = "auto"


class EvalConfig(Section):
    batch_size: int = 16
    max_new_tokens: int = 256
    stop: list[str] = Field(default_factory=lambda: ["\n\nQ:", "\n\nQuestion:", "---"])
    stop_after_answer: bool = True  # end a sequence after the sentence stating its answer (grading reads no further)
    self_consistency: int = 1  # k > 1 samples k CoTs and takes the majority answer
    temperature: float = 0.7  # used only with self-consistency; greedy otherwise
    top_p: float = 0.95
    prompt_style: Literal["plain", "chat"] = "plain"


class LabData(Section):
    """Lab questions: IND at each family's default difficulty (or `difficulty`), OOD at its hard setting."""

    families: list[str] = Field(default_factory=lambda: ["web_of_lies"])
    train_n: int = 2000  # training questions per family
    test_n: int = 200  # IND and OOD test questions per family
    difficulty: dict[str, dict[str, int]] = Field(default_factory=dict)  # family -> knobs for IND
    ood: bool = True
    ood_difficulty: dict[str, dict[str, int]] = Field(default_factory=dict)  # family -> knobs; default: its hard one
    seed: int = 0


class LabTeacher(Section):
    """The scripted teacher: its mistake rate and types decide what D- and the dual pairs hold."""

    mistake_rate: float = 0.3
    spurious_rate: float = 0.0
    mistake_types: dict[str, float] = Field(default_factory=lambda: {"calculation": 1, "logical": 1, "knowledge": 1})
    samples: int = 1  # CoTs per question (MoRSD selects among several)
    seed: int = 0


class MethodConfig(Section):
    """A distillation method to train: a registered recipe name (methods.REGISTRY) and its parameters.

    `params` is handed to the recipe as is; each recipe validates its own keys (methods/params.py).
    """

    name: str = Field(min_length=1)
    label: str | None = None  # the row name in the report; defaults to `name` (tells apart two `edit` ablations)
    params: dict[str, Any] = Field(default_factory=dict)

    @property
    def row(self) -> str:
        return self.label or self.name


class StudyConfig(Section):
    """Methods × seeds. Data: the lab (`lab`, with the scripted `teacher`), or, with `lab: null`, the run's
    `data` section (train split to train, its test split as IND), `ood_data` as OOD, and the teacher CoTs and
    pairs that `cotdistill teach` wrote into `teacher_outputs`."""

    lab: LabData | None = Field(default_factory=LabData)
    teacher: LabTeacher = Field(default_factory=LabTeacher)
    teacher_outputs: str | None = None  # a `cotdistill teach` folder: rationales.jsonl, pairs.jsonl
    ood_data: DataConfig | None = None
    student: str = "lab-tiny"  # a lab preset (from scratch, lab tokenizer) or a model folder / alias
    methods: list[MethodConfig] = Field(default_factory=lambda: [MethodConfig(name="std_cot")])
    seeds: list[int] = Field(default_factory=lambda: [0, 1, 2])
    baseline: str = "std_cot"
    report: str = "report"  # folder in the run folder for results.json and the report (two studies may share a run)
    train: dict[str, Any] = Field(default_factory=dict)  # TrainSettings fields shared by every method
    eval: EvalConfig = Field(default_factory=lambda: EvalConfig(batch_size=64, max_new_tokens=160))


class RunConfig(Section):
    run_dir: str = "runs/default"
    seed: int = 42
    data: DataConfig = Field(default_factory=DataConfig)
    student: StudentConfig = Field(default_factory=StudentConfig)
    eval: EvalConfig = Field(default_factory=EvalConfig)
    study: StudyConfig | None = None  # methods × seeds (study.py); replaces the plain evaluation run


def _parse_value(text: str) -> Any:
    """Override values are YAML scalars or flow collections: 8, 0.1, true, null, [a, b]."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def apply_overrides(data: dict, overrides: list[str]) -> dict:
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise CotdistillError(f"override '{item}' is not of the form key=value (e.g. eval.batch_size=8)")
        node = data
        parts = key.split(".")
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise CotdistillError(f"override '{item}': '{part}' is not a section")
            node = child
        node[parts[-1]] = _parse_value(raw)
    return data


def load_config(path: str | Path | None, overrides: list[str] = ()) -> RunConfig:
    """Read a YAML config (or start from defaults), apply overrides, validate; errors name file and field."""
    source = str(path) if path else "<defaults>"
    data: dict = {}
    if path:
        try:
            data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        except OSError as e:
            raise CotdistillError(f"{source}: cannot read config: {e.strerror}") from None
        except yaml.YAMLError as e:
            mark = getattr(e, "problem_mark", None)
            line = f":{mark.line + 1}" if mark else ""
            raise CotdistillError(f"{source}{line}: invalid YAML: {getattr(e, 'problem', e)}") from None
        if not isinstance(data, dict):
            raise CotdistillError(f"{source}: a config must be a mapping of sections")
    data = apply_overrides(data, list(overrides))
    return parse_section(RunConfig, data, source)


S = TypeVar("S", bound=BaseModel)


def parse_section(model: type[S], data: Any, source: str) -> S:
    """Validate `data` as `model`; a bad value raises a CotdistillError naming `source` and the field."""
    try:
        return model.model_validate(data)
    except ValidationError as e:
        first = e.errors()[0]
        field = ".".join(str(p) for p in first["loc"])
        hint = ""
        if first["type"] == "extra_forbidden":
            known = _field_names_at(model, first["loc"][:-1])
            close = difflib.get_close_matches(str(first["loc"][-1]), known, n=1, cutoff=0.6)
            prefix = "".join(f"{p}." for p in first["loc"][:-1])
            hint = f"; did you mean '{prefix}{close[0]}'?" if close else f"; known: {', '.join(known)}"
        raise CotdistillError(f"{source}: field '{field}': {first['msg']}{hint}") from None


def _field_names_at(model: type[BaseModel], loc: tuple) -> list[str]:
    """The field names of the section that `loc` (a pydantic error location, minus its last part) points into."""
    current: Any = model
    for part in loc:
        if isinstance(part, int):
            continue  # a list index: the element type was taken with the list
        field = current.model_fields.get(part) if isinstance(current, type) and issubclass(current, BaseModel) else None
        if field is None:
            return []
        current = _section_type(field.annotation)
    return list(current.model_fields) if isinstance(current, type) and issubclass(current, BaseModel) else []


def _section_type(annotation: Any) -> Any:
    """The BaseModel inside `X | None` or `list[X]`, else the annotation itself."""
    for arg in (*get_args(annotation), annotation):
        if isinstance(arg, type) and issubclass(arg, BaseModel):
            return arg
        inner = get_args(arg)
        if inner and any(isinstance(a, type) and issubclass(a, BaseModel) for a in inner):
            return _section_type(arg)
    return annotation
