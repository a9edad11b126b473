/** hardex_nb Annotator and Review: one image at a time, edits sent to Python at once.
 * The overlay's shapes are drawn by annotator/shapes.js, the side panel's parts come from
 * annotator/side.js, and the keys from the one table in annotator/keys.js. */
import { connection, h, keepKeys, messages, s } from "./dom.js";
import { actionFor, keyHelp } from "./annotator/keys.js";
import {
  COLORS,
  HARD_COLORS,
  centre,
  drawAnnotation,
  labelText,
  placeLabels,
  rings,
  turn,
  turns,
} from "./annotator/shapes.js";
import { TOOLS, hardTypeSelect, labelEditor } from "./annotator/side.js";

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
      zoom: 1,
      drag: null,
      poly: [],
      lastPoint: 0,
      anchor: null,
      url: null,
      asking: false,
      hidden: new Set(),
      locked: new Set(),
      space: false,
      find: "",
    }; // hide/lock: this view only

    const header = h("div", { class: "bar" });
    const img = h("img", { alt: "" });
    const svg = s("svg", { "data-role": "overlay" });
    const stage = h("div", { class: "stage" }, img, svg);
    const viewport = h("div", { class: "viewport" }, stage);
    const side = h("div", { class: "side" });
    side.addEventListener("hard-type", (e) => conn.send({ action: "set_hard_type", ...e.detail }));
    // The side panel is not redrawn under the user: while its slider is dragged or an OCR field
    // has focus, a change (a reply, another writer) redraws it when the drag or typing ends.
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
    side.addEventListener("focusin", (ev) => {
      if (ev.target.matches("input[data-text]")) held.text = true;
    });
    side.addEventListener("focusout", (ev) => {
      if (ev.target.matches("input[data-text]")) {
        held.text = false;
        releaseSide();
      }
    });
    const view = h("div", { class: "view-area" }, viewport);
    root.append(header, h("div", { class: "layout" }, view, side));
    messages(model, root);

    const labels = () => model.get("labels");
    const detection = () => model.get("task") === "detection";
    const sample = () => model.get("sample");
    const colorOf = (label) => COLORS[Math.max(0, labels().indexOf(label)) % COLORS.length];

    // -- geometry ---------------------------------------------------------------------------
    function layout() {
      const smp = sample();
      if (!smp.width) return;
      const base = baseScale();
      stage.style.width = `${smp.width * base * state.zoom}px`;
      stage.style.height = `${smp.height * base * state.zoom}px`;
      // the view keeps the size of the fitted image: zooming in scrolls inside it
      viewport.style.height = `${Math.ceil(smp.height * base) + 2}px`;
      // enlarged, the image shows its pixels (a small image or a zoom-in), not a blur
      img.style.imageRendering = base * state.zoom >= 2 ? "pixelated" : "auto";
      requestCrop();
      svg.setAttribute("viewBox", `0 0 ${smp.width} ${smp.height}`);
      svg.setAttribute("preserveAspectRatio", "none");
      renderMinimap();
    }
    // -- native pixels: zoomed in past the sent copy, the region in view comes at full size --
    const crop = h("img", { alt: "", "data-role": "crop", hidden: true });
    crop.style.cssText = "position:absolute; image-rendering:pixelated; pointer-events:none;";
    stage.insertBefore(crop, svg); // above the copy, under the shapes
    let cropTimer = null,
      cropUrl = null;
    function requestCrop() {
      clearTimeout(cropTimer);
      cropTimer = setTimeout(() => {
        const smp = sample();
        const shown = stage.getBoundingClientRect().width;
        const copy = img.naturalWidth || smp.width;
        if (!smp.width || shown <= copy * 1.05) {
          crop.hidden = true;
          return;
        } // the copy suffices
        const k = smp.width / shown; // image px per screen px
        conn.send({
          action: "crop",
          x0: viewport.scrollLeft * k,
          y0: viewport.scrollTop * k,
          x1: (viewport.scrollLeft + viewport.clientWidth) * k,
          y1: (viewport.scrollTop + viewport.clientHeight) * k,
        });
      }, 120);
    }
    model.on("msg:custom", (msg, buffers) => {
      if (!msg?.crop || msg.crop.sample_id !== sample().sample_id || !buffers || !buffers.length)
        return;
      const c = msg.crop,
        smp = sample();
      if (cropUrl) URL.revokeObjectURL(cropUrl);
      cropUrl = URL.createObjectURL(new Blob([buffers[0]], { type: "image/png" }));
      crop.src = cropUrl;
      for (const [k, v] of Object.entries(c)) if (k !== "sample_id") crop.dataset[k] = String(v);
      crop.style.left = `${(c.x0 / smp.width) * 100}%`;
      crop.style.top = `${(c.y0 / smp.height) * 100}%`;
      crop.style.width = `${((c.x1 - c.x0) / smp.width) * 100}%`;
      crop.style.height = `${((c.y1 - c.y0) / smp.height) * 100}%`;
      crop.hidden = false;
    });
    viewport.addEventListener("scroll", requestCrop);

    /** Screen px per image px at "fit": the whole image in the panel's width (the side
     * panel keeps its own), at most 640 px high; a small image (2× or more) grows by whole
     * steps so its pixels stay sharp and square (shown pixelated). */
    function baseScale() {
      const smp = sample();
      const fit = Math.min((viewport.clientWidth || 840) / smp.width, 640 / smp.height);
      return fit >= 2 ? Math.min(Math.floor(fit), 8) : fit;
    }
    /** "fit": the whole image in view; "original": one image pixel per screen pixel. */
    function zoomTo(how) {
      if (!sample().width) return;
      state.zoom = how === "original" ? 1 / baseScale() : 1;
      layout();
      renderOverlay();
      renderSide();
    }
    function toImage(ev) {
      const r = svg.getBoundingClientRect(),
        smp = sample();
      const x = ((ev.clientX - r.left) / r.width) * smp.width;
      const y = ((ev.clientY - r.top) / r.height) * smp.height;
      return [Math.min(Math.max(x, 0), smp.width), Math.min(Math.max(y, 0), smp.height)];
    }
    /** Image px per screen px (before the first layout, or in a hidden cell, the scale the
     * layout gives: never an infinite label size). */
    const px = () =>
      1 / (svg.getBoundingClientRect().width / sample().width || baseScale() * state.zoom);

    // -- drawing ----------------------------------------------------------------------------
    function visible(a) {
      return a.origin === "human" || a.score === null || a.score >= model.get("threshold");
    }
    function renderOverlay() {
      svg.replaceChildren();
      const k = px(),
        smp = sample();
      const shown = (state.showAll ? model.get("annotations") : []).filter(
        (a) => visible(a) && !state.hidden.has(a.ann_id),
      );
      const numbers = numbering();
      const placed = state.showLabels
        ? placeLabels(
            shown.map((a) => ({ a, text: labelText(a, numbers.get(a.ann_id)) })),
            k,
            smp.width,
            smp.height,
          )
        : new Map();
      for (const a of shown) {
        const d = state.drag;
        const drawn =
          d && d.type === "vertex" && d.a.ann_id === a.ann_id ? { ...a, points: d.points } : a;
        const color =
          a.kind === "ignore" ? "#98a2b3" : HARD_COLORS[a.hard_type] || colorOf(a.label);
        const g = drawAnnotation(drawn, {
          color,
          selected: state.selected === a.ann_id,
          k,
          locked: state.locked.has(a.ann_id),
          label: placed.get(a.ann_id),
          onMove: startMove,
          onRotate: startRotate,
          onResize: startResize,
          onVertex: startVertex,
        });
        svg.append(g);
      }
      if (state.drag && state.drag.type === "draw") {
        const d = state.drag;
        svg.append(
          s("rect", {
            x: Math.min(d.x0, d.x),
            y: Math.min(d.y0, d.y),
            width: Math.abs(d.x - d.x0),
            height: Math.abs(d.y - d.y0),
            fill: "rgba(37,99,235,0.15)",
            stroke: "#2563eb",
            "stroke-width": 2 * k,
          }),
        );
      }
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

    // -- pointer interactions -----------------------------------------------------------------
    function startVertex(ev, a, ring, index) {
      if (state.locked.has(a.ann_id)) return;
      ev.stopPropagation();
      state.drag = {
        type: "vertex",
        a,
        ring,
        index,
        points: rings(a.points).map((r) => r.map((p) => [...p])),
      };
      svg.setPointerCapture(ev.pointerId);
    }
    function startMove(ev, a) {
      // only the selected shape moves: a press on another one draws (a new box or polygon
      // point may start inside an existing box); a click selects the shape under it
      if (
        state.tool === "pan" ||
        state.space ||
        state.selected !== a.ann_id ||
        state.poly.length ||
        state.locked.has(a.ann_id)
      )
        return;
      ev.stopPropagation();
      state.selected = a.ann_id;
      const [x, y] = toImage(ev);
      state.drag = { type: "move", a, x0: x, y0: y, dx: 0, dy: 0 };
      svg.setPointerCapture(ev.pointerId);
      render();
    }
    function startResize(ev, a, corner) {
      if (state.locked.has(a.ann_id)) return;
      ev.stopPropagation();
      state.drag = { type: "resize", a, corner, box: { x0: a.x0, y0: a.y0, x1: a.x1, y1: a.y1 } };
      svg.setPointerCapture(ev.pointerId);
    }
    function startRotate(ev, a) {
      if (state.locked.has(a.ann_id)) return;
      ev.stopPropagation();
      state.drag = { type: "rotate", a, angle: a.angle || 0 };
      svg.setPointerCapture(ev.pointerId);
    }
    function rotateSelected(by) {
      const a = model.get("annotations").find((x) => x.ann_id === state.selected);
      if (a && turns(a) && !state.locked.has(a.ann_id))
        conn.send({ action: "update", ann_id: a.ann_id, angle: ((a.angle || 0) + by + 360) % 360 });
    }
    svg.addEventListener("pointerdown", (ev) => {
      root.focus({ preventScroll: true });
      if (model.get("task") !== "detection" || state.drag || conn.lost) return;
      const [x, y] = toImage(ev);
      if (state.tool === "pan" || state.space) {
        state.drag = {
          type: "pan",
          sx: ev.clientX,
          sy: ev.clientY,
          left: viewport.scrollLeft,
          top: viewport.scrollTop,
        };
      } else if (state.tool === "polygon" || state.tool === "ignore_polygon") {
        // a second press at the same place soon after: a double-click closes the polygon
        const last = state.poly[state.poly.length - 1],
          now = Date.now();
        if (
          last &&
          now - state.lastPoint < 500 &&
          Math.hypot(x - last[0], y - last[1]) < 5 * px()
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
        state.drag = { type: "draw", x0: x, y0: y, x, y };
      }
      svg.setPointerCapture(ev.pointerId);
    });
    svg.addEventListener("pointermove", (ev) => {
      const d = state.drag;
      if (!d) return;
      const [x, y] = toImage(ev);
      if (d.type === "pan") {
        viewport.scrollLeft = d.left - (ev.clientX - d.sx);
        viewport.scrollTop = d.top - (ev.clientY - d.sy);
        return;
      }
      if (d.type === "draw") {
        d.x = x;
        d.y = y;
      }
      if (d.type === "vertex") {
        d.points[d.ring][d.index] = [x, y];
      }
      if (d.type === "move") {
        d.dx = x - d.x0;
        d.dy = y - d.y0;
        const g = svg.querySelector(`[data-ann="${d.a.ann_id}"]`);
        if (g) g.setAttribute("transform", `translate(${d.dx},${d.dy})`);
        return;
      }
      if (d.type === "rotate") {
        // the knob points away from the centre: up is angle 0
        const [cx, cy] = centre(d.a);
        d.angle = ((Math.atan2(y - cy, x - cx) * 180) / Math.PI + 90 + 360) % 360;
        const body = svg.querySelector(`[data-ann="${d.a.ann_id}"] > g`);
        if (body) body.setAttribute("transform", `rotate(${d.angle} ${cx} ${cy})`);
        return;
      }
      if (d.type === "resize") {
        // a rotated box resizes in its own (unturned) frame
        const [lx, ly] = d.a.angle ? turn([x, y], -d.a.angle, centre(d.a)) : [x, y];
        if (d.corner.includes("w")) d.box.x0 = lx;
        else d.box.x1 = lx;
        if (d.corner.includes("n")) d.box.y0 = ly;
        else d.box.y1 = ly;
        const r = svg.querySelector(`[data-ann="${d.a.ann_id}"] rect`);
        if (r) {
          r.setAttribute("x", Math.min(d.box.x0, d.box.x1));
          r.setAttribute("y", Math.min(d.box.y0, d.box.y1));
          r.setAttribute("width", Math.abs(d.box.x1 - d.box.x0));
          r.setAttribute("height", Math.abs(d.box.y1 - d.box.y0));
        }
        return;
      }
      renderOverlay();
    });
    svg.addEventListener("pointerup", () => {
      const d = state.drag;
      state.drag = null;
      if (!d) return;
      const smp = sample();
      const clamp = (v, hi) => Math.min(Math.max(v, 0), hi);
      if (d.type === "draw") {
        const box = {
          x0: Math.min(d.x0, d.x),
          y0: Math.min(d.y0, d.y),
          x1: Math.max(d.x0, d.x),
          y1: Math.max(d.y0, d.y),
        };
        if (box.x1 - box.x0 < 2 * px() || box.y1 - box.y0 < 2 * px()) {
          selectAt(d.x, d.y);
          return;
        }
        conn.send({
          action: "add_box",
          kind: state.tool === "ignore" ? "ignore" : "box",
          label: state.label,
          ...box,
        });
      } else if (d.type === "vertex") {
        conn.send({
          action: "update",
          ann_id: d.a.ann_id,
          points: d.points.length === 1 ? d.points[0] : d.points,
        });
      } else if (d.type === "rotate") {
        conn.send({ action: "update", ann_id: d.a.ann_id, angle: Math.round(d.angle * 100) / 100 });
      } else if (d.type === "move" && (Math.abs(d.dx) > 0.5 || Math.abs(d.dy) > 0.5)) {
        const a = d.a;
        const [cx, cy] = centre(a);
        // a rotated box keeps its centre inside the image; any other shape all of itself
        const dx = a.angle
          ? clamp(cx + d.dx, smp.width) - cx
          : clamp(a.x0 + d.dx, smp.width - (a.x1 - a.x0)) - a.x0;
        const dy = a.angle
          ? clamp(cy + d.dy, smp.height) - cy
          : clamp(a.y0 + d.dy, smp.height - (a.y1 - a.y0)) - a.y0;
        const msg = {
          action: "update",
          ann_id: a.ann_id,
          x0: a.x0 + dx,
          y0: a.y0 + dy,
          x1: a.x1 + dx,
          y1: a.y1 + dy,
        };
        if (a.points) {
          const moved = rings(a.points).map((r) => r.map(([x, y]) => [x + dx, y + dy]));
          msg.points = moved.length === 1 ? moved[0] : moved;
        }
        conn.send(msg);
      } else if (d.type === "resize" && d.a.angle) {
        const b = d.box,
          w = Math.abs(b.x1 - b.x0) / 2,
          hh = Math.abs(b.y1 - b.y0) / 2;
        const [cx, cy] = turn([(b.x0 + b.x1) / 2, (b.y0 + b.y1) / 2], d.a.angle, centre(d.a));
        if (w >= px() && hh >= px())
          conn.send({
            action: "update",
            ann_id: d.a.ann_id,
            x0: cx - w,
            y0: cy - hh,
            x1: cx + w,
            y1: cy + hh,
          });
      } else if (d.type === "resize") {
        const b = d.box;
        conn.send({
          action: "update",
          ann_id: d.a.ann_id,
          x0: clamp(Math.min(b.x0, b.x1), smp.width),
          y0: clamp(Math.min(b.y0, b.y1), smp.height),
          x1: clamp(Math.max(b.x0, b.x1), smp.width),
          y1: clamp(Math.max(b.y0, b.y1), smp.height),
        });
      }
      renderOverlay();
    });
    viewport.addEventListener(
      "wheel",
      (ev) => {
        if (!ev.ctrlKey && !ev.metaKey && state.tool !== "pan") return;
        ev.preventDefault();
        zoomAt(state.zoom * (ev.deltaY < 0 ? 1.15 : 1 / 1.15), ev.clientX, ev.clientY);
      },
      { passive: false },
    );
    /** Zoom so that the image point under (clientX, clientY) stays under it. */
    function zoomAt(zoom, clientX, clientY) {
      const r = stage.getBoundingClientRect(),
        v = viewport.getBoundingClientRect();
      // one wheel gesture keeps the point it started on (while the image is still smaller
      // than the view, no scroll can hold the point under the pointer; later steps can)
      const a = state.anchor,
        now = Date.now();
      if (!a || a.x !== clientX || a.y !== clientY || now - a.t > 1000) {
        state.anchor = {
          x: clientX,
          y: clientY,
          fx: (clientX - r.left) / r.width,
          fy: (clientY - r.top) / r.height,
        };
      }
      state.anchor.t = now;
      const { fx, fy } = state.anchor;
      state.zoom = Math.min(8, Math.max(0.25, zoom));
      layout();
      const w = stage.getBoundingClientRect();
      viewport.scrollLeft = fx * w.width - (clientX - v.left);
      viewport.scrollTop = fy * w.height - (clientY - v.top);
      renderOverlay();
      renderSide(); // the minimap follows the scroll
    }

    // -- minimap: where the view is in the whole image, when zoomed in; click or drag to go --
    const mapImg = h("img", { alt: "" });
    const mapView = h("div", { class: "view" });
    const minimap = h(
      "div",
      { class: "minimap", "data-role": "minimap", hidden: true },
      mapImg,
      mapView,
    );
    function renderMinimap() {
      const sw = stage.offsetWidth,
        sh = stage.offsetHeight;
      const zoomed = sw > viewport.clientWidth + 1 || sh > viewport.clientHeight + 1;
      minimap.hidden = !zoomed || !state.url;
      if (minimap.hidden) return;
      if (mapImg.src !== img.src) mapImg.src = img.src;
      const mw = 160,
        mh = (160 * sh) / sw;
      minimap.style.width = `${mw}px`;
      minimap.style.height = `${mh}px`;
      mapView.style.left = `${(viewport.scrollLeft / sw) * mw}px`;
      mapView.style.top = `${(viewport.scrollTop / sh) * mh}px`;
      mapView.style.width = `${Math.min(1, viewport.clientWidth / sw) * mw}px`;
      mapView.style.height = `${Math.min(1, viewport.clientHeight / sh) * mh}px`;
    }
    function goToMinimap(ev) {
      const r = minimap.getBoundingClientRect();
      viewport.scrollLeft =
        ((ev.clientX - r.left) / r.width) * stage.offsetWidth - viewport.clientWidth / 2;
      viewport.scrollTop =
        ((ev.clientY - r.top) / r.height) * stage.offsetHeight - viewport.clientHeight / 2;
    }
    minimap.addEventListener("pointerdown", (ev) => {
      ev.stopPropagation();
      goToMinimap(ev);
      minimap.setPointerCapture(ev.pointerId);
      const move = (e) => goToMinimap(e);
      minimap.addEventListener("pointermove", move);
      minimap.addEventListener(
        "pointerup",
        () => minimap.removeEventListener("pointermove", move),
        { once: true },
      );
    });
    viewport.addEventListener("scroll", renderMinimap);
    view.append(minimap);

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
      const near = 3 * px();
      state.poly = state.poly.filter(
        (p, i, all) => i === 0 || Math.hypot(p[0] - all[i - 1][0], p[1] - all[i - 1][1]) > near,
      );
      if (state.poly.length >= 3) {
        conn.send({
          action: "add_polygon",
          kind: state.tool === "ignore_polygon" ? "ignore" : "polygon",
          label: state.label,
          points: state.poly,
        });
      }
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
    function chooseLabel(label) {
      if (model.get("task") === "classification") {
        conn.send({ action: "set_label", label });
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
                  "Yes",
                ),
                h(
                  "button",
                  {
                    onclick: () => {
                      state.asking = false;
                      renderSide();
                    },
                  },
                  "No",
                ),
              ]
            : [
                h(
                  "button",
                  {
                    class: "primary",
                    "data-action": "confirm",
                    onclick: () => conn.send({ action: "confirm" }),
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
            smp.hard_score !== null
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
      if (task === "classification" && model.get("probabilities").length) {
        parts.push(
          h("h4", {}, "Model's top classes"),
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
      const labelButtons = h(
        "div",
        { class: "labels" },
        ...labels().map((l, i) =>
          h(
            "button",
            {
              class: (task === "classification" ? smp.label === l : state.label === l) ? "on" : "",
              "data-label": l,
              onclick: () => chooseLabel(l),
            },
            `${i < 9 ? `${i + 1} ` : ""}${l}`,
          ),
        ),
      );
      parts.push(
        h("h4", {}, task === "classification" ? "Class" : "Label for new shapes"),
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
        parts.push(
          h(
            "div",
            { class: "bar" },
            h(
              "button",
              {
                "data-action": "clear",
                title: "delete every annotation of this image",
                onclick: () => conn.send({ action: "clear" }),
              },
              "Clear all",
            ),
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
                onclick: () => zoomTo("original"),
              },
              "1:1 (o)",
            ),
            h(
              "button",
              {
                "data-action": "zoom-fit",
                title: "the whole image (f)",
                onclick: () => zoomTo("fit"),
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
            h("span", { class: "muted" }, `zoom ${Math.round(state.zoom * 100)}%`),
          ),
        );
        const numbers = numbering();
        const rows = model.get("annotations").map((a) => {
          const text = h("input", {
            placeholder: "OCR text",
            value: a.text ?? "",
            "data-text": a.ann_id,
          });
          text.addEventListener("change", () =>
            conn.send({ action: "update", ann_id: a.ann_id, text: text.value || null }),
          );
          text.addEventListener("keydown", (e) => e.stopPropagation());
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
              { class: "chip", style: `color:${HARD_COLORS[a.hard_type] || colorOf(a.label)}` },
              a.kind === "ignore" ? "ignore" : `${a.label}${n ? ` ${n}` : ""}`,
            ),
            h("span", { class: "muted" }, a.score !== null ? a.score.toFixed(2) : a.origin),
            a.kind !== "ignore" ? text : null,
            relabel,
            a.kind !== "ignore" ? hardTypeSelect(a) : null,
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
                  conn.send({ action: "delete", ann_id: a.ann_id });
                },
              },
              "×",
            ),
          );
        });
        parts.push(
          h("h4", {}, `Objects (${rows.length})`),
          h("div", { class: "ann-list" }, ...rows),
        );
      }
      parts.push(h("h4", {}, "Keys"), keyHelp(review, detection()));
      side.replaceChildren(...parts);
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
      if (model.get("count"))
        parts.push(
          h("span", { class: "muted" }, `${model.get("position") + 1} / ${model.get("count")}`),
        );
      parts.push(
        h(
          "button",
          { "data-action": "undo", onclick: () => conn.send({ action: "undo" }) },
          "Undo",
        ),
      );
      header.replaceChildren(...parts);
    }
    function renderImage() {
      crop.hidden = true;
      if (state.url) URL.revokeObjectURL(state.url);
      const data = model.get("image");
      state.url = data?.byteLength
        ? URL.createObjectURL(new Blob([data], { type: "image/jpeg" }))
        : null;
      img.src = state.url ?? "";
      state.selected = null;
      state.poly = [];
      state.hidden.clear();
      state.locked.clear();
      layout();
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
        chooseLabel(name);
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
      zoom: (key) => zoomTo(key === "o" ? "original" : "fit"),
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
        if (state.poly.length === 0) return false;
        finishPolygon();
        return true;
      },
      findLabel: () => {
        const f = side.querySelector("[data-role=label-find]");
        if (f) f.focus();
      },
      cancel: () => {
        state.poly = [];
        state.selected = null;
        render();
      },
      confirm: () => conn.send({ action: "confirm" }),
      skip: () => conn.send({ action: "skip" }),
      deleteImage: () => {
        state.asking = true;
        renderSide();
      },
    };
    root.addEventListener("keydown", (ev) => {
      const key = ev.key;
      if (ev.ctrlKey || ev.metaKey) {
        const what = { z: "undo", c: "copy", v: "paste" }[key.toLowerCase()];
        if (!what || (what !== "undo" && detection() === false)) return;
        ev.preventDefault();
        ev.stopPropagation();
        if (what === "undo") conn.send({ action: "undo" });
        else if (what === "copy") copy();
        else paste();
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

    root.addEventListener("keyup", (ev) => {
      if (ev.key === " ") {
        state.space = false;
        svg.style.cursor = "";
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
    ])
      model.on(`change:${name}`, render);
    model.on("change:threshold", () => {
      renderOverlay();
      const heading = side.querySelector("[data-role=threshold-text]");
      if (heading) heading.textContent = `Score threshold ${model.get("threshold").toFixed(2)}`;
    });
    img.addEventListener("load", () => {
      layout();
      renderOverlay();
    });
    // follow the panel's width (a resized window or sidebar): lay out again
    let lastWidth = 0;
    const resized = new ResizeObserver(() => {
      if (Math.abs(viewport.clientWidth - lastWidth) < 2) return;
      lastWidth = viewport.clientWidth;
      layout();
      renderOverlay();
    });
    resized.observe(viewport);
    renderImage();
    render();
    return () => {
      resized.disconnect();
      stop.abort();
      conn.close();
      if (state.url) URL.revokeObjectURL(state.url);
    };
  },
};
