"""Interactive explorers for the chapters: each is a few ipywidgets controls above one figure.

    from elslib.course.widgets import NoiseExplorer
    NoiseExplorer()          # last line of a cell: the widget, or a static PNG where none runs

- :class:`NoiseExplorer` (chapter 01): the forward process, SNR, what noise destroys first.
- :class:`ReverseProcessPlayer` (02): step through a DDIM trajectory of any denoiser.
- :class:`MachineComparer` (07): IS, LS, ES, ELS and a network from one seed, side by side.
- :class:`MosaicInspector` (07): an ELS sample as a mosaic of training patches, pixel by pixel.
- :class:`ScaleScheduleEditor` (07): the patch size P(t), calibrated or drawn, and its sample.
- :class:`LocalityProbe` (05): a CNN's gradient map for one pixel beside the LS window.
- :class:`CopyingExplorer` (09): the stored phase diagram of copying over N and P, one seed at a time.
- :class:`PromptExplorer` (12): type a prompt, get a digit, from the text-to-image miniature.

Every explorer exposes its controls as attributes (set ``.value`` to drive it from code), what it
shows as ``.shown`` (numpy arrays) and ``.png``, and ``.last_seconds`` (time of the last update).
"""

from .base import Explorer
from .compare import MachineComparer
from .copying import CopyingExplorer
from .locality import LocalityProbe
from .mosaic import MosaicInspector
from .noise import NoiseExplorer
from .prompt import PromptExplorer
from .reverse import ReverseProcessPlayer
from .scales import ScaleScheduleEditor

__all__ = [
    "CopyingExplorer",
    "Explorer",
    "LocalityProbe",
    "MachineComparer",
    "MosaicInspector",
    "NoiseExplorer",
    "PromptExplorer",
    "ReverseProcessPlayer",
    "ScaleScheduleEditor",
]
