// The Annotator's overlay geometry (annotator/shapes.js), run by node's test runner.
import assert from "node:assert/strict";
import { test } from "node:test";
import {
  centre,
  labelText,
  extent,
  placeLabels,
  rings,
  turn,
  turns,
} from "../../hardex_nb/widgets/static/annotator/shapes.js";

const close = (a, b) => a.every((v, i) => Math.abs(v - b[i]) < 1e-9);

test("a polygon's rings: one ring, or the rings of an object in pieces", () => {
  const one = [
    [0, 0],
    [4, 0],
    [0, 3],
  ];
  assert.deepEqual(rings(one), [one]);
  assert.deepEqual(rings([one, one]), [one, one]);
});

test("turn is clockwise on screen, as SVG's rotate(), about the given centre", () => {
  assert.ok(close(turn([2, 1], 90, [1, 1]), [1, 2])); // right of centre goes below it
  assert.ok(close(turn([2, 1], 360, [1, 1]), [2, 1]));
  assert.ok(close(turn([3, 5], -90, [3, 3]), [5, 3]));
});

test("only boxes and text boxes turn; the centre of a box", () => {
  assert.deepEqual(centre({ x0: 2, y0: 4, x1: 6, y1: 10 }), [4, 7]);
  assert.equal(turns({ kind: "box" }), true);
  assert.equal(turns({ kind: "text" }), true);
  assert.equal(turns({ kind: "polygon" }), false);
  assert.equal(turns({ kind: "ignore" }), false);
});

test("a label says its number, score, hard type and text", () => {
  const a = {
    kind: "box",
    label: "hole",
    score: 0.7,
    hard_type: "false_positive",
    text: "A1",
    origin: "human",
  };
  assert.equal(labelText(a, 2), "hole 2 · 0.70 · false positive · “A1”");
  // a model's own box is never "missed": it is one the model was unsure of
  assert.equal(
    labelText({ ...a, origin: "V1", hard_type: "missed" }, 0),
    "hole · 0.70 · possible object · “A1”",
  );
  assert.equal(labelText({ ...a, origin: "V1" }, 0), "hole · 0.70 · doubtful · “A1”");
  assert.equal(labelText({ ...a, score: null, hard_type: "none", text: null }, 0), "hole");
  assert.equal(labelText({ kind: "ignore", score: null, hard_type: "none" }, 0), "ignore");
});

test("labels of boxes at one place are stacked apart, and stay inside the image", () => {
  const items = [1, 2, 3].map((id) => ({
    a: { ann_id: id, x0: 50, y0: 40, x1: 90, y1: 80 },
    text: "scratch",
  }));
  const placed = placeLabels(items, 1, 200, 100);
  const ys = [1, 2, 3].map((id) => placed.get(id).y);
  assert.equal(new Set(ys).size, 3, `labels overlap: ${ys}`);
  for (const id of [1, 2, 3]) {
    const { x, y } = placed.get(id);
    assert.ok(x >= 0 && y <= 100 - 3, `label ${id} at (${x}, ${y}) leaves the image`);
  }
  const edge = placeLabels(
    [{ a: { ann_id: 9, x0: 195, y0: 2 }, text: "a long label" }],
    1,
    200,
    100,
  );
  const { x } = edge.get(9);
  assert.ok(
    x + "a long label".length * 7.6 + 4 <= 200 + 1e-9,
    "a label at the right edge stays in",
  );
});

test("a crowd of boxes: labels never overlap, and those with no free place are left out", () => {
  // 30 small boxes on one row, each 12 px apart: most labels cannot fit
  const items = Array.from({ length: 30 }, (_, i) => ({
    a: { ann_id: i, x0: 10 + 12 * i, y0: 40, x1: 20 + 12 * i, y1: 50 },
    text: "scratch 0.70 · possible object",
  }));
  const placed = [...placeLabels(items, 1, 400, 300).values()];
  assert.ok(placed.length >= 1 && placed.length < 30, `${placed.length} placed`);
  const w = items[0].text.length * 7.6 + 4;
  for (const [i, p] of placed.entries())
    for (const q of placed.slice(i + 1))
      assert.ok(
        p.x + w <= q.x || q.x + w <= p.x || Math.abs(p.y - q.y) >= 15,
        `labels overlap at (${p.x}, ${p.y}) and (${q.x}, ${q.y})`,
      );
});

test("a turned box's label sits above its corners as drawn", () => {
  const a = { ann_id: 1, kind: "box", x0: 100, y0: 100, x1: 200, y1: 120, angle: 90 };
  // turned 90° about (150, 110): drawn from y 60 to 160
  assert.ok(close(Object.values(extent(a)), [140, 60, 160, 160]));
  const { y } = placeLabels([{ a, text: "ship" }], 1, 400, 300).get(1);
  assert.equal(y, 60 - 4);
});
