"""benchmarks/bench_chapters.py --write for some chapters: their rows replaced, the other rows and
the notes about earlier re-measured rows kept."""

import importlib.util
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_chapters.py"
spec = importlib.util.spec_from_file_location("bench_chapters", SCRIPT)
bench = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bench)

STORED = """Measured 2026-12-01 on **A, 2 cores**.

Rows 01_a, 02_b re-measured 2026-12-02 on **B, 2 cores** (load average 1.0 at the end).

| chapter | full mode: total | longest cell | fast mode: total | longest cell |
|---|---|---|---|---|
| 01_a | 1 s | 1 s (cell 1) | 1 s | 1 s (cell 1) |
| 02_b | 2 s | 2 s (cell 2) | 2 s | 2 s (cell 2) |
| 03_c | 3 s | 3 s (cell 3) | 3 s | 3 s (cell 3) |"""


def test_merge_replaces_the_rows_and_keeps_the_notes_of_the_others():
    timing = {"wall": 40.0, "longest": 9.0, "cell": 7}
    merged = bench.merge(STORED, {"02_b": {"full": timing, "fast": timing}}, ["full", "fast"])
    lines = merged.splitlines()
    assert "| 02_b | 40 s | 9 s (cell 7) | 40 s | 9 s (cell 7) |" in lines
    assert "| 01_a | 1 s | 1 s (cell 1) | 1 s | 1 s (cell 1) |" in lines and "| 03_c | 3 s" in merged
    notes = [line for line in lines if line.startswith("Rows ")]
    assert notes[0] == "Rows 01_a re-measured 2026-12-02 on **B, 2 cores** (load average 1.0 at the end)."
    assert notes[1].startswith("Rows 02_b re-measured ") and len(notes) == 2
    assert "\n\n\n" not in merged  # no blank lines piled up where the old note stood
