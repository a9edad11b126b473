/** The Annotator's overlay: geometry of shapes and the SVG drawing of one annotation. */
import { s } from "../dom.js";

export const COLORS = ["#2563eb", "#16a34a", "#9333ea", "#0891b2", "#ca8a04", "#db2777", "#4f46e5", "#65a30d", "#0d9488"];
export const HARD_COLORS = { false_positive: "#dc2626", missed: "#f97316" };

/** A polygon's rings: `points` is one ring [[x, y], ...] or, for an object in pieces, a list of rings. */
export function rings(points) {
  return Array.isArray(points[0][0]) ? points : [points];
}

/** Point (x, y) turned by `deg` degrees about (cx, cy), clockwise on screen as SVG's rotate(). */
export function turn([x, y], deg, [cx, cy]) {
  const t = (deg * Math.PI) / 180, dx = x - cx, dy = y - cy;
  return [cx + dx * Math.cos(t) - dy * Math.sin(t), cy + dx * Math.sin(t) + dy * Math.cos(t)];
}
export const centre = (a) => [(a.x0 + a.x1) / 2, (a.y0 + a.y1) / 2];
export const turns = (a) => (a.kind === "box" || a.kind === "text");

/**
 * One annotation as an SVG group `[data-ann]`: its shape, its label text, and when
 * selected its handles. A rotated box is its rectangle turned about its centre, handles
 * and all. `k` is image pixels per screen pixel (line widths stay constant on screen).
 * @param {any} a the annotation
 * @param {{color: string, selected: boolean, k: number, showLabels: boolean,
 *          onMove: Function, onRotate: Function, onResize: Function}} o
 */
export function drawAnnotation(a, o) {
  const { color, selected: sel, k } = o;
  const g = s("g", { "data-ann": a.ann_id, class: "shape" });
  const body = s("g", a.angle && turns(a) ? { transform: `rotate(${a.angle} ${centre(a).join(" ")})`, "data-angle": a.angle } : {});
  g.append(body);
  const common = { stroke: color, "stroke-width": (sel ? 3 : 2) * k, fill: a.kind === "ignore" ? "rgba(152,162,179,0.45)" : "rgba(0,0,0,0.001)",
    "stroke-dasharray": a.origin !== "human" ? `${6 * k} ${4 * k}` : "", cursor: "move" };
  const shape = a.points
    ? s("path", { d: rings(a.points).map((r) => "M" + r.map((p) => p.join(",")).join("L") + "Z").join(" "),
        "fill-rule": "evenodd", ...common })
    : s("rect", { x: a.x0, y: a.y0, width: a.x1 - a.x0, height: a.y1 - a.y0, ...common });
  shape.addEventListener("pointerdown", (ev) => o.onMove(ev, a));
  body.append(shape);
  if (o.showLabels) {
    const text = [a.kind === "ignore" ? "ignore" : a.label, a.score !== null ? a.score.toFixed(2) : null,
      a.hard_type !== "none" ? a.hard_type.replace("_", " ") : null, a.text ? `“${a.text}”` : null].filter(Boolean).join(" · ");
    const t = s("text", { x: a.x0 + 2 * k, y: Math.max(a.y0 - 4 * k, 12 * k), fill: color, "font-size": 13 * k, "font-weight": 600,
      stroke: "white", "stroke-width": 3 * k, "paint-order": "stroke" });
    t.textContent = text;
    body.append(t);
  }
  if (sel && turns(a)) {
    const [cx] = centre(a), top = a.y0 - 24 * k;
    body.append(s("line", { x1: cx, y1: a.y0, x2: cx, y2: top, stroke: color, "stroke-width": 2 * k }));
    const knob = s("circle", { cx, cy: top, r: 6 * k, fill: "white", stroke: color, "stroke-width": 2 * k,
      cursor: "grab", "data-handle": "rotate" });
    knob.addEventListener("pointerdown", (ev) => o.onRotate(ev, a));
    body.append(knob);
  }
  if (sel && !a.points) {
    for (const [cx, cy, corner] of [[a.x0, a.y0, "nw"], [a.x1, a.y0, "ne"], [a.x0, a.y1, "sw"], [a.x1, a.y1, "se"]]) {
      const hd = s("rect", { x: cx - 5 * k, y: cy - 5 * k, width: 10 * k, height: 10 * k, fill: "white", stroke: color,
        "stroke-width": 2 * k, cursor: `${corner}-resize`, "data-handle": corner });
      hd.addEventListener("pointerdown", (ev) => o.onResize(ev, a, corner));
      body.append(hd);
    }
  }
  return g;
}
