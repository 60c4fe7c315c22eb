import pytest

from cotdistill.config import load_config
from cotdistill.errors import CotdistillError


def test_dotted_overrides_reach_nested_fields_with_yaml_types(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("data:\n  source: bbh\n  subtasks: [navigate]\neval:\n  batch_size: 4\n")
    cfg = load_config(path, ["eval.batch_size=8", "data.subtasks=[navigate, snarks]", "student.lora.r=16"])
    assert cfg.eval.batch_size == 8
    assert cfg.data.subtasks == ["navigate", "snarks"]
    assert cfg.student.lora.r == 16 and cfg.student.lora.alpha == 16


@pytest.mark.parametrize(
    "text, overrides, message",
    [
        ("eval:\n  batch_size: many\n", [], "field 'eval.batch_size'"),
        ("eval:\n  batchsize: 4\n", [], "field 'eval.batchsize'"),
        ("data: [1, 2\n", [], "invalid YAML"),
        ("", ["eval.batch_size"], "key=value"),
    ],
)
def test_config_errors_name_the_file_and_field(tmp_path, text, overrides, message):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(CotdistillError, match=message) as info:
        load_config(path, overrides)
    assert "bad.yaml" in str(info.value) or "key=value" in str(info.value)


@pytest.mark.parametrize("overrides, suggestion", [
    (["eval.batchsize=4"], "did you mean 'eval.batch_size'?"),
    (["data.limt_per_task=3"], "did you mean 'data.limit_per_task'?"),
    (["study.methods=[{name: edit, parms: {}}]"], "did you mean 'study.methods.0.params'?"),
    (["evall.batch_size=4"], "did you mean 'eval'?"),
    (["Eval=1"], "did you mean 'eval'?"),  # a capitalised unknown key is named too, not mistaken for a union tag
])
def test_a_misspelt_field_gets_the_closest_known_name(overrides, suggestion):
    with pytest.raises(CotdistillError) as info:
        load_config(None, overrides)
    assert str(info.value).endswith(suggestion)


def test_a_field_with_no_close_name_lists_the_known_ones():
    with pytest.raises(CotdistillError, match=r"field 'eval.zzz'.*known: batch_size, max_new_tokens"):
        load_config(None, ["eval.zzz=1"])
