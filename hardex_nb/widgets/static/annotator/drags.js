/** The Annotator's pointer drags, one class per kind: made on the press, fed each image
 * point the pointer moves to, asked on release what to send to Python.
 *
 * Every drag has the same four parts:
 * - `move(point, ev)`: the pointer is at image point `point` (clamped to the image);
 * - `preview(svg)`: show the drag so far on the overlay; true when the overlay must be
 *   drawn again instead (the shape under the drag changes its outline);
 * - `drawn(a)`: annotation `a` as the overlay draws it while the drag goes on;
 * - `end(ctx)`: the {@link Outcome} of the drag; `ctx` holds the image's `width` and
 *   `height`, `px` (image pixels per screen pixel) and the `label` for new shapes.
 * None of them touches anything but the overlay they are given, so they run outside a
 * browser too (tests/js/drags.test.js). */
import { s } from "../dom.js";
import { centre, rings, turn } from "./shapes.js";

/** @typedef {import("./messages.js").Annotation} Annotation */
/** @typedef {import("./messages.js").Box} Box */
/** @typedef {import("./messages.js").Outcome} Outcome */
/** @typedef {import("./messages.js").Point} Point */
/** @typedef {{width: number, height: number, px: number, label: string | null}} EndContext */

const clamp = (v, hi) => Math.min(Math.max(v, 0), hi);
/** One ring stays one ring; an object in pieces stays a list of rings. */
const asPoints = (rs) => (rs.length === 1 ? rs[0] : rs);
const node = (svg, id, inner = "") => svg.querySelector(`[data-ann="${id}"]${inner}`);

class Drag {
  move(_point, _ev) {}
  preview(_svg) {
    return false;
  }
  /** @param {Annotation} a */
  drawn(a) {
    return a;
  }
  /** @returns {Outcome} */
  end(_ctx) {
    return null;
  }
}

/** Screen px a press may move and still be a click: on empty image, and on a shape (where
 * a hand's jitter must select the shape, not draw a sliver of a box over it). */
export const CLICK = { empty: 2, onShape: 6 };

/** A new box (or ignore region) from the press to the pointer. */
export class Draw extends Drag {
  /** @param {Point} start @param {"box" | "ignore"} kind
   * @param {number} click screen px under which the press was a click (either side) */
  constructor([x, y], kind, click = CLICK.empty) {
    super();
    Object.assign(this, { x0: x, y0: y, x, y, kind, click });
  }
  move([x, y]) {
    this.x = x;
    this.y = y;
  }
  /** @returns {Box} */
  box() {
    const { x0, y0, x, y } = this;
    return { x0: Math.min(x0, x), y0: Math.min(y0, y), x1: Math.max(x0, x), y1: Math.max(y0, y) };
  }
  preview() {
    return true; // the overlay draws the rubber band (sketch)
  }
  /** The rubber band, `k` image px per screen px. */
  sketch(k) {
    const b = this.box();
    return s("rect", {
      x: b.x0,
      y: b.y0,
      width: b.x1 - b.x0,
      height: b.y1 - b.y0,
      fill: "rgba(37,99,235,0.15)",
      stroke: "#2563eb",
      "stroke-width": 2 * k,
    });
  }
  /** Under `click` screen px either way it was a click: select what lies there. */
  end({ px, label }) {
    const box = this.box(),
      k = this.click * px;
    if (box.x1 - box.x0 < k || box.y1 - box.y0 < k) return { select: [this.x, this.y] };
    return { send: { action: "add_box", kind: this.kind, label, ...box } };
  }
}

/** A shape moved whole by a press on it; it stays inside the image (a rotated box: its
 * centre). A press on a shape that was not selected moves it only past `click` screen px:
 * under that it was a click, which selects what lies there. */
export class Move extends Drag {
  /** @param {Annotation} a @param {Point} start
   * @param {number} click screen px under which the press was a click (0: the shape was
   * selected already, and any move past half a pixel moves it) */
  constructor(a, [x, y], click = 0) {
    super();
    Object.assign(this, { a, x0: x, y0: y, dx: 0, dy: 0, click });
  }
  move([x, y]) {
    this.dx = x - this.x0;
    this.dy = y - this.y0;
  }
  preview(svg) {
    node(svg, this.a.ann_id)?.setAttribute("transform", `translate(${this.dx},${this.dy})`);
    return false;
  }
  end({ width, height, px }) {
    const k = this.click * px;
    if (k > 0 && Math.abs(this.dx) < k && Math.abs(this.dy) < k)
      return { select: [this.x0, this.y0] };
    if (Math.abs(this.dx) <= 0.5 && Math.abs(this.dy) <= 0.5) return null;
    const a = this.a;
    const [cx, cy] = centre(a);
    const dx = a.angle
      ? clamp(cx + this.dx, width) - cx
      : clamp(a.x0 + this.dx, width - (a.x1 - a.x0)) - a.x0;
    const dy = a.angle
      ? clamp(cy + this.dy, height) - cy
      : clamp(a.y0 + this.dy, height - (a.y1 - a.y0)) - a.y0;
    const msg = {
      action: "update",
      ann_id: a.ann_id,
      x0: a.x0 + dx,
      y0: a.y0 + dy,
      x1: a.x1 + dx,
      y1: a.y1 + dy,
    };
    if (a.points)
      msg.points = asPoints(rings(a.points).map((r) => r.map(([x, y]) => [x + dx, y + dy])));
    return { send: msg };
  }
}

/** One corner handle of a box dragged; a rotated box resizes in its own (unturned) frame. */
export class Resize extends Drag {
  /** @param {Annotation} a @param {string} corner "nw", "ne", "sw" or "se" */
  constructor(a, corner) {
    super();
    Object.assign(this, { a, corner, box: { x0: a.x0, y0: a.y0, x1: a.x1, y1: a.y1 } });
  }
  move([x, y]) {
    const a = this.a;
    const [lx, ly] = a.angle ? turn([x, y], -a.angle, centre(a)) : [x, y];
    if (this.corner.includes("w")) this.box.x0 = lx;
    else this.box.x1 = lx;
    if (this.corner.includes("n")) this.box.y0 = ly;
    else this.box.y1 = ly;
  }
  preview(svg) {
    const r = node(svg, this.a.ann_id, " rect");
    if (r) {
      const b = this.box;
      r.setAttribute("x", Math.min(b.x0, b.x1));
      r.setAttribute("y", Math.min(b.y0, b.y1));
      r.setAttribute("width", Math.abs(b.x1 - b.x0));
      r.setAttribute("height", Math.abs(b.y1 - b.y0));
    }
    return false;
  }
  end({ width, height, px }) {
    const b = this.box,
      a = this.a;
    if (a.angle) {
      // the resized box's centre, turned back into the image's frame; the angle stays
      const w = Math.abs(b.x1 - b.x0) / 2,
        hh = Math.abs(b.y1 - b.y0) / 2;
      const [cx, cy] = turn([(b.x0 + b.x1) / 2, (b.y0 + b.y1) / 2], a.angle, centre(a));
      if (w < px || hh < px) return null;
      return {
        send: {
          action: "update",
          ann_id: a.ann_id,
          x0: cx - w,
          y0: cy - hh,
          x1: cx + w,
          y1: cy + hh,
        },
      };
    }
    return {
      send: {
        action: "update",
        ann_id: a.ann_id,
        x0: clamp(Math.min(b.x0, b.x1), width),
        y0: clamp(Math.min(b.y0, b.y1), height),
        x1: clamp(Math.max(b.x0, b.x1), width),
        y1: clamp(Math.max(b.y0, b.y1), height),
      },
    };
  }
}

/** A box's knob dragged around its centre: the knob points away from it, up is angle 0. */
export class Rotate extends Drag {
  /** @param {Annotation} a */
  constructor(a) {
    super();
    Object.assign(this, { a, angle: a.angle || 0 });
  }
  move([x, y]) {
    const [cx, cy] = centre(this.a);
    this.angle = ((Math.atan2(y - cy, x - cx) * 180) / Math.PI + 90 + 360) % 360;
  }
  preview(svg) {
    const [cx, cy] = centre(this.a);
    node(svg, this.a.ann_id, " > g")?.setAttribute(
      "transform",
      `rotate(${this.angle} ${cx} ${cy})`,
    );
    return false;
  }
  end() {
    const angle = Math.round(this.angle * 100) / 100;
    return { send: { action: "update", ann_id: this.a.ann_id, angle } };
  }
}

/** One vertex of a polygon dragged (ring `ring`, point `index`). With `insert`, a new vertex
 * at that point goes in at `index` first (an edge's midpoint handle): that is an edit even
 * when it does not move. */
export class Vertex extends Drag {
  /** @param {Annotation} a @param {number} ring @param {number} index
   * @param {Point | null} insert */
  constructor(a, ring, index, insert = null) {
    super();
    const points = rings(a.points).map((r) => r.map((p) => [...p]));
    if (insert) points[ring].splice(index, 0, [...insert]);
    Object.assign(this, { a, ring, index, points, moved: insert !== null });
  }
  move(point) {
    this.points[this.ring][this.index] = point;
    this.moved = true;
  }
  preview() {
    return true; // the polygon's outline changes: draw it again with drawn()
  }
  drawn(a) {
    return a.ann_id === this.a.ann_id ? { ...a, points: this.points } : a;
  }
  /** A press on a vertex that did not move it changes nothing (no update, no undo step). */
  end() {
    if (!this.moved) return null;
    return { send: { action: "update", ann_id: this.a.ann_id, points: asPoints(this.points) } };
  }
}

/** Alt+click on a vertex: the polygon without it, or null when its ring would keep fewer
 * than 3 points. @param {Annotation} a @returns {Outcome} */
export function removeVertex(a, ring, index) {
  const points = rings(a.points).map((r) => r.map((p) => [...p]));
  if (points[ring].length <= 3) return null;
  points[ring].splice(index, 1);
  return { send: { action: "update", ann_id: a.ann_id, points: asPoints(points) } };
}

/** The view scrolled with the pointer (the pan tool, or Space held). */
export class Pan extends Drag {
  /** @param {{clientX: number, clientY: number}} ev the press
   * @param {{scrollLeft: number, scrollTop: number}} scroller the scrolled view */
  constructor(ev, scroller) {
    super();
    Object.assign(this, {
      scroller,
      sx: ev.clientX,
      sy: ev.clientY,
      left: scroller.scrollLeft,
      top: scroller.scrollTop,
    });
  }
  move(_point, ev) {
    this.scroller.scrollLeft = this.left - (ev.clientX - this.sx);
    this.scroller.scrollTop = this.top - (ev.clientY - this.sy);
  }
}
