/** hardex_nb Annotator and Review: one image at a time, edits sent to Python at once.
 * The parts live in annotator/: the view (layout, zoom, crop, minimap) in view.js, one
 * class per pointer drag in drags.js, the overlay's shapes in shapes.js, the side panel's
 * parts in side.js, the keys in the one table of keys.js, and the messages' types in
 * messages.js. This module wires them to the model. */
import { connection, h, keepKeys, messages, s, trainBar } from "./dom.js";
import { CLICK, Draw, Move, Pan, Resize, Rotate, removeVertex, Vertex } from "./annotator/drags.js";
import { actionFor, chordFor, keyHelp } from "./annotator/keys.js";
import {
  COLORS,
  HARD_COLORS,
  boxRect,
  drawAnnotation,
  drawPrediction,
  labelText,
  placeLabels,
  turns,
} from "./annotator/shapes.js";
import { TOOLS, hardTypeSelect, labelEditor } from "./annotator/side.js";
import { rememberTour, tourCard, tourDone, tourSteps } from "./annotator/tour.js";
import { createView } from "./annotator/view.js";

/** @typedef {import("./annotator/messages.js").Annotation} Annotation */

/** Objects copied with Ctrl+C, for Ctrl+V on any image of any Annotator on this page. */
const clipboard = [];

export default {
  render({ model, el }) {
    const review = model.get("mode") === "review";
    const root = keepKeys(h("div", { class: "hx hx-annotator", tabindex: 0 }));
    el.append(root);
    const conn = connection(model, root);
    const state = {
      tool: "box",
      label: null,
      selected: null,
      showLabels: true,
      showAll: true,
      /** the drag under way: one of annotator/drags.js */
      drag: null,
      poly: [],
      lastPoint: 0,
      asking: false,
      askingClear: false,
      wide: false,
      hidden: new Set(),
      locked: new Set(),
      space: false,
      find: "",
      /** a test image's predictions drawn over it (`m` or the checkbox) */
      showPredicted: true,
      /** the point tool's proposed box, until kept (Enter, a click inside) or dropped (Esc) */
      proposal: null,
      /** the first-run tour's step shown, null when closed (annotator/tour.js) */
      tour: tourDone() ? null : 0,
    }; // hide/lock: this view only

    /** VOC's object attributes, kept on every object (evaluation honours `difficult`). */
    const ATTRIBUTES = ["difficult", "truncated", "occluded"];
    const labels = () => model.get("labels");
    const detection = () => model.get("task") === "detection";
    const sample = () => model.get("sample");
    const colorOf = (label) => COLORS[Math.max(0, labels().indexOf(label)) % COLORS.length];

    const view = createView({
      model,
      conn,
      sample,
      panning: () => state.tool === "pan",
      redraw: (withSide) => {
        renderOverlay();
        if (withSide) renderSide();
      },
    });
    const { svg } = view;
    const header = h("div", { class: "bar" });
    const side = h("div", { class: "side" });
    side.addEventListener("hard-type", (e) => conn.send({ action: "set_hard_type", ...e.detail }));
    // The side panel is not redrawn under the user: while its slider is dragged or an OCR field
    // or the label finder has focus, a change (a reply, another writer) redraws it when the
    // drag or typing ends.
    const held = { slider: false, text: false, pending: false };
    const stop = new AbortController();
    const releaseSide = () => {
      if (held.pending && !held.slider && !held.text) {
        held.pending = false;
        renderSide();
      }
    };
    const releaseSlider = () => {
      if (held.slider) {
        held.slider = false;
        releaseSide();
      }
    };
    side.addEventListener("pointerdown", (ev) => {
      if (ev.target.matches("[data-role=threshold]")) held.slider = true;
    });
    for (const type of ["pointerup", "pointercancel"])
      window.addEventListener(type, releaseSlider, { signal: stop.signal });
    // (the label finder too: a redraw while one types into it would drop its focus, and the
    // next letters would reach the image's keys)
    const typed = "input[data-text], [data-role=label-find]";
    side.addEventListener("focusin", (ev) => {
      if (ev.target.matches(typed)) held.text = true;
    });
    side.addEventListener("focusout", (ev) => {
      if (ev.target.matches(typed)) {
        held.text = false;
        releaseSide();
      }
    });
    root.append(header, h("div", { class: "layout" }, view.area, side));
    messages(model, root);

    /** Replace `el`'s children; a focused control among them that goes (a button whose
     * click is answered by this redraw) hands the focus back to the widget, so keys keep
     * reaching it instead of the notebook. */
    function redraw(el, children) {
      const focused = el.contains(document.activeElement);
      el.replaceChildren(...children);
      if (focused && !el.contains(document.activeElement)) root.focus({ preventScroll: true });
    }

    // -- drawing ----------------------------------------------------------------------------
    function visible(a) {
      return a.origin === "human" || a.score === null || a.score >= model.get("threshold");
    }
    /** The drawing tools' crosshair: two dashed lines across the image at the pointer. */
    const DRAWING = ["box", "polygon", "ignore", "ignore_polygon", "point"];
    const drawing = () => detection() && DRAWING.includes(state.tool) && !state.space;
    const crossH = s("line", {}),
      crossV = s("line", {});
    const cross = s("g", {
      "data-role": "crosshair",
      "pointer-events": "none",
      visibility: "hidden",
    });
    cross.append(crossH, crossV);
    function drawCross([x, y]) {
      const smp = sample(),
        k = view.px();
      const style = {
        stroke: "#fff",
        "stroke-opacity": 0.75,
        "stroke-width": k,
        "stroke-dasharray": `${4 * k} ${4 * k}`,
      };
      for (const [line, at] of [
        [crossH, { x1: 0, x2: smp.width, y1: y, y2: y }],
        [crossV, { x1: x, x2: x, y1: 0, y2: smp.height }],
      ])
        for (const [k2, v] of Object.entries({ ...style, ...at })) line.setAttribute(k2, v);
      cross.setAttribute("visibility", "visible");
    }

    /** A test image's predictions at or above the score threshold. */
    function predictedShown() {
      return model.get("predicted").filter((p) => p.score >= model.get("threshold"));
    }
    /** On a test image: what the newest tested run predicted, each with its confidence. */
    function predictedPanel() {
      const by = model.get("predicted_by");
      if (!by) return null;
      const all = model.get("predicted");
      if (!detection()) {
        const [top] = all;
        const agrees = top && top.label === sample().label;
        return h(
          "div",
          { "data-role": "predicted" },
          h("h4", {}, `Test prediction (${by})`),
          top
            ? h(
                "div",
                { class: agrees ? "" : "disagrees" },
                `${top.label} ${(top.score * 100).toFixed(1)}%`,
                agrees ? " (agrees with the label)" : " (the label says otherwise)",
              )
            : h("div", { class: "muted" }, "no prediction stored for this image"),
        );
      }
      const shown = predictedShown();
      const toggle = h("input", {
        type: "checkbox",
        checked: state.showPredicted,
        "data-role": "show-predicted",
        onchange: (e) => {
          state.showPredicted = e.target.checked;
          renderOverlay();
        },
      });
      return h(
        "div",
        { "data-role": "predicted" },
        h("h4", {}, `Test predictions (${by})`),
        h(
          "label",
          {},
          toggle,
          ` ${shown.length} at or above the threshold, dotted (m)`,
          all.length > shown.length ? `; ${all.length - shown.length} below` : "",
        ),
      );
    }
    function renderOverlay() {
      svg.replaceChildren();
      const k = view.px(),
        smp = sample();
      const shown = (state.showAll ? model.get("annotations") : []).filter(
        (a) => visible(a) && !state.hidden.has(a.ann_id),
      );
      const numbers = numbering();
      const texts = new Map(shown.map((a) => [a.ann_id, labelText(a, numbers.get(a.ann_id))]));
      const placed = state.showLabels
        ? placeLabels(
            shown.map((a) => ({ a, text: texts.get(a.ann_id) })),
            k,
            smp.width,
            smp.height,
          )
        : new Map();
      for (const a of shown) {
        const color =
          a.kind === "ignore" ? "#98a2b3" : HARD_COLORS[a.hard_type] || colorOf(a.label);
        const g = drawAnnotation(state.drag ? state.drag.drawn(a) : a, {
          color,
          selected: state.selected === a.ann_id,
          k,
          locked: state.locked.has(a.ann_id),
          label: placed.get(a.ann_id),
          title: texts.get(a.ann_id),
          onMove: startMove,
          onRotate: (ev, a) => start(ev, a, () => new Rotate(a)),
          onResize: (ev, a, corner) => start(ev, a, () => new Resize(a, corner)),
          onVertex: (ev, a, ring, index) => {
            if (!ev.altKey) return start(ev, a, () => new Vertex(a, ring, index));
            // Alt+click removes the vertex
            ev.stopPropagation();
            ev.preventDefault();
            if (state.locked.has(a.ann_id)) return;
            const out = removeVertex(a, ring, index);
            if (out) conn.send(out.send);
            else model.set("notice", "a polygon keeps 3 points or more: delete it instead");
          },
          onInsert: (ev, a, ring, index, at) => start(ev, a, () => new Vertex(a, ring, index, at)),
        });
        svg.append(g);
      }
      if (state.showPredicted && detection())
        for (const p of predictedShown())
          svg.append(
            drawPrediction(p, { color: colorOf(p.label), k, by: model.get("predicted_by") }),
          );
      if (state.proposal) {
        const p = state.proposal;
        svg.append(
          boxRect(p, {
            fill: "rgba(245,158,11,0.12)",
            stroke: "#f59e0b",
            "stroke-width": 2 * k,
            "stroke-dasharray": `${5 * k} ${3 * k}`,
            "pointer-events": "none",
            "data-role": "proposal",
            "data-source": p.source,
          }),
        );
      }
      if (state.drag?.sketch) svg.append(state.drag.sketch(k));
      svg.append(cross); // on top, taking no clicks
      if (!drawing()) cross.setAttribute("visibility", "hidden");
      if (!state.space) svg.style.cursor = drawing() ? "crosshair" : "";
      if (state.poly.length) {
        svg.append(
          s("polyline", {
            points: state.poly.map((p) => p.join(",")).join(" "),
            fill: "none",
            stroke: "#2563eb",
            "stroke-width": 2 * k,
            "pointer-events": "none",
          }),
        );
        for (const [x, y] of state.poly)
          svg.append(
            s("circle", {
              cx: x,
              cy: y,
              r: 4 * k,
              fill: "#2563eb",
              "pointer-events": "none",
              "data-role": "new-point",
            }),
          );
      }
    }

    /** Objects that share a label get numbers (defect 1, defect 2), in the list and the overlay. */
    function numbering() {
      const byLabel = new Map(),
        out = new Map();
      for (const a of model.get("annotations")) {
        if (a.kind === "ignore") continue;
        if (!byLabel.has(a.label)) byLabel.set(a.label, []);
        byLabel.get(a.label).push(a.ann_id);
      }
      for (const ids of byLabel.values())
        if (ids.length > 1)
          ids.forEach((id, i) => {
            out.set(id, i + 1);
          });
      return out;
    }

    // -- pointer interactions: a press starts one of drags.js, moves feed it, release ends it --
    /** Start a drag on a shape or its handle; false on a locked shape. */
    function start(ev, a, make) {
      if (state.locked.has(a.ann_id)) return false;
      ev.stopPropagation();
      state.drag = make();
      svg.setPointerCapture(ev.pointerId);
      return true;
    }
    function startMove(ev, a) {
      // press and drag on any shape moves it (as in CVAT and Label Studio); Shift+press
      // draws there instead (a box inside a box), and so does a polygon tool's press on a
      // shape that is not selected. A press that hardly moves is a click: it selects.
      const polygonTool = state.tool === "polygon" || state.tool === "ignore_polygon";
      const selected = state.selected === a.ann_id;
      if (state.tool === "pan" || state.space || state.poly.length || ev.shiftKey) return;
      if (state.tool === "point" || (polygonTool && !selected)) return;
      const click = selected ? 0 : CLICK.onShape;
      if (start(ev, a, () => new Move(a, view.toImage(ev), click))) {
        state.selected = a.ann_id;
        render();
      }
    }
    function rotateSelected(by) {
      const a = model.get("annotations").find((x) => x.ann_id === state.selected);
      if (a && turns(a) && !state.locked.has(a.ann_id))
        conn.send({ action: "update", ann_id: a.ann_id, angle: ((a.angle || 0) + by + 360) % 360 });
    }
    svg.addEventListener("pointerdown", (ev) => {
      root.focus({ preventScroll: true });
      if (model.get("task") !== "detection" || state.drag || conn.lost) return;
      const [x, y] = view.toImage(ev);
      if (state.tool === "point" && !state.space) {
        // a click inside the proposed box keeps it; anywhere else asks for a new one
        const p = state.proposal;
        if (p && x >= p.x0 && x <= p.x1 && y >= p.y0 && y <= p.y1) keepProposal();
        else conn.send({ action: "propose", x, y });
        return;
      }
      if (state.tool === "pan" || state.space) {
        state.drag = new Pan(ev, view.viewport);
      } else if (state.tool === "polygon" || state.tool === "ignore_polygon") {
        // a second press at the same place soon after: a double-click closes the polygon
        const last = state.poly[state.poly.length - 1],
          now = Date.now();
        if (
          last &&
          now - state.lastPoint < 500 &&
          Math.hypot(x - last[0], y - last[1]) < 5 * view.px()
        ) {
          finishPolygon();
          return;
        }
        state.lastPoint = now;
        state.poly.push([x, y]);
        renderOverlay();
        return;
      } else {
        state.selected = null;
        const onShape = ev.target.closest?.("[data-ann]") ? CLICK.onShape : CLICK.empty;
        state.drag = new Draw([x, y], state.tool === "ignore" ? "ignore" : "box", onShape);
      }
      svg.setPointerCapture(ev.pointerId);
    });
    svg.addEventListener("pointermove", (ev) => {
      if (drawing()) drawCross(view.toImage(ev));
      const d = state.drag;
      if (!d) return;
      d.move(view.toImage(ev), ev);
      if (d.preview(svg)) renderOverlay();
    });
    svg.addEventListener("pointerup", () => {
      const d = state.drag;
      state.drag = null;
      if (!d) return;
      const smp = sample();
      const out = d.end({
        width: smp.width,
        height: smp.height,
        px: view.px(),
        label: state.label,
      });
      if (out && "select" in out) {
        selectAt(...out.select);
        return;
      }
      if (out) conn.send(out.send);
      renderOverlay();
    });

    /** The proposed box becomes a box of the label chosen for new shapes (else the
     * detector's label for it). */
    function keepProposal() {
      const p = state.proposal;
      if (!p) return false;
      state.proposal = null;
      const label = state.label ?? (labels().includes(p.label) ? p.label : labels()[0]);
      conn.send({ action: "add_box", label, x0: p.x0, y0: p.y0, x1: p.x1, y1: p.y1 });
      renderOverlay();
      return true;
    }

    /** A click: select the smallest shown shape under the point (or none). */
    function selectAt(x, y) {
      const under = model
        .get("annotations")
        .filter(
          (a) =>
            visible(a) &&
            state.showAll &&
            x >= Math.min(a.x0, a.x1) &&
            x <= Math.max(a.x0, a.x1) &&
            y >= Math.min(a.y0, a.y1) &&
            y <= Math.max(a.y0, a.y1),
        );
      under.sort((a, b) => (a.x1 - a.x0) * (a.y1 - a.y0) - (b.x1 - b.x0) * (b.y1 - b.y0));
      state.selected = under.length ? under[0].ann_id : null;
      render();
    }

    function finishPolygon() {
      // a double-click's presses each added a point: keep points more than 3 screen px apart
      const near = 3 * view.px();
      state.poly = state.poly.filter(
        (p, i, all) => i === 0 || Math.hypot(p[0] - all[i - 1][0], p[1] - all[i - 1][1]) > near,
      );
      if (state.poly.length < 3) {
        // the points stay: add more, or Esc drops them
        model.set("notice", "a polygon needs 3 points or more: click more, or Esc to drop it");
        renderOverlay();
        return;
      }
      conn.send({
        action: "add_polygon",
        kind: state.tool === "ignore_polygon" ? "ignore" : "polygon",
        label: state.label,
        points: state.poly,
      });
      state.poly = [];
      renderOverlay();
    }

    // -- side panel -------------------------------------------------------------------------
    /** Type-ahead over the labels ("/" focuses it): the buttons not matching hide; Enter
     * chooses the first match, Escape goes back to the image. */
    function findLabelInput(buttons) {
      const input = h("input", {
        placeholder: "find a label ( / )",
        "data-role": "label-find",
        value: state.find,
      });
      const matches = () =>
        labels().filter((l) => l.toLowerCase().includes(input.value.trim().toLowerCase()));
      const filter = () => {
        state.find = input.value;
        const keep = new Set(matches());
        for (const b of buttons.children) b.hidden = !keep.has(b.dataset.label);
      };
      input.addEventListener("input", filter);
      input.addEventListener("keydown", (e) => {
        e.stopPropagation();
        if (e.key === "Enter" && matches().length) {
          const l = matches()[0];
          input.value = "";
          filter();
          chooseLabel(l);
          root.focus();
        }
        if (e.key === "Escape") {
          input.value = "";
          filter();
          root.focus();
        }
      });
      queueMicrotask(filter);
      return input;
    }
    /** A label chosen; `advance` (a number key in the Annotator): then the next image. */
    function chooseLabel(label, advance = false) {
      if (model.get("task") === "multilabel") {
        conn.send({ action: "toggle_label", label }); // several labels: one key each, no advance
        return;
      }
      if (model.get("task") === "classification") {
        conn.send({ action: "set_label", label, ...(advance ? { advance: true } : {}) });
        return;
      }
      state.label = label; // for new shapes only: relabeling a shape is its own control
      renderSide();
    }
    function renderSide() {
      if (held.slider || held.text) {
        held.pending = true;
        return;
      }
      const smp = sample();
      const task = model.get("task");
      if (state.label === null || !labels().includes(state.label))
        state.label = labels()[0] ?? null;
      const parts = [];
      if (state.tour !== null) {
        const steps = tourSteps(detection(), review);
        parts.push(
          tourCard(steps, Math.min(state.tour, steps.length - 1), {
            onNext: () => {
              state.tour += 1;
              renderSide();
            },
            onClose: () => {
              state.tour = null;
              rememberTour();
              renderSide();
            },
          }),
        );
      }
      if (review) {
        const q = model.get("queue");
        parts.push(
          h("h4", {}, "Review queue"),
          h(
            "div",
            { "data-role": "queue" },
            q.length ? `${q.indexOf(smp.sample_id) + 1} of ${q.length} to confirm` : "queue empty",
          ),
        );
        if (q.length) {
          const buttons = state.asking
            ? [
                h("span", {}, "Delete this image?"),
                h(
                  "button",
                  {
                    class: "danger",
                    "data-action": "delete-sample-yes",
                    onclick: () => {
                      state.asking = false;
                      conn.send({ action: "delete_sample", confirmed: true });
                    },
                  },
                  "Yes (Enter)",
                ),
                h(
                  "button",
                  {
                    onclick: () => {
                      state.asking = false;
                      renderSide();
                    },
                  },
                  "No (Esc)",
                ),
              ]
            : [
                h(
                  "button",
                  {
                    class: "primary",
                    "data-action": "confirm",
                    onclick: () =>
                      conn.send({ action: "confirm", threshold: model.get("threshold") }),
                  },
                  "Confirm (c)",
                ),
                h(
                  "button",
                  { "data-action": "skip", onclick: () => conn.send({ action: "skip" }) },
                  "Skip (k)",
                ),
                h(
                  "button",
                  {
                    class: "danger",
                    "data-action": "delete-sample",
                    onclick: () => {
                      state.asking = true;
                      renderSide();
                    },
                  },
                  "Delete (x)",
                ),
              ];
          parts.push(h("div", { class: "bar" }, ...buttons));
        }
      }
      if (smp.hard) {
        const reasons = (smp.hard_reasons || "")
          .split("-")
          .filter(Boolean)
          .map((c) => model.get("reason_texts")[c] || `reason ${c}`);
        parts.push(
          h(
            "div",
            { "data-role": "hard" },
            h("span", { class: "badge" }, "hard"),
            smp.hard_score
              ? h("span", { class: "muted" }, ` score ${smp.hard_score.toFixed(2)}`)
              : null,
            h("ul", {}, ...reasons.map((r) => h("li", {}, r))),
          ),
        );
      }
      parts.push(
        h(
          "div",
          { class: "bar" },
          h(
            "button",
            {
              "data-action": "toggle-hard",
              onclick: () => conn.send({ action: "set_hard", hard: !smp.hard }),
            },
            smp.hard ? "Not hard" : "Mark hard",
          ),
        ),
      );
      if (task !== "detection" && model.get("probabilities").length) {
        parts.push(
          h(
            "h4",
            {},
            task === "multilabel" ? "Model's probability of each label" : "Model's top classes",
          ),
          h(
            "div",
            { "data-role": "probabilities" },
            ...model
              .get("probabilities")
              .map(([l, p]) =>
                h(
                  "div",
                  { class: "prob", "data-prob": l },
                  h("span", { class: "prob-name" }, l),
                  h(
                    "span",
                    { class: "prob-bar" },
                    h("span", { style: `width:${(p * 100).toFixed(1)}%` }),
                  ),
                  h("span", { class: "muted" }, `${(p * 100).toFixed(1)}%`),
                ),
              ),
          ),
        );
      }
      if (task !== "detection") {
        // the image as its file holds it: one image pixel per screen pixel (zoomed past the
        // sent copy, the region in view comes at the file's own resolution), or fitted
        const original = Math.abs(view.native() - 1) < 1e-6;
        parts.push(
          h(
            "div",
            { class: "bar" },
            h(
              "button",
              {
                "data-action": "show-original",
                class: original ? "on" : "",
                "aria-pressed": original ? "true" : "false",
                title: "the image at its own size, one pixel per screen pixel (o); fit (f)",
                onclick: () => {
                  view.zoomTo(original ? "fit" : "original");
                  renderSide();
                },
              },
              original ? "Fit (f)" : "Show original (o)",
            ),
          ),
        );
      }
      const tested = predictedPanel();
      if (tested) parts.push(tested);
      const labelButtons = h(
        "div",
        { class: "labels" },
        ...labels().map((l, i) =>
          h(
            "button",
            {
              class: (
                task === "classification"
                  ? smp.label === l
                  : task === "multilabel"
                    ? (smp.labels ?? []).includes(l)
                    : state.label === l
              )
                ? "on"
                : "",
              "data-label": l,
              onclick: () => chooseLabel(l),
            },
            `${i < 9 ? `${i + 1} ` : ""}${l}`,
          ),
        ),
      );
      parts.push(
        h(
          "h4",
          {},
          task === "classification"
            ? "Class"
            : task === "multilabel"
              ? "Labels (a click or number key gives or takes one)"
              : "Label for new shapes",
        ),
        findLabelInput(labelButtons),
        labelButtons,
      );
      parts.push(
        labelEditor(model, conn.send, task === "classification" ? smp.label : state.label),
      );
      if (task === "detection") {
        parts.push(
          h("h4", {}, "Tools"),
          h(
            "div",
            { class: "bar" },
            ...TOOLS.map(([t, name]) =>
              h(
                "button",
                {
                  class: state.tool === t ? "on" : "",
                  "data-tool": t,
                  onclick: () => {
                    state.tool = t;
                    state.poly = [];
                    renderSide();
                    renderOverlay();
                  },
                },
                name,
              ),
            ),
          ),
        );
        const count = model.get("annotations").length;
        // "Clear all" asks first, with the count (Ctrl+Z undoes it as one step)
        const clear = state.askingClear
          ? h(
              "span",
              { "data-role": "clear-question" },
              `Delete all ${count} object${count === 1 ? "" : "s"}? `,
              h(
                "button",
                {
                  class: "danger",
                  "data-action": "clear-yes",
                  onclick: () => {
                    state.askingClear = false;
                    conn.send({ action: "clear" });
                  },
                },
                "Yes",
              ),
              h(
                "button",
                {
                  "data-action": "clear-no",
                  onclick: () => {
                    state.askingClear = false;
                    renderSide();
                  },
                },
                "No",
              ),
            )
          : h(
              "button",
              {
                "data-action": "clear",
                title: "delete every annotation of this image (asks first)",
                disabled: !count,
                onclick: () => {
                  state.askingClear = true;
                  renderSide();
                },
              },
              "Clear all",
            );
        parts.push(
          h(
            "div",
            { class: "bar" },
            clear,
            h(
              "button",
              {
                "data-action": "negative",
                title: "no object in this image: clear it and keep it labeled",
                onclick: () => conn.send({ action: "clear", negative: true }),
              },
              "No objects",
            ),
          ),
        );
        parts.push(
          h(
            "div",
            { class: "bar" },
            h(
              "button",
              {
                "data-action": "show-all",
                class: state.showAll ? "" : "on",
                title: "show or hide every annotation (v)",
                onclick: () => {
                  state.showAll = !state.showAll;
                  renderOverlay();
                  renderSide();
                },
              },
              state.showAll ? "Hide annotations (v)" : "Show annotations (v)",
            ),
            h(
              "button",
              {
                "data-action": "zoom-original",
                title: "one image pixel per screen pixel (o)",
                onclick: () => view.zoomTo("original"),
              },
              "1:1 (o)",
            ),
            h(
              "button",
              {
                "data-action": "zoom-fit",
                title: "the whole image (f)",
                onclick: () => view.zoomTo("fit"),
              },
              "Fit (f)",
            ),
          ),
        );
        const slider = h("input", {
          type: "range",
          min: 0,
          max: 1,
          step: 0.05,
          value: model.get("threshold"),
          "data-role": "threshold",
        });
        // while dragging only the overlay and the heading change: the slider stays under the mouse
        const heading = h(
          "h4",
          { "data-role": "threshold-text" },
          `Score threshold ${model.get("threshold").toFixed(2)}`,
        );
        slider.addEventListener("input", () => {
          model.set("threshold", Number(slider.value));
          model.save_changes();
          heading.textContent = `Score threshold ${Number(slider.value).toFixed(2)}`;
        });
        slider.addEventListener("change", releaseSlider); // let go, or a key: the value is final
        parts.push(
          heading,
          slider,
          h(
            "div",
            { class: "bar" },
            h(
              "label",
              {},
              h("input", {
                type: "checkbox",
                checked: state.showLabels,
                onchange: (e) => {
                  state.showLabels = e.target.checked;
                  renderOverlay();
                },
              }),
              " show labels (l)",
            ),
            h(
              "span",
              {
                class: "muted",
                "data-role": "zoom",
                title: "100%: one image pixel per screen pixel",
              },
              `zoom ${Math.round(view.native() * 100)}%`,
            ),
          ),
        );
        const numbers = numbering();
        // the list shows what the overlay shows: a model's boxes under the threshold are
        // counted, not listed (the slider brings them back)
        const all = model.get("annotations");
        const listed = all.filter(visible);
        const rows = listed.map((a) => {
          const text = h("input", {
            placeholder: "OCR text",
            value: a.text ?? "",
            "data-text": a.ann_id,
          });
          text.addEventListener("change", () =>
            conn.send({ action: "update", ann_id: a.ann_id, text: text.value || null }),
          );
          // Enter keeps the text (leaving the field saves it), Esc leaves it as it was; the
          // keys then work on the image again
          text.addEventListener("keydown", (e) => {
            e.stopPropagation();
            if (e.key === "Escape") text.value = a.text ?? "";
            if (e.key === "Enter" || e.key === "Escape") root.focus({ preventScroll: true });
          });
          text.addEventListener("click", (e) => e.stopPropagation()); // typing, not a redraw
          const relabel =
            state.selected === a.ann_id && a.kind !== "ignore"
              ? h(
                  "select",
                  { "data-relabel": a.ann_id, title: "change this object's label" },
                  ...labels().map((l) =>
                    h("option", { value: l, ...(l === a.label ? { selected: "" } : {}) }, l),
                  ),
                )
              : null;
          if (relabel) {
            relabel.addEventListener("click", (e) => e.stopPropagation());
            relabel.addEventListener("change", () =>
              conn.send({ action: "update", ann_id: a.ann_id, label: relabel.value }),
            );
          }
          const toggle = (set, what, on, off) =>
            h(
              "button",
              {
                class: `icon${set.has(a.ann_id) ? " on" : ""}`,
                [`data-${what}`]: a.ann_id,
                title: set.has(a.ann_id) ? off : on,
                onclick: (e) => {
                  e.stopPropagation();
                  root.focus({ preventScroll: true }); // the redraw removes this button
                  if (set.has(a.ann_id)) set.delete(a.ann_id);
                  else set.add(a.ann_id);
                  if (what === "hide" && state.selected === a.ann_id) state.selected = null;
                  renderOverlay();
                  renderSide();
                },
              },
              what === "hide"
                ? set.has(a.ann_id)
                  ? "show"
                  : "hide"
                : set.has(a.ann_id)
                  ? "unlock"
                  : "lock",
            );
          // VOC's object attributes: toggles on the selected row, named on the others
          const set = ATTRIBUTES.filter((f) => a[f]);
          const attributes =
            a.kind === "ignore"
              ? null
              : state.selected === a.ann_id
                ? h(
                    "span",
                    { "data-role": "attributes" },
                    ...ATTRIBUTES.map((f) =>
                      h(
                        "button",
                        {
                          class: `icon${a[f] ? " on" : ""}`,
                          "data-attr": f,
                          "aria-pressed": a[f] ? "true" : "false",
                          title: a[f] ? `not ${f}` : `mark ${f}`,
                          disabled: state.locked.has(a.ann_id),
                          onclick: (e) => {
                            e.stopPropagation();
                            root.focus({ preventScroll: true });
                            conn.send({ action: "update", ann_id: a.ann_id, [f]: !a[f] });
                          },
                        },
                        f,
                      ),
                    ),
                  )
                : set.length
                  ? h("span", { class: "muted", "data-role": "attributes" }, set.join(", "))
                  : null;
          const n = numbers.get(a.ann_id);
          return h(
            "div",
            {
              class:
                "ann-row" +
                (state.selected === a.ann_id ? " sel" : "") +
                (state.hidden.has(a.ann_id) ? " hidden-obj" : ""),
              "data-row": a.ann_id,
              onclick: () => {
                if (!state.hidden.has(a.ann_id)) {
                  state.selected = a.ann_id;
                  render();
                }
              },
            },
            h(
              "span",
              {
                class: "chip swatch",
                // the label's colour as a swatch; the text keeps the theme's contrast
                style: `--swatch:${HARD_COLORS[a.hard_type] || colorOf(a.label)}`,
              },
              a.kind === "ignore" ? "ignore" : `${a.label}${n ? ` ${n}` : ""}`,
            ),
            h("span", { class: "muted" }, a.score !== null ? a.score.toFixed(2) : a.origin),
            a.kind !== "ignore" ? text : null,
            relabel,
            a.kind !== "ignore" ? hardTypeSelect(a) : null,
            attributes,
            toggle(state.hidden, "hide", "hide this object (this view only)", "show it again"),
            toggle(
              state.locked,
              "lock",
              "lock: no moving, resizing or deleting (this view only)",
              "unlock",
            ),
            h(
              "button",
              {
                class: "danger",
                title: "delete",
                disabled: state.locked.has(a.ann_id),
                onclick: (e) => {
                  e.stopPropagation();
                  root.focus({ preventScroll: true });
                  conn.send({ action: "delete", ann_id: a.ann_id });
                },
              },
              "×",
            ),
          );
        });
        parts.push(
          h("h4", {}, `Objects (${rows.length})`),
          all.length > listed.length
            ? h(
                "div",
                { class: "muted", "data-role": "below-threshold" },
                `${all.length - listed.length} below the score threshold`,
              )
            : null,
          h("div", { class: "ann-list" }, ...rows),
        );
      }
      parts.push(h("h4", {}, "Keys"), keyHelp(review, detection()));
      redraw(side, parts.filter(Boolean));
    }

    function renderHeader() {
      const smp = sample();
      const parts = [
        h(
          "button",
          { "data-action": "prev", onclick: () => conn.send({ action: "prev" }) },
          "‹ Prev",
        ),
        h(
          "button",
          { "data-action": "next", onclick: () => conn.send({ action: "next" }) },
          "Next ›",
        ),
        h("b", { "data-role": "name" }, smp.name ?? "—"),
        h(
          "span",
          { class: "muted" },
          smp.width ? `${smp.width}×${smp.height} · ${smp.status}` : "",
        ),
      ];
      if (model.get("task") === "classification" && smp.label)
        parts.push(h("span", { class: "chip", "data-role": "class" }, smp.label));
      if (model.get("task") === "multilabel")
        parts.push(
          h(
            "span",
            { "data-role": "labels" },
            ...(smp.labels ?? []).map((l) => {
              const score = smp.label_scores?.[l];
              return h(
                "span",
                { class: "chip", "data-label": l },
                score === undefined || score === null ? l : `${l} ${(score * 100).toFixed(0)}%`,
              );
            }),
            (smp.labels ?? []).length ? "" : h("span", { class: "muted" }, "no label"),
          ),
        );
      if (model.get("count"))
        parts.push(
          h("span", { class: "muted" }, `${model.get("position") + 1} / ${model.get("count")}`),
        );
      parts.push(
        h(
          "button",
          { "data-action": "undo", title: "Ctrl+Z", onclick: () => conn.send({ action: "undo" }) },
          "Undo",
        ),
        h(
          "button",
          {
            "data-action": "redo",
            title: "Ctrl+Shift+Z or Ctrl+Y",
            onclick: () => conn.send({ action: "redo" }),
          },
          "Redo",
        ),
        h(
          "button",
          {
            "data-action": "tour",
            title: "a short tour of this widget",
            onclick: () => {
              state.tour = 0;
              renderSide();
            },
          },
          "Tour",
        ),
        h(
          "button",
          {
            "data-action": "wide",
            class: state.wide ? "on" : "",
            "aria-pressed": state.wide ? "true" : "false",
            title: "full width: the image takes the whole width, the panel goes under (w)",
            onclick: () => actions.wide(),
          },
          "Wide (w)",
        ),
        trainBar(model, conn.send),
      );
      redraw(header, parts);
    }
    function renderImage() {
      view.showImage(model.get("image"));
      state.askingClear = false;
      state.selected = null;
      state.drag = null;
      state.poly = [];
      state.hidden.clear();
      state.locked.clear();
    }
    function render() {
      renderHeader();
      renderOverlay();
      renderSide();
    }

    /** What each key of the KEYS table does; a handler returns false when it does not apply. */
    const actions = {
      next: () => conn.send({ action: "next" }),
      prev: () => conn.send({ action: "prev" }),
      label: (key) => {
        const name = labels()[Number(key) - 1];
        if (name === undefined) return false;
        const a = model.get("annotations").find((x) => x.ann_id === state.selected);
        // a selected object takes the label (as in Label Studio and CVAT); else new shapes do
        if (detection() && a && a.kind !== "ignore" && !state.locked.has(a.ann_id)) {
          if (a.label !== name) conn.send({ action: "update", ann_id: a.ann_id, label: name });
        } else chooseLabel(name, !review && model.get("advance"));
        return true;
      },
      delete: () => {
        if (state.selected === null || state.locked.has(state.selected)) return false;
        conn.send({ action: "delete", ann_id: state.selected });
        return true;
      },
      toggleLabels: () => {
        state.showLabels = !state.showLabels;
        renderOverlay();
        renderSide();
      },
      toggleAll: () => {
        state.showAll = !state.showAll;
        renderOverlay();
        renderSide();
      },
      togglePredicted: () => {
        state.showPredicted = !state.showPredicted;
        renderOverlay();
        renderSide();
      },
      zoom: (key) => {
        view.zoomTo(key === "o" ? "original" : "fit");
        if (!detection()) renderSide(); // the Show original button says which it is
      },
      wide: () => {
        state.wide = !state.wide;
        root.classList.toggle("hx-wide", state.wide);
        renderHeader(); // the view lays out again as its width changes
      },
      tool: (key) => {
        state.tool = TOOLS.find(([, , k]) => k === key)[0];
        state.poly = [];
        renderSide();
        renderOverlay();
      },
      turn: (key) => {
        if (state.selected === null) return false;
        rotateSelected(key === "[" ? -5 : 5);
        return true;
      },
      closePolygon: () => {
        if (state.proposal) return keepProposal();
        if (state.poly.length === 0) return false;
        finishPolygon();
        return true;
      },
      findLabel: () => {
        const f = side.querySelector("[data-role=label-find]");
        if (f) f.focus();
      },
      cancel: () => {
        state.proposal = null;
        state.poly = [];
        state.selected = null;
        state.askingClear = false;
        render();
      },
      confirm: () => conn.send({ action: "confirm", threshold: model.get("threshold") }),
      skip: () => conn.send({ action: "skip" }),
      deleteImage: () => {
        state.asking = true;
        renderSide();
      },
    };
    root.addEventListener("keydown", (ev) => {
      const key = ev.key;
      if (ev.ctrlKey || ev.metaKey) {
        const what = chordFor(key, ev.shiftKey, detection());
        if (what === null) return;
        ev.preventDefault();
        ev.stopPropagation();
        if (what === "copy") copy();
        else if (what === "paste") paste();
        else conn.send({ action: what });
        return;
      }
      if (state.asking && (key === "Enter" || key === "Escape")) {
        // Review's "Delete this image?": Enter says yes, Esc no
        ev.preventDefault();
        ev.stopPropagation();
        state.asking = false;
        if (key === "Enter") conn.send({ action: "delete_sample", confirmed: true });
        else renderSide();
        return;
      }
      if (key === " " && detection()) {
        // held down: drag pans
        ev.preventDefault();
        state.space = true;
        svg.style.cursor = "grab";
        return;
      }
      if (ev.altKey) return;
      const name = actionFor(key, review, detection());
      if (name === null || actions[name](key) === false) return;
      ev.preventDefault();
      ev.stopPropagation();
    });

    svg.addEventListener("pointerleave", () => cross.setAttribute("visibility", "hidden"));
    root.addEventListener("keyup", (ev) => {
      if (ev.key === " ") {
        state.space = false;
        svg.style.cursor = drawing() ? "crosshair" : "";
      }
    });
    root.addEventListener("blur", () => {
      state.space = false;
      svg.style.cursor = "";
    });

    // -- copy and paste: shapes go to a clipboard every Annotator on the page shares --------
    function copy() {
      const all = model.get("annotations").filter((a) => visible(a) && !state.hidden.has(a.ann_id));
      const chosen = state.selected !== null ? all.filter((a) => a.ann_id === state.selected) : all;
      clipboard.splice(
        0,
        clipboard.length,
        ...chosen.map((a) => ({
          kind: a.kind,
          label: a.label,
          x0: a.x0,
          y0: a.y0,
          x1: a.x1,
          y1: a.y1,
          points: a.points,
          angle: a.angle,
          text: a.text,
        })),
      );
      model.set(
        "notice",
        chosen.length ? `${chosen.length} object(s) copied: Ctrl+V pastes them` : "nothing to copy",
      );
    }
    function paste() {
      if (!clipboard.length) {
        model.set("notice", "nothing copied yet: select an object and press Ctrl+C");
        return;
      }
      conn.send({ action: "paste", annotations: clipboard });
    }
    for (const name of [
      "sample",
      "annotations",
      "labels",
      "queue",
      "position",
      "count",
      "asking",
      "probabilities",
      "predicted",
    ])
      model.on(`change:${name}`, render);
    model.on("change:training", () => renderHeader());
    model.on("change:threshold", () => {
      renderOverlay();
      renderSide(); // the objects list follows (after the slider is let go)
      const heading = side.querySelector("[data-role=threshold-text]");
      if (heading) heading.textContent = `Score threshold ${model.get("threshold").toFixed(2)}`;
    });
    // a new image (Next, Prev, a confirm, an Open elsewhere): its pixels, then its overlay.
    // The bytes and the sample's size arrive as two changes, in either order: each lays out.
    model.on("change:image", () => {
      renderImage();
      render();
    });
    model.on("change:sample", () => view.layout());
    model.on("change:proposal", () => {
      const p = model.get("proposal");
      state.proposal = p && "x0" in p ? p : null;
      renderOverlay();
    });
    renderImage();
    render();
    return () => {
      view.dispose();
      stop.abort();
      conn.close();
    };
  },
};
