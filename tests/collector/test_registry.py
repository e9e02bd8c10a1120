import pytest

from collector.errors import NotFound, RegistryError
from collector.registry import load_registry, registry_from_dict
from tests.collector.conftest import REGISTRY


def test_example_registry_is_a_province_with_districts_and_communes():
    registry = load_registry(REGISTRY)
    assert registry.unit("10").name == "Tỉnh Lào Cai"
    assert registry.unit("10.085").name == "Huyện Văn Bàn"
    assert registry.unit("10.085.02953").name == "Xã Khánh Yên Hạ"
    assert set(registry.counters_under("10.085")) == {"vb-q1", "vb-q2", "kyh-q1", "ky-q1"}
    assert len(registry.counters_under("10")) == len(registry.counters)
    assert [u.id for u in registry.path("10.085.02953")] == ["10", "10.085", "10.085.02953"]


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"unit": [{"id": "a", "name": "A", "parent": "zz"}]}, "parent 'zz' is not a unit"),
        (
            {"unit": [{"id": "a", "name": "A", "parent": "b"}, {"id": "b", "name": "B", "parent": "a"}]},
            "cycle",
        ),
        ({"unit": [{"id": "a", "name": "A"}, {"id": "a", "name": "A2"}]}, "duplicate unit id 'a'"),
        (
            {"unit": [{"id": "a", "name": "A"}], "counter": [{"id": "c", "unit": "x", "name": "C"}]},
            "unit 'x' is not a unit",
        ),
        (
            {
                "unit": [{"id": "a", "name": "A"}],
                "counter": [{"id": "c", "unit": "a", "name": "C"}],
                "kiosk": [{"id": "k-1", "counter": "nope"}],
            },
            "counter 'nope' is not a counter",
        ),
        ({"unit": [{"id": "a"}]}, "lacks name"),
        ({"unit": [{"id": "a", "name": "A", "colour": "red"}]}, "unknown key"),
        ({"units": []}, "unknown table"),
        ({"unit": [{"id": "a b", "name": "A"}]}, "not valid"),
    ],
)
def test_bad_registry_is_refused_with_the_entry_named(doc, message):
    with pytest.raises(RegistryError, match=message):
        registry_from_dict(doc)


def test_unknown_ids_raise_not_found():
    registry = load_registry(REGISTRY)
    with pytest.raises(NotFound):
        registry.unit("99")
    with pytest.raises(NotFound):
        registry.counter("nope")


def test_a_name_with_a_control_or_bidi_character_is_refused():
    """Names are printed on signed forms: a right-to-left override turned the text after it around."""
    import pytest

    from collector.errors import RegistryError
    from collector.registry import registry_from_dict

    for name in ("Quầy 2 \u202eTư pháp", "Quầy\x01 2"):
        doc = {"unit": [{"id": "10", "name": "Tỉnh", "level": "province"}],
               "counter": [{"id": "q1", "unit": "10", "name": name}]}  # fmt: skip
        with pytest.raises(RegistryError, match="control or formatting character"):
            registry_from_dict(doc, source="t.toml")
