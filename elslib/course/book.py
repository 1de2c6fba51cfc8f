"""The course as a website: every chapter, executed, as a static HTML page that works offline.

``python -m elslib book --out DIR [--fast]`` runs every chapter (``chapters/NN_*.ipynb``) top to
bottom in a fresh kernel (:func:`execute`), then builds the site from the executed notebooks
(:func:`build`). The two steps are separate so that the tests, which already execute every
chapter once, build the site from those notebooks instead of running the course twice.

The site is built with Sphinx, MyST-NB (the notebook reader of the Executable Books project) and
the Sphinx Book Theme: a landing page made from README.md, one page per chapter with its outputs,
maths, a table of contents per page, previous/next links, Sphinx's own search, launch links
(Binder, Colab) and the instructor's guide (chapters/README.md). Nothing is fetched from the
internet, neither while building nor while reading: the theme's fonts and icons come with the
theme, MathJax 3 is copied from the ``django-static-mathjax`` package (which only ships MathJax's
files) into the site, and the ipywidgets JavaScript, which would come from a CDN, is left out:
each explorer is shown as the static figure of its default state (:func:`static_widgets`).

Needs the optional extra: ``pip install -e ".[book]"``.
"""

from __future__ import annotations

import copy
import html
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
"""The source checkout: chapters/, README.md and pyproject.toml live here."""

CHAPTER_GLOB = "[0-9][0-9]_*.ipynb"
REPOSITORY = "https://github.com/els-course/how-diffusion-models-create"
"""Where the course's repository lives, when pyproject.toml's [project.urls] does not say: the
launch links (Binder, Colab, the repository button) and the Colab setup cell point here."""
BRANCH = "main"
BINDER = "https://mybinder.org"
COLAB = "https://colab.research.google.com"
COLAB_FOLDER = "/content/how-diffusion-models-create"
"""Where the Colab setup cell clones the course (Colab's working folder is /content)."""

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
WIDGET_NOTE = "(An interactive explorer: run this chapter in Jupyter, Binder or Colab to move its controls.)"
COLAB_TAG = "colab-setup"
"""The tag of each chapter's Colab setup cell (see :func:`colab_cell`)."""

# URLs in these places would make a reader's browser go online: scripts, style sheets, fonts,
# images and frames. Plain links (<a href>, the launch buttons) only go online when clicked.
_FETCHING_TAG = re.compile(r"<(script|link|img|iframe|source|embed)\b[^>]*?\b(src|href)=[\"']([^\"']+)", re.I)
_CSS_URL = re.compile(r"(?:url\(\s*[\"']?|@import\s+[\"'])([^\"')]+)", re.I)


# --------------------------------------------------------------------------- where things are


def repository_url(pyproject: str | Path | None = None) -> str:
    """The repository's URL: pyproject.toml's [project.urls] (Repository, Source or Homepage, the
    first one on GitHub), else :data:`REPOSITORY`."""
    try:
        import tomllib
    except ImportError:  # Python 3.10
        import tomli as tomllib

    path = Path(pyproject) if pyproject is not None else ROOT / "pyproject.toml"
    if path.exists():
        urls = tomllib.loads(path.read_text(encoding="utf-8")).get("project", {}).get("urls", {})
        lowered = {k.lower(): v for k, v in urls.items()}
        for key in ("repository", "source", "homepage"):
            url = lowered.get(key, "")
            if url.startswith("https://github.com/"):
                return url.rstrip("/").removesuffix(".git")
    return REPOSITORY


def chapters(folder: str | Path | None = None) -> list[Path]:
    """The chapter notebooks (NN_name.ipynb) of `folder` (default: the checkout's chapters/), sorted."""
    folder = Path(folder) if folder is not None else ROOT / "chapters"
    if not folder.is_dir():
        raise FileNotFoundError(f"chapters folder {folder} does not exist")
    found = sorted(folder.glob(CHAPTER_GLOB))
    if not found:
        raise FileNotFoundError(f"no chapter notebooks ({CHAPTER_GLOB}) in {folder}")
    return found


def mathjax_folder() -> Path:
    """MathJax 3's browser files (the es5 folder) from the installed ``django-static-mathjax``."""
    try:
        import mathjax  # the django-static-mathjax package: MathJax's files and nothing else
    except ImportError:
        raise ImportError('MathJax for the site comes from django-static-mathjax: pip install -e ".[book]"') from None
    folder = Path(mathjax.__file__).parent / "static" / "mathjax" / "es5"
    if not (folder / "tex-chtml.js").exists():
        raise FileNotFoundError(f"{folder} has no tex-chtml.js: reinstall django-static-mathjax")
    return folder


# --------------------------------------------------------------------------- the Colab setup cell


def colab_cell(repository: str | None = None) -> str:
    """The source of the code cell that each chapter opens with, before its setup cell.

    Only on Google Colab (where ``google.colab`` is imported) it clones the course and installs
    elslib from it; anywhere else it does nothing. It cannot call elslib, which is what it
    installs, so it is plain Python, kept here and copied into the chapters by
    :func:`add_colab_cells`; the tests check that every chapter has this exact text.
    """
    repo = repository or repository_url()
    return f"""\
# On Google Colab, this cell fetches the course and installs its library, elslib (about a minute,
# once per session). Anywhere else it does nothing.
import sys

if "google.colab" in sys.modules:
    import os
    import subprocess

    REPOSITORY = "{repo}"
    COURSE = "{COLAB_FOLDER}"
    if not os.path.isdir(COURSE):
        subprocess.run(["git", "clone", "--quiet", "--depth=1", REPOSITORY, COURSE], check=True)
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "-e", COURSE], check=True)
    if COURSE not in sys.path:
        sys.path.insert(0, COURSE)  # this kernel started before the install: find elslib now
    os.chdir(f"{{COURSE}}/chapters")  # where the chapters find the course's records/"""


def add_colab_cells(folder: str | Path | None = None, repository: str | None = None) -> list[Path]:
    """Give every chapter in `folder` the Colab setup cell (:func:`colab_cell`) as its first code
    cell, or bring an existing one up to date; returns the notebooks it changed.

    Edits the notebook JSON directly (indent 1, cell ids kept) so that nothing else changes.
    """
    source = colab_cell(repository)
    changed = []
    for path in chapters(folder):
        nb = json.loads(path.read_text(encoding="utf-8"))
        cell = next((c for c in nb["cells"] if COLAB_TAG in c.get("metadata", {}).get("tags", [])), None)
        lines = source.splitlines(keepends=True)
        if cell is None:
            stem = path.name[:2]
            cell = {
                "cell_type": "code",
                "execution_count": None,
                "id": f"{stem}-colab",
                "metadata": {"tags": [COLAB_TAG]},
                "outputs": [],
                "source": lines,
            }
            first_code = next(k for k, c in enumerate(nb["cells"]) if c["cell_type"] == "code")
            nb["cells"].insert(first_code, cell)
        elif "".join(cell["source"]) == source:
            continue
        else:
            cell["source"] = lines
        path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        changed.append(path)
    return changed


# --------------------------------------------------------------------------- executing


def execute(
    chapter_paths, out: str | Path, fast: bool = False, timeout: float = 1800, progress: bool = True
) -> list[Path]:
    """Run each chapter in a fresh kernel (from its own folder, so relative paths work) and write
    the executed notebook into `out`; returns the written paths.

    `fast` runs them with ELS_FAST=1 (small sizes: minutes for the whole course); otherwise in
    full mode (ELS_FAST=0), several minutes per chapter. A failing cell raises nbclient's
    CellExecutionError, naming the chapter and showing the traceback.
    """
    import nbformat

    if not timeout > 0:
        raise ValueError(f"timeout must be a positive number of seconds, got {timeout}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "ELS_FAST": "1" if fast else "0", "MPLBACKEND": os.environ.get("MPLBACKEND", "Agg")}
    written = []
    for path in map(Path, chapter_paths):
        nb = nbformat.read(path, as_version=4)
        client = notebook_client(nb, timeout=timeout, resources={"metadata": {"path": str(path.parent)}})
        start = time.perf_counter()
        try:
            client.execute(env=env)  # the kernel gets this environment, ours stays as it is
        except Exception as err:
            raise RuntimeError(f"chapter {path.name} failed while building the site: {err}") from err
        nbformat.write(nb, out / path.name)
        written.append(out / path.name)
        if progress:
            print(f"  executed {path.name} in {time.perf_counter() - start:.0f} s", flush=True)
    return written


def notebook_client(nb, **options):
    """An nbclient ``NotebookClient`` for `nb` (python3 kernel) whose channels wait in 1-second slices.

    Why: with ipywidgets in a cell (the chapters' ``interact``), nbclient sometimes keeps waiting
    for a reply the kernel has already sent (jupyter/nbclient#312): the socket's wake-up is missed,
    and the wait ends only at the cell's timeout, which then fails the cell. Asking again every
    second finds the message. `options` go to ``NotebookClient`` (timeout, resources, ...).
    """
    from nbclient import NotebookClient

    class SlicedClient(NotebookClient):
        async def async_start_new_kernel_client(self):
            kc = await super().async_start_new_kernel_client()
            for channel in (kc.shell_channel, kc.iopub_channel):
                channel.get_msg = _in_slices(channel.get_msg)
            return kc

    return SlicedClient(nb, kernel_name="python3", **options)


def _in_slices(get_msg, slice_s: float = 1.0):
    """`get_msg(timeout)` of an asyncio channel, as repeated waits of at most `slice_s` seconds."""
    from queue import Empty

    async def sliced(timeout: float | None = None):
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            left = slice_s if deadline is None else min(slice_s, max(0.0, deadline - time.monotonic()))
            try:
                return await get_msg(timeout=left)
            except Empty:
                if deadline is not None and time.monotonic() >= deadline:
                    raise

    return sliced


# --------------------------------------------------------------------------- widgets, statically


def static_widgets(nb: dict) -> dict:
    """A copy of the executed notebook `nb` (a dict) fit for a page without a widget frontend.

    A widget's output carries the widget's view (needs ipywidgets' JavaScript, from a CDN) and
    a text/plain repr such as "interactive(children=(FloatSlider(...". The explorers add a PNG of
    their default state; ``ipywidgets.interact`` keeps its figure inside the notebook's widget
    state, in an Output widget; tqdm's progress bars are widgets too. Here every widget view is
    replaced by what it would show: its PNG; else the outputs of the Output widgets inside it and
    a note that the controls move in Jupyter; a progress bar by its final line of text. The
    widget state is dropped (it would only make the page load ipywidgets).
    """
    nb = copy.deepcopy(nb)
    state = nb.get("metadata", {}).pop("widgets", {}).get(WIDGET_STATE, {}).get("state", {})
    for cell in nb.get("cells", []):
        if cell.get("cell_type") != "code":
            continue
        outputs = []
        for out in cell.get("outputs", []):
            data = out.get("data", {})
            if WIDGET_VIEW not in data:
                outputs.append(out)
                continue
            view = data.pop(WIDGET_VIEW)
            if any(k.startswith("image/") for k in data):
                data.pop("text/plain", None)  # the figure says it; the repr would print under it
                outputs.append(out)
                continue
            models = _models_inside(state, view.get("model_id", ""))
            if any(name.endswith("ProgressModel") for name, _ in models):
                # tqdm: a label, a bar and "20/20 [00:03<00:00, 6.1it/s]"; keep the words
                words = [html.unescape(m.get("value", "")).strip() for name, m in models if name == "HTMLModel"]
                line = " ".join(w for w in words if w)
                if line:
                    outputs.append({"output_type": "stream", "name": "stderr", "text": line + "\n"})
                continue
            outputs += [copy.deepcopy(o) for name, m in models if name == "OutputModel" for o in m.get("outputs", [])]
            outputs.append({"output_type": "display_data", "metadata": {}, "data": {"text/markdown": WIDGET_NOTE}})
        cell["outputs"] = outputs
    return nb


def _models_inside(state: dict, model_id: str, seen: set | None = None) -> list[tuple[str, dict]]:
    """(model name, model state) of the widget `model_id` and every widget inside it, depth first."""
    seen = set() if seen is None else seen
    if model_id in seen or model_id not in state:
        return []
    seen.add(model_id)
    model = state[model_id]
    found = [(model.get("model_name", ""), model.get("state", {}))]
    for child in model.get("state", {}).get("children", []):
        found += _models_inside(state, str(child).removeprefix("IPY_MODEL_"), seen)
    return found


# --------------------------------------------------------------------------- the site's sources


def _sections(markdown: str) -> tuple[str, dict[str, str]]:
    """The text before the first '## ' heading, and each '## ' section's body by its title."""
    parts = re.split(r"^## (.+)$", markdown, flags=re.M)
    intro, sections = parts[0], {}
    for title, body in zip(parts[1::2], parts[2::2], strict=True):
        sections[title.strip()] = body.strip("\n")
    return intro, sections


def _title(nb: dict) -> str:
    """A chapter's title: its first heading, without "Chapter NN:"."""
    first = "".join(nb["cells"][0]["source"]) if nb.get("cells") else ""
    heading = next((line for line in first.splitlines() if line.startswith("# ")), "# untitled")
    return re.sub(r"^#\s*(Chapter\s+\d+\s*[:.·\-–—]\s*)?", "", heading).strip()


def _relink(markdown: str, repo_path: str, site_files: set[str], repository: str) -> str:
    """Point relative links of a file at `repo_path` to the site's page when the site has that
    file, and to the file in the repository otherwise (so that no link in the site is broken)."""
    base = Path(repo_path).parent

    def fix(match):
        text, target = match.group(1), match.group(2)
        if re.match(r"^[a-z][a-z0-9+.\-]*:|^#|^/", target):  # a URL, an anchor or an absolute path
            return match.group(0)
        path, _, anchor = target.partition("#")
        resolved = os.path.normpath(base / path).replace(os.sep, "/")
        if resolved in site_files:
            return f"{text}({os.path.relpath(resolved, base).replace(os.sep, '/')}{'#' + anchor if anchor else ''})"
        kind = "tree" if path.endswith("/") or not Path(resolved).suffix else "blob"
        return f"{text}({repository}/{kind}/{BRANCH}/{resolved.removeprefix('./')}{'#' + anchor if anchor else ''})"

    return re.sub(r"(!?\[[^\]]*\])\(([^)\s]+)\)", fix, markdown)


def _landing_page(readme: str, pages: list[tuple[str, str]], guide: str | None) -> str:
    """index.md: what the course is (README's introduction), the chapter map with links, how to
    install and run, and the tables of contents that order the site (and its prev/next links)."""
    intro, sections = _sections(readme)
    leave = {}  # chapter number -> "you leave knowing", from README's chapter table
    for row in re.findall(r"^\|\s*(\d\d)\s*\|[^|]*\|([^|]*)\|", sections.get("The chapters", ""), flags=re.M):
        leave[row[0]] = row[1].strip()
    rows = ["| # | chapter | you leave knowing |", "|---|---|---|"]
    for doc, title in pages:
        number = Path(doc).name[:2]
        rows.append(f"| {number} | [{title}]({doc}.ipynb) | {leave.get(number, '')} |")
    text = [intro.strip(), "", "## The chapters", "", *rows, ""]
    if guide:
        text += ["Teaching it? The [instructor's guide](chapters/README.md) has run times and assignments.", ""]
    for title in ("Two commands", "Interactive explorers", "GPUs", "Data", "Teaching with this course", "Credits"):
        if title in sections:
            heading = "How to install and run" if title == "Two commands" else title
            text += [f"## {heading}", "", sections[title], ""]
    text += ["```{toctree}", ":hidden:", ":caption: Chapters", "", *[doc for doc, _ in pages], "```", ""]
    if guide:
        text += ["```{toctree}", ":hidden:", ":caption: For instructors", "", "chapters/README", "```", ""]
    return "\n".join(text)


def _conf(repository: str, title: str) -> str:
    """conf.py for Sphinx: MyST-NB reads the executed notebooks as they are, without running them."""
    options = {
        "repository_url": repository,
        "repository_branch": BRANCH,
        "path_to_docs": "",
        "use_repository_button": True,
        "use_download_button": True,
        "launch_buttons": {"binderhub_url": BINDER, "colab_url": COLAB, "notebook_interface": "jupyterlab"},
        "show_toc_level": 2,
        "home_page_in_toc": True,
    }
    return "\n".join(
        [
            "# Written by elslib.course.book: every setting here keeps the site offline or the build reproducible.",
            f"project = {title!r}",
            "extensions = ['myst_nb']",
            "html_theme = 'sphinx_book_theme'",
            f"html_theme_options = {options!r}",
            f"html_title = {title!r}",
            # light or dark as the reader's system says (unset, the theme logs an error in the console)
            "html_context = {'default_mode': 'auto'}",
            "html_static_path = ['_static']",
            "html_last_updated_fmt = None",
            "exclude_patterns = ['_build']",
            # the notebooks come executed: never run them again, never cache them
            "nb_execution_mode = 'off'",
            # ipywidgets' JavaScript would come from a CDN; static_widgets() left no widget to need it
            "nb_ipywidgets_js = {}",
            # MathJax from our own copy in _static/, not from a CDN
            "mathjax_path = 'mathjax/tex-chtml.js'",
            "myst_enable_extensions = ['dollarmath', 'amsmath', 'html_image']",
            "myst_heading_anchors = 3",
            # chapters link to repository files and launch sites; a missing cross-reference is not fatal
            "suppress_warnings = ['myst.xref_missing', 'mystnb.unknown_mime_type', 'misc.highlighting_failure']",
        ]
    )


def _write_sources(executed: list[Path], src: Path, root: Path, repository: str) -> None:
    """Lay out the Sphinx source folder: conf.py, index.md, chapters/, images, MathJax."""
    import nbformat

    (src / "chapters").mkdir(parents=True)
    guide_path = root / "chapters" / "README.md"
    site_files = {f"chapters/{p.name}" for p in executed} | {"README.md"}
    if guide_path.exists():
        site_files.add("chapters/README.md")
    pages = []
    for path in executed:
        nb = static_widgets(json.loads(path.read_text(encoding="utf-8")))
        for cell in nb["cells"]:
            if cell["cell_type"] == "markdown":
                cell["source"] = _relink("".join(cell["source"]), f"chapters/{path.name}", site_files, repository)
            tags = cell.setdefault("metadata", {}).setdefault("tags", [])
            if COLAB_TAG in tags:
                tags.append("remove-cell")  # a reader of the site runs nothing: the Colab cell would be noise
            elif cell["metadata"].get("jupyter", {}).get("source_hidden"):
                tags.append("hide-input")  # worked solutions stay folded, as in Jupyter (click to show)
        nbformat.validate(nbformat.from_dict(nb))
        (src / "chapters" / path.name).write_text(json.dumps(nb, indent=1, ensure_ascii=False), encoding="utf-8")
        pages.append((f"chapters/{path.stem}", _title(nb)))
    readme_path = root / "README.md"
    readme = readme_path.read_text(encoding="utf-8") if readme_path.exists() else "# The course\n"
    for image in re.findall(r"!\[[^\]]*\]\(([^)\s:]+)\)", readme):  # README's own pictures travel along
        if (root / image).is_file():
            (src / image).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(root / image, src / image)
            site_files.add(os.path.normpath(image).replace(os.sep, "/"))
    readme = _relink(readme, "README.md", site_files, repository)
    guide = None
    if guide_path.exists():
        guide = _relink(guide_path.read_text(encoding="utf-8"), "chapters/README.md", site_files, repository)
        (src / "chapters" / "README.md").write_text(guide, encoding="utf-8")
    (src / "index.md").write_text(_landing_page(readme, pages, guide), encoding="utf-8")
    title = re.search(r"^# (.+)$", readme, flags=re.M)
    (src / "conf.py").write_text(_conf(repository, title.group(1) if title else "The course") + "\n")
    # MathJax: the combined TeX + CommonHTML file, the TeX extensions it loads on demand, its fonts
    # and the parts its context menu loads; not its other combined files (megabytes each).
    mj, dest = mathjax_folder(), src / "_static" / "mathjax"
    dest.mkdir(parents=True)
    shutil.copy2(mj / "tex-chtml.js", dest / "tex-chtml.js")
    for sub in ("input/tex/extensions", "output/chtml/fonts", "ui", "a11y", "sre", "adaptors"):
        if (mj / sub).is_dir():
            shutil.copytree(mj / sub, dest / sub)


# --------------------------------------------------------------------------- building


def build(executed_notebooks, out: str | Path, root: str | Path | None = None, quiet: bool = True) -> Path:
    """Build the static site into `out` from executed chapter notebooks; returns out/index.html.

    `executed_notebooks`: a folder of executed NN_name.ipynb files (as :func:`execute` writes
    them), or a list of such paths. `root`: the checkout whose README.md and chapters/README.md
    make the landing page and the instructor's guide (default: this one). `out` is replaced.
    `quiet=False` prints Sphinx's warnings (a broken cross-reference, say) on stderr.
    Raises ValueError for a notebook that was not executed, RuntimeError when Sphinx fails or
    when a page would fetch anything from outside the site (see :func:`external_references`).
    """
    root = Path(root) if root is not None else ROOT
    if isinstance(executed_notebooks, (str, Path)):
        executed = chapters(executed_notebooks)
    else:
        executed = sorted(map(Path, executed_notebooks), key=lambda p: p.name)
        if not executed:
            raise ValueError("executed_notebooks is empty: give a folder or a list of executed chapter notebooks")
    for path in executed:
        if not path.is_file():
            raise FileNotFoundError(f"executed notebook {path} does not exist")
        cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
        if not any(c.get("execution_count") for c in cells if c["cell_type"] == "code"):
            raise ValueError(f"{path.name} has not been executed (no cell ran): run elslib.course.book.execute first")
    out = _check_out(out)
    _check_tools()
    repository = repository_url(root / "pyproject.toml")
    with tempfile.TemporaryDirectory(prefix="els-book-") as tmp:
        src, doctrees = Path(tmp) / "src", Path(tmp) / "doctrees"
        _write_sources(executed, src, root, repository)
        if out.exists():
            shutil.rmtree(out)
        cmd = [sys.executable, "-m", "sphinx", "-b", "html", "-d", str(doctrees), "-w", str(Path(tmp) / "warn.txt")]
        cmd += ["-q", str(src), str(out)]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(f"sphinx failed (exit {proc.returncode}):\n{(proc.stdout + proc.stderr)[-3000:]}")
        log = Path(tmp) / "warn.txt"
        warnings = log.read_text(encoding="utf-8", errors="replace").strip() if log.exists() else ""
        if warnings and not quiet:
            print(f"sphinx warnings:\n{warnings}", file=sys.stderr)
    (out / ".nojekyll").touch()  # GitHub Pages: serve _static/ and _images/ as they are
    outside = external_references(out)
    if outside:
        raise RuntimeError("the site would fetch from the internet: " + "; ".join(outside[:10]))
    return out / "index.html"


def _check_out(out) -> Path:
    """The output folder, resolved; ValueError where building there would destroy something else."""
    out = Path(out).resolve()
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} is a file, not a folder")
    built = all((out / name).exists() for name in ("index.html", "searchindex.js", "_static"))
    if out.exists() and any(out.iterdir()) and not built:
        raise ValueError(f"--out {out} is a non-empty folder that is not a built site: choose an empty or new folder")
    return out


def _check_tools() -> None:
    """ImportError naming the extra when a tool of the build is missing (before hours of executing)."""
    import importlib.util

    missing = [m for m in ("sphinx", "myst_nb", "sphinx_book_theme", "nbclient") if importlib.util.find_spec(m) is None]
    if missing:
        raise ImportError(f'building the site needs {", ".join(missing)}: pip install -e ".[book]"')
    mathjax_folder()


def external_references(site: str | Path) -> list[str]:
    """Every place in the built `site` that would make a browser fetch from outside the site:
    a script, style sheet, font, image or frame with an absolute URL ("FILE: URL" each)."""
    site = Path(site)
    found = []
    for path in sorted(site.rglob("*.html")):
        for _, _, url in _FETCHING_TAG.findall(path.read_text(encoding="utf-8", errors="replace")):
            if re.match(r"^(https?:)?//", url):
                found.append(f"{path.relative_to(site)}: {url}")
    for path in sorted(site.rglob("*.css")):
        for url in _CSS_URL.findall(path.read_text(encoding="utf-8", errors="replace")):
            if re.match(r"^(https?:)?//", url.strip()):
                found.append(f"{path.relative_to(site)}: {url.strip()}")
    return found


def make(out: str | Path, fast: bool = False, chapters_dir: str | Path | None = None, timeout: float = 1800) -> dict:
    """``python -m elslib book``: execute every chapter in a fresh kernel, then build the site.

    Returns a summary: the index page, the number of chapters, seconds spent executing and
    building, and the site's size in bytes.
    """
    paths = chapters(chapters_dir)
    _check_out(out)
    _check_tools()
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="els-executed-") as tmp:
        mode = "fast (ELS_FAST=1)" if fast else "full"
        print(f"executing {len(paths)} chapters in {mode} mode", flush=True)
        executed = execute(paths, tmp, fast=fast, timeout=timeout)
        ran = time.perf_counter() - start
        index = build(executed, out, quiet=False)
    built = time.perf_counter() - start - ran
    size = sum(p.stat().st_size for p in Path(out).rglob("*") if p.is_file())
    return {"index": index, "chapters": len(paths), "execute_s": ran, "build_s": built, "bytes": size}
