"""A bare Flask app: the floor the portal is compared against in the same run."""

from flask import Flask

app = Flask(__name__)

# About the size of the look-up partial (#datos-afiliado, ~1.3 KB).
_FIELD = """  <div class="field">
  <label for="{0}">{1}</label>
  <input id="{0}" name="{0}" maxlength="60" autocomplete="off" spellcheck="false" readonly required type="text" value="{2}">
</div>
"""
FRAGMENT = (
    '<div id="datos-afiliado" aria-live="polite">\n'
    + _FIELD.format("primer_apellido", "Primer Apellido", "PÉREZ")
    + _FIELD.format("segundo_apellido", "Segundo Apellido", "GÓMEZ")
    + _FIELD.format("primer_nombre", "Primer Nombre", "ANA")
    + _FIELD.format("segundo_nombre", "Segundo Nombre", "MARÍA")
    + _FIELD.format("estado", "Estado (Informativo solo aplica para afiliados)", "ACTIVO")
    + "</div>\n"
)


@app.route("/", methods=["GET", "POST"])
def fragment():
    """Return a fixed HTML fragment, without reading the request body."""
    return FRAGMENT
