"""Model factory: torchvision classifiers and detectors, from scratch or from a local file.

Nothing is ever downloaded: ``weights=None`` everywhere, and a user's own weights come as a
path to a ``state_dict`` file (or a hardex_nb ``model.pt``).

Ignore (masked) regions are honored by the Faster R-CNN and RetinaNet families: anchors and
proposals covering an ignore region (half or more of their area inside it) are taken neither
as positives nor as negatives, so those pixels add nothing to the loss.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torchvision
from torch import Tensor, nn
from torchvision.models.detection import FasterRCNN, RetinaNet
from torchvision.models.detection.backbone_utils import resnet_fpn_backbone
from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
from torchvision.models.detection.roi_heads import RoIHeads
from torchvision.models.detection.rpn import RegionProposalNetwork

from ..errors import JobError

CLASSIFIERS = ("resnet18", "resnet34", "resnet50", "mobilenet_v3_small", "mobilenet_v3_large",
               "efficientnet_b0", "convnext_tiny", "regnet_y_400mf")
DETECTORS = ("fasterrcnn_resnet18_fpn", "fasterrcnn_mobilenet_v3_large_fpn",
             "fasterrcnn_mobilenet_v3_large_320_fpn", "fasterrcnn_resnet50_fpn",
             "retinanet_resnet50_fpn", "fcos_resnet50_fpn", "ssdlite320_mobilenet_v3_large")
IGNORE_AWARE = ("fasterrcnn", "retinanet")
DEFAULTS = {"classification": "resnet18", "detection": "fasterrcnn_resnet18_fpn"}


def covered_by(boxes: Tensor, regions: Tensor | None, share: float = 0.5) -> Tensor:
    """``(N,)`` bool: which of ``boxes (N, 4)`` have at least ``share`` of their area inside
    any of ``regions (M, 4)``."""
    if regions is None or regions.numel() == 0 or boxes.numel() == 0:
        return torch.zeros(len(boxes), dtype=torch.bool, device=boxes.device)
    regions = regions.to(boxes)
    lt = torch.maximum(boxes[:, None, :2], regions[None, :, :2])
    rb = torch.minimum(boxes[:, None, 2:], regions[None, :, 2:])
    inter = (rb - lt).clamp(min=0).prod(dim=2)
    area = (boxes[:, 2:] - boxes[:, :2]).clamp(min=1e-6).prod(dim=1)
    return (inter / area[:, None] >= share).any(dim=1)


class IgnoreAwareRPN(RegionProposalNetwork):
    def assign_targets_to_anchors(self, anchors, targets):
        labels, matched = super().assign_targets_to_anchors(anchors, targets)
        for i, (a, t) in enumerate(zip(anchors, targets)):
            labels[i][covered_by(a, t.get("ignore"))] = -1.0  # neither positive nor negative
        return labels, matched


class IgnoreAwareRoIHeads(RoIHeads):
    _ignore: list = []

    def select_training_samples(self, proposals, targets):
        self._ignore = [t.get("ignore") for t in targets]
        return super().select_training_samples(proposals, targets)

    def assign_targets_to_proposals(self, proposals, gt_boxes, gt_labels):
        matched, labels = super().assign_targets_to_proposals(proposals, gt_boxes, gt_labels)
        for i, p in enumerate(proposals):
            regions = self._ignore[i] if i < len(self._ignore) else None
            labels[i][covered_by(p, regions)] = -1  # the sampler skips label -1
        return matched, labels


class IgnoreAwareRetinaNet(RetinaNet):
    def compute_loss(self, targets, head_outputs, anchors):
        matched_idxs = []
        for a, t in zip(anchors, targets):
            if t["boxes"].numel() == 0:
                idx = torch.full((a.size(0),), -1, dtype=torch.int64, device=a.device)
            else:
                quality = torchvision.ops.box_iou(t["boxes"], a)
                idx = self.proposal_matcher(quality)
            idx[covered_by(a, t.get("ignore"))] = self.proposal_matcher.BETWEEN_THRESHOLDS
            matched_idxs.append(idx)
        return self.head.compute_loss(targets, head_outputs, anchors, matched_idxs)


def _make_ignore_aware(model: nn.Module) -> nn.Module:
    if isinstance(model, FasterRCNN):
        model.rpn.__class__ = IgnoreAwareRPN
        model.roi_heads.__class__ = IgnoreAwareRoIHeads
    elif isinstance(model, RetinaNet):
        model.__class__ = IgnoreAwareRetinaNet
    return model


def without_ignore_support(model: nn.Module) -> nn.Module:
    """A copy with torchvision's own classes back (for TorchScript/ONNX export, where the
    training-only overrides are not needed)."""
    import copy

    model = copy.deepcopy(model)
    if isinstance(model, FasterRCNN):
        model.rpn.__class__ = RegionProposalNetwork
        model.roi_heads.__class__ = RoIHeads
    elif isinstance(model, IgnoreAwareRetinaNet):
        model.__class__ = RetinaNet
    return model


def build_model(name: str, *, task: str, num_classes: int, image_size: int,
                weights: str | Path | None = None) -> nn.Module:
    """A torchvision model with ``num_classes`` outputs (detection adds background).

    Parameters
    ----------
    weights : path, optional
        A local ``state_dict`` (or a hardex_nb run's ``model.pt``); never downloaded.
    """
    if task == "classification":
        if name not in CLASSIFIERS:
            raise JobError(f"model={name!r} is not a known classifier; use one of {list(CLASSIFIERS)}.")
        model = torchvision.models.get_model(name, weights=None, num_classes=num_classes)
    elif task == "detection":
        if name not in DETECTORS:
            raise JobError(f"model={name!r} is not a known detector; use one of {list(DETECTORS)}.")
        size = dict(min_size=image_size, max_size=image_size)
        if name == "fasterrcnn_resnet18_fpn":
            backbone = resnet_fpn_backbone(backbone_name="resnet18", weights=None,
                                           trainable_layers=5)
            # sized for small data: fewer proposals, sampled RoIs and box-head units than the
            # COCO defaults (the 12544→1024 box head dominates the cost on small images)
            model = FasterRCNN(backbone, rpn_pre_nms_top_n_train=600,
                               box_head=TwoMLPHead(backbone.out_channels * 7 * 7, 256),
                               box_predictor=FastRCNNPredictor(256, num_classes + 1),
                               rpn_post_nms_top_n_train=300, rpn_pre_nms_top_n_test=300,
                               rpn_post_nms_top_n_test=150, box_batch_size_per_image=128,
                               box_score_thresh=0.01, **size)
        elif name.startswith("ssdlite"):
            model = torchvision.models.get_model(name, weights=None, weights_backbone=None,
                                                 num_classes=num_classes + 1)
        else:
            model = torchvision.models.get_model(name, weights=None, weights_backbone=None,
                                                 num_classes=num_classes + 1, **size)
        model = _make_ignore_aware(model)
    else:
        raise JobError(f"task={task!r}: use 'classification' or 'detection'.")
    if weights is not None:
        load_weights(model, weights)
    return model


def load_weights(model: nn.Module, path: str | Path) -> None:
    path = Path(path)
    if not path.is_file():
        raise JobError(f"weights file {path} not found; pass the path of a saved state_dict.")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a bad file
        raise JobError(f"{path}: cannot load weights ({exc}).") from exc
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    # a hardex_nb classifier is saved as Sequential(Normalize, net): keys start with "1."
    state = {(k[2:] if k.startswith("1.") else k): v for k, v in state.items()
             if not k.startswith("0.")}
    own = model.state_dict()
    usable = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    if not usable:
        raise JobError(f"{path}: no tensor in this file fits the model; is it for another "
                       "architecture?")
    model.load_state_dict(usable, strict=False)


def honors_ignore(name: str) -> bool:
    return name.startswith(IGNORE_AWARE)
