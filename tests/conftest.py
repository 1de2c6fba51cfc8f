"""Fixtures shared by several test modules, and the order of the tests that share executed chapters."""

import pytest
import torch


@pytest.fixture(scope="module")
def one_thread():
    """Tiny tensors: thread hand-offs cost more than they save (and much more on a busy CPU).

    Use in a module with ``pytestmark = pytest.mark.usefixtures("one_thread")``.
    """
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="session")
def executed_chapters(tmp_path_factory):
    """A folder where tests/test_chapters.py leaves each chapter it ran (fast mode), with its outputs.

    The site test (tests/test_book.py) builds the course's website from these notebooks, so the
    chapters run once per test session, not twice; it runs whatever chapter is missing itself.
    """
    return tmp_path_factory.mktemp("executed-chapters")


def pytest_configure(config):
    config.addinivalue_line("markers", "after_chapters: run after tests/test_chapters.py (uses executed_chapters)")


def pytest_collection_modifyitems(session, config, items):
    """Move the tests marked after_chapters to the end: by then the chapters have been executed."""
    late = [item for item in items if item.get_closest_marker("after_chapters")]
    if late:
        items[:] = [item for item in items if item not in late] + late
