"""A person's labeling time, by one fixed, published model: what a label, a check or a fix
costs in seconds. The same prices are paid by every strategy the loop benchmark compares
(``bench/bench_loop.py``), so "auto-labeling saves 70% of labeling time" can be measured in
seconds instead of label counts.

The prices (`PRICES`) come from timing studies of real annotators:

========================================  =======  ==========================================
action                                    seconds  source
========================================  =======  ==========================================
choose a class for an image               3.0      Papadopoulos et al., CVPR 2016
verify a proposed class or box            1.6      Papadopoulos et al., CVPR 2016
fix a wrong class: verify, then choose    4.6      1.6 + 3.0
draw a box                                7.0      extreme clicking, Papadopoulos et al.,
                                                   ICCV 2017
adjust a proposed box (IoU 0.5 to 0.9)    4.6      verify 1.6 + adjust 3.0
relabel a proposed box (wrong class)      4.6      verify 1.6 + choose 3.0 (+ adjust 3.0
                                                   under IoU 0.9)
delete a false box                        1.0
add a missed box                          7.0      as drawn
check an image for anything missed        1.6      once per reviewed image
point at an object (the point tool)       1.8      one of extreme clicking's four clicks,
                                                   7.0 / 4
========================================  =======  ==========================================

A proposed box that overlaps its object at IoU 0.9 or more with the right class is
verified; 0.5 to 0.9 is adjusted; under 0.5 it is a false box (deleted) and the object it
missed is added. Proposals meet objects one to one, best overlap first. Labeling by hand
pays a class per image (classification) or a box per object (detection); a hand-drawn set
pays nothing to look at an image, which favours labeling by hand. A box from the point tool
pays the click and a look at what it proposed, then as a proposed box: nothing more from
IoU 0.9, an adjustment from 0.5, a box drawn by hand under that.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .evaluation import box_iou


@dataclass(frozen=True)
class Prices:
    """Seconds per action (see the module's table)."""

    choose: float = 3.0
    verify: float = 1.6
    draw: float = 7.0
    adjust: float = 3.0
    delete: float = 1.0
    check: float = 1.6
    point: float = 1.8
    #: IoU from which a proposed box needs no adjusting, and under which it is false
    exact_iou: float = 0.9
    match_iou: float = 0.5


PRICES = Prices()


@dataclass
class Bill:
    """Seconds spent, and what they were spent on (action → count)."""

    seconds: float = 0.0
    counts: dict[str, int] = field(default_factory=dict)

    def pay(self, action: str, seconds: float, n: int = 1) -> None:
        """Add ``n`` actions at ``seconds`` each to the bill."""
        if n:
            self.seconds += seconds * n
            self.counts[action] = self.counts.get(action, 0) + n

    def __add__(self, other: Bill) -> Bill:
        out = Bill(self.seconds, dict(self.counts))
        for action, n in other.counts.items():
            out.counts[action] = out.counts.get(action, 0) + n
        out.seconds += other.seconds
        return out


def label_classes(n: int, prices: Prices = PRICES) -> Bill:
    """Choosing a class for ``n`` images by hand."""
    bill = Bill()
    bill.pay("choose", prices.choose, n)
    return bill


def review_classes(proposed, truth, prices: Prices = PRICES) -> Bill:
    """Reviewing proposed classes: each is verified, and a wrong one is then chosen anew."""
    proposed, truth = np.asarray(proposed), np.asarray(truth)
    if proposed.shape != truth.shape:
        raise ValueError(f"{len(proposed)} proposals for {len(truth)} images")
    wrong = int((proposed != truth).sum())
    bill = Bill()
    bill.pay("verify", prices.verify, len(truth) - wrong)
    bill.pay("fix", prices.verify + prices.choose, wrong)
    return bill


def draw_boxes(n: int, prices: Prices = PRICES) -> Bill:
    """Drawing ``n`` boxes by hand."""
    bill = Bill()
    bill.pay("draw", prices.draw, n)
    return bill


def review_boxes(boxes, labels, truth_boxes, truth_labels, prices: Prices = PRICES) -> Bill:
    """Reviewing one image's proposed boxes (``boxes`` N×4 xyxy with ``labels``) against its
    objects: check the image, then verify, adjust, relabel or delete each proposal and add
    each object no proposal found.
    """
    boxes = np.asarray(boxes, float).reshape(-1, 4)
    truth_boxes = np.asarray(truth_boxes, float).reshape(-1, 4)
    labels, truth_labels = np.asarray(labels).ravel(), np.asarray(truth_labels).ravel()
    bill = Bill()
    bill.pay("check", prices.check)
    iou = box_iou(boxes, truth_boxes) if len(boxes) and len(truth_boxes) else np.zeros((0, 0))
    matched: dict[int, int] = {}  # proposal → object
    if iou.size:
        for flat in np.argsort(-iou, axis=None, kind="stable"):
            p, t = divmod(int(flat), iou.shape[1])
            if iou[p, t] < prices.match_iou:
                break
            if p not in matched and t not in matched.values():
                matched[p] = t
    for p in range(len(boxes)):
        t = matched.get(p)
        if t is None:
            bill.pay("delete", prices.delete)
        elif labels[p] != truth_labels[t] and iou[p, t] < prices.exact_iou:
            bill.pay("relabel+adjust", prices.verify + prices.choose + prices.adjust)
        elif labels[p] != truth_labels[t]:
            bill.pay("relabel", prices.verify + prices.choose)
        elif iou[p, t] < prices.exact_iou:
            bill.pay("adjust", prices.verify + prices.adjust)
        else:
            bill.pay("verify", prices.verify)
    bill.pay("add", prices.draw, len(truth_boxes) - len(matched))
    return bill


def point_box(proposal, truth_box, prices: Prices = PRICES) -> Bill:
    """One object labeled with the point tool: a click, a look at the box it proposed
    (``proposal`` xyxy, None for none), then an adjustment or a box drawn by hand as
    that box's overlap with the object (``truth_box``) requires.
    """
    bill = Bill()
    bill.pay("point", prices.point)
    if proposal is None:
        bill.pay("draw", prices.draw)
        return bill
    iou = float(box_iou(np.asarray(proposal, float).reshape(1, 4),
                        np.asarray(truth_box, float).reshape(1, 4))[0, 0])  # fmt: skip
    bill.pay("verify", prices.verify)
    if iou < prices.match_iou:
        bill.pay("draw", prices.draw)
    elif iou < prices.exact_iou:
        bill.pay("adjust", prices.adjust)
    return bill
