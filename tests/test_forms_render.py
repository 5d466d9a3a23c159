"""The portal draws <input> attributes with its own html_params: the same HTML as WTForms'."""

from __future__ import annotations

import re

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


def every_form():
    """One instance of each SpanishForm that needs no arguments (in a request context)."""
    import importlib
    import pkgutil

    import blueprints
    from blueprints.forms import SpanishForm

    def all_subclasses(cls):
        for sub in cls.__subclasses__():
            yield sub
            yield from all_subclasses(sub)

    for module in pkgutil.walk_packages(blueprints.__path__, "blueprints."):
        importlib.import_module(module.name)
    for form_class in sorted(set(all_subclasses(SpanishForm)), key=lambda c: c.__qualname__):
        try:
            yield form_class()
        except Exception:  # noqa: S112 - a form that needs arguments of its own
            continue


def test_every_field_of_every_form_renders_as_wtforms_renders_it(app):
    """Each field of each SpanishForm, drawn through the form (ours) and by its widget alone."""
    import blueprints.forms as forms_module

    checked = 0
    with app.test_request_context("/", method="GET"):
        for form in every_form():
            for field in form:
                extra = {"class_": "x", "aria_describedby": "a b", "autocomplete": "off"}
                ours = str(field(**extra))
                theirs = str(field.widget(field, **dict(field.render_kw or {}, **extra)))
                assert ours == theirs, (type(form).__name__, field.name)
                checked += 1
    assert checked > 50, checked
    assert forms_module._FAST_WIDGETS  # the fast path was taken


# The Jinja macro templates/_macros/forms.html had before blueprints/forms.field took its place.
OLD_MACRO = """{% macro field(f, help=None, class_='', wrapper_id=None, oob=None, live=False) -%}
{%- set described = [] -%}
{%- if help %}{% set _ = described.append(f.id ~ '-ayuda') %}{% endif -%}
{%- if f.errors %}{% set _ = described.append(f.id ~ '-error') %}{% endif -%}
<div class="field {{ class_ }}{% if f.errors %} has-error{% endif %}"{% if wrapper_id %} id="{{ wrapper_id }}"{% endif %}{% if oob %} hx-swap-oob="{{ oob }}"{% endif %}>
  {{ f.label(class_='req' if f.flags.required else '') }}
  {%- set attrs = dict(kwargs) -%}
  {%- if described %}{% set _ = attrs.update({'aria-describedby': described|join(' ')}) %}{% endif -%}
  {%- if f.errors %}{% set _ = attrs.update({'aria-invalid': 'true'}) %}{% endif %}
  {{ f(**attrs) }}
  {% if help %}<p class="help" id="{{ f.id }}-ayuda">{{ help }}</p>{% endif %}
  {% if f.errors %}<p class="error" id="{{ f.id }}-error"{% if live %} role="alert"{% endif %}>{{ f.errors|join(' ') }}</p>{% endif %}
</div>
{%- endmacro %}
{{ field(f, **args) }}"""

FIELD_ARGS = [
    {},
    {"help": "Escriba <su> número", "class_": "corto", "readonly": True},
    {"help": Markup("<b>negrita</b>"), "wrapper_id": "caja-1", "oob": "outerMorph"},
    {"live": True, "autocomplete": "family-name", "required": True, "class_": 'a"b'},
]


def between_tags(html: str) -> str:
    """The HTML without the blank space between tags (the macro left empty lines)."""
    return re.sub(r">\s+<", "><", html.strip())


def test_the_field_helper_writes_what_the_macro_wrote(app):
    """Every field of every form, with and without errors, with each kind of argument."""
    from blueprints.forms import field

    old = app.jinja_env.from_string(OLD_MACRO)
    with app.test_request_context("/", method="GET"):
        checked = 0
        for form in every_form():
            for f in form:
                for errors in ([], ["Este campo es obligatorio.", "Otro <error> & más."]):
                    f.errors = errors
                    for args in FIELD_ARGS:
                        theirs = between_tags(old.render(f=f, args=args))
                        ours = between_tags(str(field(f, **args)))
                        assert ours == theirs, (type(form).__name__, f.name, args)
                        checked += 1
    assert checked > 1000, checked
