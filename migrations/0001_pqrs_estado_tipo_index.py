"""The PQRSF queue filtered by tipo: an index on (estado, tipo, due_on, id).

Without it, "Cerradas" filtered by one tipo read every closed PQRSF's row to
check its tipo, for the page and again for the count (bench/scale.py: 0.3 s at
100 000 rows on SQLite). The name is the one models.py's Meta.indexes gives.
"""

from playhouse.migrate import SchemaMigrator
from playhouse.migrate import migrate as run


def migrate(db):
    run(SchemaMigrator.from_database(db).add_index("pqrs", ("estado", "tipo", "due_on", "id")))
