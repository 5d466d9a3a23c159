"""The portal draws <input> attributes with its own html_params: the same HTML as WTForms'."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from markupsafe import Markup
from wtforms.widgets.core import html_params as wtforms_html_params

from blueprints.forms import html_params

keys = st.sampled_from(
    ["id", "name", "value", "class_", "for_", "data_x_y", "aria_describedby", "required",
     "maxlength", "autocomplete", "hx-post", "placeholder"]
)  # fmt: skip
values = st.one_of(
    st.booleans(),
    st.none(),
    st.integers(),
    st.text(),
    st.text().map(Markup),
    st.sampled_from(['a"b', "<script>", "&amp;", "'", 'x" onmouseover="y']),
)


@settings(deadline=None, database=None, suppress_health_check=list(HealthCheck))  # CI is busy
@given(st.dictionaries(keys, values, max_size=8))
def test_html_params_writes_what_wtforms_writes(kwargs):
    ours = html_params(**kwargs)
    assert isinstance(ours, Markup)
    assert str(ours) == str(wtforms_html_params(**kwargs))


def test_every_field_of_every_form_renders_as_wtforms_renders_it(app):
    """Each field of each SpanishForm, drawn through the form (ours) and by its widget alone."""
    import blueprints.forms as forms_module
    from blueprints import forms  # noqa: F401 - the forms register as subclasses on import
    from blueprints.forms import SpanishForm

    def all_subclasses(cls):
        for sub in cls.__subclasses__():
            yield sub
            yield from all_subclasses(sub)

    import importlib
    import pkgutil

    import blueprints

    for module in pkgutil.walk_packages(blueprints.__path__, "blueprints."):
        importlib.import_module(module.name)
    checked = 0
    with app.test_request_context("/", method="GET"):
        for form_class in set(all_subclasses(SpanishForm)):
            try:
                form = form_class(meta={"csrf": False})
            except Exception:  # noqa: S112 - a form that needs arguments of its own
                continue
            for field in form:
                extra = {"class_": "x", "aria_describedby": "a b", "autocomplete": "off"}
                ours = str(field(**extra))
                theirs = str(field.widget(field, **dict(field.render_kw or {}, **extra)))
                assert ours == theirs, (form_class.__name__, field.name)
                checked += 1
    assert checked > 50, checked
    assert forms_module._FAST_WIDGETS  # the fast path was taken
