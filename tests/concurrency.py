"""Run calls at the same moment in threads: how the attack tests race a form or a click."""

from __future__ import annotations

import threading

import models


def run_at_once(calls, timeout: float = 90) -> list:
    """Run the callables in threads released together; return what each returned (or raised)."""
    barrier, results = threading.Barrier(len(calls), timeout=30), [None] * len(calls)
    models.db.close()

    def run(i, call):
        try:
            barrier.wait()
            results[i] = call()
        except Exception as exc:  # reported by the caller's asserts
            results[i] = exc
        finally:
            models.db.close()

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=timeout)
    models.db.connect(reuse_if_open=True)
    return results
