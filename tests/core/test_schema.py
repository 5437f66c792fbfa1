import pytest
from pydantic import ValidationError

from outrider.core.schema import ExtractionSchema


def test_plain_names_objects_and_mappings_normalise_to_labels():
    schema = ExtractionSchema.model_validate(
        {
            "entities": ["person", {"name": "company", "description": "a firm", "threshold": 0.7}],
            "relations": {"works_for": "person employed by company"},
            "classifications": [{"task": "tone", "labels": {"pos": "good", "neg": "bad"}, "cls_threshold": 0.3}],
            "structures": {"deal": ["buyer", {"name": "price", "dtype": "str"}]},
        }
    )
    assert schema.entity_names() == ["person", "company"]
    assert schema.entities[1].threshold == 0.7
    assert schema.relations[0].description == "person employed by company"
    assert [label.name for label in schema.classifications[0].labels] == ["pos", "neg"]
    assert schema.classifications[0].threshold == 0.3
    assert [f.name for f in schema.structures["deal"].fields] == ["buyer", "price"]


@pytest.mark.parametrize(
    "bad",
    [
        {},
        {"entities": []},
        {"entities": ["a", "a"]},
        {"entities": [{"name": "a", "threshold": 1.5}]},
        {"classifications": [{"task": "t", "labels": ["only-one"]}]},
        {"structures": {"s": {"fields": []}}},
        {"unknown_section": ["x"]},
        {"entities": 5},
    ],
)
def test_malformed_schemas_are_rejected(bad):
    with pytest.raises(ValidationError):
        ExtractionSchema.model_validate(bad)
