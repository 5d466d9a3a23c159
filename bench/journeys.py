"""The pages the browser benches open: one main page per journey, and how to reach it signed in.

bench/lighthouse.py and bench/slow3g.py share these, so both measure the same pages
with the same demo accounts (bench/common.py signs in over HTTP, without a browser).
"""

from __future__ import annotations

import re

from bench.common import (
    Client,
    sign_in_desk,
    sign_in_genesis,
    sign_in_hanna,
    sign_in_ips,
    sign_in_staff,
)

SIGN_INS = {
    "hanna": sign_in_hanna,
    "desk": sign_in_desk,
    "genesis": sign_in_genesis,
    "ips": sign_in_ips,
    "staff": sign_in_staff,
}
GENESIS_REQUEST = "/genesis/solicitud/<id>"  # found at run time: the family member's id


class Accounts:
    """One signed-in HTTP client per demo account, made on first use."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.clients: dict[str, Client] = {}

    def client(self, account: str | None) -> Client:
        if account is None:
            return Client(self.port)
        if account not in self.clients:
            client = Client(self.port)
            SIGN_INS[account](client)
            self.clients[account] = client
        return self.clients[account]

    def path(self, path: str) -> str:
        """Resolve the one path that depends on the data (Génesis' authorization form)."""
        if path == GENESIS_REQUEST:
            return genesis_request_path(self.client("genesis"))
        return path


def genesis_request_path(client: Client) -> str:
    """Walk "Solicitud de Autorizaciones" for a family member, up to the "Nueva solicitud" form.

    The núcleo familiar lists the cotizante first; the member is the next one. Their
    contact data is confirmed ("Mis datos son correctos"), as the form asks first (G3),
    so GET /genesis/solicitud/<id> shows the form instead of redirecting to the contact page.
    """
    nucleo = client.get("/genesis/solicitud")
    members = re.findall(r'href="/genesis/solicitud/(\d+)/contacto"', nucleo.text)
    if nucleo.status != 200 or len(members) < 2:
        raise RuntimeError(f"the demo Génesis account shows no family member ({nucleo.status})")
    member = members[1]
    client.submit(f"/genesis/solicitud/{member}/contacto", {})
    path = f"/genesis/solicitud/{member}"
    form = client.get(path)
    if form.status != 200 or "Nueva solicitud" not in form.text:
        raise RuntimeError(f"GET {path} gave {form.status} without the request form")
    return path


def still_signed_in(client: Client, path: str) -> bool:
    """Tell whether the client's session still opens path (a signed-out one is redirected)."""
    return client.get(path).status == 200


def print_table(table: list[list[str]], text_columns: int = 2) -> None:
    """Print rows of strings as aligned columns: the first text_columns left, numbers right."""
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    for n, row in enumerate(table):
        cells = [
            cell.ljust(width) if i < text_columns else cell.rjust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=True))
        ]
        print("  ".join(cells).rstrip())
        if n == 0:
            print("  ".join("-" * width for width in widths))
