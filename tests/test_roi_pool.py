"""RoIAlign as two matrix products (training/roi_pool.py) against torchvision's own kernel."""

from collections import OrderedDict

import pytest
import torch
from torchvision.ops import MultiScaleRoIAlign
from torchvision.ops import roi_align as torchvision_roi_align

from hardex_nb.training import models
from hardex_nb.training.roi_pool import SeparableRoIAlign, separable_roi_align


def regions(n_images, k, image_size, seed):
    g = torch.Generator().manual_seed(seed)
    xy = torch.rand(k, 2, generator=g) * image_size * 0.9
    wh = torch.rand(k, 2, generator=g) * image_size * 0.4 + 0.2
    rois = torch.cat([torch.randint(0, n_images, (k, 1), generator=g).float(), xy, xy + wh], 1)
    # the border rules: a region past every edge, one wholly outside, one thinner than a pixel
    rois[0, 1:] = torch.tensor([-9.0, -7.0, image_size + 6.0, image_size + 11.0])
    rois[1, 1:] = torch.tensor([image_size + 30.0, -60.0, image_size + 90.0, -30.0])
    rois[2, 1:] = torch.tensor([5.0, 5.0, 5.3, 5.1])
    return rois


@pytest.mark.parametrize("aligned", [False, True])
@pytest.mark.parametrize(
    ("size", "scale", "sampling"), [(13, 0.25, 2), (8, 0.125, 1), (21, 0.5, 3)]
)
def test_values_and_gradients_are_torchvisions(size, scale, sampling, aligned):
    torch.manual_seed(size)
    features = torch.randn(3, 5, size, size + 3, dtype=torch.float64, requires_grad=True)
    rois = regions(3, 40, size / scale, seed=size).double()
    upstream = torch.randn(40, 5, 7, 6, dtype=torch.float64)

    ours = separable_roi_align(features, rois, (7, 6), scale, sampling, aligned)
    (grad_ours,) = torch.autograd.grad((ours * upstream).sum(), features)
    theirs = torchvision_roi_align(features, rois, (7, 6), scale, sampling, aligned)
    (grad_theirs,) = torch.autograd.grad((theirs * upstream).sum(), features)

    torch.testing.assert_close(ours, theirs)
    torch.testing.assert_close(grad_ours, grad_theirs)
    assert ours.abs().sum() > 0 and ours[1].abs().sum() == 0  # the one wholly outside pools 0


def test_an_image_without_regions_and_chunked_products_keep_the_order(monkeypatch):
    from hardex_nb.training import roi_pool

    monkeypatch.setattr(roi_pool, "CHUNK_ELEMENTS", 7 * 4 * 9 * 3)  # 3 regions per product
    features = torch.randn(3, 4, 9, 9)
    rois = regions(3, 17, 36, seed=3)
    rois[:, 0] = torch.where(rois[:, 0] == 1, 2.0, rois[:, 0])  # image 1 has none
    torch.testing.assert_close(
        separable_roi_align(features, rois, (7, 7), 0.25, 2),
        torchvision_roi_align(features, rois, (7, 7), 0.25, 2),
    )


def test_the_multiscale_pooler_matches_torchvisions_on_every_level():
    torch.manual_seed(0)
    names = ["0", "1", "2", "3"]
    # 480 px images: the finest level (120 × 120) exceeds the dense limit and takes
    # torchvision's kernel, the coarser ones the dense form
    feats = OrderedDict(
        (
            n,
            torch.randn(
                2, 8, 480 >> (2 + i), 480 >> (2 + i), dtype=torch.float64, requires_grad=True
            ),
        )
        for i, n in enumerate(names)
    )
    g = torch.Generator().manual_seed(1)
    boxes = []
    for _ in range(2):
        xy = torch.rand(60, 2, generator=g) * 400
        wh = torch.rand(60, 2, generator=g) ** 2 * 450 + 2  # small to large: every level
        whole = torch.tensor([[0.0, 0.0, 480.0, 480.0], [20.0, 10.0, 470.0, 475.0]])
        boxes.append(torch.cat([torch.cat([xy, (xy + wh).clamp(max=480)], 1), whole]).double())
    shapes = [(480, 480), (480, 480)]
    theirs_pool = MultiScaleRoIAlign(names, 7, 2)
    ours_pool = SeparableRoIAlign(names, 7, 2)
    theirs = theirs_pool(feats, boxes, shapes)
    ours = ours_pool(feats, boxes, shapes)
    torch.testing.assert_close(ours, theirs)
    levels = ours_pool.map_levels(boxes)
    assert set(levels.tolist()) == {0, 1, 2, 3}
    grads_theirs = torch.autograd.grad(theirs.square().sum(), list(feats.values()))
    grads_ours = torch.autograd.grad(ours.square().sum(), list(feats.values()))
    for a, b in zip(grads_ours, grads_theirs):
        torch.testing.assert_close(a, b)


def test_faster_rcnn_trains_with_it_and_exports_without_it():
    model = models.build_model(
        "fasterrcnn_resnet18_fpn", task="detection", num_classes=2, image_size=64
    )
    assert type(model.roi_heads.box_roi_pool) is SeparableRoIAlign
    plain = models.without_training_overrides(model)
    assert type(plain.roi_heads.box_roi_pool) is MultiScaleRoIAlign
    assert type(model.roi_heads.box_roi_pool) is SeparableRoIAlign  # the original keeps it
    model.eval()
    plain.eval()
    image = [torch.rand(3, 64, 64)]
    with torch.no_grad():
        a, b = model(image)[0], plain(image)[0]
    torch.testing.assert_close(a["boxes"], b["boxes"])
    torch.testing.assert_close(a["scores"], b["scores"])
