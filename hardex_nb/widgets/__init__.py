"""anywidget front ends: Gallery, Annotator, Review, ConfusionMatrix, ReportView (UI only).

One plain ES module per widget in ``static/`` (Review shares the Annotator's). Traitlets are
the single source of truth; images travel as binary buffers. Every message from the browser
is validated in Python before it touches the Dataset; a bad one is answered with an error
shown in the widget, and nothing changes.
"""

from .annotator import Annotator, Review
from .gallery import Gallery
from .report import ConfusionMatrix, ReportView

__all__ = ["Annotator", "ConfusionMatrix", "Gallery", "ReportView", "Review"]
