/** The Annotator's overlay: geometry of shapes and the SVG drawing of one annotation. */
import { s } from "../dom.js";

export const COLORS = [
  "#2563eb",
  "#16a34a",
  "#9333ea",
  "#0891b2",
  "#ca8a04",
  "#db2777",
  "#4f46e5",
  "#65a30d",
  "#0d9488",
];
export const HARD_COLORS = { false_positive: "#dc2626", missed: "#f97316" };

/** A polygon's rings: `points` is one ring [[x, y], ...] or, for an object in pieces, a list of rings. */
export function rings(points) {
  return Array.isArray(points[0][0]) ? points : [points];
}

/** Point (x, y) turned by `deg` degrees about (cx, cy), clockwise on screen as SVG's rotate(). */
export function turn([x, y], deg, [cx, cy]) {
  const t = (deg * Math.PI) / 180,
    dx = x - cx,
    dy = y - cy;
  return [cx + dx * Math.cos(t) - dy * Math.sin(t), cy + dx * Math.sin(t) + dy * Math.cos(t)];
}
export const centre = (a) => [(a.x0 + a.x1) / 2, (a.y0 + a.y1) / 2];
export const turns = (a) => a.kind === "box" || a.kind === "text";

/**
 * One annotation as an SVG group `[data-ann]`: its shape, its label text, and when
 * selected its handles. A rotated box is its rectangle turned about its centre, handles
 * and all. `k` is image pixels per screen pixel (line widths stay constant on screen).
 * @param {any} a the annotation
 * @param {{color: string, selected: boolean, k: number, locked: boolean,
 *          label: {text: string, x: number, y: number} | undefined, title?: string,
 *          onMove: Function, onRotate: Function, onResize: Function, onVertex: Function,
 *          onInsert: Function}} o
 */
export function drawAnnotation(a, o) {
  const { color, selected: sel, k } = o;
  const g = s("g", {
    "data-ann": a.ann_id,
    class: "shape",
    ...(o.locked ? { "data-locked": "" } : {}),
  });
  const body = s(
    "g",
    a.angle && turns(a)
      ? { transform: `rotate(${a.angle} ${centre(a).join(" ")})`, "data-angle": a.angle }
      : {},
  );
  g.append(body);
  const common = {
    stroke: color,
    "stroke-width": (sel ? 3 : 2) * k,
    fill: a.kind === "ignore" ? "rgba(152,162,179,0.45)" : "rgba(0,0,0,0.001)",
    "stroke-dasharray": a.origin !== "human" ? `${6 * k} ${4 * k}` : "",
    cursor: o.locked ? "default" : "move",
  };
  const shape = a.points
    ? s("path", {
        d: rings(a.points)
          .map((r) => `M${r.map((p) => p.join(",")).join("L")}Z`)
          .join(" "),
        "fill-rule": "evenodd",
        ...common,
      })
    : s("rect", { x: a.x0, y: a.y0, width: a.x1 - a.x0, height: a.y1 - a.y0, ...common });
  shape.addEventListener("pointerdown", (ev) => o.onMove(ev, a));
  if (o.title) shape.append(Object.assign(s("title"), { textContent: o.title }));
  body.append(shape);
  if (o.label) {
    const t = s("text", {
      x: o.label.x,
      y: o.label.y,
      fill: color,
      "font-size": 13 * k,
      "font-weight": 600,
      stroke: "white",
      "stroke-width": 3 * k,
      "paint-order": "stroke",
      "pointer-events": "none",
    });
    t.textContent = o.label.text;
    g.append(t); // upright, outside the turned body
  }
  if (o.locked) return g; // a locked object shows no handles
  if (sel && turns(a)) {
    const [cx] = centre(a),
      top = a.y0 - 24 * k;
    body.append(
      s("line", { x1: cx, y1: a.y0, x2: cx, y2: top, stroke: color, "stroke-width": 2 * k }),
    );
    const knob = s("circle", {
      cx,
      cy: top,
      r: 6 * k,
      fill: "white",
      stroke: color,
      "stroke-width": 2 * k,
      cursor: "grab",
      "data-handle": "rotate",
    });
    knob.addEventListener("pointerdown", (ev) => o.onRotate(ev, a));
    body.append(knob);
  }
  if (sel && !a.points) {
    for (const [cx, cy, corner] of [
      [a.x0, a.y0, "nw"],
      [a.x1, a.y0, "ne"],
      [a.x0, a.y1, "sw"],
      [a.x1, a.y1, "se"],
    ]) {
      const hd = s("rect", {
        x: cx - 5 * k,
        y: cy - 5 * k,
        width: 10 * k,
        height: 10 * k,
        fill: "white",
        stroke: color,
        "stroke-width": 2 * k,
        cursor: `${corner}-resize`,
        "data-handle": corner,
      });
      hd.addEventListener("pointerdown", (ev) => o.onResize(ev, a, corner));
      body.append(hd);
    }
  }
  if (sel && a.points) {
    // a polygon's vertices, each dragged on its own
    rings(a.points).forEach((ring, r) => {
      ring.forEach(([x, y], i) => {
        const v = s("circle", {
          cx: x,
          cy: y,
          r: 5 * k,
          fill: "white",
          stroke: color,
          "stroke-width": 2 * k,
          cursor: "crosshair",
          "data-handle": "vertex",
          "data-ring": r,
          "data-index": i,
        });
        v.addEventListener("pointerdown", (ev) => o.onVertex(ev, a, r, i));
        body.append(v);
      });
      // each edge's midpoint: dragged, it becomes a new vertex there
      ring.forEach(([x, y], i) => {
        const [nx, ny] = ring[(i + 1) % ring.length];
        const mid = [(x + nx) / 2, (y + ny) / 2];
        const m = s("circle", {
          cx: mid[0],
          cy: mid[1],
          r: 4 * k,
          fill: color,
          "fill-opacity": 0.5,
          stroke: "white",
          "stroke-width": 1 * k,
          cursor: "copy",
          "data-handle": "midpoint",
          "data-ring": r,
          "data-index": i + 1,
        });
        m.addEventListener("pointerdown", (ev) => o.onInsert(ev, a, r, i + 1, mid));
        body.append(m);
      });
    });
  }
  return g;
}

/** What a box's hard type says. A person's mark is the documents' word; on a model's own
 * box "missed" would be a contradiction (missed means an object the model did not find):
 * there it is a box the model was unsure of, below its threshold or seen in one view only,
 * and "false positive" is a confident box its other views do not find. */
export function hardText(a) {
  if (!a.hard_type || a.hard_type === "none") return null;
  if (a.origin === "human") return a.hard_type.replace("_", " ");
  return a.hard_type === "missed" ? "possible object" : "doubtful";
}

/** What an object's label says: its label (numbered when others share it), score, hard
 * type and OCR text. */
export function labelText(a, number) {
  const name = a.kind === "ignore" ? "ignore" : `${a.label}${number ? ` ${number}` : ""}`;
  return [
    name,
    a.score !== null ? a.score.toFixed(2) : null,
    hardText(a),
    a.text ? `“${a.text}”` : null,
  ]
    .filter(Boolean)
    .join(" · ");
}

/** The upright rectangle around a shape as drawn (a rotated box: its turned corners). */
export function extent(a) {
  if (!a.angle || !turns(a)) return a;
  const c = centre(a);
  const corners = [
    [a.x0, a.y0],
    [a.x1, a.y0],
    [a.x0, a.y1],
    [a.x1, a.y1],
  ].map((p) => turn(p, a.angle, c));
  const xs = corners.map((p) => p[0]),
    ys = corners.map((p) => p[1]);
  return { x0: Math.min(...xs), y0: Math.min(...ys), x1: Math.max(...xs), y1: Math.max(...ys) };
}

/**
 * Where each label goes: upright, above its shape as drawn (inside the top when there is
 * no room), moved left to stay inside the image, and moved down past labels already placed
 * so none overlap. A label that finds no free place within its shape's height (many boxes
 * in a crowd) is left out rather than printed over another: the objects list names it, and
 * so does the shape's hover text. Widths are estimated from the text (13 px bold); `k` is
 * image px per screen px.
 * @param {{a: any, text: string}[]} items
 * @returns {Map<number, {text: string, x: number, y: number}>} by ann_id
 */
export function placeLabels(items, k, width, height) {
  const placed = [],
    out = new Map(),
    line = 15 * k;
  for (const { a, text } of items) {
    const b = extent(a);
    const w = text.length * 7.6 * k + 4 * k;
    const x = Math.min(Math.max(b.x0 + 2 * k, 0), Math.max(0, width - w));
    let y = b.y0 - 4 * k >= 12 * k ? b.y0 - 4 * k : b.y0 + 13 * k; // the text's baseline
    const hits = () =>
      placed.some((r) => x < r.x1 && x + w > r.x0 && y - 12 * k < r.y1 && y + 3 * k > r.y0);
    const lowest = Math.min(Math.max(b.y1, y), height - 3 * k);
    while (hits() && y + line <= lowest) y += line;
    y = Math.min(y, height - 3 * k);
    if (hits()) continue;
    placed.push({ x0: x, y0: y - 12 * k, x1: x + w, y1: y + 3 * k });
    out.set(a.ann_id, { text, x, y });
  }
  return out;
}

/** An SVG rect over box `b` (x0, y0, x1, y1 in image px) with the attributes `attrs`. */
export function boxRect(b, attrs) {
  return s("rect", { x: b.x0, y: b.y0, width: b.x1 - b.x0, height: b.y1 - b.y0, ...attrs });
}

/**
 * A run's prediction on a test image: a dotted outline in its label's colour, its label
 * and score inside the top-left corner; it takes no clicks (the labels are what is edited).
 * @param {{label: string, x0: number, y0: number, x1: number, y1: number, score: number}} p
 * @param {{color: string, k: number, by: string}} o
 */
export function drawPrediction(p, { color, k, by }) {
  const g = s("g", { "data-predicted": p.label, "pointer-events": "none" });
  g.append(
    boxRect(p, {
      fill: "none",
      stroke: color,
      "stroke-width": 1.5 * k,
      "stroke-dasharray": `${1.5 * k} ${3 * k}`,
    }),
  );
  const text = `${p.label} ${p.score.toFixed(2)}`;
  const label = s("text", {
    x: p.x0 + 3 * k,
    y: p.y0 + 12 * k,
    "font-size": 11 * k,
    fill: "#fff",
    stroke: color,
    "stroke-width": 3 * k,
    "paint-order": "stroke",
    class: "predicted-label",
  });
  label.textContent = text;
  const title = s("title");
  title.textContent = `${by} predicted ${text}`;
  g.append(label, title);
  return g;
}
