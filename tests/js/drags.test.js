// The Annotator's drags (annotator/drags.js) and view geometry (annotator/view.js), run by
// node's test runner: each drag is pressed, moved and released as the pointer would.
import assert from "node:assert/strict";
import { test } from "node:test";
import {
  CLICK,
  Draw,
  Move,
  Pan,
  Resize,
  Rotate,
  removeVertex,
  Vertex,
} from "../../hardex_nb/widgets/static/annotator/drags.js";
import {
  FIT_HEIGHT,
  fitHeight,
  fitScale,
  imagePoint,
  maxZoom,
} from "../../hardex_nb/widgets/static/annotator/view.js";

const ctx = { width: 320, height: 240, px: 1, label: "defect" };
const box = { ann_id: 7, kind: "box", label: "defect", x0: 10, y0: 20, x1: 50, y1: 60 };
const near = (a, b, eps = 1e-9) => Math.abs(a - b) < eps;

/** A stand-in overlay: remembers the attributes set on the element each selector finds. */
function overlay() {
  const set = {};
  return {
    set,
    querySelector: (sel) => ({
      setAttribute: (k, v) => {
        set[sel] = { ...set[sel], [k]: String(v) };
      },
    }),
  };
}

/** Press at `from`, move through `path`, release: the drag's outcome. */
function run(drag, path, c = ctx) {
  for (const p of path) drag.move(p, {});
  return drag.end(c);
}

test("drawing a box from any corner sends it in image order with the label for new shapes", () => {
  const out = run(new Draw([100, 90], "box"), [
    [80, 70],
    [40, 30],
  ]);
  assert.deepEqual(out, {
    send: { action: "add_box", kind: "box", label: "defect", x0: 40, y0: 30, x1: 100, y1: 90 },
  });
  const ignore = run(new Draw([0, 0], "ignore"), [[10, 10]]);
  assert.equal(ignore.send.kind, "ignore");
});

test("a press that moves under 2 screen px is a click: it selects, it draws nothing", () => {
  assert.deepEqual(run(new Draw([100, 90], "box"), [[101, 90.5]]), { select: [101, 90.5] });
  // at 4 image px per screen px (a large image shown small) 6 image px is still a click
  const far = run(new Draw([100, 90], "box"), [[106, 96]], { ...ctx, px: 4 });
  assert.ok("select" in far);
  assert.ok("send" in run(new Draw([100, 90], "box"), [[106, 96]], { ...ctx, px: 1 }));
});

test("a press on a shape forgives a hand's jitter: 4 px selects it, 8 px draws", () => {
  const jitter = run(new Draw([100, 90], "box", CLICK.onShape), [[104, 94]]);
  assert.deepEqual(jitter, { select: [104, 94] });
  assert.ok("send" in run(new Draw([100, 90], "box", CLICK.onShape), [[108, 98]]));
  assert.ok("send" in run(new Draw([100, 90], "box"), [[104, 94]])); // on empty image: a box
});

test("moving a box shows it translated, then sends it moved, kept inside the image", () => {
  const d = new Move(box, [30, 40]);
  d.move([50, 50], {});
  const svg = overlay();
  assert.equal(d.preview(svg), false);
  assert.equal(svg.set['[data-ann="7"]'].transform, "translate(20,10)");
  assert.deepEqual(d.end(ctx).send, {
    action: "update",
    ann_id: 7,
    x0: 30,
    y0: 30,
    x1: 70,
    y1: 70,
  });
  // dragged far past the right edge: the box stops at it, whole
  const out = run(new Move(box, [30, 40]), [[1000, 40]]).send;
  assert.deepEqual([out.x0, out.x1], [280, 320]);
});

test("a press on an unselected shape that hardly moves selects; past the click it moves", () => {
  // ctx.px image px per screen px: CLICK.onShape screen px either way is a click
  const k = CLICK.onShape * ctx.px;
  assert.deepEqual(run(new Move(box, [30, 40], CLICK.onShape), [[30 + k / 2, 40 + k / 2]]), {
    select: [30, 40],
  });
  const moved = run(new Move(box, [30, 40], CLICK.onShape), [[30 + 2 * k, 40]]).send;
  assert.equal(moved.x0, box.x0 + 2 * k);
  // the selected shape moves by any amount over half a pixel
  assert.ok("send" in run(new Move(box, [30, 40]), [[31, 40]]));
});

test("a move of half a pixel or less sends nothing", () => {
  assert.equal(run(new Move(box, [30, 40]), [[30.4, 40.5]]), null);
});

test("a polygon moves with all its rings", () => {
  const poly = {
    ...box,
    kind: "polygon",
    points: [
      [
        [10, 20],
        [50, 20],
        [10, 60],
      ],
      [
        [40, 50],
        [50, 50],
        [50, 60],
      ],
    ],
  };
  const out = run(new Move(poly, [0, 0]), [[5, 5]]).send;
  assert.deepEqual(out.points[1][0], [45, 55]);
  assert.equal(out.points.length, 2);
});

test("resizing by a corner past the opposite one still sends an ordered, clamped box", () => {
  const out = run(new Resize(box, "se"), [[0, 400]]).send;
  assert.deepEqual(out, { action: "update", ann_id: 7, x0: 0, y0: 20, x1: 10, y1: 240 });
  const svg = overlay();
  const d = new Resize(box, "nw");
  d.move([0, 0], {});
  d.preview(svg);
  assert.deepEqual(svg.set['[data-ann="7"] rect'], { x: "0", y: "0", width: "50", height: "60" });
});

test("a rotated box resizes in its own frame and keeps its angle", () => {
  const turned = { ...box, x0: 100, y0: 100, x1: 140, y1: 120, angle: 90 };
  // turned 90° about (120, 110): screen (110, 150) is its own corner (160, 120)
  const out = run(new Resize(turned, "se"), [[110, 150]]).send;
  assert.equal(out.angle, undefined); // the angle is not sent again: it stays
  assert.ok(near(out.x1 - out.x0, 60) && near(out.y1 - out.y0, 20)); // it grew along screen y
  assert.ok(near((out.x0 + out.x1) / 2, 120) && near((out.y0 + out.y1) / 2, 120));
  // a rotated box squeezed under a screen pixel is left as it was
  assert.equal(run(new Resize(turned, "se"), [[110, 90.5]]), null);
});

test("the rotation knob points away from the centre: up is 0°, right is 90°", () => {
  const up = run(new Rotate(box), [[30, 0]]).send;
  assert.deepEqual(up, { action: "update", ann_id: 7, angle: 0 });
  const d = new Rotate(box);
  d.move([100, 40], {});
  const svg = overlay();
  d.preview(svg);
  assert.equal(svg.set['[data-ann="7"] > g'].transform, "rotate(90 30 40)");
  assert.equal(d.end(ctx).send.angle, 90);
  assert.equal(run(new Rotate(box), [[0, 40]]).send.angle, 270);
});

test("dragging a vertex redraws the polygon as dragged and sends its one ring", () => {
  const tri = {
    ...box,
    kind: "polygon",
    points: [
      [10, 20],
      [50, 20],
      [10, 60],
    ],
  };
  const d = new Vertex(tri, 0, 1);
  d.move([70, 25], {});
  assert.equal(d.preview(overlay()), true);
  assert.deepEqual(d.drawn(tri).points[0][1], [70, 25]);
  assert.equal(d.drawn({ ...tri, ann_id: 8 }).points, tri.points); // other shapes as they are
  assert.deepEqual(tri.points[1], [50, 20]); // the annotation itself is untouched
  assert.deepEqual(d.end(ctx).send.points, [
    [10, 20],
    [70, 25],
    [10, 60],
  ]);
});

test("a press on a vertex that does not move it sends nothing", () => {
  const tri = {
    ...box,
    kind: "polygon",
    points: [
      [10, 20],
      [50, 20],
      [10, 60],
    ],
  };
  assert.equal(run(new Vertex(tri, 0, 1), []), null);
});

test("an edge's midpoint pressed adds a vertex there, moved or not; Alt+click removes one", () => {
  const tri = {
    ...box,
    kind: "polygon",
    points: [
      [10, 20],
      [50, 20],
      [10, 60],
    ],
  };
  assert.deepEqual(run(new Vertex(tri, 0, 1, [30, 20]), []).send.points, [
    [10, 20],
    [30, 20],
    [50, 20],
    [10, 60],
  ]);
  const dragged = run(new Vertex(tri, 0, 3, [10, 40]), [[2, 40]]).send.points;
  assert.deepEqual(dragged[3], [2, 40]);
  assert.equal(dragged.length, 4);
  assert.equal(removeVertex(tri, 0, 1), null); // a triangle keeps its three points
  const quad = { ...tri, points: [...tri.points, [0, 40]] };
  assert.deepEqual(removeVertex(quad, 0, 1).send.points, [
    [10, 20],
    [10, 60],
    [0, 40],
  ]);
});

test("panning scrolls the view opposite to the pointer and sends nothing", () => {
  const scroller = { scrollLeft: 100, scrollTop: 50 };
  const d = new Pan({ clientX: 500, clientY: 400 }, scroller);
  d.move([0, 0], { clientX: 460, clientY: 410 });
  assert.deepEqual(scroller, { scrollLeft: 140, scrollTop: 40 });
  assert.equal(d.end(ctx), null);
});

test("fit: the whole image in the panel, at most 640 px high; small images by whole steps", () => {
  assert.equal(fitScale(840, 4000, 3000), 0.21); // a 12 MP photo: the width decides
  assert.equal(fitScale(840, 1000, 3200), 0.2); // a tall scan: the height decides
  assert.equal(fitScale(840, 320, 240), 2); // 2.625 → 2: sharp, square pixels
  assert.equal(fitScale(840, 28, 28), 8); // a digit: at most 8×
});

test("fit is as tall as the window allows, within bounds", () => {
  assert.equal(fitHeight(1000), 1000 - FIT_HEIGHT.room);
  assert.equal(fitHeight(300), FIT_HEIGHT.min); // a small window: still a usable image
  assert.equal(fitHeight(5000), FIT_HEIGHT.max);
  // a 12 MP photo in a wide panel of a tall window: the height decides, and it is taller
  assert.ok(fitScale(2000, 4000, 3000, fitHeight(1400)) * 3000 > 640 + 500);
});

test("the image point under the pointer, kept inside the image", () => {
  const rect = { left: 100, top: 50, width: 640, height: 480 };
  assert.deepEqual(imagePoint(420, 290, rect, 320, 240), [160, 120]);
  assert.deepEqual(imagePoint(0, 9999, rect, 320, 240), [0, 240]);
});

test("zoom reaches 8 screen px per image px, or 8× fit for an image that is small already", () => {
  const base = fitScale(840, 4000, 3000); // 0.21 at fit
  assert.ok(Math.abs(base * maxZoom(base) - 8) < 1e-9); // 800% of the photo's own pixels
  assert.equal(maxZoom(fitScale(840, 28, 28)), 8); // a digit at 8× already: 8× fit more
});
