"""Bench the Génesis uploads: a 15 MB PDF stored, two phone photos joined into one PDF.

Run from the project root:  .venv/bin/python bench/genesis_upload.py [--help]

Builds, in a temporary directory, a valid PDF of exactly 15 MB (the largest
core.uploads.AUTHORIZATION accepts: a page and one stream of random bytes, as
a scanned order is mostly compressed data) and two 12-megapixel JPEGs (4000 x
3000, noisy like a phone photo, 4-5 MB each, one with EXIF orientation 6).
Then, each case in a fresh Python process so that its memory is its own, and
each case --repeats times (the median is printed):

1. core.uploads.store() of the PDF from a file on disk, into a temporary
   UPLOAD_DIR; next to it a plain copy of the same bytes (64 KB chunks, fsync),
   the floor store() is compared with;
2. the same PDF over HTTP, a fresh gunicorn per repeat serving a minimal Flask
   app defined here (``server_app()``): multipart into request.files into
   store(), the raw body from request.stream into store(), and a bare route
   that reads the same multipart body and throws it away;
3. core.uploads.images_to_pdf() of the two photos: time, memory, PDF size.

Memory is read three ways: the kernel's RSS high-water mark reset through
/proc/self/clear_refs just before the work (peak +MB), the growth of
ru_maxrss across it (maxrss +MB; a high-water mark, hence the fresh process),
and tracemalloc's peak of Python allocations in a second, traced run (Pillow's
pixel buffers are not Python allocations: only RSS sees them). Every result is
checked (size and SHA-256 of the stored file, pages of the joined PDF) before
its figures are printed. See bench/README.md.
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import json
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import free_port, gunicorn, stop, wait_until_up  # noqa: E402
from bench.convenios_report import _status_kib, max_rss_kib, reset_peak_rss  # noqa: E402

MB = 1024 * 1024
PDF_NAME = "orden_medica.pdf"
PHOTO_SIZE = (4000, 3000)  # 12 megapixels, a phone's main camera
SEED = 2026  # the same bytes every run
BOUNDARY = "----hannabench7MA4YWxkTrZu0gW"
DIRECT = {
    "store": "store() 15 MB PDF, AUTHORIZATION",
    "copy": "copy, 64 KB chunks + fsync (floor)",
    "join": "images_to_pdf(), 2 photos 12 MP",
}
ROUTES = {
    "/files": "multipart -> request.files -> store()",
    "/stream": "raw body -> request.stream -> store()",
    "/discard": "bare: multipart body read, discarded",
}


# --- inputs --------------------------------------------------------------------------


def build_pdf(path: Path, total: int, rng: random.Random) -> None:
    """Write a valid one-page PDF of exactly total bytes, padded by one random stream.

    The random bytes stand for a scan's compressed image. Now and then random
    bytes spell an active-content name (/JS plus a delimiter: about one 15 MB
    buffer in twenty); those places get another byte, so that the PDF passes
    the active-content scan like a clean scan does.
    """
    from core.uploads import _PDF_ACTIVE

    def pdf(filler: int) -> list[bytes]:
        objects = [
            b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R "
            b"/Resources << >> >>",
            b"<< /Length 24 >>\nstream\n0.9 g 72 72 451 698 re f\nendstream",
            b"<< /Length %d >>\nstream\n" % filler,  # the random bytes go right after
        ]
        parts, offsets = [b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n"], []  # binary comment: 8-bit file
        at = len(parts[0])
        for number, body in enumerate(objects, 1):
            offsets.append(at)
            piece = b"%d 0 obj\n%s" % (number, body)
            if number < len(objects):
                piece += b"\nendobj\n"
            parts.append(piece)
            at += len(piece)
        at += filler
        tail = b"\nendstream\nendobj\n"
        xref = at + len(tail)
        tail += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
        tail += b"".join(b"%010d 00000 n \n" % o for o in offsets)
        tail += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
            len(objects) + 1,
            xref,
        )
        return [b"".join(parts), tail]

    filler = total
    for _ in range(3):  # the /Length and offset digits depend on the filler's size
        head, tail = pdf(filler)
        filler = total - len(head) - len(tail)
    head, tail = pdf(filler)
    data = bytearray(rng.randbytes(filler))
    while match := _PDF_ACTIVE.search(data):
        data[match.start()] = 0x2E  # "/JS " becomes ".JS "
    with open(path, "wb") as f:
        f.write(head)
        f.write(data)
        f.write(tail)
    if path.stat().st_size != total:
        sys.exit(f"built a PDF of {path.stat().st_size} bytes instead of {total}")


def build_photo(path: Path, size: tuple[int, int], orientation: int, rng: random.Random) -> None:
    """Write a phone-like JPEG: smooth colour areas plus sensor noise, EXIF orientation."""
    from PIL import Image, ImageChops

    small = (max(1, size[0] // 50), max(1, size[1] // 50))
    scene = Image.frombytes("RGB", small, rng.randbytes(small[0] * small[1] * 3))
    scene = scene.resize(size, Image.Resampling.BICUBIC)
    noise = Image.effect_noise(size, 8)  # grey, around 128
    photo = ImageChops.add(scene, Image.merge("RGB", (noise, noise, noise)), offset=-128)
    exif = Image.Exif()
    exif[0x010F] = "Bench"  # Make
    exif[0x0112] = orientation  # 6: the phone was held upright, the pixels lie on their side
    photo.save(path, "JPEG", quality=90, exif=exif.tobytes())


def make_inputs(tmp: Path) -> dict:
    """Build the PDF and photos (and small ones for the warm-up); check the PDF passes sniff()."""
    from core import uploads

    rng = random.Random(SEED)
    inputs = tmp / "inputs"
    inputs.mkdir()
    paths = {
        "pdf": inputs / PDF_NAME,
        "small_pdf": inputs / "pequeno.pdf",
        "photos": [inputs / "foto1.jpg", inputs / "foto2.jpg"],
        "small_photos": [inputs / "mini1.jpg", inputs / "mini2.jpg"],
    }
    build_pdf(paths["pdf"], uploads.AUTHORIZATION.max_bytes, rng)
    build_pdf(paths["small_pdf"], 2048, rng)
    for photo, orientation in zip(paths["photos"], (1, 6), strict=True):
        build_photo(photo, PHOTO_SIZE, orientation, rng)
    for photo, orientation in zip(paths["small_photos"], (1, 6), strict=True):
        build_photo(photo, (400, 300), orientation, rng)
    for key in ("pdf", "small_pdf"):
        with open(paths[key], "rb") as f:
            head = f.read(uploads.HEAD)
        if uploads.sniff(head, paths[key]) is not uploads.Kind.PDF:
            sys.exit(f"{paths[key]} is not a PDF to core.uploads.sniff()")
    return {k: [str(p) for p in v] if isinstance(v, list) else str(v) for k, v in paths.items()}


def sha256_of(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(MB):
            digest.update(block)
    return digest.hexdigest()


# --- the work, measured inside one process ---------------------------------------------


def measured(work, trace: bool) -> dict:
    """Run work() once: seconds and peak memory; with trace, tracemalloc's peak instead."""
    import tracemalloc

    rss_before = reset_peak_rss()
    maxrss_before = max_rss_kib()
    if trace:
        tracemalloc.start()
    start = time.perf_counter()
    result = work()
    seconds = time.perf_counter() - start
    figures = {
        "seconds": seconds,
        "rss_before_kib": rss_before,
        "peak_kib": _status_kib("VmHWM") if rss_before is not None else None,
        "maxrss_grown_kib": max_rss_kib() - maxrss_before,
        "result": result,
    }
    if trace:
        figures["traced_peak"] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return figures


def copy_file(source: str, target: Path) -> dict:
    """The floor under store(): the same bytes read and written in 64 KB chunks, fsynced."""
    size = 0
    with open(source, "rb") as src, open(target, "wb") as out:
        while chunk := src.read(64 * 1024):
            out.write(chunk)
            size += len(chunk)
        out.flush()
        os.fsync(out.fileno())
    return {"size": size}


def child(args) -> int:
    """Warm up on a small input, then run one case timed and once traced; print JSON."""
    from core import uploads

    if args.child == "inputs":  # here, so that the parent's memory stays small
        print(json.dumps(make_inputs(Path(args.tmp))))
        return 0
    inputs = json.loads(args.inputs)
    upload_dir = Path(args.tmp) / f"uploads-{os.getpid()}"

    def store(path: str):
        def work():
            with open(path, "rb") as f:
                stored = uploads.store(f, PDF_NAME, uploads.AUTHORIZATION, upload_dir)
            return {"size": stored.size, "sha256": stored.sha256, "kind": stored.kind.value}

        return work

    def copy(path: str):
        def work():
            upload_dir.mkdir(parents=True, exist_ok=True)
            return copy_file(path, upload_dir / f"copy-{time.perf_counter_ns()}")

        return work

    def join(paths: list[str]):
        def work():
            pdf = uploads.images_to_pdf(paths)
            out = upload_dir / f"joined-{time.perf_counter_ns()}.pdf"
            upload_dir.mkdir(parents=True, exist_ok=True)
            out.write_bytes(pdf)
            return {"size": len(pdf), "path": str(out)}

        return work

    if args.child == "join":
        import img2pdf  # noqa: F401 - what a running server has imported already
        from PIL import Image, ImageOps  # noqa: F401

        small, big = join(inputs["small_photos"]), join(inputs["photos"])
    else:
        make = store if args.child == "store" else copy
        small, big = make(inputs["small_pdf"]), make(inputs["pdf"])
    small()  # imports, regexes, the first mkdir: not the figure
    timed = measured(big, trace=False)
    traced = measured(big, trace=True)
    timed["traced_peak"] = traced["traced_peak"]
    if args.child == "join":  # checked here, after the figures: pikepdf stays out of them
        import pikepdf  # img2pdf's own dependency

        path = timed["result"]["path"]
        with pikepdf.open(path) as document:
            timed["result"]["pages"] = len(document.pages)
        with open(path, "rb") as f:
            timed["result"]["kind"] = uploads.sniff(f.read(uploads.HEAD), path)
    print(json.dumps(timed))
    return 0


def run_child(case: str, tmp: Path, inputs: dict | None = None) -> dict:
    cmd = [sys.executable, __file__, "--child", case, "--tmp", str(tmp)]
    cmd += ["--inputs", json.dumps(inputs)] if inputs else []
    # preexec_fn makes subprocess fork() instead of vfork(): with vfork the child's
    # ru_maxrss starts at this process's own high-water mark (Linux keeps it across
    # exec), and the growth across the work would read 0.
    done = subprocess.run(
        cmd, cwd=ROOT, capture_output=True, text=True, check=False, preexec_fn=lambda: None
    )
    if done.returncode:
        what = DIRECT.get(case, "building the inputs")
        sys.exit(f"{what} failed:\n{done.stdout[-2000:]}{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def check_direct(case: str, figures: dict, inputs: dict) -> str:
    """Check one case's result; return what it produced, for the table."""
    result = figures["result"]
    if case == "join":
        if result["pages"] != 2 or result["kind"] != "pdf":
            sys.exit(f"images_to_pdf() gave {result['pages']} pages, kind {result['kind']}")
        return f"PDF {result['size'] / MB:.2f} MB, 2 pages"
    expected = Path(inputs["pdf"]).stat().st_size
    if result["size"] != expected:
        sys.exit(f"{DIRECT[case]}: {result['size']} bytes instead of {expected}")
    if case == "store" and (result["kind"] != "pdf" or result["sha256"] != inputs["sha256"]):
        sys.exit(f"store() kept {result['kind']} with another SHA-256")
    return f"{result['size'] / MB:.1f} MB " + ("stored" if case == "store" else "copied")


# --- the same over HTTP ------------------------------------------------------------------


def server_app():
    """The minimal app gunicorn serves: three POST routes measuring themselves.

    Each answers JSON with its own figures (seconds in the view, RSS peak with
    the mark reset at the view's start, ru_maxrss growth; with ?trace=1
    tracemalloc's peak). The body is read inside the view (request.files
    parses the multipart on first use), so the figures cover reading it.
    """
    from flask import Flask, jsonify, request

    from core import uploads

    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = 16 * MB  # as app.py sets it
    upload_dir = Path(os.environ["BENCH_UPLOAD_DIR"])

    def respond(work):
        try:
            figures = measured(work, trace=request.args.get("trace") == "1")
        except uploads.UploadError as refused:
            return jsonify(error=refused.code, message=refused.message), 422
        return jsonify(figures)

    def stored_figures(stored: uploads.Stored) -> dict:
        return {"size": stored.size, "sha256": stored.sha256, "kind": stored.kind.value}

    @app.get("/ping")
    def ping():
        return "ok"

    @app.post("/files")
    def files():
        def work():
            f = request.files["archivo"]
            return stored_figures(
                uploads.store(f.stream, f.filename, uploads.AUTHORIZATION, upload_dir)
            )

        return respond(work)

    @app.post("/stream")
    def stream():
        def work():
            name = request.args.get("nombre", "")
            return stored_figures(
                uploads.store(request.stream, name, uploads.AUTHORIZATION, upload_dir)
            )

        return respond(work)

    @app.post("/discard")
    def discard():
        def work():
            size = 0
            while chunk := request.stream.read(64 * 1024):
                size += len(chunk)
            return {"size": size}

        return respond(work)

    return app


def multipart(name: str, data: bytes) -> bytes:
    return b"".join(
        [
            f"--{BOUNDARY}\r\n".encode(),
            f'Content-Disposition: form-data; name="archivo"; filename="{name}"\r\n'.encode(),
            b"Content-Type: application/pdf\r\n\r\n",
            data,
            f"\r\n--{BOUNDARY}--\r\n".encode(),
        ]
    )


def post(port: int, path: str, body: bytes, content_type: str) -> tuple[float, int, dict]:
    """POST body; return client seconds (send to last byte), status, the JSON answer."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    start = time.perf_counter()
    conn.request("POST", path, body, {"Content-Type": content_type})
    response = conn.getresponse()
    data = response.read()
    seconds = time.perf_counter() - start
    conn.close()
    try:
        answer = json.loads(data)
    except ValueError:
        answer = {"error": data[:300].decode(errors="replace")}
    return seconds, response.status, answer


def http_repeat(route: str, tmp: Path, inputs: dict, bodies: dict) -> dict:
    """One fresh gunicorn (-w 1): warm up with the small PDF, one timed POST, one traced."""
    port = free_port()
    log = tmp / "gunicorn.log"
    env = dict(os.environ, BENCH_UPLOAD_DIR=str(tmp / "http-uploads"))
    proc = gunicorn("bench.genesis_upload:server_app()", port, env, log, workers=1)
    try:
        wait_until_up(port, "/ping", proc, log)
        figures = {}
        for which, query in (("small", ""), ("big", ""), ("big", "&trace=1")):
            body, content_type = bodies[route, which]
            url = f"{route}?nombre={PDF_NAME}{query}"
            seconds, status, answer = post(port, url, body, content_type)
            if status != 200:
                sys.exit(f"POST {route}: HTTP {status} {answer}\n{log.read_text()[-2000:]}")
            if which == "small":
                continue
            expected = len(body) if route == "/discard" else len(bodies["pdf"])
            result = answer["result"]
            if result["size"] != expected or (
                route != "/discard" and result["sha256"] != inputs["sha256"]
            ):
                sys.exit(f"POST {route}: the server got {result['size']} bytes, not {expected}")
            if query:
                figures["traced_peak"] = answer["traced_peak"]
            else:
                figures.update(answer, client_seconds=seconds)
        return figures
    finally:
        stop(proc)
        shutil.rmtree(tmp / "http-uploads", ignore_errors=True)


# --- the tables --------------------------------------------------------------------------


def median(runs: list[dict], key: str) -> float | None:
    values = [r[key] for r in runs if r.get(key) is not None]
    return statistics.median(values) if values else None


def memory_cells(runs: list[dict]) -> str:
    peaks = [
        r["peak_kib"] - r["rss_before_kib"] for r in runs if r.get("rss_before_kib") is not None
    ]
    peak = f"{statistics.median(peaks) / 1024:.1f}" if peaks else "n/a"
    maxrss = median(runs, "maxrss_grown_kib") / 1024
    traced = median(runs, "traced_peak") / MB
    return f"{peak:>8} {maxrss:>10.1f} {traced:>9.2f}"


def peak_above(runs: list[dict]) -> float | None:
    """Median MB the work took the resident memory above where it was (None if unknown)."""
    peaks = [
        r["peak_kib"] - r["rss_before_kib"] for r in runs if r.get("rss_before_kib") is not None
    ]
    return round(statistics.median(peaks) / 1024, 1) if peaks else None


def spread(runs: list[dict], key: str) -> str:
    values = [r[key] for r in runs]
    return f"{min(values) * 1000:.0f}-{max(values) * 1000:.0f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="runs per case (median printed)")
    parser.add_argument("--json", help="write the figures here for bench/run.py")
    parser.add_argument("--child", choices=[*DIRECT, "inputs"], help=argparse.SUPPRESS)
    parser.add_argument("--tmp", help=argparse.SUPPRESS)
    parser.add_argument("--inputs", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args)
    args.repeats = max(1, min(args.repeats, 15))

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run the finally below
    tmp = Path(tempfile.mkdtemp(prefix="hanna-bench-genesis-"))
    try:
        began = time.perf_counter()
        inputs = run_child("inputs", tmp)
        inputs["sha256"] = sha256_of(inputs["pdf"])
        photos = [Path(p).stat().st_size / MB for p in inputs["photos"]]
        print(
            f"Portal Hanna Génesis upload bench  ·  {time.strftime('%Y-%m-%d %H:%M')}  ·  "
            f"Python {sys.version.split()[0]}  ·  {os.cpu_count()} cores, load average "
            f"{os.getloadavg()[0]:.2f}  ·  median of {args.repeats}"
        )
        print(
            f"inputs: a valid PDF of {Path(inputs['pdf']).stat().st_size:,} bytes (15 MB, "
            f"the AUTHORIZATION cap), two JPEGs {PHOTO_SIZE[0]}x{PHOTO_SIZE[1]} of "
            f"{photos[0]:.1f} and {photos[1]:.1f} MB (EXIF orientation 1 and 6); "
            f"built in {time.perf_counter() - began:.1f} s"
        )

        print("\nIn one process (a fresh one per run; each first warmed up on a small input)")
        print(
            f"  {'case':<38} {'ms':>6} {'ms min-max':>11} {'peak +MB':>8} {'maxrss +MB':>10} "
            f"{'traced MB':>9}  result"
        )
        direct = {}
        for case, label in DIRECT.items():
            runs = [run_child(case, tmp, inputs) for _ in range(args.repeats)]
            made = [check_direct(case, r, inputs) for r in runs][0]
            direct[case] = runs
            print(
                f"  {label:<38} {median(runs, 'seconds') * 1000:>6.0f} {spread(runs, 'seconds'):>11} "
                f"{memory_cells(runs)}  {made}"
            )
            for leftover in tmp.glob("uploads-*"):
                shutil.rmtree(leftover, ignore_errors=True)
        store_s, copy_s = median(direct["store"], "seconds"), median(direct["copy"], "seconds")
        from bench.common import Figures

        figures = Figures(args.json)
        section = "15 MB upload (median of runs)"
        for case, label in DIRECT.items():
            runs = direct[case]
            figures.add(section, f"{label}: time", round(median(runs, "seconds") * 1000), "ms")
            figures.add(section, f"{label}: peak memory above start", peak_above(runs), "MB")
        print(f"  {'ratio store() / copy':<38} {store_s / copy_s:>6.1f}")

        pdf = Path(inputs["pdf"]).read_bytes()
        small = Path(inputs["small_pdf"]).read_bytes()
        form = f"multipart/form-data; boundary={BOUNDARY}"
        bodies = {
            "pdf": pdf,
            ("/files", "small"): (multipart(PDF_NAME, small), form),
            ("/files", "big"): (multipart(PDF_NAME, pdf), form),
            ("/stream", "small"): (small, "application/pdf"),
            ("/stream", "big"): (pdf, "application/pdf"),
            ("/discard", "small"): (multipart(PDF_NAME, small), form),
            ("/discard", "big"): (multipart(PDF_NAME, pdf), form),
        }
        del pdf
        print(
            f"\nOver HTTP: {len(bodies['/files', 'big'][0]):,} bytes POSTed on loopback to a "
            "fresh gunicorn -w 1 (sync) per run; server's figures, warmed up on a small PDF"
        )
        print(
            f"  {'route':<38} {'client ms':>9} {'view ms':>7} {'peak +MB':>8} {'maxrss +MB':>10} "
            f"{'traced MB':>9}"
        )
        over_http = {}
        for route, label in ROUTES.items():
            runs = [http_repeat(route, tmp, inputs, bodies) for _ in range(args.repeats)]
            over_http[route] = runs
            print(
                f"  {label:<38} {median(runs, 'client_seconds') * 1000:>9.0f} "
                f"{median(runs, 'seconds') * 1000:>7.0f} {memory_cells(runs)}"
            )
        bare = median(over_http["/discard"], "client_seconds")
        for route in ("/files", "/stream"):
            ratio = median(over_http[route], "client_seconds") / bare
            print(f"  {'ratio ' + route + ' / bare (client ms)':<38} {ratio:>9.1f}")
        for route, label in ROUTES.items():
            runs = over_http[route]
            ms = round(median(runs, "client_seconds") * 1000)
            figures.add(section, f"HTTP {label}: time", ms, "ms")
            figures.add(section, f"HTTP {label}: server peak above start", peak_above(runs), "MB")
        figures.write()

        print(
            "\n  peak +MB: how far the work took the resident memory above where it was (kernel"
            "\n  high-water mark, reset first; it counts the pages of the PDF that store()'s scan"
            "\n  maps, which are page cache, not the process's own); maxrss +MB: growth of"
            "\n  ru_maxrss; traced MB: tracemalloc's peak of Python allocations, in a second run."
            f"\n  Whole run: {time.perf_counter() - began:.0f} s."
        )
        return 0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
