"""Form pieces every area shares: Spanish messages, e-mail and dd/mm/aaaa fields,
and the validator that stores a normalised value."""

from __future__ import annotations

import copy

import email_validator
from flask import current_app, request
from flask_wtf import FlaskForm
from flask_wtf.form import SUBMIT_METHODS, _Auto
from markupsafe import Markup, escape
from wtforms import StringField
from wtforms.validators import DataRequired, Length, ValidationError
from wtforms.widgets import Input
from wtforms.widgets.core import clean_key

from core import colombia

REQUIRED = "Este campo es obligatorio."


def normalized(normalize):
    """Build a validator that stores the normalized value or shows its error."""

    def check(_form, field) -> None:
        if not field.data:
            return
        try:
            field.data = normalize(field.data)
        except ValueError as exc:
            raise ValidationError(str(exc)) from exc

    return check


def _test_domains_allowed() -> bool:
    """Tell whether reserved test addresses (@….test) are welcome: where the dev mailbox is."""
    from app import dev_mailbox_allowed  # the app module imports this one

    return dev_mailbox_allowed(current_app)


def _email(message: str):
    """Build WTForms' Email check (no DNS look-up), allowing .test on a development machine."""

    def check(_form, field) -> None:
        try:
            email_validator.validate_email(
                field.data or "",
                check_deliverability=False,
                test_environment=_test_domains_allowed(),
            )
        except email_validator.EmailNotValidError as exc:
            raise ValidationError(message) from exc

    return check


def email_field(label: str) -> StringField:
    """An e-mail input with the portal's Spanish message (no DNS look-up)."""
    return StringField(
        label,
        validators=[
            DataRequired(REQUIRED),
            Length(max=254),
            _email("Escriba un correo electrónico válido, como nombre@correo.com."),
        ],
    )


def html_params(**kwargs) -> Markup:
    """WTForms' html_params, the same text, without a str.format per attribute.

    WTForms builds each attribute with Markup.format, whose escaping formatter
    is pure Python: a quarter of the registration look-up's time went there
    (bench/throughput.py, profiled). tests/test_forms_render.py holds the two equal.
    """
    params = []
    for key, value in sorted(kwargs.items()):
        key = clean_key(key)
        if value is True:
            params.append(escape(key))
        elif value is not False:
            params.append(f'{escape(key)}="{str(escape(value)).replace(chr(34), "&quot;")}"')
    return Markup(" ".join(params))  # noqa: S704 - each part escaped above


def field(f, help=None, class_="", wrapper_id=None, oob=None, live=False, **kwargs) -> Markup:
    """One way to draw a field: label, input, help and error, wired for screen readers.

    The templates' ``field`` (a Jinja global, app.py): wrapper_id names the
    field's box, so a partial can swap it out of band (oob: the swap style); live
    announces the error when it appears (a field outside the swap that changed);
    the other keywords are the input's attributes. Written here rather than as a
    Jinja macro, whose call and WTForms' label took half the registration
    look-up's time (bench/throughput.py, profiled); tests/test_forms_render.py
    holds it to the macro it replaced.
    """
    fid = escape(f.id)
    errors = f.errors
    described = []
    if help:
        described.append(f"{fid}-ayuda")
    if errors:
        described.append(f"{fid}-error")
        kwargs["aria-invalid"] = "true"
    if described:
        kwargs["aria-describedby"] = " ".join(described)
    label_class = "req" if f.flags.required else ""
    parts = [
        f'<div class="field {escape(class_)}{" has-error" if errors else ""}"',
        f' id="{escape(wrapper_id)}"' if wrapper_id else "",
        f' hx-swap-oob="{escape(oob)}"' if oob else "",
        f">\n  <label {html_params(class_=label_class, for_=f.label.field_id)}>",
        f"{escape(f.label.text)}</label>\n  ",
        str(f(**kwargs)),
        "\n",
    ]
    if help:
        parts.append(f'  <p class="help" id="{fid}-ayuda">{escape(help)}</p>\n')
    if errors:
        alert = ' role="alert"' if live else ""
        parts.append(f'  <p class="error" id="{fid}-error"{alert}>{Markup(" ").join(errors)}</p>\n')
    parts.append("</div>")
    return Markup("".join(parts))  # noqa: S704 - every value escaped above


_FAST_WIDGETS: dict[int, Input] = {}


def _fast(widget):
    """A copy of an <input> widget that writes its attributes with html_params above."""
    if not isinstance(widget, Input) or "html_params" in vars(type(widget)):
        return widget  # a widget with its own html_params keeps it
    fast = _FAST_WIDGETS.get(id(widget))
    if fast is None:
        fast = copy.copy(widget)  # the shared widget stays as WTForms made it
        fast.html_params = html_params
        _FAST_WIDGETS[id(widget)] = fast
        fast._original = widget  # keeps id(widget) from being reused while cached
    return fast


class SpanishForm(FlaskForm):
    """A form whose built-in messages (choices, lengths) are WTForms' Spanish ones."""

    class Meta:
        locales = ("es",)
        # No CSRF field per form: MaskedCSRFProtect (blueprints/csrf_mask.py) checks every
        # POST before its view, and the templates write the token with csrf_token().
        csrf = False

        def render_field(self, field, render_kw):
            other = getattr(field, "render_kw", None)
            if other is not None:
                render_kw = dict(other, **render_kw)
            return _fast(field.widget)(field, **render_kw)

        def wrap_formdata(self, form, formdata):
            # Only the text parts of an HTML form: Flask-WTF would also pour file
            # parts and JSON values into text fields, where validators meet a
            # FileStorage or a list and fail with a 500. No form here takes files.
            if formdata is not _Auto:
                return formdata
            if request.method in SUBMIT_METHODS and request.form:
                return request.form
            return None


class DateText(StringField):
    """A dd/mm/aaaa text input whose parsed value is a date."""

    def _value(self) -> str:
        if self.data and not isinstance(self.data, str):
            return colombia.format_date(self.data)
        return super()._value()
