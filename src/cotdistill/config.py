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
    """Where examples come from: official BBH, BB-sub, AGIEval, ARC, or the user's own file or hub dataset."""

    source: Literal["bbh", "bbsub", "agieval", "arc", "file", "hub"] = "bbh"
    subtasks: list[str] | None = None  # BBH tasks, BB-sub tasks, AGIEval subsets, ARC sets; None = all available
    split: str | None = "test"  # None = every split
    max_per_task: int | None = None  # BB-sub's sampling cap per task (100 by default)
    limit_per_task: int | None = None  # keep the first N of each task in each split: a quick sample
    seed: int = 0  # BBH's 4:1 train/test split and BB-sub's sample
    label: str | None = None  # the benchmark's column in reports; default: its usual name (BBH, AGIEval, ARC-E, ...)
    # a local copy (bbh, agieval, arc: a folder or file) or the user's data (file: .jsonl/.csv; hub: a name)
    path: str | None = None
    hub: str | None = None  # bbh or arc from a `datasets` hub dataset (e.g. allenai/ai2_arc)
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


Knobs = dict[str, int]  # a lab family's difficulty knobs, e.g. {"people": 5}


class LabData(Section):
    """Lab questions per family: train, validation and IND test drawn from one difficulty mix, and OOD levels.

    `difficulty` gives a family its IND setting: knobs ({people: 3}), or a weighted mix of settings
    ([{people: 3, weight: 2}, {people: 4}, {people: 5}]; weight 1 when omitted), shared out exactly over
    train_n, validation_n and test_n. `ood_difficulty` gives its harder OOD setting (default: the family's own
    hard one): knobs make one split "ood"; a list of knobs makes one split per level, "ood-1", "ood-2", ... in
    list order, each with `ood_test_n` questions (default test_n). Every question of a family is distinct
    across all its splits (docs/lab.md).
    """

    families: list[str] = Field(default_factory=lambda: ["web_of_lies"])
    train_n: int = Field(2000, ge=1)  # training questions per family
    validation_n: int = Field(0, ge=0)  # validation questions per family (split "validation"), from the IND mix
    test_n: int = Field(200, ge=0)  # IND test questions per family (and OOD ones unless ood_test_n is given)
    difficulty: dict[str, Knobs | list[dict[str, float]]] = Field(default_factory=dict)  # family -> knobs or mix
    ood: bool = True
    ood_difficulty: dict[str, Knobs | list[Knobs]] = Field(default_factory=dict)  # family -> knobs or levels
    ood_test_n: int | None = Field(None, ge=1)  # questions per family at each OOD level
    seed: int = 0


class LabTeacher(Section):
    """The scripted teacher: its mistake rate and types decide what D- and the dual pairs hold (docs/lab.md)."""

    mistake_rate: float = 0.3  # chance of a mistake per CoT, whatever the question (a floor when slip_rate is set)
    slip_rate: float = 0.0  # question-dependent mistakes: chance of a slip per unit of step load
    spurious_rate: float = 0.0  # right answer through broken steps (CoPeD and MoRSD should turn these down)
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
    seeds: list[int] | None = None  # a subset of study.seeds for this method (a costly one runs fewer); None: all

    @property
    def row(self) -> str:
        return self.label or self.name


class ValidationConfig(Section):
    """The study's validation split: training questions set aside (seeded, per task), never trained on, on which
    every choice made from results is made (e.g. a stage's `select_epoch`). Test splits are never used to choose."""

    fraction: float = Field(0.1, ge=0, lt=1)  # of each task's training questions
    max_per_task: int | None = Field(200, ge=1)  # a cap on the count a fraction gives
    max_eval: int = Field(100, ge=1)  # validation questions one candidate is scored on (keeps selection cheap)
    seed: int = 0


class StudyConfig(Section):
    """Methods × seeds. Data: the lab (`lab`, with the scripted `teacher`), or, with `lab: null`, the run's
    `data` section (train split to train, its test split as IND), `ood_data` as OOD, and the teacher CoTs and
    pairs that `cotdistill teach` wrote into `teacher_outputs`."""

    lab: LabData | None = Field(default_factory=LabData)
    teacher: LabTeacher = Field(default_factory=LabTeacher)
    teacher_outputs: str | None = None  # a `cotdistill teach` folder: rationales.jsonl, pairs.jsonl
    ood_data: DataConfig | list[DataConfig] | None = None  # one report column per benchmark, and their average
    student: str = "lab-tiny"  # a lab preset (from scratch, lab tokenizer) or a model folder / alias
    methods: list[MethodConfig] = Field(default_factory=lambda: [MethodConfig(name="std_cot")])
    seeds: list[int] = Field(default_factory=lambda: [0, 1, 2])
    # run only these rows (labels) of `methods`, e.g. rows added to a study already run in parts; None: every row
    rows: list[str] | None = None
    baseline: str = "std_cot"
    report: str = "report"  # folder in the run folder for results.json and the report (two studies may share a run)
    train: dict[str, Any] = Field(default_factory=dict)  # TrainSettings fields shared by every method
    eval: EvalConfig = Field(default_factory=lambda: EvalConfig(batch_size=64, max_new_tokens=160))
    validation: ValidationConfig | None = Field(default_factory=ValidationConfig)  # None: no validation split
    # also evaluate every trained student on the whole validation split, into validation.json beside results.json
    # (never into the report, whose columns are test splits): what `cotdistill pick` chooses a row by
    report_validation: bool = False
    # parallel single-thread worker processes for the method x seed trainings; None: one per available core
    # (one on a GPU machine)
    workers: int | None = Field(None, ge=1)


class RunConfig(Section):
    run_dir: str = "runs/default"
    seed: int = 42
    data: DataConfig | list[DataConfig] = Field(default_factory=DataConfig)  # a list: several benchmarks at once
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
        loc = _field_path(model, first["loc"]) or tuple(first["loc"])  # an unknown capitalised top-level key
        field = ".".join(str(p) for p in loc)
        hint = ""
        if first["type"] == "extra_forbidden":
            known = _field_names_at(model, loc[:-1])
            close = difflib.get_close_matches(str(loc[-1]), known, n=1, cutoff=0.6)
            prefix = "".join(f"{p}." for p in loc[:-1])
            hint = f"; did you mean '{prefix}{close[0]}'?" if close else f"; known: {', '.join(known)}"
        raise CotdistillError(f"{source}: field '{field}': {first['msg']}{hint}") from None


def _field_path(model: type[BaseModel], loc: tuple) -> tuple:
    """A pydantic error location without the union-member tags it inserts ("DataConfig", "list[DataConfig]")
    where a field takes one section or a list of them: the path a user writes in YAML."""
    out: list[Any] = []
    current: Any = model
    for part in loc:
        if isinstance(part, int):
            out.append(part)
            continue
        fields = current.model_fields if isinstance(current, type) and issubclass(current, BaseModel) else {}
        if part in fields:
            out.append(part)
            current = _section_type(fields[part].annotation)
        elif not fields or not (part[:1].isupper() or "[" in part):  # keep anything that is not a union tag
            out.append(part)
    return tuple(out)


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
