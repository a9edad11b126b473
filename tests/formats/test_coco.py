"""COCO JSON."""

import json

import numpy as np
from format_data import INSTANCES_COCO, instances_ds, rich_dataset


def test_coco_matches_pycocotools_reading(tmp_path):
    from pycocotools.coco import COCO

    ds = rich_dataset(tmp_path)
    ds.export_coco(tmp_path / "c", images=False)
    coco = COCO(str(tmp_path / "c" / "annotations.json"))
    assert len(coco.getAnnIds()) == len(ds.annotations)
    assert {c["name"] for c in coco.loadCats(coco.getCatIds())} == {"cat", "dog", "sign"}


def test_a_multi_polygon_coco_annotation_is_one_object_whose_box_is_its_bbox(tmp_path):
    ds = instances_ds(tmp_path)
    ds.import_coco(INSTANCES_COCO)
    doc = json.loads((INSTANCES_COCO).read_text())
    assert len(ds.annotations) == len(doc["annotations"]) == 12
    sofa = ds.annotations[ds.annotations["label"] == "sofa"].iloc[0]
    assert len(sofa["points"]) == 4
    np.testing.assert_allclose(
        [sofa.x0, sofa.y0, sofa.x1 - sofa.x0, sofa.y1 - sofa.y0],
        [18.0, 140.0, 460.0, 172.0],
        atol=1.5,
    )
