"""The explorers as one web app for a projector: ``python -m elslib explorers [--port N] [--fast]``.

Every explorer of :mod:`elslib.course.widgets` on its own tab, no code on the page. The server is
`Voilà <https://voila.readthedocs.io>`_: it runs a notebook in a kernel and serves only its
outputs, widgets live. Voilà is chosen because it is the maintained Jupyter server made for
exactly this (a notebook of ipywidgets as an app), it speaks the same widget protocol as
JupyterLab (so the explorers need no change), and it serves its own JavaScript and CSS: the app
works with no network at all. It listens on 127.0.0.1 only.

How it runs:

- at start, a notebook with one cell (``from elslib.course.app import tabs; tabs()``) and a
  kernel spec for this Python are written to a new temporary folder, never into the installed
  package, and removed when the app stops;
- Voilà runs that notebook in a child process; :func:`serve` waits until it answers, prints the
  URL, and on Ctrl-C stops it (SIGINT, then terminate, then kill) and cleans up;
- :func:`tabs` builds the ipywidgets Tab. Only the first explorer is built while the page loads;
  each other one is built the first time its tab is opened (a few seconds, said on the tab), so
  the app is up in seconds and the projector never waits for explorers nobody looks at.

Sizes are small on purpose (a few hundred training images, 20 DDIM steps; fewer in fast mode,
``ELS_FAST=1`` or ``--fast``): each control answers in about a second on a laptop CPU.
"""

from __future__ import annotations

import html
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

DEFAULT_PORT = 8866  # Voilà's own default
HOST = "127.0.0.1"  # never another interface: a classroom projector needs no open port
KERNEL = "elslib-explorers"  # the kernel spec the generated notebook asks for (this Python)

# (tab title, explorer class in elslib.course.widgets), in course order.
TABS = [
    ("01 Noise", "NoiseExplorer"),
    ("02 Reverse process", "ReverseProcessPlayer"),
    ("05 Locality", "LocalityProbe"),
    ("07 Machines", "MachineComparer"),
    ("07 Mosaic", "MosaicInspector"),
    ("07 Patch scales", "ScaleScheduleEditor"),
    ("09 Copying", "CopyingExplorer"),
    ("12 Prompt", "PromptExplorer"),
]


def settings(fast: bool) -> dict[str, dict]:
    """Constructor arguments of each explorer in the app: small and quick, smaller in fast mode.

    Full: 300 training images (MNIST, 32 x 32), 20 DDIM steps; fast: 60 images, 8 steps.
    """
    n, steps = (60, 8) if fast else (300, 20)
    counts = (30, 60) if fast else (100, 200, 300)
    return {
        "NoiseExplorer": {"n_images": n},
        "ReverseProcessPlayer": {"steps": steps},
        "LocalityProbe": {"n_images": n},
        "MachineComparer": {"n_images": n, "steps": steps, "image_counts": counts},
        "MosaicInspector": {"n_images": n, "steps": steps},
        "ScaleScheduleEditor": {"n_images": n, "steps": steps},
        "CopyingExplorer": {},  # reads the stored grid: nothing to make smaller
        "PromptExplorer": {"steps": steps},  # the shipped text-to-image pipeline: about 0.1 s a draw
    }


def tabs(fast: bool | None = None):
    """The app's page: an ``ipywidgets.Tab`` with one explorer per tab, built when first opened.

    ``fast``: the small settings (default: fast mode, ``ELS_FAST``). The Tab carries
    ``explorers`` (dict: class name -> the explorer, once built) and ``build(index)``.
    """
    import ipywidgets as widgets

    from elslib import course
    from elslib.course import widgets as explorers

    fast = course.FAST if fast is None else bool(fast)
    args = settings(fast)
    boxes = [widgets.VBox([widgets.HTML(f"<i>{title}: opens when you choose this tab.</i>")]) for title, _ in TABS]
    tab = widgets.Tab(children=boxes, titles=[title for title, _ in TABS])
    tab.add_class("elslib-app")
    tab.explorers = {}

    def build(index: int) -> None:
        title, name = TABS[index]
        if name in tab.explorers:
            return
        box = boxes[index]
        box.children = [widgets.HTML(f"<i>building the {title[3:].lower()} explorer (a few seconds) ...</i>")]
        try:
            explorer = getattr(explorers, name)(progress=False, **args[name])
        except Exception as err:  # one broken explorer must not take the others down: say why on its tab
            why = html.escape(f"{type(err).__name__}: {err}")
            box.children = [widgets.HTML(f"<b>could not build {name}</b>: {why}")]
            traceback.print_exc()  # the whole story goes to the server's log
            return
        tab.explorers[name] = explorer
        box.children = [explorer.widget]

    def on_select(change) -> None:
        if change["new"] is not None:
            build(change["new"])

    tab.build = build
    tab.observe(on_select, names="selected_index")
    build(0)
    return tab


def write_app(folder) -> Path:
    """Write the app's notebook and a kernel spec for this Python into `folder`; returns the notebook.

    The kernel spec (``kernels/elslib-explorers``, found through ``JUPYTER_PATH=folder``) makes
    Voilà run the notebook with this very interpreter, whatever "python3" means elsewhere.
    """
    import nbformat

    folder = Path(folder)
    spec = folder / "kernels" / KERNEL
    spec.mkdir(parents=True, exist_ok=True)
    argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    spec_json = {"argv": argv, "display_name": "elslib explorers", "language": "python"}
    (spec / "kernel.json").write_text(json.dumps(spec_json, indent=1), encoding="utf-8")
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": KERNEL, "display_name": "elslib explorers", "language": "python"}
    nb.cells = [
        nbformat.v4.new_code_cell("from elslib.course.app import tabs\n\ntabs()"),
    ]
    path = folder / "elslib-explorers.ipynb"
    nbformat.write(nb, path)
    return path


def check_port(port) -> int:
    """`port` as an int, if it is 0 (any free port) or 1-65535 and free on 127.0.0.1; else ValueError."""
    if isinstance(port, bool) or not isinstance(port, int):
        raise ValueError(f"--port must be an integer, 0 (any free port) or 1 to 65535, got {port!r}")
    if not 0 <= port <= 65535:
        raise ValueError(f"--port must be 0 (any free port) or 1 to 65535, got {port}")
    with socket.socket() as s:
        try:
            s.bind((HOST, port))
        except OSError as err:
            raise ValueError(
                f"--port {port}: cannot listen on {HOST}:{port} ({err.strerror or err}); "
                "choose another port, or --port 0 for any free one"
            ) from None
        return s.getsockname()[1]


def voila_command(notebook, port: int) -> list[str]:
    """The Voilà command line: 127.0.0.1 only, no browser, no code shown, no tracebacks on the page."""
    return [
        sys.executable,
        "-m",
        "voila",
        str(notebook),
        f"--port={port}",
        f"--Voila.ip={HOST}",
        "--Voila.port_retries=0",
        "--no-browser",
        "--strip_sources=True",
        "--show_tracebacks=False",
        "--theme=light",
    ]


def _listening(port: int) -> bool:
    """Whether something accepts connections on 127.0.0.1:`port` (a GET of the page would start a kernel)."""
    try:
        with socket.create_connection((HOST, port), timeout=2):
            return True
    except OSError:
        return False


def _stop(proc: subprocess.Popen) -> None:
    """Stop Voilà and its kernel: SIGINT twice (Voilà's own clean shutdown), then terminate, then kill."""
    for how, wait in ((signal.SIGINT, 10), (signal.SIGTERM, 10)):
        if proc.poll() is not None:
            return
        try:
            proc.send_signal(how)
            if how == signal.SIGINT:
                time.sleep(0.3)
                proc.send_signal(how)  # Jupyter servers ask to confirm on one Ctrl-C
            proc.wait(timeout=wait)
            return
        except (subprocess.TimeoutExpired, ProcessLookupError):
            continue
    proc.kill()
    proc.wait()


def serve(port: int = DEFAULT_PORT, fast: bool | None = None, startup_timeout: float = 120, on_ready=None) -> int:
    """Run the app until Ctrl-C or SIGTERM; returns 0 then, 1 if Voilà stopped by itself.

    ``port``: 0 for any free one. ``fast``: small settings (default: ``ELS_FAST``). ``on_ready``:
    called with the URL once the server answers (default: print it). Raises ValueError for a bad
    or busy port or a missing Voilà, RuntimeError when Voilà does not come up within ``startup_timeout`` s.
    """
    port = check_port(port)
    try:
        import voila  # noqa: F401
    except ImportError:
        raise ValueError("the explorers app needs Voilà, which is not installed: pip install -e '.[app]'") from None
    from elslib import course

    fast = course.FAST if fast is None else bool(fast)
    folder = Path(tempfile.mkdtemp(prefix="elslib-explorers-"))
    proc = None
    _stop_on_sigterm()
    try:
        notebook = write_app(folder)
        env = {
            **os.environ,
            "JUPYTER_PATH": os.pathsep.join([str(folder), os.environ.get("JUPYTER_PATH", "")]).rstrip(os.pathsep),
            "ELS_FAST": "1" if fast else "0",
            "MPLBACKEND": "Agg",
        }
        log = open(folder / "voila.log", "w")  # noqa: SIM115 - closed in finally
        proc = subprocess.Popen(
            voila_command(notebook, port),
            cwd=folder,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C reaches only us; we stop Voilà in order (see _stop)
        )
        url = f"http://{HOST}:{port}/"
        deadline = time.monotonic() + startup_timeout
        while not _listening(port):
            if proc.poll() is not None or time.monotonic() > deadline:
                log.flush()
                tail = (folder / "voila.log").read_text(encoding="utf-8", errors="replace")[-1500:]
                raise RuntimeError(f"Voilà did not start on {HOST}:{port}:\n{tail}")
            time.sleep(0.3)
        (on_ready or _announce)(url, fast)
        code = proc.wait()  # until Ctrl-C, or until Voilà stops by itself
        log.flush()
        tail = (folder / "voila.log").read_text(encoding="utf-8", errors="replace")[-1500:]
        print(f"Voilà stopped by itself (exit status {code}); the end of its log:\n{tail}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\nstopping the explorers ...", flush=True)
        return 0
    finally:
        # A second Ctrl-C while stopping must not leave Voilà running or the folder behind.
        try:
            previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
        except ValueError:  # not the main thread, where signals cannot be handled: nothing to guard
            previous = None
        try:
            if proc is not None:
                _stop(proc)
                log.close()
            shutil.rmtree(folder, ignore_errors=True)
        finally:
            if previous is not None:
                signal.signal(signal.SIGINT, previous)


def _stop_on_sigterm() -> None:
    """Make ``kill PID`` (SIGTERM) stop the app as Ctrl-C does: Voilà runs in its own session, so
    without this it would outlive us. Only the main thread may set signal handlers."""

    def handler(signum, frame):
        raise KeyboardInterrupt

    try:
        signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread: whoever runs us there handles signals
        pass


def _announce(url: str, fast: bool) -> None:
    mode = "fast mode, small sizes" if fast else "full sizes"
    print(f"elslib explorers ({mode}): open {url} in a browser on this computer. Ctrl-C stops.", flush=True)
