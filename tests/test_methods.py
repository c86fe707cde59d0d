import pytest

from siamkit.methods import METHODS, methods_table, resolve_method

REQUIRED = {
    "simsiam",
    "simsiam-kaug",
    "ensiam",
    "byol",
    "byol-ensemble",
    "simsiam-gsg",
    "simsiam-gsg-random",
    "simsiam-gsg-reverse",
    "byol-gsg",
    "byol-gsg-random",
    "byol-gsg-reverse",
}


def test_registry_holds_the_required_methods():
    assert set(METHODS) >= REQUIRED


def test_views_drawn():
    assert resolve_method("simsiam").views_drawn == 2
    assert resolve_method("ensiam").views_drawn == 4
    assert resolve_method("simsiam-gsg").views_drawn == 4  # two own + two of the partner
    assert resolve_method("simsiam-gsg", shared_views=True).views_drawn == 2
    assert resolve_method("simsiam-kaug", views=8).views_drawn == 8


@pytest.mark.parametrize("name", sorted(METHODS))
def test_every_method_has_a_predictor_free_variant(name):
    spec = resolve_method(name, predictor=False)
    assert not spec.predictor
    assert spec.label.endswith("(no predictor)")


@pytest.mark.parametrize(
    ("name", "overrides", "message"),
    [
        ("simsiam-gsg", {"views": 4}, "views must be 2"),
        ("simsiam", {"views": 1}, "views must be an integer >= 2"),
        ("simsiam", {"shared_views": True}, "shared_views applies only"),
        ("simsiam", {"gsg_mode": "random"}, "gsg_mode='random' applies only"),
        ("byol", {"leave_one_out": True}, "leave_one_out applies only"),
        ("byol", {"tau": 1.2}, r"tau must lie in \[0, 1\]"),
        ("byol", {"tau_schedule": "linear"}, "constant, cosine"),
        ("simsiam-gsg", {"gsg_mode": "closest"}, "guided, random, reverse"),
        ("simsiam", {"colour": 3}, "unknown method option"),
        ("simclr", {}, "unknown method 'simclr'; choose one of simsiam"),
    ],
)
def test_invalid_combinations_are_rejected_with_a_clear_message(name, overrides, message):
    with pytest.raises(ValueError, match=message):
        resolve_method(name, **overrides)


def test_none_overrides_are_ignored_and_labels_name_changes():
    assert resolve_method("ensiam", views=None) == METHODS["ensiam"]
    assert resolve_method("ensiam", leave_one_out=True).label == "ensiam (leave_one_out=True)"
    assert resolve_method("byol").label == "byol"


def test_methods_table_lists_every_method():
    table = methods_table()
    for name in METHODS:
        assert f"\n{name} " in table
    assert "GSG reverse" in table and "momentum" in table
